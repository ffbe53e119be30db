//! The stylesheet and script of the console, compiled into the binary and served with a
//! digest in their address, so a browser keeps them until they change.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The files: name, content type, text.
const FILES: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
];

/// Each file's address, with the first characters of its digest.
static ADDRESSES: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, _, text)| {
            let digest = hex::encode(Sha256::digest(text.as_bytes()));
            (*name, format!("/assets/{name}?v={}", &digest[..12]))
        })
        .collect()
});

/// The address of an embedded file.
pub(super) fn href(name: &str) -> &'static str {
    ADDRESSES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| a.as_str())
        .unwrap_or("/assets/missing")
}

/// `GET /assets/{file}`.
pub(super) async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, content_type, text)) = FILES.iter().find(|(n, _, _)| *n == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mut response = (*text).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
