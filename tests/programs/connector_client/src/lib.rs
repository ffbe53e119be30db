//! A worker that depends on a connector, the way most workers do: it creates a follow-up
//! task for the event, then POSTs the event to the connector URL in its payload. A 2xx is
//! success; a 429 or 5xx is `unavailable` (the connector is down or throttling); an error
//! reaching it is passed on. With `"deny": true` it first tries to create an `account`
//! record, which its grant does not allow, and fails with the denial.
//!
//! Payload: `{"url": "http://127.0.0.1:PORT/path", "ref": "order-1", "timeout-ms": 500,
//! "create": true, "deny": false}`.

use roster_sdk::http::{Header, Method, Request};
use roster_sdk::records;
use roster_sdk::{Event, Outcome, Worker, WorkerError};
use serde_json::Value as Json;

struct Client;

impl Worker for Client {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let payload: Json = serde_json::from_str(event.payload.as_deref().unwrap_or("{}"))
            .map_err(|e| WorkerError::InvalidInput(format!("payload: {e}")))?;
        let text = |key: &str| payload.get(key).and_then(Json::as_str).unwrap_or_default();
        let reference = text("ref").to_string();
        if payload.get("deny").and_then(Json::as_bool) == Some(true) {
            records::create("account", &[roster_sdk::field("name", "not granted")])?;
        }
        if payload.get("create").and_then(Json::as_bool) != Some(false) {
            records::create(
                "task",
                &[
                    roster_sdk::field("subject", format!("follow up {reference}")),
                    roster_sdk::field("related_to", reference.clone()),
                ],
            )?;
        }
        let body = serde_json::json!({ "ref": reference, "event": event.id }).to_string();
        let response = roster_sdk::http::send(&Request {
            method: Method::Post,
            url: text("url").to_string(),
            headers: vec![Header {
                name: "content-type".into(),
                value: "application/json".into(),
            }],
            body: Some(body.into_bytes()),
            timeout_ms: payload
                .get("timeout-ms")
                .and_then(Json::as_u64)
                .map(|ms| ms as u32),
        })?;
        match response.status {
            200..=299 => Ok(Outcome::success(format!("delivered {reference}"))),
            429 => Err(WorkerError::Unavailable(
                "the connector is throttling".into(),
            )),
            s if s >= 500 => Err(WorkerError::Unavailable(format!(
                "the connector answered {s}"
            ))),
            s => Err(WorkerError::InvalidInput(format!(
                "the connector refused the request with {s}"
            ))),
        }
    }
}

roster_sdk::export!(Client);
