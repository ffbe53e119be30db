//! Outbound HTTP: allow-listed origins only, private addresses refused, redirects re-checked,
//! the Host header out of the worker's reach, response size capped. A small HTTP server on
//! 127.0.0.1, started and stopped by each test, records what actually reached it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::json;
use test_programs_artifacts::CAPABILITY_PROBE;

use crate::common::*;

/// A loopback HTTP/1.1 server. Paths: `/ok` answers `hello`; `/host` echoes the Host header;
/// `/big` sends 64 KiB; `/redirect?to=URL` answers 302 to URL.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    handle(stream, &seen2);
                }
            }
        });
        Server {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut host = String::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("host:") {
            host = v.trim().to_string();
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    seen.lock().unwrap().push(format!("{path} host={host}"));
    let (status, headers, body) = if path == "/ok" {
        ("200 OK", String::new(), b"hello".to_vec())
    } else if path == "/host" {
        ("200 OK", String::new(), host.into_bytes())
    } else if path == "/big" {
        ("200 OK", String::new(), vec![b'x'; 64 * 1024])
    } else if let Some(to) = path.strip_prefix("/redirect?to=") {
        ("302 Found", format!("Location: {to}\r\n"), Vec::new())
    } else {
        ("404 Not Found", String::new(), Vec::new())
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

fn http_probe(id: &str, allow: &str, extra: &str) -> roster_host::LoadedWorker {
    let caps = format!("[http]\nallow = [{allow}]\n{extra}");
    // The probe imports every capability; only http is granted, the rest are optional.
    let others = "[records]\n[notify]\nchannels = [\"email\"]\n[memory]\n[signals]\n";
    let optional = "optional-capabilities = [\"records\", \"notify\", \"memory\", \"signals\"]";
    let manifest = manifest_with(id, optional, &format!("{caps}{others}"));
    load(CAPABILITY_PROBE, &manifest, &grant(id, &caps)).unwrap()
}

fn get(url: &str) -> serde_json::Value {
    json!({"op": "http", "url": url})
}

#[test]
fn granted_origins_are_reached_and_everything_else_is_denied() {
    let server = Server::start();
    let other = Server::start();
    let allow = format!("{{ url = \"{}\", allow-private = true }}", server.origin());
    let worker = http_probe("test.http-origins", &allow, "");
    let report = run(
        &worker,
        &payload_event(json!({"calls": [
            get(&server.url("/ok")),
            get(&other.url("/ok")),
            get(&format!("https://127.0.0.1:{}/ok", server.port)),
            get("file:///etc/passwd"),
        ]})),
    );
    let lines = lines(&report);
    assert_eq!(lines[0], "ok 200 hello");
    assert_eq!(
        lines[1],
        format!(
            "denied http://127.0.0.1:{} is not a granted origin",
            other.port
        )
    );
    assert!(
        lines[2].starts_with("denied https://127.0.0.1"),
        "{lines:?}"
    );
    assert!(lines[3].starts_with("denied scheme `file`"), "{lines:?}");
    assert_eq!(
        other.seen(),
        Vec::<String>::new(),
        "nothing reached the other server"
    );
    assert_eq!(report.denials().count(), 3);
    assert_host_still_healthy("granted_origins_are_reached_and_everything_else_is_denied");
}

#[test]
fn private_loopback_and_metadata_addresses_are_refused_unless_granted() {
    let server = Server::start();
    let allow = format!(
        "{{ url = \"{}\" }}, {{ url = \"http://localhost:{}\" }}, {{ url = \"http://169.254.169.254\" }}, {{ url = \"http://10.0.0.1\" }}, {{ url = \"http://[::1]:{}\" }}",
        server.origin(),
        server.port,
        server.port
    );
    let worker = http_probe("test.http-private", &allow, "");
    let report = run(
        &worker,
        &payload_event(json!({"calls": [
            get(&server.url("/ok")),
            get(&format!("http://localhost:{}/ok", server.port)),
            get("http://169.254.169.254/latest/meta-data/"),
            get("http://10.0.0.1/"),
            get(&format!("http://[::1]:{}/ok", server.port)),
        ]})),
    );
    let lines = lines(&report);
    assert_eq!(
        lines[0],
        "denied 127.0.0.1 is 127.0.0.1, a loopback address, which the grant does not allow"
    );
    assert!(
        lines[1].starts_with("denied localhost is "),
        "DNS answers are checked too: {lines:?}"
    );
    assert!(lines[1].contains("a loopback address"), "{lines:?}");
    assert!(lines[2].contains("a cloud metadata address"), "{lines:?}");
    assert!(lines[3].contains("a private address"), "{lines:?}");
    assert!(lines[4].contains("a loopback address"), "{lines:?}");
    assert_eq!(
        server.seen(),
        Vec::<String>::new(),
        "no request reached the server"
    );
    assert_eq!(report.denials().count(), 5);
    assert_host_still_healthy("private_loopback_and_metadata_addresses_are_refused_unless_granted");
}

#[test]
fn redirects_are_checked_at_every_hop() {
    let server = Server::start();
    let outside = Server::start();
    let allow = format!("{{ url = \"{}\", allow-private = true }}", server.origin());
    let worker = http_probe("test.http-redirect", &allow, "max-redirects = 2\n");
    let to_outside = server.url(&format!("/redirect?to={}", outside.url("/ok")));
    let to_metadata = server.url("/redirect?to=http://169.254.169.254/latest/meta-data/");
    let inside = server.url(&format!("/redirect?to={}", server.url("/ok")));
    let looping = server.url(&format!(
        "/redirect?to={}",
        server.url(&format!(
            "/redirect?to={}",
            server.url(&format!("/redirect?to={}", server.url("/ok")))
        ))
    ));
    let report = run(
        &worker,
        &payload_event(
            json!({"calls": [get(&to_outside), get(&to_metadata), get(&inside), get(&looping)]}),
        ),
    );
    let lines = lines(&report);
    assert!(
        lines[0].starts_with(&format!(
            "denied http://127.0.0.1:{} is not a granted origin",
            outside.port
        )),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("denied http://169.254.169.254:80 is not a granted origin"),
        "{lines:?}"
    );
    assert_eq!(lines[2], "ok 200 hello");
    assert_eq!(lines[3], "denied more than 2 redirects");
    assert_eq!(
        outside.seen(),
        Vec::<String>::new(),
        "the redirect target outside the grant was never contacted"
    );
    let followed = report.actions.iter().find(|a| a.target == inside).unwrap();
    match &followed.result {
        roster_host::sandbox::gate::ActionResult::Performed { output } => {
            assert_eq!(output["hops"].as_array().unwrap().len(), 2, "{output}");
        }
        other => panic!("{other:?}"),
    }
    assert_host_still_healthy("redirects_are_checked_at_every_hop");
}

#[test]
fn the_host_header_cannot_be_set_by_the_worker() {
    let server = Server::start();
    let allow = format!("{{ url = \"{}\", allow-private = true }}", server.origin());
    let worker = http_probe("test.http-host", &allow, "");
    let report = run(
        &worker,
        &payload_event(json!({"calls": [
            {"op": "http", "url": server.url("/host"), "headers": {"Host": "internal.admin.test"}},
            {"op": "http", "url": server.url("/host"), "headers": {"X-Forwarded-Host": "internal.admin.test"}},
            {"op": "http", "url": server.url("/host")},
        ]})),
    );
    let lines = lines(&report);
    assert_eq!(
        lines[0],
        "denied header `host` is set by the host, not by workers"
    );
    assert_eq!(
        lines[1],
        "denied header `x-forwarded-host` is set by the host, not by workers"
    );
    assert_eq!(lines[2], format!("ok 200 127.0.0.1:{}", server.port));
    assert_eq!(
        server.seen(),
        vec![format!("/host host=127.0.0.1:{}", server.port)]
    );
    assert_eq!(report.denials().count(), 2);
    assert_host_still_healthy("the_host_header_cannot_be_set_by_the_worker");
}

#[test]
fn responses_larger_than_granted_are_refused() {
    let server = Server::start();
    let allow = format!("{{ url = \"{}\", allow-private = true }}", server.origin());
    let worker = http_probe("test.http-cap", &allow, "max-response-bytes = 1024\n");
    let report = run(
        &worker,
        &payload_event(json!({"calls": [get(&server.url("/big")), get(&server.url("/ok"))]})),
    );
    let lines = lines(&report);
    assert!(
        lines[0].starts_with("budget-exceeded the response declares 65536 bytes"),
        "{lines:?}"
    );
    assert_eq!(lines[1], "ok 200 hello");
    assert_host_still_healthy("responses_larger_than_granted_are_refused");
}
