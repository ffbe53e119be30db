//! The API's one error shape: an RFC 9457 problem, `application/problem+json`, with a
//! stable machine `code`, a human `detail`, the request's path as `instance` and its
//! `request-id`. Client mistakes carry their reason (4xx); internal faults are logged and
//! answered without detail (5xx).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::current;
use crate::error::Error;
use crate::store::StoreError;

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An API error: a status, a stable code and a message for the caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

/// What a handler answers: its typed body, or an [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

/// An error answer (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:roster:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// A stable machine code (`not-found`, `invalid-body`, `forbidden`, ...).
    pub code: String,
    /// What went wrong, for a person.
    pub detail: String,
    /// The request's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request's id (`x-request-id`).
    #[serde(rename = "request-id", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The code an error of `status` has unless it says otherwise.
fn default_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid-request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::URI_TOO_LONG => "uri-too-long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::TOO_MANY_REQUESTS => "too-many-requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "invalid-request",
        _ => "internal",
    }
}

impl ApiError {
    /// An error with its status (and the status's usual code).
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: default_code(status),
            detail: detail.into(),
        }
    }

    /// The same error under a more precise code.
    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = code;
        self
    }

    /// A 400 with its reason.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// A 404 with its reason.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    /// A 500: logged, and answered without detail.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {error}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log",
        )
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem it is answered as, for the request being served.
    pub fn problem(&self) -> Problem {
        let request = current::current();
        Problem {
            kind: format!("urn:roster:problem:{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            code: self.code.to_string(),
            detail: self.detail.clone(),
            instance: request.as_ref().map(|r| r.path.clone()),
            request_id: request.map(|r| r.id),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Schema(_) | StoreError::BadKey(_) | StoreError::Invalid(_) => {
                ApiError::bad_request(e.to_string())
            }
            StoreError::Exists { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidEvent(_) => {
                ApiError::bad_request(e.to_string()).with_code("invalid-event")
            }
            Error::InvalidRequest(_) | Error::Config { .. } => ApiError::bad_request(e.to_string()),
            Error::UnknownWorker(_) | Error::NotFound(_) => ApiError::not_found(e.to_string()),
            Error::RuleRefused(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
                .with_code("rule-refused"),
            Error::InstallRefused(_) => {
                ApiError::new(StatusCode::CONFLICT, e.to_string()).with_code("install-refused")
            }
            Error::Store(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}
