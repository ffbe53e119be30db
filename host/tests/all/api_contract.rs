//! The API's contract as a client relies on it: every error is one RFC 9457 problem
//! (`application/problem+json`, a stable `code`, a `detail`, the `instance` and the
//! `request-id`), whatever refused the request, and every answer carries its request id.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;

use crate::access::{Api, person};
use crate::serve::Fixture;

/// Sends a raw request; returns the status line's code, the headers (lower-case names) and
/// the body.
fn raw(port: u16, request: &str) -> (u16, BTreeMap<String, String>, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A refused request may be answered before all of it was sent.
    let _ = stream.write_all(request.as_bytes());
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

/// The body of an answer, de-chunked when it was sent in chunks.
fn body_of(headers: &BTreeMap<String, String>, body: &str) -> String {
    if headers.get("transfer-encoding").map(String::as_str) != Some("chunked") {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

#[test]
fn every_error_is_one_problem_and_every_answer_has_a_request_id() {
    let fixture = Fixture::pinged("failed-auth-burst = 3");
    let service = Arc::new(fixture.start());
    let admin = person(&service, "admin@example.com", &["admin"]);
    let viewer = person(&service, "viewer@example.com", &["viewer"]);
    let api = Api::start(service.clone());
    let bearer = |t: &str| format!("Bearer {t}");
    let (admin, viewer) = (bearer(&admin), bearer(&viewer));
    let long = format!("/v1/records/lead?where={}", "x".repeat(9000));
    // A body declared larger than the limit is refused before it is sent.
    let too_large = format!(
        "POST /v1/records/lead HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         authorization: {admin}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        (1 << 20) + 1
    );
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "no route",
            request("GET", "/v1/nowhere", &[("authorization", &admin)], ""),
            404,
            "not-found",
        ),
        (
            "no such method",
            request("PUT", "/v1/workers", &[("authorization", &admin)], ""),
            405,
            "method-not-allowed",
        ),
        ("body too large", too_large, 413, "payload-too-large"),
        (
            "URI too long",
            request("GET", &long, &[("authorization", &admin)], ""),
            414,
            "uri-too-long",
        ),
        (
            "not JSON",
            request(
                "POST",
                "/v1/records/lead",
                &[("authorization", &admin), ("content-type", "text/plain")],
                "id=L-1",
            ),
            415,
            "unsupported-media-type",
        ),
        (
            "bad body",
            request(
                "POST",
                "/v1/records/lead",
                &[
                    ("authorization", &admin),
                    ("content-type", "application/json"),
                ],
                "{",
            ),
            400,
            "invalid-body",
        ),
        (
            "bad query",
            request(
                "GET",
                "/v1/executions?limit=x",
                &[("authorization", &viewer)],
                "",
            ),
            400,
            "invalid-query",
        ),
        (
            "a refusal",
            request("GET", "/v1/audit", &[("authorization", &viewer)], ""),
            403,
            "forbidden",
        ),
        (
            "unknown worker",
            request(
                "GET",
                "/v1/workers/nobody/trust",
                &[("authorization", &admin)],
                "",
            ),
            404,
            "not-found",
        ),
        (
            "no token",
            request("GET", "/v1/whoami", &[], ""),
            401,
            "unauthorized",
        ),
    ];
    for (what, text, status, code) in cases {
        let (got, headers, body) = raw(api.port, &text);
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("application/problem+json"),
            "{what}: {headers:?}"
        );
        let problem: serde_json::Value = serde_json::from_str(&body_of(&headers, &body))
            .unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(problem["status"], status, "{what}: {problem}");
        assert_eq!(problem["code"], code, "{what}: {problem}");
        assert_eq!(
            problem["type"],
            format!("urn:roster:problem:{code}"),
            "{what}"
        );
        assert!(problem["title"].is_string(), "{what}: {problem}");
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{what}");
        let id = headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{what}"));
        assert_eq!(problem["request-id"], id.as_str(), "{what}");
    }

    // A client's request id is kept and echoed; one that is not a plain token is replaced.
    let (status, headers, _) = raw(
        api.port,
        &request(
            "GET",
            "/v1/whoami",
            &[("authorization", &admin), ("x-request-id", "trace-42.a:b")],
            "",
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(headers["x-request-id"], "trace-42.a:b");
    let (_, headers, _) = raw(
        api.port,
        &request(
            "GET",
            "/v1/whoami",
            &[("authorization", &admin), ("x-request-id", "<script>")],
            "",
        ),
    );
    assert_ne!(headers["x-request-id"], "<script>");
    assert_eq!(headers["x-request-id"].len(), 36, "a new UUID");

    // What a request changes is recorded in the audit trail under its id.
    let (status, _, body) = raw(
        api.port,
        &request(
            "POST",
            "/v1/workers/w1/pause",
            &[
                ("authorization", &admin),
                ("content-type", "application/json"),
                ("x-request-id", "pause-w1-1"),
            ],
            r#"{"reason":"checking"}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    let mut paused = None;
    let query = roster_host::store::AuditQuery {
        worker: Some("w1".into()),
        ..Default::default()
    };
    service
        .store()
        .audit_scan(&query, |e, _, _| {
            if e.trigger == "governance:kill" {
                paused = Some(e.clone());
            }
            paused.is_none()
        })
        .unwrap();
    let paused = paused.expect("the pause is in the audit trail");
    assert_eq!(paused.request_id.as_deref(), Some("pause-w1-1"));

    // Throttled clients get a problem too, with Retry-After.
    let mut last = (0, BTreeMap::new(), String::new());
    for _ in 0..5 {
        last = raw(
            api.port,
            &request(
                "GET",
                "/v1/whoami",
                &[("authorization", "Bearer wrong")],
                "",
            ),
        );
    }
    let (status, headers, body) = last;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "too-many-requests");
    drop(api);
    service.stop();
}

/// Every route the API serves, as (method, path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/v1/openapi.json"),
    ("get", "/metrics"),
    ("post", "/v1/events/{name}"),
    ("get", "/v1/whoami"),
    ("get", "/v1/people"),
    ("post", "/v1/people"),
    ("patch", "/v1/people/{id}"),
    ("post", "/v1/people/{id}/tokens"),
    ("delete", "/v1/tokens/{id}"),
    ("post", "/v1/people/{id}/login-links"),
    ("get", "/v1/grants"),
    ("get", "/v1/approvals"),
    ("get", "/v1/approvals/{id}"),
    ("post", "/v1/approvals/{id}/decide"),
    ("get", "/v1/workers/{name}/trust"),
    ("post", "/v1/workers/{name}/stage"),
    ("post", "/v1/workers/{name}/reversals"),
    ("post", "/v1/workers/{name}/dry-run"),
    ("get", "/v1/workers/{name}/versions"),
    ("get", "/v1/workers/{name}/readiness"),
    ("post", "/v1/workers/{name}/deploy"),
    ("post", "/v1/workers/{name}/rollback"),
    ("get", "/v1/workers/{name}/shadow"),
    ("get", "/v1/queue"),
    ("get", "/v1/workers"),
    ("get", "/v1/workers/{name}"),
    ("get", "/v1/installations"),
    ("post", "/v1/installations"),
    ("delete", "/v1/installations/{name}"),
    ("get", "/v1/registry/catalogue"),
    ("get", "/v1/rules"),
    ("post", "/v1/rules"),
    ("post", "/v1/rules/check"),
    ("get", "/v1/rules/{name}"),
    ("post", "/v1/rules/{name}/test"),
    ("post", "/v1/rules/{name}/deploy"),
    ("post", "/v1/rules/{name}/rollback"),
    ("post", "/v1/imports/records"),
    ("get", "/v1/exports/records/{object}"),
    ("get", "/v1/inventory"),
    ("get", "/v1/models"),
    ("post", "/v1/workers/{name}/pause"),
    ("post", "/v1/workers/{name}/resume"),
    ("post", "/v1/kill"),
    ("get", "/v1/executions"),
    ("get", "/v1/alerts"),
    ("get", "/v1/stats/activity"),
    ("get", "/v1/stats/value"),
    ("get", "/v1/audit"),
    ("get", "/v1/audit/export"),
    ("post", "/v1/audit/verify"),
    ("post", "/v1/audit/checkpoint"),
    ("get", "/v1/audit/checkpoints"),
    ("get", "/v1/audit/grants"),
    ("get", "/v1/records/{object}"),
    ("post", "/v1/records/{object}"),
    ("get", "/v1/records/{object}/{id}"),
    ("patch", "/v1/records/{object}/{id}"),
    ("delete", "/v1/records/{object}/{id}"),
];

#[test]
fn the_served_description_covers_every_route() {
    // Every route goes through the handlers the description is built from.
    let server =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/server.rs")).unwrap();
    assert!(
        !server.contains(".route("),
        "a route added with .route() is missing from the API description: use .routes(routes!(..))"
    );
    let fixture = Fixture::new("", &[]);
    let service = Arc::new(fixture.start());
    let api = Api::start(service.clone());
    // Served without a token.
    let (status, headers, body) = raw(api.port, &request("GET", "/v1/openapi.json", &[], ""));
    assert_eq!(status, 200, "{body}");
    let spec: serde_json::Value = serde_json::from_str(&body_of(&headers, &body)).unwrap();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    let mut described = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            described.push((method.clone(), path.clone()));
            let responses = operation["responses"].as_object().unwrap();
            for status in [
                "400", "401", "403", "404", "413", "414", "415", "429", "500",
            ] {
                assert_eq!(
                    responses[status]["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
            let bearer = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s.get("bearer").is_some()));
            if bearer {
                assert!(
                    operation["x-roster-action"].is_string(),
                    "{method} {path} names the access-policy action it needs"
                );
            }
        }
    }
    described.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(described, expected);
    // Every described route is served (a request to it is not refused as unknown).
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{name}", "w1")
            .replace("{id}", "x")
            .replace("{object}", "lead");
        let (status, _, body) = raw(
            api.port,
            &request(&method.to_ascii_uppercase(), &concrete, &[], ""),
        );
        assert!(
            status != 405 && !body.contains("no API route"),
            "{method} {path}: {status} {body}"
        );
    }
    drop(api);
    service.stop();
}

/// The pinned tool `.ci/run` installs that checks a scrape: Debian's `prometheus` package.
const PROMTOOL: &str = "promtool";

#[test]
fn a_scrape_under_load_is_valid_prometheus_text() {
    let fixture = Fixture::pinged("");
    let service = Arc::new(fixture.start());
    let viewer = person(&service, "viewer@example.com", &["viewer"]);
    let api = Api::start(service.clone());
    let bearer = format!("Bearer {viewer}");
    let submitter = {
        let service = service.clone();
        std::thread::spawn(move || {
            for i in 0..200 {
                let event = roster_host::service::EventSubmission {
                    id: Some(format!("m-{i}")),
                    ..Default::default()
                };
                service.submit_event("ping", event).unwrap();
            }
        })
    };
    // Scrape while the events are accepted and run.
    let mut scrapes = Vec::new();
    for _ in 0..5 {
        let (status, headers, body) = raw(
            api.port,
            &request("GET", "/metrics", &[("authorization", &bearer)], ""),
        );
        assert_eq!(status, 200, "{body}");
        assert!(headers["content-type"].starts_with("text/plain"));
        scrapes.push(body_of(&headers, &body));
    }
    submitter.join().unwrap();
    crate::serve::idle(&service);
    let (_, headers, body) = raw(
        api.port,
        &request("GET", "/metrics", &[("authorization", &bearer)], ""),
    );
    scrapes.push(body_of(&headers, &body));
    let last = scrapes.last().unwrap();
    for series in [
        "roster_executions_total{status=\"success\",worker=\"w1\"}",
        "roster_execution_duration_seconds_bucket{worker=\"w1\",le=\"0.001\"}",
        "roster_fuel_consumed_total{worker=\"w1\"}",
        "roster_store_commit_duration_seconds_count",
        "roster_api_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}",
        "roster_queue_depth{worker=\"w1\"} 0",
        "roster_worker_paused{worker=\"w1\"} 0",
        "roster_breaker_open{worker=\"w1\"} 0",
        "roster_actions_held 0",
        "roster_delivery_backlog 0",
        "roster_audit_entries",
    ] {
        assert!(last.contains(series), "{series} in\n{last}");
    }
    // Without a token: refused like the rest of the API.
    let (status, _, _) = raw(api.port, &request("GET", "/metrics", &[], ""));
    assert_eq!(status, 401);
    drop(api);
    service.stop();

    for scrape in &scrapes {
        let check = std::process::Command::new(PROMTOOL)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let Ok(mut check) = check else {
            panic!("promtool is missing: apt-get install -y prometheus");
        };
        check
            .stdin
            .take()
            .unwrap()
            .write_all(scrape.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{scrape}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
