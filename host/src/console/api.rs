//! Requests to the API as the signed-in account: the console's pages read its answers
//! and its buttons send its requests, so the API's checks hold in the browser too.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use super::Console;
use super::visitor::Visitor;
use crate::server::ActingAs;
use crate::store::Account;

/// The largest API answer a page reads.
const MAX_ANSWER: usize = 32 << 20;

/// What the API refused, in words.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    /// The API's status.
    pub(super) status: StatusCode,
    /// Its problem's detail (or title).
    pub(super) message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// Sends a request to the API in this process.
async fn send(console: &Console, request: Request<Body>) -> Response {
    let answer = console.api.clone().oneshot(request).await;
    answer.unwrap_or_else(|never| match never {})
}

/// Reads an answer as JSON; anything but a 2xx is a [`Refusal`] with the problem's words.
async fn read(response: Response) -> Result<Value, Refusal> {
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| Refusal::new(StatusCode::BAD_GATEWAY, format!("reading the answer: {e}")))?
        .to_bytes();
    let value: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    if status.is_success() {
        return Ok(value);
    }
    let message = value["detail"]
        .as_str()
        .or_else(|| value["title"].as_str())
        .or_else(|| value.as_str())
        .unwrap_or("the request was refused")
        .to_string();
    Err(Refusal::new(status, message))
}

fn request(
    method: Method,
    path: &str,
    body: Option<&Value>,
    account: Option<&Account>,
    peer: Option<ConnectInfo<SocketAddr>>,
) -> Result<Request<Body>, Refusal> {
    let body = match body {
        Some(b) => Body::from(serde_json::to_vec(b).unwrap_or_default()),
        None => Body::empty(),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("`{path}`: {e}")))?;
    if let Some(account) = account {
        request.extensions_mut().insert(ActingAs(account.clone()));
    }
    if let Some(peer) = peer {
        request.extensions_mut().insert(peer);
    }
    Ok(request)
}

impl Visitor {
    /// Sends an API request as the visitor; its JSON answer, or what was refused.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Refusal> {
        let request = request(method, path, body, Some(&self.account), self.peer)?;
        read(send(&self.console, request).await).await
    }

    /// `GET` of an API path.
    pub(super) async fn get(&self, path: &str) -> Result<Value, Refusal> {
        self.call(Method::GET, path, None).await
    }

    /// `POST` of a JSON body to an API path.
    pub(super) async fn post(&self, path: &str, body: &Value) -> Result<Value, Refusal> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// The API's answer to a `GET`, as it is (for downloads streamed to the browser).
    pub(super) async fn raw(&self, path: &str) -> Result<Response, Refusal> {
        let request = request(Method::GET, path, None, Some(&self.account), self.peer)?;
        Ok(send(&self.console, request).await)
    }
}

/// The account an API token acts as, asked of the API itself (so a wrong token is
/// throttled per client like any failed authentication); the refusal in words.
pub(super) async fn whoami(
    console: &Console,
    token: &str,
    peer: Option<ConnectInfo<SocketAddr>>,
) -> Result<Account, String> {
    let mut request =
        request(Method::GET, "/v1/whoami", None, None, peer).map_err(|r| r.message)?;
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| "That is not an API token.".to_string())?;
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    match read(send(console, request).await).await {
        Ok(answer) => serde_json::from_value(answer["account"].clone())
            .map_err(|e| format!("The API's answer did not read: {e}")),
        Err(r) if r.status == StatusCode::UNAUTHORIZED => {
            Err("That API token is not known, has expired or was revoked.".into())
        }
        Err(r) if r.status == StatusCode::TOO_MANY_REQUESTS => Err(format!(
            "Too many failed sign-ins from your address; wait a moment. ({})",
            r.message
        )),
        Err(r) => Err(r.message),
    }
}

/// A query string from pairs, leaving out empty values.
pub(super) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let present: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    if present.is_empty() {
        return String::new();
    }
    format!(
        "?{}",
        serde_urlencoded::to_string(present).unwrap_or_default()
    )
}

/// A path segment, percent-encoded.
pub(super) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
