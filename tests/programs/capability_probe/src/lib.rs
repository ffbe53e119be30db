//! A worker that performs the capability calls listed in its event's payload and reports
//! each call's result, one line per call, in its outcome summary. Tests drive every scope
//! check of the host through it.
//!
//! Payload: `{"calls": [{"op": "get", "object": "lead", "id": "L-1"}, ...]}`; each result
//! line is `ok <detail>` or `<error-kind> <reason>`.

use roster_sdk::http::{Header, Method, Request};
use roster_sdk::notify::{self, Channel};
use roster_sdk::records::{self, Comparison};
use roster_sdk::{Event, Field, Outcome, Value, Worker, WorkerError, memory, signals};
use serde_json::Value as Json;

struct Probe;

fn text(call: &Json, key: &str) -> String {
    call.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

fn fields(call: &Json) -> Vec<Field> {
    call.get("fields")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| roster_sdk::field(k.clone(), json_value(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn json_value(v: &Json) -> Value {
    match v {
        Json::String(s) => Value::Text(s.clone()),
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) if n.is_i64() => Value::Integer(n.as_i64().unwrap_or_default()),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or_default()),
        _ => Value::Null,
    }
}

fn channel(name: &str) -> Channel {
    match name {
        "email" => Channel::Email,
        "sms" => Channel::Sms,
        "slack" => Channel::Slack,
        "teams" => Channel::Teams,
        _ => Channel::InApp,
    }
}

fn perform(call: &Json) -> Result<String, WorkerError> {
    let object = text(call, "object");
    let id = text(call, "id");
    match text(call, "op").as_str() {
        "get" => {
            let r = records::get(&object, &id)?;
            let names: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
            Ok(format!("{} fields={}", r.id, names.join(",")))
        }
        "find" => {
            let q = records::query(
                object,
                vec![records::filter(
                    text(call, "field"),
                    Comparison::Equals,
                    text(call, "value"),
                )],
                100,
            );
            let found = records::find(&q)?;
            let ids: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
            Ok(ids.join(","))
        }
        "create" => Ok(records::create(&object, &fields(call))?.id),
        "update" => records::update(&object, &id, &fields(call)).map(|r| r.action_id),
        "delete" => records::delete(&object, &id).map(|r| r.action_id),
        "notify" => {
            let to: Vec<String> = call
                .get("to")
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let refs: Vec<&str> = to.iter().map(String::as_str).collect();
            notify::send(&notify::message(
                channel(&text(call, "channel")),
                &refs,
                Some("probe"),
                &text(call, "body"),
            ))
            .map(|r| r.action_id)
        }
        "http" => {
            let headers = call
                .get("headers")
                .and_then(Json::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| Header {
                            name: k.clone(),
                            value: v.as_str().unwrap_or_default().to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let method = match text(call, "method").as_str() {
                "POST" => Method::Post,
                _ => Method::Get,
            };
            let response = roster_sdk::http::send(&Request {
                method,
                url: text(call, "url"),
                headers,
                body: call
                    .get("body")
                    .and_then(Json::as_str)
                    .map(|b| b.as_bytes().to_vec()),
                timeout_ms: None,
            })?;
            Ok(format!("{} {}", response.status, response.text()))
        }
        "mem-set" => {
            memory::set_text(&text(call, "key"), &text(call, "value")).map(|()| "set".into())
        }
        "mem-get" => Ok(memory::get_text(&text(call, "key"))?.unwrap_or_else(|| "<none>".into())),
        "emit" => signals::emit(&text(call, "topic"), &text(call, "payload")).map(|r| r.action_id),
        other => Err(WorkerError::InvalidInput(format!("unknown op {other}"))),
    }
}

impl Worker for Probe {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let payload: Json = serde_json::from_str(event.payload.as_deref().unwrap_or("{}"))
            .map_err(|e| WorkerError::InvalidInput(e.to_string()))?;
        let calls = payload
            .get("calls")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let lines: Vec<String> = calls
            .iter()
            .map(|call| match perform(call) {
                Ok(detail) => format!("ok {detail}"),
                Err(e) => format!("{} {}", e.kind(), e.reason()),
            })
            .collect();
        Ok(Outcome::success(lines.join("\n")))
    }
}

roster_sdk::export!(Probe);
