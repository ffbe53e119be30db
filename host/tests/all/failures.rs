//! Behaviour under failure, with a fault-injecting connector on 127.0.0.1 and a manual
//! clock: the retry schedule (with jitter, Retry-After and across a restart), denials not
//! retried, each escalation policy, the circuit breaker, idempotent side effects and alert
//! delivery by email and webhook.

use std::path::PathBuf;
use std::sync::Arc;

use roster_host::clock::{Clock, MINUTE_MS, ManualClock};
use roster_host::config::HostConfig;
use roster_host::service::{EventSubmission, Service};
use roster_host::store::{ExecutionEntry, RecordQuery};
use roster_host::value::FieldValue;
use serde_json::json;
use test_programs_artifacts::{CONNECTOR_CLIENT, LIMITS_SPIN, SERVE_RECORDER};

use crate::connector::{Connector, SmtpSink};
use crate::serve::{T0, executions, idle};

fn client_manifest(origin: &str) -> String {
    format!(
        r#"[plugin]
id = "test.connector-client"
name = "Connector client"
version = "1.0.0"
domain = "revenue"
description = "creates a task and calls a connector"
[owners]
business = "ann"
technical = "bob"
[capabilities.records.objects.task]
read = ["*"]
write = ["subject", "related_to"]
create = true
[capabilities.records.objects.account]
read = ["*"]
[capabilities.http]
allow = [{{ url = "{origin}", allow-private = true }}]
"#
    )
}

fn client_grant(origin: &str) -> String {
    format!(
        r#"[grant]
plugin = "test.connector-client"
[capabilities.records.objects.task]
read = ["*"]
write = ["subject", "related_to"]
create = true
[capabilities.records.objects.account]
read = ["*"]
[capabilities.http]
allow = [{{ url = "{origin}", allow-private = true }}]
timeout-ms = 2000
"#
    )
}

const RECORDER_MANIFEST: &str = r#"[plugin]
id = "test.recorder"
name = "Recorder"
version = "1.0.0"
domain = "revenue"
description = "reports what started it"
[owners]
business = "ann"
technical = "ann"
"#;

const RECORDER_GRANT: &str = "[grant]\nplugin = \"test.recorder\"\n";

/// A host with connector-client workers (and optionally a recorder) calling `connector`.
pub(crate) struct Host {
    _dir: tempfile::TempDir,
    pub(crate) clock: ManualClock,
    pub(crate) config: PathBuf,
}

impl Host {
    /// `workers`: (name, extra worker-file text: [retry], [escalation], ...). A worker named
    /// `rescuer` runs the recorder component instead, one named `spin...` a worker that
    /// never returns, one named `ops...` the recorder in the IT-operations domain.
    pub(crate) fn new(connector: &Connector, host: &str, workers: &[(&str, &str)]) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("client.toml"), client_manifest(&connector.origin())).unwrap();
        std::fs::write(
            d.join("client-grant.toml"),
            client_grant(&connector.origin()),
        )
        .unwrap();
        std::fs::write(d.join("recorder.toml"), RECORDER_MANIFEST).unwrap();
        std::fs::write(d.join("recorder-grant.toml"), RECORDER_GRANT).unwrap();
        std::fs::write(
            d.join("ops.toml"),
            RECORDER_MANIFEST.replace("domain = \"revenue\"", "domain = \"it-operations\""),
        )
        .unwrap();
        let mut names = Vec::new();
        for (name, extra) in workers {
            let (component, manifest, grant) = if *name == "rescuer" {
                (SERVE_RECORDER, "recorder.toml", "recorder-grant.toml")
            } else if name.starts_with("spin") {
                (LIMITS_SPIN, "recorder.toml", "recorder-grant.toml")
            } else if name.starts_with("ops") {
                (SERVE_RECORDER, "ops.toml", "recorder-grant.toml")
            } else {
                (CONNECTOR_CLIENT, "client.toml", "client-grant.toml")
            };
            let text = format!(
                "[worker]\nname = \"{name}\"\ncomponent = \"{component}\"\nmanifest = \"{manifest}\"\ngrant = \"{grant}\"\nprincipal = \"svc\"\n\n[[triggers]]\non = \"event\"\nname = \"{name}\"\n\n{extra}\n"
            );
            std::fs::write(d.join(format!("w-{name}.toml")), text).unwrap();
            names.push(format!("\"w-{name}.toml\""));
        }
        let principals = "[[principals]]\nid = \"svc\"\nkind = \"service\"\nsees = \"all\"\n\n[[principals]]\nid = \"ann\"\nemail = \"ann@example.com\"\nteams = [\"ops\"]\nroles = [\"admin\"]\n\n[[principals]]\nid = \"bob\"\nemail = \"bob@example.com\"\nteams = [\"ops\"]\n";
        let config = d.join("roster.toml");
        std::fs::write(
            &config,
            format!(
                "data-dir = \"data\"\nexecutors = 2\nworkers = [{}]\n{host}\n{principals}",
                names.join(", ")
            ),
        )
        .unwrap();
        Host {
            _dir: dir,
            clock: ManualClock::new(T0),
            config,
        }
    }

    pub(crate) fn start(&self) -> Service {
        let config = HostConfig::load(&self.config).unwrap();
        Service::start(config, Arc::new(self.clock.clone())).unwrap()
    }
}

pub(crate) fn call(service: &Service, worker: &str, id: &str, payload: serde_json::Value) {
    let accepted = service
        .submit_event(
            worker,
            EventSubmission {
                id: Some(id.into()),
                payload: Some(payload),
                ..EventSubmission::default()
            },
        )
        .unwrap();
    assert_eq!(accepted.len(), 1);
}

fn of(service: &Service, worker: &str) -> Vec<ExecutionEntry> {
    executions(service)
        .into_iter()
        .filter(|e| e.worker == worker)
        .collect()
}

fn tasks(service: &Service, subject: &str) -> usize {
    service
        .store()
        .query(&RecordQuery {
            object: "task".into(),
            filters: Vec::new(),
            owners: None,
            limit: 10_000,
        })
        .unwrap()
        .into_iter()
        .filter(|r| r.fields.get("subject") == Some(&FieldValue::Text(subject.into())))
        .count()
}

/// Moves the clock and lets the service catch up.
fn advance(host: &Host, service: &Service, ms: i64) {
    host.clock.advance(ms);
    idle(service);
}

#[test]
pub fn connector_client() {
    // A connector that fails three times: three retries at about 1 s, 5 s and 30 s (±20%
    // jitter), never early, surviving a restart; the fourth attempt succeeds. Side effects
    // of the failed attempts are not repeated: one task, and the same idempotency key on
    // every request to the connector.
    let connector = Connector::start();
    let host = Host::new(&connector, "", &[("caller", "")]);
    let url = connector.url("/fail/3/schedule");
    let mut service = host.start();
    call(
        &service,
        "caller",
        "order-1",
        json!({ "url": url, "ref": "order-1" }),
    );
    idle(&service);

    let mut expected_delay = [1_000.0, 5_000.0, 30_000.0].into_iter();
    for attempt in 1..=3u32 {
        let log = of(&service, "caller");
        assert_eq!(log.len() as u32, attempt, "{log:#?}");
        let last = log.last().unwrap();
        assert_eq!(last.status, "failed");
        assert_eq!(last.attempt, attempt);
        assert_eq!(last.failure.as_deref(), Some("connector"));
        let retry_at = last.retry_at.expect("a retry is scheduled");
        let delay = (retry_at - last.finished_at) as f64;
        let base = expected_delay.next().unwrap();
        assert!(
            delay >= base * 0.8 - 1.0 && delay <= base * 1.2 + 1.0,
            "retry {attempt} after {delay} ms, expected {base} ms ± 20%"
        );
        // Not early: just before the retry is due, nothing runs.
        let wait = retry_at - host.clock.now_ms();
        advance(&host, &service, wait - 1);
        assert_eq!(of(&service, "caller").len() as u32, attempt);
        if attempt == 2 {
            // Retry state is durable: a restart neither forgets nor hastens the retry.
            service.shutdown();
            service = host.start();
            idle(&service);
            assert_eq!(of(&service, "caller").len() as u32, attempt);
            assert_eq!(service.queue_status().delayed, 1);
        }
        advance(&host, &service, 1);
    }
    let log = of(&service, "caller");
    assert_eq!(log.len(), 4);
    assert_eq!(log[3].status, "success");
    assert_eq!(log[3].attempt, 4);
    assert_eq!(log[3].retry_at, None);

    assert_eq!(
        tasks(&service, "follow up order-1"),
        1,
        "one task, not four"
    );
    let replayed: Vec<bool> = log
        .iter()
        .map(|e| e.report.as_ref().unwrap()["actions"][0]["replayed"] == json!(true))
        .collect();
    assert_eq!(replayed, [false, true, true, true]);
    let requests = connector.received_on("/fail/3/schedule");
    assert_eq!(requests.len(), 4);
    let key = requests[0].key.clone().expect("an idempotency key is sent");
    assert!(
        requests
            .iter()
            .all(|r| r.key.as_deref() == Some(key.as_str()))
    );
    assert!(service.store().queue_len().unwrap() == 0);
}

#[test]
fn retry_after_is_honoured_and_hangs_time_out_into_retries() {
    let connector = Connector::start();
    let host = Host::new(&connector, "", &[("throttled", ""), ("hanging", "")]);
    let service = host.start();
    call(
        &service,
        "throttled",
        "t-1",
        json!({ "url": connector.url("/throttle/7/a"), "ref": "t-1" }),
    );
    call(
        &service,
        "hanging",
        "h-1",
        json!({ "url": connector.url("/hang/a"), "ref": "h-1", "timeout-ms": 300 }),
    );
    idle(&service);

    let throttled = of(&service, "throttled");
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0].failure.as_deref(), Some("connector"));
    let delay = throttled[0].retry_at.unwrap() - throttled[0].finished_at;
    assert!(
        (7_000..7_100).contains(&delay),
        "Retry-After: 7 gives a 7 s delay instead of ~1 s, got {delay} ms"
    );
    let hanging = of(&service, "hanging");
    assert_eq!(hanging.len(), 1);
    assert_eq!(hanging[0].failure.as_deref(), Some("connector"));
    assert!(
        hanging[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("no response within"),
        "{:?}",
        hanging[0].detail
    );
    assert!(hanging[0].retry_at.is_some());

    advance(&host, &service, 2_000);
    assert_eq!(
        of(&service, "throttled").len(),
        1,
        "still waiting for Retry-After"
    );
    assert_eq!(of(&service, "hanging").len(), 2, "the hang was retried");
    advance(&host, &service, 5_100);
    let throttled = of(&service, "throttled");
    assert_eq!(throttled.len(), 2);
    assert_eq!(throttled[1].status, "success");
}

#[test]
fn denials_and_invalid_input_are_not_retried() {
    let connector = Connector::start();
    let host = Host::new(&connector, "", &[("denied", "")]);
    let service = host.start();
    call(
        &service,
        "denied",
        "d-1",
        json!({ "url": connector.url("/ok"), "ref": "d-1", "deny": true }),
    );
    call(
        &service,
        "denied",
        "d-2",
        json!({ "url": connector.url("/status/422/refuse"), "ref": "d-2", "create": false }),
    );
    idle(&service);
    advance(&host, &service, 10 * MINUTE_MS);
    let log = of(&service, "denied");
    assert_eq!(log.len(), 2, "{log:#?}");
    let denied = log.iter().find(|e| e.event_id.starts_with("d-1")).unwrap();
    assert_eq!(denied.status, "failed");
    assert_eq!(denied.failure.as_deref(), Some("denied"));
    assert_eq!(denied.retry_at, None);
    assert_eq!(
        denied.escalation.as_ref().unwrap().policy,
        "log-and-continue"
    );
    assert!(
        connector.received_on("/ok").is_empty(),
        "nothing after the denial"
    );
    let invalid = log.iter().find(|e| e.event_id.starts_with("d-2")).unwrap();
    assert_eq!(invalid.failure.as_deref(), Some("validation"));
    assert_eq!(invalid.retry_at, None);
    assert_eq!(connector.received_on("/status/422/refuse").len(), 1);
    assert_eq!(service.store().queue_len().unwrap(), 0);
}

/// Runs one event for `worker` against a connector that always fails, through its single
/// retry, and returns the final entry.
fn fail_for_good(
    host: &Host,
    service: &Service,
    connector: &Connector,
    worker: &str,
    id: &str,
    failures: u32,
) -> ExecutionEntry {
    let url = connector.url(&format!("/fail/{failures}/{worker}"));
    call(service, worker, id, json!({ "url": url, "ref": id }));
    idle(service);
    advance(host, service, 1_000);
    let log: Vec<ExecutionEntry> = of(service, worker)
        .into_iter()
        .filter(|e| e.event_id.starts_with(id))
        .collect();
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(log[0].retry_at.is_some());
    assert_eq!(log[1].retry_at, None, "the last retry was used");
    log[1].clone()
}

const ONE_RETRY: &str = "[retry]\nmax-retries = 1\nintervals = [\"1s\"]\njitter = 0.0\n";

#[test]
fn each_escalation_policy_runs_after_the_last_retry() {
    let connector = Connector::start();
    let host = Host::new(
        &connector,
        "",
        &[
            (
                "pauser",
                &format!("{ONE_RETRY}[escalation]\npolicy = \"pause\"\n"),
            ),
            (
                "tasker",
                &format!(
                    "{ONE_RETRY}[escalation]\npolicy = \"create-task\"\nassignee = \"team:ops\"\n"
                ),
            ),
            (
                "logger",
                &format!("{ONE_RETRY}[escalation]\npolicy = \"log-and-continue\"\n"),
            ),
            (
                "faller",
                &format!(
                    "{ONE_RETRY}[escalation]\npolicy = \"fallback\"\nfallback-worker = \"rescuer\"\nfallback-notify = {{ channel = \"in-app\", to = [\"bob\"] }}\n"
                ),
            ),
            ("rescuer", ""),
        ],
    );
    let service = host.start();

    // Pause: the worker is paused, its owners alerted, the failed trigger and new ones held.
    let last = fail_for_good(&host, &service, &connector, "pauser", "p-1", 2);
    assert_eq!(last.escalation.as_ref().unwrap().policy, "pause");
    let control = service.controls()["pauser"].clone();
    assert!(control.paused);
    assert_eq!(control.by, "escalation");
    let alerts = service.store().alerts().unwrap();
    let alert = alerts.iter().find(|a| a.worker == "pauser").unwrap();
    assert_eq!(alert.kind, "escalation");
    let outbox = service.store().outbox().unwrap();
    let note = outbox
        .iter()
        .find(|n| n.id == format!("alert/{}/in-app", alert.key))
        .expect("an in-app alert");
    assert_eq!(note.recipients, ["ann", "bob"], "the manifest's owners");
    call(
        &service,
        "pauser",
        "p-2",
        json!({ "url": connector.url("/ok"), "ref": "p-2" }),
    );
    advance(&host, &service, MINUTE_MS);
    assert_eq!(
        service.queue_status().held,
        2,
        "{:?}",
        service.queue_status()
    );
    assert_eq!(of(&service, "pauser").len(), 2, "nothing runs while paused");

    // Create a task for a queue, with the failure's context.
    let last = fail_for_good(&host, &service, &connector, "tasker", "t-1", 1000);
    let escalation = last.escalation.clone().unwrap();
    assert_eq!(escalation.policy, "create-task");
    let task_id = format!("escalation-tasker-{}", last.queue_seq);
    let task = service
        .store()
        .get_record("task", &task_id)
        .unwrap()
        .unwrap();
    assert_eq!(task.fields["assignee"], FieldValue::Text("team:ops".into()));
    let context = service
        .store()
        .get_record("note", &format!("{task_id}-context"))
        .unwrap()
        .unwrap();
    let FieldValue::Text(body) = &context.fields["body"] else {
        panic!("{context:?}")
    };
    assert!(
        body.contains("t-1") && body.contains("2 attempt(s)") && body.contains("connector"),
        "{body}"
    );

    // Log and continue: recorded, and the next trigger runs.
    let last = fail_for_good(&host, &service, &connector, "logger", "l-1", 1000);
    assert_eq!(last.escalation.as_ref().unwrap().policy, "log-and-continue");
    call(
        &service,
        "logger",
        "l-2",
        json!({ "url": connector.url("/ok"), "ref": "l-2" }),
    );
    idle(&service);
    assert_eq!(of(&service, "logger").last().unwrap().status, "success");

    // Fallback: the fallback worker runs with the failure context, and a notification goes.
    let last = fail_for_good(&host, &service, &connector, "faller", "f-1", 1000);
    let escalation = last.escalation.clone().unwrap();
    assert_eq!(escalation.policy, "fallback");
    assert!(escalation.detail.contains("rescuer"), "{escalation:?}");
    idle(&service);
    let rescue = of(&service, "rescuer");
    assert_eq!(rescue.len(), 1);
    assert_eq!(rescue[0].trigger, "fallback for `faller`");
    let summary = rescue[0].report.as_ref().unwrap()["outcome"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        summary.contains("\"failed-worker\":\"faller\""),
        "{summary}"
    );
    assert!(
        service
            .store()
            .outbox()
            .unwrap()
            .iter()
            .any(|n| n.id.starts_with("fallback/faller/") && n.recipients == ["bob"])
    );

    // Resuming the paused worker replays its held triggers: the connector works again.
    service
        .resume("pauser", "ann", "connector fixed", false)
        .unwrap();
    idle(&service);
    let log = of(&service, "pauser");
    assert_eq!(log.len(), 4, "{log:#?}");
    assert_eq!(service.queue_status().held, 0);
    assert!(log[2..].iter().all(|e| e.status == "success"), "{log:#?}");
    assert_eq!(connector.received_on("/fail/2/pauser").len(), 3);
}

#[test]
fn the_circuit_breaker_pauses_holds_alerts_and_replays_on_resume() {
    let connector = Connector::start();
    let host = Host::new(
        &connector,
        "",
        &[(
            "flaky",
            "[retry]\nmax-retries = 0\n[circuit-breaker]\nmin-executions = 4\nwindow = \"10m\"\n",
        )],
    );
    let service = host.start();
    let ok = connector.url("/ok");
    let bad = connector.url("/fail/1000/breaker");
    call(&service, "flaky", "e-1", json!({ "url": ok, "ref": "e-1" }));
    idle(&service);
    for n in 2..=4 {
        call(
            &service,
            "flaky",
            &format!("e-{n}"),
            json!({ "url": bad, "ref": n }),
        );
        idle(&service);
        host.clock.advance(1_000);
    }
    // 3 of 4 executions failed (75% > 50%) with the minimum of 4 reached: paused.
    let control = service.controls()["flaky"].clone();
    assert!(control.paused, "{control:?}");
    assert_eq!(control.by, "circuit-breaker");
    assert!(
        control.reason.contains("3 of the last 4"),
        "{}",
        control.reason
    );
    let alert = service
        .store()
        .alerts()
        .unwrap()
        .into_iter()
        .find(|a| a.kind == "circuit-breaker")
        .expect("owners alerted");
    assert!(
        service.store().outbox().unwrap().iter().any(|n| n.id
            == format!("alert/{}/in-app", alert.key)
            && n.recipients == ["ann", "bob"])
    );

    // Triggers keep being accepted, and are held, not dropped.
    for n in 5..=7 {
        call(
            &service,
            "flaky",
            &format!("e-{n}"),
            json!({ "url": ok, "ref": n }),
        );
    }
    advance(&host, &service, 5 * MINUTE_MS);
    assert_eq!(of(&service, "flaky").len(), 4);
    assert_eq!(service.queue_status().held, 3);

    // A person resumes it: the held triggers run, and the breaker starts counting afresh.
    service
        .resume("flaky", "ann", "connector is back", false)
        .unwrap();
    idle(&service);
    let log = of(&service, "flaky");
    assert_eq!(log.len(), 7);
    assert!(log[4..].iter().all(|e| e.status == "success"), "{log:#?}");
    assert!(!service.controls()["flaky"].paused);
    assert!(
        service.resume("flaky", "ann", "again", false).is_err(),
        "not paused"
    );
}

#[test]
fn manual_pause_needs_a_reason_and_alerts_are_delivered_once_by_email_and_webhook() {
    let connector = Connector::start();
    let smtp = SmtpSink::start();
    let host_text = format!(
        "[alerts]\nemail = true\nwebhook-url = \"{}\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"roster@example.com\"\n",
        connector.url("/alerts"),
        smtp.port
    );
    let host = Host::new(&connector, &host_text, &[("paused", "")]);
    let service = host.start();
    assert!(
        service.pause("paused", "ann", " ").is_err(),
        "a reason is required"
    );
    assert!(service.pause("ghost", "ann", "why").is_err());
    service
        .pause("paused", "ann", "maintenance window")
        .unwrap();
    // A second alert with the same key is not raised again; the pause alert key includes
    // the time, so pausing again at the same instant is deduplicated.
    service
        .pause("paused", "ann", "maintenance window")
        .unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while (smtp.mails().is_empty() || connector.received_on("/alerts").is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].to.len(), 2);
    assert!(mails[0].to.iter().any(|t| t.contains("ann@example.com")));
    assert!(mails[0].data.contains("maintenance window"));
    assert!(mails[0].from.contains("roster@example.com"));
    assert!(
        mails[0]
            .data
            .to_ascii_lowercase()
            .contains("message-id: <alert.")
    );
    let hooks = connector.received_on("/alerts");
    assert_eq!(hooks.len(), 1, "{hooks:#?}");
    assert_eq!(hooks[0].headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&hooks[0].body).unwrap();
    assert_eq!(body["kind"], "paused");
    assert_eq!(body["worker"], "paused");
    assert!(
        hooks[0]
            .key
            .as_deref()
            .unwrap()
            .starts_with("alert/paused/paused/")
    );
    let alerts = service.store().alerts().unwrap();
    assert_eq!(alerts.len(), 1, "deduplicated: {alerts:#?}");
    let delivery = service
        .store()
        .delivery(&format!("alert/{}/email", alerts[0].key))
        .unwrap()
        .unwrap();
    assert!(delivery.delivered_at.is_some(), "{delivery:?}");
}

#[test]
fn submitted_event_ids_are_accepted_once() {
    let connector = Connector::start();
    let host = Host::new(&connector, "", &[("once", "")]);
    let service = host.start();
    let event = EventSubmission {
        id: Some("evt-1".into()),
        payload: Some(json!({ "url": connector.url("/ok"), "ref": "evt-1" })),
        ..EventSubmission::default()
    };
    let (first, seen) = service.accept_event("once", event.clone()).unwrap();
    assert!(!seen);
    let (again, seen) = service.accept_event("once", event).unwrap();
    assert!(seen);
    assert_eq!(first, again);
    idle(&service);
    assert_eq!(of(&service, "once").len(), 1);
    assert_eq!(connector.received_on("/ok").len(), 1);
}

#[test]
fn failure_policies_in_worker_files_are_validated() {
    let connector = Connector::start();
    for (extra, expected) in [
        ("[retry]\nretry-on = [\"denied\"]\n", "never retried"),
        (
            "[escalation]\npolicy = \"create-task\"\n",
            "needs `assignee`",
        ),
        (
            "[escalation]\npolicy = \"create-task\"\nassignee = \"nobody\"\n",
            "not a principal",
        ),
        (
            "[escalation]\npolicy = \"fallback\"\nfallback-worker = \"ghost\"\n",
            "another enabled worker",
        ),
        ("[circuit-breaker]\nerror-rate = 2.0\n", "error-rate"),
    ] {
        let host = Host::new(&connector, "", &[("w", extra)]);
        let err = HostConfig::load(&host.config).unwrap_err().to_string();
        assert!(err.contains(expected), "{extra}: {err}");
        assert!(err.contains("w-w.toml"), "{err}");
    }
    let host = Host::new(&connector, "[alerts]\nemail = true\n", &[("w", "")]);
    let err = HostConfig::load(&host.config).unwrap_err().to_string();
    assert!(err.contains("[smtp]"), "{err}");
}
