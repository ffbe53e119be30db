//! The API's answers, recorded: a fixed scenario of requests against a service on a manual
//! clock, each answer's status and body compared byte for byte with `api_answers.txt`
//! beside this file, once what differs from run to run is replaced (generated ids, tokens,
//! digests and signatures over them, wall-clock durations). A change to what the API
//! answers shows here as a diff; after a deliberate one, write the file anew with
//! `ROSTER_RECORD_ANSWERS=1 cargo test -p roster-host --test all api_answers`.

use std::collections::BTreeMap;
use std::sync::Arc;

use roster_host::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

use crate::access::{Api, held_action, person};
use crate::serve::{Fixture, T0, idle};
use crate::serve_process::http;

/// Who sends a request.
#[derive(Clone, Copy)]
enum Who {
    Nobody,
    BadToken,
    Role(&'static str),
    /// A webhook signed with the service's secret.
    Signed,
}

use Who::{BadToken, Nobody, Role, Signed};

/// The scenario: (who, method, path, body). Requests run in order; each sees what the
/// ones before it changed.
fn scenario() -> Vec<(Who, &'static str, &'static str, &'static str)> {
    vec![
        (Nobody, "GET", "/healthz", ""),
        (Role("admin"), "GET", "/v1/whoami", ""),
        (Nobody, "GET", "/v1/whoami", ""),
        (BadToken, "GET", "/v1/whoami", ""),
        // Records.
        (
            Role("admin"),
            "POST",
            "/v1/records/lead",
            r#"{"id":"L-2","fields":{"status":"new","company":"Acme"}}"#,
        ),
        (
            Role("admin"),
            "POST",
            "/v1/records/lead",
            r#"{"id":"L-2","fields":{"status":"new"}}"#,
        ),
        (Role("admin"), "POST", "/v1/records/lead", r#"{"fields":7}"#),
        (Role("admin"), "POST", "/v1/records/lead", "not json"),
        (Role("viewer"), "GET", "/v1/records/lead/L-2", ""),
        (Role("viewer"), "GET", "/v1/records/lead/L-404", ""),
        (Role("viewer"), "GET", "/v1/records/lead", ""),
        (
            Role("viewer"),
            "GET",
            "/v1/records/lead?where=status:equals:new&limit=1",
            "",
        ),
        (Role("viewer"), "GET", "/v1/records/lead?where=status", ""),
        (
            Role("business-owner"),
            "PATCH",
            "/v1/records/lead/L-2",
            r#"{"fields":{"status":"open"}}"#,
        ),
        (
            Role("reviewer"),
            "PATCH",
            "/v1/records/lead/L-2",
            r#"{"fields":{"status":"won"}}"#,
        ),
        (Role("admin"), "DELETE", "/v1/records/lead/L-404", ""),
        (Role("operator"), "GET", "/v1/records/lead", ""),
        // Events.
        (
            Signed,
            "POST",
            "/v1/events/ping",
            r#"{"id":"evt-1","object":"lead","record-id":"L-1","payload":{"n":1}}"#,
        ),
        (
            Signed,
            "POST",
            "/v1/events/ping",
            r#"{"id":"evt-1","object":"lead","record-id":"L-1","payload":{"n":1}}"#,
        ),
        (Signed, "POST", "/v1/events/ping", r#"{"object":"lead"}"#),
        (Nobody, "POST", "/v1/events/ping", "{}"),
        // The running host.
        (Role("viewer"), "GET", "/v1/queue", ""),
        (Role("viewer"), "GET", "/v1/workers", ""),
        (Role("viewer"), "GET", "/v1/inventory", ""),
        (Role("viewer"), "GET", "/v1/inventory?domain=finance", ""),
        (Role("viewer"), "GET", "/v1/models", ""),
        (Role("viewer"), "GET", "/v1/executions", ""),
        (Role("viewer"), "GET", "/v1/executions?after=1&limit=5", ""),
        (Role("viewer"), "GET", "/v1/executions?limit=x", ""),
        (Role("viewer"), "GET", "/v1/alerts", ""),
        // Approvals and the trust curve.
        (Role("viewer"), "GET", "/v1/approvals", ""),
        (Role("viewer"), "GET", "/v1/approvals?status=pending", ""),
        (Role("viewer"), "GET", "/v1/approvals/apr-1", ""),
        (Role("viewer"), "GET", "/v1/approvals/apr-404", ""),
        (
            Role("viewer"),
            "POST",
            "/v1/approvals/apr-1/decide",
            r#"{"verdict":"approve"}"#,
        ),
        (
            Role("reviewer"),
            "POST",
            "/v1/approvals/apr-1/decide",
            r#"{"verdict":"maybe"}"#,
        ),
        (
            Role("reviewer"),
            "POST",
            "/v1/approvals/apr-1/decide",
            r#"{"verdict":"reject","reason":"not now"}"#,
        ),
        (
            Role("reviewer"),
            "POST",
            "/v1/approvals/apr-1/decide",
            r#"{"verdict":"reject","reason":"again"}"#,
        ),
        (
            Role("reviewer"),
            "POST",
            "/v1/approvals/apr-2/decide",
            r#"{"verdict":"edit","edited":{"kind":"signal","topic":"finance.y","payload":"{}"}}"#,
        ),
        (
            Role("business-owner"),
            "POST",
            "/v1/approvals/apr-2/decide",
            r#"{"verdict":"approve","reason":"fine"}"#,
        ),
        (Role("viewer"), "GET", "/v1/workers/w1/trust", ""),
        (Role("viewer"), "GET", "/v1/workers/nobody/trust", ""),
        (
            Role("business-owner"),
            "POST",
            "/v1/workers/w1/stage",
            r#"{"to":"assistive","reason":"start small"}"#,
        ),
        (
            Role("business-owner"),
            "POST",
            "/v1/workers/w1/stage",
            r#"{"to":"high-trust","reason":"jump"}"#,
        ),
        (
            Role("business-owner"),
            "POST",
            "/v1/workers/w3/stage",
            r#"{"to":"supervised","reason":"earned"}"#,
        ),
        (Role("viewer"), "GET", "/v1/workers/w3/trust", ""),
        (
            Role("reviewer"),
            "POST",
            "/v1/workers/w1/reversals",
            r#"{"action":"x/9","reason":"undone"}"#,
        ),
        // Versions.
        (Role("viewer"), "GET", "/v1/workers/w1/versions", ""),
        (Role("viewer"), "GET", "/v1/workers/w1/readiness", ""),
        (Role("viewer"), "GET", "/v1/workers/w1/shadow", ""),
        (
            Role("publisher"),
            "POST",
            "/v1/workers/w1/dry-run",
            r#"{"records":[{"object":"lead","id":"L-9","fields":{"status":"new"}}],"events":[{"trigger":{"type":"named","name":"ping"},"object":"lead","record-id":"L-9"}]}"#,
        ),
        (
            Role("publisher"),
            "POST",
            "/v1/workers/w1/dry-run",
            r#"{"records":3}"#,
        ),
        (
            Role("business-owner"),
            "POST",
            "/v1/workers/w1/deploy",
            r#"{"reason":"ready"}"#,
        ),
        (
            Role("operator"),
            "POST",
            "/v1/workers/w1/rollback",
            r#"{"reason":"back"}"#,
        ),
        // Pause, resume, the kill switch.
        (Role("operator"), "POST", "/v1/workers/w1/pause", r#"{}"#),
        (
            Role("operator"),
            "POST",
            "/v1/workers/w1/pause",
            r#"{"reason":"checking"}"#,
        ),
        (
            Role("operator"),
            "POST",
            "/v1/workers/w1/resume",
            r#"{"reason":"checked"}"#,
        ),
        (
            Role("operator"),
            "POST",
            "/v1/workers/w1/resume",
            r#"{"reason":"again"}"#,
        ),
        (
            Role("operator"),
            "POST",
            "/v1/kill",
            r#"{"scope":{"domain":"finance"},"reason":"stop finance"}"#,
        ),
        (
            Role("operator"),
            "POST",
            "/v1/kill",
            r#"{"scope":"everything","reason":"x"}"#,
        ),
        (
            Role("admin"),
            "POST",
            "/v1/kill",
            r#"{"scope":{"worker":"w2"},"reason":"stop w2","revoke_grants":true}"#,
        ),
        (Role("viewer"), "GET", "/v1/grants", ""),
        (
            Role("operator"),
            "POST",
            "/v1/workers/w2/resume",
            r#"{"reason":"back on","restore_grant":true}"#,
        ),
        (
            Role("admin"),
            "POST",
            "/v1/workers/w2/resume",
            r#"{"reason":"back on","restore_grant":true}"#,
        ),
        // People and tokens.
        (Role("security-auditor"), "GET", "/v1/people", ""),
        (
            Role("admin"),
            "POST",
            "/v1/people",
            r#"{"id":"New@Example.com","kind":"user","name":"New","roles":["viewer","reviewer@revenue"]}"#,
        ),
        (
            Role("admin"),
            "POST",
            "/v1/people",
            r#"{"id":"root","kind":"user","roles":[]}"#,
        ),
        (
            Role("admin"),
            "PATCH",
            "/v1/people/new@example.com",
            r#"{"add":["operator"],"remove":["viewer"]}"#,
        ),
        (
            Role("admin"),
            "POST",
            "/v1/people/new@example.com/tokens",
            r#"{"name":"laptop","expires_days":30}"#,
        ),
        (
            Role("admin"),
            "POST",
            "/v1/people/new@example.com/tokens",
            r#"{"name":"never","expires_days":0}"#,
        ),
        (Role("admin"), "DELETE", "/v1/tokens/tok-000000000000", ""),
        (Role("security-auditor"), "GET", "/v1/grants", ""),
        (Role("security-auditor"), "GET", "/v1/audit/grants", ""),
        // The audit trail.
        (Role("security-auditor"), "GET", "/v1/audit?limit=3", ""),
        (
            Role("security-auditor"),
            "GET",
            "/v1/audit?worker=w1&status=success",
            "",
        ),
        (
            Role("security-auditor"),
            "GET",
            "/v1/audit?after=18446744073709551615",
            "",
        ),
        (Role("security-auditor"), "GET", "/v1/audit?after=-1", ""),
        (
            Role("security-auditor"),
            "GET",
            "/v1/audit/export?format=csv&after=2",
            "",
        ),
        (
            Role("security-auditor"),
            "GET",
            "/v1/audit/export?format=jsonl&after=2",
            "",
        ),
        (Role("security-auditor"), "POST", "/v1/audit/verify", ""),
        (Role("admin"), "POST", "/v1/audit/checkpoint", ""),
        (Role("security-auditor"), "GET", "/v1/audit/checkpoints", ""),
        (Role("security-auditor"), "POST", "/v1/audit/checkpoint", ""),
        (Role("admin"), "GET", "/v1/nowhere", ""),
    ]
}

/// What differs from run to run, replaced by a placeholder.
fn normalize(text: &str) -> String {
    let patterns = [
        // UUIDs (execution ids, generated record ids).
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<uuid>",
        ),
        // Tokens, digests, hashes and signatures.
        (r"rst_[A-Za-z0-9_-]+", "<token>"),
        (r"tok-[0-9a-f]{12}", "<token-id>"),
        (r"[0-9a-f]{32,}", "<hex>"),
        // Paths of the test's temporary directory.
        (r"/tmp/\.tmp[A-Za-z0-9]+", "<dir>"),
        // Chunk sizes of a streamed body (its length changes with the durations in it).
        (r"(?m)^[0-9A-F]+\r?$", "<chunk>"),
        // Wall-clock durations.
        (
            r#""(duration_us|duration_ms|elapsed_ms|wall_ms|ms|last_modified)":\s*[0-9]+"#,
            r#""$1":0"#,
        ),
    ];
    let mut text = text.to_string();
    for (pattern, replacement) in patterns {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, replacement)
            .into_owned();
    }
    text
}

#[test]
fn the_api_answers_what_was_recorded() {
    let fixture = Fixture::new(
        "failed-auth-burst = 100000\nwebhook-secret-env = \"CARGO_MANIFEST_DIR\"",
        &[
            (
                "w1",
                "svc",
                "[[triggers]]\non = \"event\"\nname = \"ping\"\n",
            ),
            (
                "w2",
                "svc",
                "[[triggers]]\non = \"event\"\nname = \"pong\"\n",
            ),
            (
                "w3",
                "svc",
                "[[triggers]]\non = \"event\"\nname = \"pang\"\n\n[review]\nstage = \"assistive\"\n",
            ),
        ],
    );
    let service = Arc::new(fixture.start());
    service
        .store()
        .create_record("lead", Some("L-1".into()), None, BTreeMap::new(), "test")
        .unwrap();
    service.store().hold(held_action("apr-1", "w1")).unwrap();
    service.store().hold(held_action("apr-2", "w1")).unwrap();
    let tokens: BTreeMap<&str, String> = roster_host::governance::access::ROLES
        .iter()
        .map(|role| {
            (
                *role,
                person(&service, &format!("{role}@example.com"), &[role]),
            )
        })
        .collect();
    let secret = env!("CARGO_MANIFEST_DIR");
    let api = Api::start(service.clone());
    let mut answers = String::new();
    for (who, method, path, body) in scenario() {
        let mut headers: Vec<(&str, String)> = Vec::new();
        match who {
            Nobody => {}
            BadToken => headers.push(("authorization", "Bearer rst_wrong".into())),
            Role(role) => headers.push(("authorization", format!("Bearer {}", tokens[role]))),
            Signed => {
                let now = T0 / 1000;
                headers.push((TIMESTAMP_HEADER, now.to_string()));
                headers.push((SIGNATURE_HEADER, sign(secret, now, body.as_bytes())));
            }
        }
        let (status, text) = http(api.port, method, path, &headers, body.as_bytes()).unwrap();
        let who = match who {
            Nobody => "nobody".to_string(),
            BadToken => "a bad token".to_string(),
            Role(role) => role.to_string(),
            Signed => "signed".to_string(),
        };
        answers.push_str(&format!(
            "## {method} {path} as {who}\n{body}\n-> {status}\n{}\n\n",
            normalize(&text)
        ));
        idle(&service);
    }
    drop(api);
    service.stop();

    let recorded =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/all/api_answers.txt");
    if std::env::var_os("ROSTER_RECORD_ANSWERS").is_some() {
        std::fs::write(&recorded, &answers).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&recorded).unwrap();
    if expected != answers {
        let first = expected
            .split("\n\n## ")
            .zip(answers.split("\n\n## "))
            .find(|(e, a)| e != a);
        panic!(
            "the API answered differently from {}; first difference:\nrecorded:\n{}\nnow:\n{}",
            recorded.display(),
            first.map_or("", |f| f.0),
            first.map_or("(more or fewer answers)", |f| f.1),
        );
    }
}
