//! `roster serve` as a separate process: the signed webhook, the API, bad input, and a
//! SIGKILL with triggers queued.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roster_host::webhook::sign;

use crate::serve::Fixture;

pub(crate) const TOKEN: &str = "test-api-token";
pub(crate) const SECRET: &str = "test-webhook-secret";

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fixture whose roster.toml listens on a free port and reads its secrets from the
/// environment.
pub(crate) fn fixture(plan_per_hour: u32, port: u16) -> Fixture {
    Fixture::new(
        &format!(
            "listen = \"127.0.0.1:{port}\"\napi-token-env = \"ROSTER_TEST_TOKEN\"\nwebhook-secret-env = \"ROSTER_TEST_SECRET\"\nplan = \"test\"\n[plans.test]\nexecutions-per-hour = {plan_per_hour}\nactions-per-execution = 5"
        ),
        &[(
            "on-ping",
            "svc",
            "[[triggers]]\non = \"event\"\nname = \"ping\"",
        )],
    )
}

fn set_plan(config: &Path, per_hour: u32) {
    let text = std::fs::read_to_string(config).unwrap();
    let start = text.find("executions-per-hour = ").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    let text = format!(
        "{}executions-per-hour = {per_hour}{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(config, text).unwrap();
}

pub(crate) struct Server {
    child: Child,
    port: u16,
}

impl Server {
    pub(crate) fn start(config: &Path, port: u16) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("ROSTER_TEST_TOKEN", TOKEN)
            .env("ROSTER_TEST_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http(port, "GET", "/healthz", &[], b"").map(|r| r.0) != Some(200) {
            assert!(Instant::now() < deadline, "roster serve did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    pub(crate) fn stop(mut self) {
        // SIGTERM: a graceful stop.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap();
    }

    pub(crate) fn send(&self, name: &str, body: &str) -> (u16, String) {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let sig = sign(SECRET, ts, body.as_bytes());
        http(
            self.port,
            "POST",
            &format!("/v1/events/{name}"),
            &[
                ("x-roster-timestamp", ts.to_string()),
                ("x-roster-signature", sig),
            ],
            body.as_bytes(),
        )
        .unwrap()
    }

    pub(crate) fn api(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = http(
            self.port,
            method,
            path,
            &[("authorization", format!("Bearer {TOKEN}"))],
            body.as_bytes(),
        )
        .unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub(crate) fn executions(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.api("GET", "/v1/executions?limit=1000", "");
        assert_eq!(status, 200, "{body}");
        body["executions"].as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a fresh connection; `None` when nothing listens.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: {}\r\ncontent-type: application/json\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_webhook_accepts_only_signed_fresh_well_formed_events() {
    let port = free_port();
    let fx = fixture(1000, port);
    let server = Server::start(&fx.config, port);

    let (status, body) = server.send("ping", r#"{"payload": {"n": 1}}"#);
    assert_eq!(status, 202, "{body}");

    let body = r#"{"payload": {"n": 2}}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let cases = [
        (vec![], 401, "missing or malformed x-roster-timestamp"),
        (
            vec![
                ("x-roster-timestamp", ts.to_string()),
                (
                    "x-roster-signature",
                    sign("wrong-secret", ts, body.as_bytes()),
                ),
            ],
            401,
            "the signature does not match",
        ),
        (
            vec![
                ("x-roster-timestamp", (ts - 3600).to_string()),
                (
                    "x-roster-signature",
                    sign(SECRET, ts - 3600, body.as_bytes()),
                ),
            ],
            401,
            "too old",
        ),
        (
            vec![
                ("x-roster-timestamp", ts.to_string()),
                (
                    "x-roster-signature",
                    sign(SECRET, ts, br#"{"payload": {"n": 3}}"#),
                ),
            ],
            401,
            "does not match",
        ),
    ];
    for (headers, expected, message) in cases {
        let (status, text) =
            http(port, "POST", "/v1/events/ping", &headers, body.as_bytes()).unwrap();
        assert_eq!(status, expected, "{text}");
        assert!(text.contains(message), "{text}");
    }
    let (status, text) = server.send("ping", r#"{"payload": {"n": 4}, "surprise": true}"#);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unknown field `surprise`"), "{text}");
    let (status, text) = server.send("ping", r#"{"object": "widget", "record-id": "1"}"#);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unknown object `widget`"), "{text}");
    let (status, _) = http(port, "GET", "/v1/queue", &[], b"").unwrap();
    assert_eq!(status, 401, "the API needs the token");

    wait_for(|| server.executions().len() == 1);
    let (_, queue) = server.api("GET", "/v1/queue", "");
    assert_eq!(
        queue["stored"], 0,
        "the rejected calls queued nothing: {queue}"
    );
    let summary = server.executions()[0]["report"]["outcome"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(summary, "event(ping) - {\"n\":1}");

    // The CLI against the running service.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--config")
            .arg(&fx.config)
            .args(args)
            .env("ROSTER_TEST_TOKEN", TOKEN)
            .env("ROSTER_TEST_SECRET", SECRET)
            .output()
            .unwrap()
    };
    let sent = cli(&["events", "send", "ping", "--payload", "{\"n\": 5}"]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    wait_for(|| server.executions().len() == 2);
    let status = cli(&["queue", "status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["stored"], 0, "{status}");
    let listed = String::from_utf8_lossy(&cli(&["workers", "list"]).stdout).into_owned();
    assert!(
        listed.contains("on-ping") && listed.contains("test.recorder 1.0.0"),
        "{listed}"
    );

    // Records through the API: unknown fields are refused; a created lead is readable.
    let (status, body) = server.api(
        "POST",
        "/v1/records/lead",
        r#"{"id": "API-1", "fields": {"nope": 1}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `nope` on `lead`")
    );
    let (status, _) = server.api(
        "POST",
        "/v1/records/lead",
        r#"{"id": "API-1", "owner": "ann", "fields": {"status": "new"}}"#,
    );
    assert_eq!(status, 201);
    let (status, body) = server.api("GET", "/v1/records/lead?where=status:equals:new", "");
    assert_eq!(status, 200);
    assert_eq!(body["records"][0]["id"], "API-1");

    // The audit trail through the API: search, streamed export, verification.
    let (status, body) = server.api("GET", "/v1/audit?status=success&worker=on-ping", "");
    assert_eq!(status, 200, "{body}");
    let entries = body["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2, "{body}");
    let (status, text) = http(
        port,
        "GET",
        "/v1/audit/export?format=jsonl",
        &[("authorization", format!("Bearer {TOKEN}"))],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains(entries[0]["hash"].as_str().unwrap()),
        "{text}"
    );
    let (status, body) = server.api("GET", "/v1/audit?since=yesterday", "");
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.api("POST", "/v1/audit/verify", "");
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true, "{body}");
    let (status, _) = http(port, "GET", "/v1/audit", &[], b"").unwrap();
    assert_eq!(status, 401, "the audit needs the token");
    server.stop();
}

#[test]
fn triggers_queued_when_the_process_is_killed_all_run_after_restart() {
    let port = free_port();
    let fx = fixture(1, port);
    let server = Server::start(&fx.config, port);
    for i in 0..10 {
        let (status, body) = server.send(
            "ping",
            &format!(r#"{{"id": "k{i}", "payload": {{"n": {i}}}}}"#),
        );
        assert_eq!(status, 202, "{body}");
    }
    wait_for(|| server.executions().len() == 1);
    let (_, queue) = server.api("GET", "/v1/queue", "");
    assert_eq!(
        queue["stored"], 9,
        "one ran, nine wait for the next hourly window: {queue}"
    );
    server.kill();

    // Restart with room in the window: every accepted trigger runs.
    set_plan(&fx.config, 1000);
    let server = Server::start(&fx.config, port);
    wait_for(|| server.executions().len() >= 10);
    let mut seen: Vec<String> = server
        .executions()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 10, "{seen:?}");
    let (_, queue) = server.api("GET", "/v1/queue", "");
    assert_eq!(queue["stored"], 0);
    server.stop();
}

#[test]
fn an_invalid_configuration_starts_nothing_and_writes_nothing() {
    let port = free_port();
    let fx = fixture(10, port);
    let worker = fx.config.with_file_name("on-ping.toml");
    let text = std::fs::read_to_string(&worker).unwrap();
    std::fs::write(
        &worker,
        text.replace("name = \"ping\"", "name = \"ping\"\nobject = \"lead\""),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--config")
        .arg(&fx.config)
        .arg("serve")
        .env("ROSTER_TEST_TOKEN", TOKEN)
        .env("ROSTER_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("on-ping.toml:8"), "{stderr}");
    assert!(
        stderr.contains("`object` does not apply to a `event` trigger"),
        "{stderr}"
    );
    assert!(
        !fx.config.with_file_name("data").exists(),
        "no data directory was created"
    );
    assert!(
        http(port, "GET", "/healthz", &[], b"").is_none(),
        "nothing listens"
    );
}
