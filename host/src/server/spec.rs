//! The API's own description: `GET /v1/openapi.json` (OpenAPI 3.1, built from the typed
//! handlers, served without a token) and `GET /healthz`, with the conventions every
//! operation shares: how callers authenticate, and the problems any of them may answer.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};

use super::error::{PROBLEM_JSON, Problem};

/// Whether the host is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    operation_id = "spec_health",
    responses((status = 200, description = "the host is up", body = String, content_type = "text/plain"))
)]
pub(super) async fn health() -> &'static str {
    "ok"
}

/// This description.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    operation_id = "spec_openapi",
    responses((status = 200, description = "the OpenAPI 3.1 description of this API", body = Object))
)]
pub(super) async fn openapi() -> impl IntoResponse {
    // Built once, then answered as the same bytes.
    static SPEC: OnceLock<Vec<u8>> = OnceLock::new();
    let spec = SPEC.get_or_init(|| serde_json::to_vec(&super::openapi()).unwrap_or_default());
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        spec.as_slice(),
    )
}

/// The errors any operation may answer besides its own, each as a problem.
const PROBLEMS: [(&str, &str); 11] = [
    (
        "400",
        "the request does not read: a bad body, query or path",
    ),
    ("401", "no valid token (or, for events, no valid signature)"),
    ("403", "the access policies do not permit it"),
    ("404", "what it names does not exist"),
    (
        "409",
        "it conflicts with what is there: the thing exists, or was decided already",
    ),
    ("413", "the body is larger than 1 MiB"),
    ("414", "the URI is longer than 8 KiB"),
    ("415", "the body is declared as something other than JSON"),
    (
        "429",
        "too many failed authentications from this client; see Retry-After",
    ),
    ("500", "an internal fault, logged by the host"),
    (
        "503",
        "what it needs is not configured on this host (for events: no webhook secret)",
    ),
];

/// Adds what every operation shares: the security schemes, the problem schema, and the
/// problem answers.
pub(super) struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "webhook-signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::webhook::SIGNATURE_HEADER,
                "sha256=<hex HMAC-SHA256 of \"{x-roster-timestamp}.{body}\"> under the webhook secret",
            ))),
        );
        let schema = <Problem as utoipa::PartialSchema>::schema();
        components.schemas.insert("Problem".to_string(), schema);
        for item in api.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for (status, description) in PROBLEMS {
                    let problem = ResponseBuilder::new()
                        .description(description)
                        .content(
                            PROBLEM_JSON,
                            ContentBuilder::new()
                                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                    "Problem",
                                ))))
                                .build(),
                        )
                        .build();
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert(RefOr::T(problem));
                }
            }
        }
    }
}
