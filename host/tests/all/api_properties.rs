//! Property tests over the API's untrusted inputs: every route, called with or without a
//! token, with path segments of any text (unicode, control characters, `../`, very long),
//! query strings with numbers at their extremes, and bodies of the wrong types and sizes.
//! Whatever comes in: never a 5xx, never a dropped connection, and when the answer is an
//! error, nothing in the store changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use roster_host::service::Service;
use roster_host::store::{ApprovalFilter, RecordQuery};

use crate::access::{Api, held_action, person};
use crate::serve::Fixture;
use crate::serve_process::http;

/// Every route of the API: method and path, `{}` standing for a path segment.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("POST", "/v1/events/{}"),
    ("GET", "/v1/whoami"),
    ("GET", "/v1/people"),
    ("POST", "/v1/people"),
    ("PATCH", "/v1/people/{}"),
    ("POST", "/v1/people/{}/tokens"),
    ("DELETE", "/v1/tokens/{}"),
    ("GET", "/v1/grants"),
    ("GET", "/v1/approvals"),
    ("GET", "/v1/approvals/{}"),
    ("POST", "/v1/approvals/{}/decide"),
    ("GET", "/v1/workers/{}/trust"),
    ("POST", "/v1/workers/{}/stage"),
    ("POST", "/v1/workers/{}/reversals"),
    ("POST", "/v1/workers/{}/dry-run"),
    ("GET", "/v1/workers/{}/versions"),
    ("GET", "/v1/workers/{}/readiness"),
    ("POST", "/v1/workers/{}/deploy"),
    ("POST", "/v1/workers/{}/rollback"),
    ("GET", "/v1/workers/{}/shadow"),
    ("GET", "/v1/queue"),
    ("GET", "/v1/workers"),
    ("GET", "/v1/inventory"),
    ("GET", "/v1/models"),
    ("POST", "/v1/workers/{}/pause"),
    ("POST", "/v1/workers/{}/resume"),
    ("POST", "/v1/kill"),
    ("GET", "/v1/executions"),
    ("GET", "/v1/alerts"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/export"),
    ("POST", "/v1/audit/verify"),
    ("POST", "/v1/audit/checkpoint"),
    ("GET", "/v1/audit/checkpoints"),
    ("GET", "/v1/audit/grants"),
    ("GET", "/v1/records/{}"),
    ("POST", "/v1/records/{}"),
    ("GET", "/v1/records/{}/{}"),
    ("PATCH", "/v1/records/{}/{}"),
    ("DELETE", "/v1/records/{}/{}"),
];

/// Numbers at and past the edges of every integer type, and things that are not numbers.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "0x10",
    "",
];

/// Query keys the routes read.
const KEYS: &[&str] = &[
    "after",
    "limit",
    "since",
    "until",
    "days",
    "format",
    "status",
    "worker",
    "domain",
    "where",
    "record",
    "principal",
    "action",
    "object",
    "owner",
];

/// Body keys the routes read.
const BODY_KEYS: &[&str] = &[
    "id",
    "kind",
    "name",
    "roles",
    "add",
    "remove",
    "disabled",
    "expires_days",
    "verdict",
    "reason",
    "edited",
    "to",
    "action",
    "scope",
    "revoke_grants",
    "restore_grant",
    "fields",
    "records",
    "events",
    "checkpoints",
    "object",
    "record-id",
    "payload",
];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("w1".to_string()),
        Just("lead".to_string()),
        Just("L-1".to_string()),
        Just("apr-props".to_string()),
        Just("viewer@example.com".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("..".to_string()),
        Just("%00".to_string()),
        Just("\u{0}\u{7}\r\n".to_string()),
        Just("x".repeat(5000)),
        Just("Ünïcødé 🚀 \u{202e}".to_string()),
        Just("root".to_string()),
        "\\PC{0,40}",
        any::<String>(),
        prop::sample::select(NUMBERS).prop_map(str::to_string),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(serde_json::Value::Number),
        segment().prop_map(serde_json::Value::String),
        prop::sample::select(NUMBERS).prop_map(|n| serde_json::Value::String(n.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(BODY_KEYS).prop_map(str::to_string),
                    segment()
                ],
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        // Objects with the keys the routes read, with values of any type.
        prop::collection::btree_map(
            prop::sample::select(BODY_KEYS).prop_map(str::to_string),
            json_value(),
            1..5,
        )
        .prop_map(|m| serde_json::to_vec(&m).unwrap_or_default()),
        Just(format!("{{\"reason\":\"{}\"}}", "r".repeat(200_000)).into_bytes()),
    ]
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop::sample::select(KEYS).prop_map(str::to_string),
            prop_oneof![
                prop::sample::select(NUMBERS).prop_map(str::to_string),
                segment()
            ],
        ),
        0..4,
    )
}

/// Percent-encodes everything but unreserved characters, so any text reaches the router
/// as a well-formed URI.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Request {
    /// Whether a webhook call carries a valid signature of its body.
    signed: bool,
    token: usize,
    route: usize,
    segments: (String, String),
    query: Vec<(String, String)>,
    body: Vec<u8>,
}

fn request() -> impl Strategy<Value = Request> {
    (
        any::<bool>(),
        0..4usize,
        0..ROUTES.len(),
        (segment(), segment()),
        query(),
        body(),
    )
        .prop_map(|(signed, token, route, segments, query, body)| Request {
            signed,
            token,
            route,
            segments,
            query,
            body,
        })
}

/// Everything an API call could change, as one comparable text.
fn fingerprint(service: &Service) -> String {
    let store = service.store();
    let leads = store
        .query(&RecordQuery {
            object: "lead".into(),
            filters: Vec::new(),
            owners: None,
            limit: usize::MAX,
        })
        .unwrap();
    let approvals = service.approvals(&ApprovalFilter::default()).unwrap();
    let controls: BTreeMap<String, String> = service
        .controls()
        .into_iter()
        .map(|(k, v)| (k, format!("{v:?}")))
        .collect();
    serde_json::json!({
        "audit": store.audit_len().unwrap(),
        "accounts": store.accounts().unwrap(),
        "tokens": store.tokens(None).unwrap(),
        "leads": leads,
        "approvals": approvals,
        "controls": controls,
        "queue": service.queue_status().queued,
        "alerts": store.alerts().unwrap().len(),
        "outbox": store.outbox().unwrap().len(),
    })
    .to_string()
}

#[test]
fn untrusted_requests_never_fail_the_server_and_errors_change_nothing() {
    // The webhook secret is read from the environment; cargo gives every test process
    // CARGO_MANIFEST_DIR, so that is the secret here.
    let secret = env!("CARGO_MANIFEST_DIR");
    let fixture =
        Fixture::pinged("failed-auth-burst = 1000000\nwebhook-secret-env = \"CARGO_MANIFEST_DIR\"");
    let service = Arc::new(fixture.start());
    service
        .store()
        .create_record("lead", Some("L-1".into()), None, BTreeMap::new(), "test")
        .unwrap();
    service
        .store()
        .hold(held_action("apr-props", "w1"))
        .unwrap();
    let admin = person(&service, "ada@example.com", &["admin"]);
    let viewer = person(&service, "viewer@example.com", &["viewer"]);
    let tokens = [
        None,
        Some(admin),
        Some(viewer),
        Some("rst_not-a-token".to_string()),
    ];
    let api = Api::start(service.clone());

    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let answered = std::sync::Mutex::new(BTreeMap::<u16, usize>::new());
    let result = runner.run(&request(), |r| {
        let (method, template) = ROUTES[r.route];
        let mut path = template.replacen("{}", &encode(&r.segments.0), 1);
        path = path.replacen("{}", &encode(&r.segments.1), 1);
        if !r.query.is_empty() {
            let pairs: Vec<String> = r
                .query
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            path = format!("{path}?{}", pairs.join("&"));
        }
        let mut headers: Vec<(&str, String)> = tokens[r.token]
            .iter()
            .map(|t| ("authorization", format!("Bearer {t}")))
            .collect();
        if r.signed {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            headers.push(("x-roster-timestamp", now.to_string()));
            headers.push((
                "x-roster-signature",
                roster_host::webhook::sign(secret, now, &r.body),
            ));
        }
        prop_assert!(service.wait_idle(Duration::from_secs(30)));
        let before = fingerprint(&service);
        // Only routes that read a body get one: a server answers a request before reading
        // a body it does not want, and closing with it unread resets the connection under
        // the client (HTTP's close without lingering), which is not the server failing.
        let reads_body = matches!(method, "POST" | "PATCH") && template != "/v1/audit/checkpoint";
        let body: &[u8] = if reads_body { &r.body } else { b"" };
        let answer = http(api.port, method, &path, &headers, body);
        prop_assert!(
            answer.is_some(),
            "{method} {path}: the connection was dropped"
        );
        let (status, text) = answer.unwrap_or_default();
        *answered.lock().unwrap().entry(status).or_default() += 1;
        prop_assert!(status < 500, "{method} {path}: {status} {text}");
        if status >= 400 {
            prop_assert!(service.wait_idle(Duration::from_secs(30)));
            let after = fingerprint(&service);
            prop_assert_eq!(&before, &after, "{} {}: {} {}", method, path, status, text);
        }
        Ok(())
    });
    println!("answers by status: {:?}", answered.lock().unwrap());

    // A body larger than the limit is refused from its length, before it is read.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", api.port)).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "POST /v1/people HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        2 << 20
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    drop(api);
    service.stop();
    if let Err(e) = result {
        panic!("{e}");
    }
}
