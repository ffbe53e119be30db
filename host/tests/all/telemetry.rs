//! `roster serve` with `[telemetry] otlp-endpoint`: an execution's spans — the execution,
//! its host calls and its store commits — arrive at an OTLP/HTTP receiver on loopback,
//! under the trace id its audit entry records.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use test_programs_artifacts::WORKER_WELL_BEHAVED;

use crate::serve_process::{Server, free_port};

/// An OTLP/HTTP receiver: keeps the body of every request to `/v1/traces`.
fn receiver() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if path == "/v1/traces" {
                        kept.lock().unwrap().push(body);
                    }
                    let _ = out.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
    (port, bodies)
}

const MANIFEST: &str = r#"[plugin]
id = "acme.reviewer"
name = "Reviewer"
version = "1.0.0"
domain = "revenue"
description = "Marks leads reviewed and tells their owner."
[owners]
business = "sales@acme.test"
technical = "dev@acme.test"
[capabilities.records.objects.lead]
read = ["*"]
write = ["status"]
[capabilities.notify]
channels = ["in-app"]
recipients = ["*"]
[capabilities.memory]
quota-bytes = 1024
"#;

#[test]
fn an_execution_s_spans_reach_the_otlp_receiver_under_its_trace_id() {
    let (otlp, bodies) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    std::fs::write(d.join("manifest.toml"), MANIFEST).unwrap();
    std::fs::write(
        d.join("grant.toml"),
        MANIFEST
            .split("[capabilities.records")
            .nth(1)
            .map(|caps| format!("[grant]\nplugin = \"acme.reviewer\"\n[capabilities.records{caps}"))
            .unwrap(),
    )
    .unwrap();
    std::fs::write(
        d.join("reviewer.toml"),
        format!(
            "[worker]\nname = \"reviewer\"\ncomponent = \"{WORKER_WELL_BEHAVED}\"\nmanifest = \"manifest.toml\"\ngrant = \"grant.toml\"\nprincipal = \"svc\"\n\n[[triggers]]\non = \"event\"\nname = \"review\"\n"
        ),
    )
    .unwrap();
    let config = d.join("roster.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = \"data\"\nlisten = \"127.0.0.1:{port}\"\napi-token-env = \"ROSTER_TEST_TOKEN\"\nwebhook-secret-env = \"ROSTER_TEST_SECRET\"\nworkers = [\"reviewer.toml\"]\n\n[telemetry]\notlp-endpoint = \"http://127.0.0.1:{otlp}\"\n\n[[principals]]\nid = \"svc\"\nkind = \"service\"\nsees = \"all\"\n\n[[principals]]\nid = \"ann\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(&config, port);
    let (status, body) = server.api(
        "POST",
        "/v1/records/lead",
        r#"{"id": "L-1", "owner": "ann", "fields": {"name": "Ada"}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.send(
        "review",
        r#"{"id": "t1", "object": "lead", "record-id": "L-1"}"#,
    );
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let execution = loop {
        if let Some(e) = server
            .executions()
            .into_iter()
            .find(|e| e["worker"] == "reviewer")
        {
            break e;
        }
        assert!(Instant::now() < deadline, "no execution");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(execution["status"], "success", "{execution}");
    let trace = execution["trace_id"]
        .as_str()
        .expect("a trace id")
        .to_string();
    assert_eq!(trace.len(), 32, "{trace}");
    // A graceful stop sends what is left.
    server.stop();

    let raw = hex::decode(&trace).unwrap();
    let sent = bodies.lock().unwrap().concat();
    let has = |needle: &[u8]| sent.windows(needle.len()).any(|w| w == needle);
    assert!(!sent.is_empty(), "no spans arrived");
    assert!(
        has(&raw),
        "the trace of the audit entry is not among the spans"
    );
    for name in [
        "roster.execution",
        "wit-bindgen import",
        "roster.store.commit",
        "records",
        "reviewer",
    ] {
        assert!(has(name.as_bytes()), "no `{name}` in the spans");
    }
    // Spans carry no log events: what the worker logged is not exported.
    assert!(!has(b"reviewed L-1 (run"), "a log line reached the trace");
}
