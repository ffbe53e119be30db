//! What every request passes before its handler: an id (`x-request-id`, accepted from the
//! client when it is a plain token, created otherwise, echoed on the answer, logged and
//! recorded in the audit entries the request causes), a bound on the URI and on the
//! declared body, and the problem answers for a route or method the API does not have.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::MAX_BODY;
use super::current::{CURRENT, Current};
use super::error::ApiError;

/// The header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest URI served (path and query).
pub const MAX_URI: usize = 8 * 1024;

/// The longest request id accepted from a client.
const MAX_ID: usize = 128;

/// A client's id when it is 1 to 128 characters of letters, digits and `-_.:`; else a
/// new one.
fn id_of(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_ID
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string)
}

/// The outermost layer: gives the request its id and serves it inside that id's scope.
pub async fn identify(request: Request, next: Next) -> Response {
    let current = Current {
        id: id_of(&request),
        path: request.uri().path().to_string(),
    };
    let span = tracing::info_span!(
        "request",
        request_id = %current.id,
        method = %request.method(),
        path = %current.path,
    );
    let id = HeaderValue::from_str(&current.id).ok();
    let mut response = CURRENT
        .scope(current, next.run(request).instrument(span))
        .await;
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

/// Refuses a URI longer than [`MAX_URI`] (414), and a body declared larger than the API
/// accepts (413) before reading it; the body limit itself stops bodies without a declared
/// length.
pub async fn bound(request: Request, next: Next) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > MAX_URI {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the URI is {uri} bytes, longer than {MAX_URI}"),
        )
        .into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Imports stream their bodies to a file and bound them themselves.
    let most = match request.uri().path() {
        super::transfer::IMPORT_PATH => super::transfer::MAX_IMPORT,
        super::installs::INSTALL_PATH => super::installs::MAX_INSTALL_BODY as u64,
        _ => MAX_BODY as u64,
    };
    if declared.is_some_and(|n| n > most) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {most} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Counts an answered request by its route (the path template, not the path), method and
/// status.
pub async fn count(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    crate::metrics::metrics()
        .api_requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    response
}

/// Counts a request no route serves.
fn count_unmatched(request: &Request, status: StatusCode) {
    crate::metrics::metrics()
        .api_requests
        .with_label_values(&["unmatched", request.method().as_str(), status.as_str()])
        .inc();
}

/// The answer for a path no route serves.
pub async fn no_route(request: Request) -> ApiError {
    count_unmatched(&request, StatusCode::NOT_FOUND);
    ApiError::not_found(format!("no API route is `{}`", request.uri().path()))
}

/// The answer for a method a route does not serve.
pub async fn no_method(request: Request) -> ApiError {
    count_unmatched(&request, StatusCode::METHOD_NOT_ALLOWED);
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "`{}` does not take {}",
            request.uri().path(),
            request.method()
        ),
    )
}
