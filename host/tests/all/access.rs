//! Role-based access control over the HTTP API: every role (and anonymous) × every API
//! operation against the expected matrix of the shipped policy files, separation of
//! duties, scoped roles, and tokens that are never stored in plain text.

use std::collections::BTreeMap;
use std::sync::Arc;

use roster_host::service::Service;
use roster_host::store::Risk;
use roster_host::store::{Account, AccountKind, Approval, ApprovalStatus, Effect};

use crate::serve::Fixture;
use crate::serve_process::http;

/// The API served in-process on a free loopback port.
pub(crate) struct Api {
    pub(crate) port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Api {
    pub(crate) fn start(service: Arc<Service>) -> Api {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = roster_host::server::router(service)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Api {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Calls the API with `token` (none: anonymous); returns the status and JSON body.
    pub(crate) fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let headers: Vec<(&str, String)> = token
            .map(|t| vec![("authorization", format!("Bearer {t}"))])
            .unwrap_or_default();
        let (status, text) = http(self.port, method, path, &headers, body.as_bytes()).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Creates an account with `roles` and returns a fresh token for it.
pub(crate) fn person(service: &Service, id: &str, roles: &[&str]) -> String {
    let account = Account {
        id: id.into(),
        kind: AccountKind::User,
        name: id.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        disabled: false,
        created_at: 0,
        updated_at: 0,
    };
    service.store().create_account(account, "test").unwrap();
    service
        .store()
        .issue_token(id, "test", None, "test")
        .unwrap()
        .1
}

/// A held action of `worker` (domain revenue, owned by b@ and t@example.com).
pub(crate) fn held_action(id: &str, worker: &str) -> Approval {
    Approval {
        id: id.into(),
        worker: worker.into(),
        plugin: "test.recorder".into(),
        version: "1.0.0".into(),
        domain: "revenue".into(),
        owners: vec!["b@example.com".into(), "t@example.com".into()],
        reviewers: vec!["r@example.com".into()],
        stage: Some("supervised".into()),
        action_id: "x/0".into(),
        trigger: "manual".into(),
        event_id: "e".into(),
        record: None,
        data: serde_json::Value::Null,
        proposed: Effect::Signal {
            topic: "revenue.x".into(),
            payload: "{}".into(),
            chain: Vec::new(),
        },
        risk: Risk::InternalWrite,
        reasons: vec!["matrix".into()],
        release_at_confidence: None,
        confidence: None,
        key: format!("key-{id}"),
        actor: "worker:test.recorder".into(),
        status: ApprovalStatus::Pending,
        created_at: 0,
        decision: None,
        applied: None,
    }
}

use roster_host::governance::access::ROLES;

const ALL: &[&str] = &ROLES;
const READERS: &[&str] = &[
    "admin",
    "viewer",
    "reviewer",
    "business-owner",
    "security-auditor",
    "publisher",
];
const AUDITORS: &[&str] = &["admin", "security-auditor"];

/// Every API operation: (name, method, path, body, roles expected to be allowed).
fn operations() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
)> {
    vec![
        ("whoami", "GET", "/v1/whoami", "", ALL),
        ("queue.view", "GET", "/v1/queue", "", ALL),
        ("workers.list", "GET", "/v1/workers", "", ALL),
        ("inventory.view", "GET", "/v1/inventory", "", ALL),
        ("inventory.view", "GET", "/v1/models", "", ALL),
        ("executions.view", "GET", "/v1/executions", "", ALL),
        ("alerts.view", "GET", "/v1/alerts", "", ALL),
        ("records.get", "GET", "/v1/records/lead/L-1", "", READERS),
        ("records.query", "GET", "/v1/records/lead", "", READERS),
        (
            "records.create",
            "POST",
            "/v1/records/lead",
            r#"{"fields":{"status":"new"}}"#,
            &["admin", "business-owner"],
        ),
        (
            "records.update",
            "PATCH",
            "/v1/records/lead/L-1",
            r#"{"fields":{"status":"open"}}"#,
            &["admin", "business-owner"],
        ),
        (
            "records.delete",
            "DELETE",
            "/v1/records/lead/none",
            "",
            &["admin", "business-owner"],
        ),
        ("audit.search", "GET", "/v1/audit", "", AUDITORS),
        ("audit.export", "GET", "/v1/audit/export", "", AUDITORS),
        ("audit.verify", "POST", "/v1/audit/verify", "", AUDITORS),
        (
            "audit.checkpoints",
            "GET",
            "/v1/audit/checkpoints",
            "",
            AUDITORS,
        ),
        (
            "audit.checkpoint",
            "POST",
            "/v1/audit/checkpoint",
            "",
            &["admin"],
        ),
        ("grants.read", "GET", "/v1/grants", "", AUDITORS),
        ("grants.audit", "GET", "/v1/audit/grants", "", AUDITORS),
        (
            "worker.pause",
            "POST",
            "/v1/workers/w1/pause",
            r#"{"reason":"matrix"}"#,
            &["admin", "business-owner", "operator"],
        ),
        (
            "worker.resume",
            "POST",
            "/v1/workers/w1/resume",
            r#"{"reason":"matrix"}"#,
            &["admin", "business-owner", "operator"],
        ),
        (
            "worker.resume+grant",
            "POST",
            "/v1/workers/w1/resume",
            r#"{"reason":"matrix","restore_grant":true}"#,
            &["admin"],
        ),
        (
            "kill.worker",
            "POST",
            "/v1/kill",
            r#"{"scope":{"worker":"w1"},"reason":"matrix"}"#,
            &["admin", "operator"],
        ),
        (
            "kill.domain",
            "POST",
            "/v1/kill",
            r#"{"scope":{"domain":"revenue"},"reason":"matrix"}"#,
            &["admin", "operator"],
        ),
        (
            "kill.all",
            "POST",
            "/v1/kill",
            r#"{"scope":"all","reason":"matrix"}"#,
            &["admin", "operator"],
        ),
        (
            "kill.revoke",
            "POST",
            "/v1/kill",
            r#"{"scope":"all","reason":"matrix","revoke_grants":true}"#,
            &["admin"],
        ),
        ("approvals.list", "GET", "/v1/approvals", "", ALL),
        ("approval.view", "GET", "/v1/approvals/apr-matrix", "", ALL),
        (
            "approval.decide",
            "POST",
            "/v1/approvals/apr-matrix/decide",
            r#"{"verdict":"reject","reason":"matrix"}"#,
            &["admin", "business-owner", "reviewer"],
        ),
        ("trust.view", "GET", "/v1/workers/w1/trust", "", ALL),
        (
            "trust.promote",
            "POST",
            "/v1/workers/w1/stage",
            r#"{"to":"supervised","reason":"matrix"}"#,
            &["admin", "business-owner"],
        ),
        (
            "action.reverse",
            "POST",
            "/v1/workers/w1/reversals",
            r#"{"action":"x/0","reason":"matrix"}"#,
            &["admin", "business-owner", "reviewer"],
        ),
        ("worker.versions", "GET", "/v1/workers/w1/versions", "", ALL),
        (
            "worker.readiness",
            "GET",
            "/v1/workers/w1/readiness",
            "",
            ALL,
        ),
        ("worker.shadow", "GET", "/v1/workers/w1/shadow", "", ALL),
        (
            "staging.run",
            "POST",
            "/v1/workers/w1/dry-run",
            r#"{"records":[],"events":[]}"#,
            &["admin", "publisher", "business-owner"],
        ),
        (
            "worker.deploy",
            "POST",
            "/v1/workers/w1/deploy",
            r#"{"reason":"matrix"}"#,
            &["admin", "business-owner"],
        ),
        (
            "worker.rollback",
            "POST",
            "/v1/workers/w1/rollback",
            r#"{"reason":"matrix"}"#,
            &["admin", "business-owner", "operator"],
        ),
        ("people.read", "GET", "/v1/people", "", AUDITORS),
        (
            "people.create",
            "POST",
            "/v1/people",
            r#"{"id":"new@example.com","kind":"user","roles":["viewer"]}"#,
            &["admin"],
        ),
        (
            "people.change",
            "PATCH",
            "/v1/people/viewer@example.com",
            r#"{"add":["viewer"]}"#,
            &["admin"],
        ),
        (
            "tokens.issue",
            "POST",
            "/v1/people/viewer@example.com/tokens",
            r#"{"name":"matrix"}"#,
            &["admin"],
        ),
        (
            "tokens.revoke",
            "DELETE",
            "/v1/tokens/tok-000000000000",
            "",
            &["admin"],
        ),
    ]
}

#[test]
fn every_role_and_anonymous_against_every_operation_matches_the_policies() {
    // Every anonymous call is a failed authentication: let them all through unthrottled.
    let fixture = Fixture::pinged("failed-auth-burst = 100000");
    let service = Arc::new(fixture.start());
    service
        .store()
        .create_record("lead", Some("L-1".into()), None, BTreeMap::new(), "test")
        .unwrap();
    service
        .store()
        .hold(held_action("apr-matrix", "w1"))
        .unwrap();
    let tokens: Vec<(&str, String)> = ROLES
        .iter()
        .map(|role| {
            (
                *role,
                person(&service, &format!("{role}@example.com"), &[role]),
            )
        })
        .collect();
    let api = Api::start(service.clone());
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for (name, method, path, body, allowed) in operations() {
        let (status, _) = api.call(None, method, path, body);
        cells += 1;
        if status != 401 {
            mismatches.push(format!("anonymous × {name}: {status}, expected 401"));
        }
        for (role, token) in &tokens {
            let (status, answer) = api.call(Some(token), method, path, body);
            cells += 1;
            let expected = allowed.contains(role);
            let refused = status == 403 || status == 401;
            if expected == refused {
                mismatches.push(format!(
                    "{role} × {name}: {status} {answer}, expected {}",
                    if expected { "allowed" } else { "403" }
                ));
            }
            if !expected && status != 403 {
                mismatches.push(format!("{role} × {name}: {status}, expected 403"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(cells, operations().len() * 8);
    // A refusal names the policy that decided, or says that none permitted it.
    let viewer = &tokens[6].1;
    let (status, answer) = api.call(Some(viewer), "GET", "/v1/audit", "");
    assert_eq!(status, 403);
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("no policy permits it"),
        "{answer}"
    );
    drop(api);
    service.stop();
}

#[test]
fn separation_of_duties_and_domain_scopes_are_enforced() {
    let fixture = Fixture::pinged("");
    let service = Arc::new(fixture.start());
    // An admin who also reviews may not change grants.
    let both = person(&service, "ada@example.com", &["admin", "reviewer@cx"]);
    let scoped = person(&service, "oscar@example.com", &["operator@revenue"]);
    let elsewhere = person(&service, "fay@example.com", &["operator@finance"]);
    let api = Api::start(service.clone());

    let (status, _) = api.call(
        Some(&both),
        "POST",
        "/v1/kill",
        r#"{"scope":{"worker":"w1"},"reason":"incident"}"#,
    );
    assert_eq!(status, 200);
    let (status, answer) = api.call(
        Some(&both),
        "POST",
        "/v1/workers/w1/resume",
        r#"{"reason":"ok","restore_grant":true}"#,
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("reviewers-never-change-grants"),
        "{answer}"
    );
    let (status, _) = api.call(
        Some(&both),
        "POST",
        "/v1/workers/w1/resume",
        r#"{"reason":"ok"}"#,
    );
    assert_eq!(status, 200);

    // A domain-scoped operator acts in its domain only.
    let (status, _) = api.call(
        Some(&elsewhere),
        "POST",
        "/v1/workers/w1/pause",
        r#"{"reason":"x"}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = api.call(
        Some(&scoped),
        "POST",
        "/v1/workers/w1/pause",
        r#"{"reason":"x"}"#,
    );
    assert_eq!(status, 200);
    let (status, _) = api.call(
        Some(&scoped),
        "POST",
        "/v1/kill",
        r#"{"scope":"all","reason":"x"}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = api.call(
        Some(&scoped),
        "POST",
        "/v1/kill",
        r#"{"scope":{"domain":"revenue"},"reason":"x"}"#,
    );
    assert_eq!(status, 200);
    // Host-wide lists need a host-wide role.
    let (status, _) = api.call(Some(&scoped), "GET", "/v1/workers", "");
    assert_eq!(status, 403);

    // The pause was recorded as the token's account, in the audit trail.
    let (_, answer) = api.call(Some(&both), "GET", "/v1/audit?status=governance", "");
    let kills: Vec<&serde_json::Value> = answer["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["trigger"] == "governance:kill")
        .collect();
    assert_eq!(kills.len(), 3, "{answer}");
    assert_eq!(
        kills[1]["entry"]["report"]["principal"],
        "oscar@example.com"
    );
    drop(api);
    service.stop();
}

#[test]
fn tokens_are_stored_as_digests_and_stop_when_revoked_or_disabled() {
    let fixture = Fixture::pinged("");
    let service = Arc::new(fixture.start());
    let admin = person(&service, "root@example.com", &["admin"]);
    let api = Api::start(service.clone());
    let (status, answer) = api.call(
        Some(&admin),
        "POST",
        "/v1/people",
        r#"{"id":"vic@example.com","kind":"user","roles":["viewer"]}"#,
    );
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = api.call(
        Some(&admin),
        "POST",
        "/v1/people",
        r#"{"id":"eve@example.com","kind":"user","roles":["root"]}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        service
            .store()
            .account("eve@example.com")
            .unwrap()
            .is_none()
    );
    let (status, answer) = api.call(
        Some(&admin),
        "POST",
        "/v1/people/vic@example.com/tokens",
        r#"{"name":"laptop"}"#,
    );
    assert_eq!(status, 201);
    let token = answer["token"].as_str().unwrap().to_string();
    let id = answer["info"]["id"].as_str().unwrap().to_string();
    let (status, who) = api.call(Some(&token), "GET", "/v1/whoami", "");
    assert_eq!(
        (status, who["account"]["id"].as_str()),
        (200, Some("vic@example.com"))
    );

    // Disabled: refused; enabled again: accepted; revoked: refused.
    let (status, _) = api.call(
        Some(&admin),
        "PATCH",
        "/v1/people/vic@example.com",
        r#"{"disabled":true}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(api.call(Some(&token), "GET", "/v1/whoami", "").0, 401);
    api.call(
        Some(&admin),
        "PATCH",
        "/v1/people/vic@example.com",
        r#"{"disabled":false}"#,
    );
    assert_eq!(api.call(Some(&token), "GET", "/v1/whoami", "").0, 200);
    let (status, _) = api.call(Some(&admin), "DELETE", &format!("/v1/tokens/{id}"), "");
    assert_eq!(status, 200);
    assert_eq!(api.call(Some(&token), "GET", "/v1/whoami", "").0, 401);
    drop(api);
    let data = fixture.config.parent().unwrap().join("data");
    service.stop();
    drop(service);

    // Neither token appears anywhere in the data directory; their digests do.
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        for secret in [&admin, &token] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a token is stored in plain text"
            );
        }
    }
    let store = std::fs::read(data.join("roster.redb")).unwrap();
    let digest = roster_host::store::token_digest(&admin);
    assert!(store.windows(digest.len()).any(|w| w == digest.as_bytes()));
}
