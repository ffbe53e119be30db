//! A hostile worker: each attack, named by the event's payload (`{"attack": "sleep"}`), tries
//! to hold the host or make it keep more than the limits allow. Each must end within the
//! limits, with the status a user would see.

use std::io::Read;
use std::time::Duration;

use roster_sdk::http::{Header, Method, Request};
use roster_sdk::notify::{self, Channel};
use roster_sdk::records::{self, Comparison};
use roster_sdk::{Event, Field, Outcome, Value, Worker, WorkerError, inference, memory};

struct Hostile;

/// How many empty elements a list attack passes (each costs the guest a few bytes).
const MANY: usize = 800_000;

fn empty_fields() -> Vec<Field> {
    (0..MANY)
        .map(|_| Field {
            name: String::new(),
            value: Value::Null,
        })
        .collect()
}

impl Worker for Hostile {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let attack = event.payload_text("attack").unwrap_or_default();
        match attack.as_str() {
            // A WASI sleep: a poll on a monotonic-clock pollable.
            "sleep" => std::thread::sleep(Duration::from_secs(3600)),
            // A blocking read of standard input.
            "stdin" => {
                let mut line = String::new();
                let read = std::io::stdin().read_to_string(&mut line);
                return Ok(Outcome::success(format!("stdin: {read:?}")));
            }
            "fields" => {
                let created = records::create("task", &empty_fields());
                return Ok(Outcome::success(format!("create: {created:?}")));
            }
            "text-list" => {
                let list = Value::TextList(vec![String::new(); MANY]);
                let created = records::create("task", &[roster_sdk::field("subject", list)]);
                return Ok(Outcome::success(format!("create: {created:?}")));
            }
            "filters" => {
                let filters = (0..MANY)
                    .map(|_| records::filter("", Comparison::IsEmpty, Value::Null))
                    .collect();
                let found = records::find(&records::query("task", filters, 1));
                return Ok(Outcome::success(format!("find: {}", found.is_ok())));
            }
            "headers" => {
                let headers = (0..MANY)
                    .map(|_| Header {
                        name: String::new(),
                        value: String::new(),
                    })
                    .collect();
                let sent = roster_sdk::http::send(&Request {
                    method: Method::Get,
                    url: "https://example.com/".into(),
                    headers,
                    body: None,
                    timeout_ms: None,
                });
                return Ok(Outcome::success(format!("http: {}", sent.is_ok())));
            }
            "recipients" => {
                let to = vec![""; MANY];
                let sent = notify::send(&notify::message(Channel::InApp, &to, None, ""));
                return Ok(Outcome::success(format!("notify: {}", sent.is_ok())));
            }
            "labels" => {
                let labels = vec![""; MANY];
                let p = inference::classify("model", "text", &labels);
                return Ok(Outcome::success(format!("classify: {}", p.is_ok())));
            }
            // Many denied writes, each naming a long field: what the host keeps of them
            // must stay bounded.
            "denied-writes" => {
                let long = "f".repeat(60_000);
                let fields = vec![roster_sdk::field(long, "x")];
                let mut denied = 0;
                for _ in 0..200 {
                    if records::create("task", &fields).is_err() {
                        denied += 1;
                    }
                }
                return Ok(Outcome::success(format!("denied {denied}")));
            }
            // More memory writes than the action limit: memory is the worker's own state,
            // not an action.
            "memory-writes" => {
                for i in 0..10 {
                    memory::set_text(&format!("k{i}"), "v")?;
                }
                return Ok(Outcome::success("10 memory writes"));
            }
            // A 24 MiB error and a 24 MiB summary.
            "huge-error" => return Err(WorkerError::Other("e".repeat(24 << 20))),
            "huge-summary" => return Ok(Outcome::success("s".repeat(24 << 20))),
            _ => {}
        }
        Ok(Outcome::success(format!("unknown attack `{attack}`")))
    }
}

roster_sdk::export!(Hostile);
