//! What a handler reads from the request, each refusing what does not read with a problem
//! answer: [`Body`] (the body, read as its typed request once the caller may make it, so a
//! caller who may not is refused before the body is judged; JSON only), [`Query`] and
//! [`Path`].

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::Api;
use super::error::{ApiError, ApiResult};

/// A request body as the typed request `T` reads it.
pub(super) trait RequestBody: Sized {
    /// Reads the body; a 400 saying what is wrong with it.
    fn parse(body: &[u8]) -> ApiResult<Self>;
}

/// Reads a JSON body as `T`; a 400 starting with `refused` when it does not read.
pub(super) fn json<T: DeserializeOwned>(body: &[u8], refused: &str) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("{refused}: {e}")).with_code("invalid-body"))
}

/// Implements [`RequestBody`] as JSON for each type, refused with "invalid request".
macro_rules! json_requests {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::server::extract::RequestBody for $t {
            fn parse(body: &[u8]) -> $crate::server::error::ApiResult<Self> {
                $crate::server::extract::json(body, "invalid request")
            }
        }
    )*};
}
pub(super) use json_requests;

/// The request body, read as `T` when the handler asks ([`Body::read`]).
pub(super) struct Body<T> {
    bytes: Bytes,
    request: PhantomData<T>,
}

impl<T: RequestBody> Body<T> {
    /// The typed request.
    pub(super) fn read(&self) -> ApiResult<T> {
        T::parse(&self.bytes)
    }
}

impl<T: Send> FromRequest<Api> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, api: &Api) -> Result<Body<T>, ApiError> {
        Ok(Body {
            bytes: read_body(request, api).await?,
            request: PhantomData,
        })
    }
}

/// The bytes of a request body; refused when it is too large, does not arrive, or is
/// declared as anything but JSON.
pub(super) async fn read_body(request: Request, api: &Api) -> ApiResult<Bytes> {
    let json = is_json(request.headers());
    let bytes = Bytes::from_request(request, api)
        .await
        .map_err(|e: BytesRejection| {
            let status = e.status();
            let error = ApiError::new(status, e.body_text());
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                error
            } else {
                error.with_code("invalid-body")
            }
        })?;
    if !bytes.is_empty() && !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (content-type: application/json)",
        ));
    }
    Ok(bytes)
}

/// Whether the declared content type, if any, is JSON (`application/json`, `*/*+json`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(declared) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(declared) = declared.to_str() else {
        return false;
    };
    let media = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json")
}

/// A query string read as `T`; a problem (`invalid-query`) when it does not read.
pub(super) struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Api> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Query<T>, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, api)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::new(e.status(), e.body_text()).with_code("invalid-query"))
    }
}

/// Path parameters read as `T`; a problem (`invalid-path`) when they do not read.
pub(super) struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Api> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Path<T>, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, api)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::new(e.status(), e.body_text()).with_code("invalid-path"))
    }
}
