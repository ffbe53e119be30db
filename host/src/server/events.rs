//! `POST /v1/events/{name}`: named business events from signed webhooks.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::Mac;
use serde::Serialize;

use super::Api;
use super::error::{ApiError, ApiResult};
use super::extract::{Path, RequestBody, json, read_body};
use crate::service::EventSubmission;
use crate::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, mac};

/// A webhook delivery whose signature checked out.
pub(super) struct Signed {
    /// The signature's bytes, which name the delivery.
    signature: Vec<u8>,
    body: Bytes,
}

impl FromRequest<Api> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, api: &Api) -> Result<Signed, ApiError> {
        let headers = request.headers().clone();
        let body = read_body(request, api).await?;
        let signature = verify(api, &headers, &body)?;
        Ok(Signed { signature, body })
    }
}

/// Checks a webhook's signature; returns the signature's bytes.
fn verify(api: &Api, headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<u8>> {
    let config = api.service.config();
    let Some(secret) = &config.webhook_secret else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are not configured (set webhook-secret-env in roster.toml)",
        ));
    };
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let timestamp: i64 = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| unauthorized("missing or malformed x-roster-timestamp"))?;
    let now_s = api.service.runtime().store().clock().now_ms() / 1000;
    let skew = now_s.checked_sub(timestamp).map(i64::unsigned_abs);
    if skew.is_none_or(|s| s > config.webhook_tolerance_s) {
        return Err(unauthorized("the signature is too old or from the future"));
    }
    let given = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok())
        .ok_or_else(|| unauthorized("missing or malformed x-roster-signature"))?;
    mac(secret, timestamp, body)
        .ok_or_else(|| ApiError::internal("bad webhook secret"))?
        .verify_slice(&given)
        .map_err(|_| unauthorized("the signature does not match"))?;
    Ok(given)
}

impl RequestBody for EventSubmission {
    fn parse(body: &[u8]) -> ApiResult<Self> {
        if body.is_empty() {
            return Ok(EventSubmission::default());
        }
        json(body, "invalid event")
    }
}

/// The answer to an event: the queue positions it produced, and whether it was sent
/// before.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Accepted {
    accepted: Vec<u64>,
    duplicate: bool,
}

#[utoipa::path(
    post,
    path = "/v1/events/{name}",
    tag = "events",
    operation_id = "events_receive",
    params(("name" = String, Path, description = "the event's name")),
    request_body = EventSubmission,
    responses(
        (status = 202, description = "accepted: the queue positions it produced", body = Accepted),
        (status = 200, description = "a delivery accepted before (the same id or signature)", body = Accepted)
    ),
    security(("webhook-signature" = []))
)]
pub(super) async fn receive(
    State(api): State<Api>,
    Path(name): Path<String>,
    delivery: Signed,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let mut event = EventSubmission::parse(&delivery.body)?;
    // A delivery without an id is named by its signature (over its timestamp and body),
    // so the same signed delivery sent again within the tolerance is a duplicate.
    if event.id.is_none() {
        event.id = Some(format!("sig-{}", hex::encode(&delivery.signature[..16])));
    }
    let (accepted, duplicate) = api
        .run(move |service| Ok(service.accept_event(&name, event)?))
        .await?;
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(Accepted {
            accepted,
            duplicate,
        }),
    ))
}
