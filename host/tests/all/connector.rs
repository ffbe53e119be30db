//! Fault-injecting peers on 127.0.0.1, started and stopped by the tests that use them: an
//! HTTP connector that fails, throttles or hangs on request (and records every request it
//! receives with its idempotency key), and an SMTP sink that records every message.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the connector received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// An HTTP connector. Paths:
/// - `/ok`, `/sink`: 200;
/// - `/fail/N/name`: the first N requests answer 500, later ones 200;
/// - `/throttle/S/name`: the first request answers 429 with `Retry-After: S`, later ones 200;
/// - `/status/CODE/name`: always CODE;
/// - `/hang/name`: never answers (the connection is held for 5 s, then closed);
/// - `/company?domain=D`: a company-data answer about D (JSON), 404 for `unknown.example`;
/// - `/v1/chat/completions`: an OpenAI-compatible model that needs `Bearer sk-test`,
///   classifies everything as `billing` (0.93) and drafts a fixed follow-up.
pub struct Connector {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Connector {
    pub fn start() -> Connector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
        let (received2, stop2) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (received, counts) = (received2.clone(), counts.clone());
                std::thread::spawn(move || serve(stream, &received, &counts));
            }
        });
        Connector {
            port,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn received_on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        path,
        key: headers.get("idempotency-key").cloned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The follow-up the chat model drafts.
pub const DRAFTED: &str = "Hi, sorry we missed you today. Could we find another time this week? Pick one that suits you at https://example.com/book";

fn chat_answer(request: &Received) -> (u16, String) {
    if request.headers.get("authorization").map(String::as_str) != Some("Bearer sk-test") {
        return (401, r#"{"error":{"message":"bad key"}}"#.to_string());
    }
    let Ok(body) = serde_json::from_str::<serde_json::Value>(&request.body) else {
        return (400, "{}".to_string());
    };
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    let content = if system.contains("You classify") {
        r#"{"label": "billing", "confidence": 0.93}"#.to_string()
    } else {
        DRAFTED.to_string()
    };
    let answer = serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
    });
    (200, answer.to_string())
}

fn serve(
    mut stream: TcpStream,
    received: &Mutex<Vec<Received>>,
    counts: &Mutex<HashMap<String, u32>>,
) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let path = request.path.clone();
    let chat = (path == "/v1/chat/completions").then(|| chat_answer(&request));
    received.lock().unwrap().push(request);
    if let Some((status, body)) = chat {
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let n = {
        let mut counts = counts.lock().unwrap();
        let n = counts.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    if let Some(domain) = path.strip_prefix("/company?domain=") {
        let (status, body) = if domain == "unknown.example" {
            (404, "{}".to_string())
        } else {
            let name = domain.split('.').next().unwrap_or_default();
            let body = serde_json::json!({
                "name": name,
                "metrics": { "employees": 1200, "estimatedAnnualRevenue": 50_000_000.5 },
                "category": { "industry": "Software" },
            });
            (200, body.to_string())
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (status, extra) = match parts.as_slice() {
        ["fail", times, ..] if n <= times.parse().unwrap_or(0) => (500, String::new()),
        ["throttle", secs, ..] if n == 1 => (429, format!("retry-after: {secs}\r\n")),
        ["status", code, ..] => (code.parse().unwrap_or(500), String::new()),
        ["hang", ..] => {
            std::thread::sleep(Duration::from_secs(5));
            return;
        }
        _ => (200, String::new()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\n{extra}content-length: 2\r\nconnection: close\r\n\r\nok"
    );
}

/// One message the SMTP sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// An SMTP server that accepts every message (no TLS: `tls = "none"`).
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (mails2, stop2) = (mails.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let mails = mails2.clone();
                    std::thread::spawn(move || smtp_session(stream, &mails));
                }
            }
        });
        SmtpSink {
            port,
            mails,
            stop,
            thread: Some(thread),
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn smtp_session(mut stream: TcpStream, mails: &Mutex<Vec<Mail>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let _ = write!(stream, "220 sink ESMTP\r\n");
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-sink\r\n250 8BITMIME\r\n".to_string()
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_string();
            "250 OK\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_string());
            "250 OK\r\n".into()
        } else if upper.starts_with("DATA") {
            let _ = write!(stream, "354 go on\r\n");
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            mails.lock().unwrap().push(Mail {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
            });
            "250 queued\r\n".into()
        } else if upper.starts_with("QUIT") {
            let _ = write!(stream, "221 bye\r\n");
            return;
        } else {
            "250 OK\r\n".into()
        };
        let _ = stream.write_all(reply.as_bytes());
    }
}
