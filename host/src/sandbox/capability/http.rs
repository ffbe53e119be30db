//! `roster:http/outbound`: HTTP requests to allow-listed origins only, through the host's
//! checked client ([`crate::net`]): the grant's origins, addresses, headers, sizes and
//! times are checked by the host, never by the worker.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::net::{HttpError, IDEMPOTENCY_HEADER, check_headers, check_request_url, retry_after_ms};
use crate::sandbox::bindings::roster::http::outbound::{Header, Host, Method, Request, Response};
use crate::sandbox::bindings::roster::types::types::Error;
use crate::sandbox::gate::{ActionKind, Applied, Call, Refused};
use crate::sandbox::payload::Payload;
use crate::sandbox::state::HostState;

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Denied(r) => Error::Denied(r),
            HttpError::Invalid(r) => Error::InvalidInput(r),
            HttpError::TooLarge(r) => Error::BudgetExceeded(r),
            HttpError::Unavailable(r) => Error::Unavailable(r),
        }
    }
}

fn method(m: Method) -> http::Method {
    match m {
        Method::Get => http::Method::GET,
        Method::Head => http::Method::HEAD,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Patch => http::Method::PATCH,
        Method::Delete => http::Method::DELETE,
    }
}

impl Host for HostState {
    fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        self.gate.enter(
            Payload::default()
                .text(&request.url)
                .bytes(request.body.as_ref().map_or(0, Vec::len))
                .list(&request.headers, |p, h| p.text(&h.name).text(&h.value)),
        )?;
        let method = method(request.method);
        let call = Call::new(
            "http",
            "send",
            ActionKind::Effect,
            request.url.clone(),
            json!({
                "method": method.as_str(),
                "headers": request.headers.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
                "body_bytes": request.body.as_ref().map_or(0, Vec::len),
            }),
        );
        let Some(mut scope) = self.worker.grant.capabilities.http.clone() else {
            return Ok(Err(self
                .gate
                .deny(call, "capability `http` is not granted")));
        };
        if let Some(path) = &self.escalated.path
            && !path.permits("http", "request")
        {
            let reason = format!(
                "escalation path `{}` permits {} only",
                path.name,
                path.actions.join(", ")
            );
            return Ok(Err(self.gate.deny(call, reason)));
        }
        // What crosses back into the sandbox is bounded by the per-call byte limit too.
        scope.max_response_bytes = scope.max_response_bytes.min(self.worker.limits.call_bytes);
        let headers: Vec<(String, String)> = request
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        let mut deadline = self.deadline;
        if let Some(ms) = request.timeout_ms {
            deadline = deadline.min(Instant::now() + Duration::from_millis(u64::from(ms)));
        }
        if let Err(e) =
            check_headers(&headers).and_then(|_| check_request_url(&scope, &request.url))
        {
            return Ok(Err(match e {
                HttpError::Denied(reason) => self.gate.deny(call, reason),
                other => self.gate.reject(call, Error::from(other)),
            }));
        }
        let client = self.worker.services.http.clone();
        let store = self.worker.services.store.clone();
        let halt = self.worker.halt.clone();
        let url = request.url;
        let body = request.body;
        let result = self.gate.act(call, |ids| {
            let repeatable = matches!(method, http::Method::GET | http::Method::HEAD);
            if !repeatable
                && let Some(recorded) = store
                    .effect(ids.key)
                    .map_err(|e| Error::Unavailable(e.to_string()))?
                && let Some(response) = response_from_journal(&recorded)
            {
                return Ok(Applied {
                    value: response,
                    output: json!({ "status": recorded["status"], "replayed-from": "journal" }),
                    replayed: true,
                });
            }
            let mut headers = headers;
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(IDEMPOTENCY_HEADER))
            {
                headers.push((IDEMPOTENCY_HEADER.to_string(), ids.key.to_string()));
            }
            let fetched =
                match client.send(&scope, &method, &url, &headers, body, deadline, Some(&halt)) {
                    Ok(fetched) => fetched,
                    Err(HttpError::Denied(reason)) => return Err(Refused::Denied(reason)),
                    Err(other) => return Err(Refused::Failed(Error::from(other))),
                };
            let mut output = json!({
                "status": fetched.status,
                "bytes": fetched.body.len(),
                "hops": fetched.hops,
            });
            if let Some(ms) = retry_after_ms(&fetched) {
                output["retry_after_ms"] = json!(ms);
            }
            if !repeatable && (200..300).contains(&fetched.status) {
                // Journalled once the peer accepted it: a retry of this trigger gets this
                // response back instead of sending again.
                let recorded = json!({
                    "status": fetched.status,
                    "headers": fetched.headers,
                    "body": hex::encode(&fetched.body),
                    "url": fetched.url,
                });
                if let Err(e) = store.remember_effect(ids.key, recorded) {
                    tracing::warn!("journalling HTTP effect {}: {e}", ids.key);
                }
            }
            let response = Response {
                status: fetched.status,
                headers: fetched
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                body: fetched.body,
                url: fetched.url,
            };
            Ok(Applied::new(response, output))
        })?;
        if self.worker.halt.load(std::sync::atomic::Ordering::SeqCst) {
            // Paused while the request was out: the execution ends here.
            return Err(wasmtime::Error::new(crate::sandbox::gate::Halted));
        }
        Ok(result.map(|(value, _)| value.unwrap_or_else(empty)))
    }
}

/// A response recorded in the effect journal.
fn response_from_journal(recorded: &serde_json::Value) -> Option<Response> {
    Some(Response {
        status: u16::try_from(recorded["status"].as_u64()?).ok()?,
        headers: recorded["headers"]
            .as_array()?
            .iter()
            .filter_map(|h| {
                Some(Header {
                    name: h.get(0)?.as_str()?.to_string(),
                    value: h.get(1)?.as_str()?.to_string(),
                })
            })
            .collect(),
        body: hex::decode(recorded["body"].as_str()?).ok()?,
        url: recorded["url"].as_str()?.to_string(),
    })
}

/// The response given in dry-run mode, where no request is sent.
fn empty() -> Response {
    Response {
        status: 0,
        headers: Vec::new(),
        body: Vec::new(),
        url: String::new(),
    }
}
