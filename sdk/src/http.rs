//! The outbound HTTP capability: requests to allow-listed origins.

pub use crate::bindings::roster::http::outbound::{Header, Method, Request, Response, send};

use crate::WorkerError;

/// Sends a GET request to `url` with no extra headers.
pub fn get(url: &str) -> Result<Response, WorkerError> {
    send(&Request {
        method: Method::Get,
        url: url.to_string(),
        headers: Vec::new(),
        body: None,
        timeout_ms: None,
    })
}

impl Response {
    /// The body as UTF-8 text (invalid sequences replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}
