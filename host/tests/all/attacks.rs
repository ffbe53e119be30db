//! Attacks on the sandbox and the API, each failing the way a user would notice: a worker
//! that sleeps ends at its limit and at the kill switch, lists and strings a worker passes
//! are counted and cut, a reviewer's edit cannot retarget an action, outside numbers never
//! overflow, reversals name real actions once, identities are case-insensitive, a webhook
//! delivery runs once, and an account learns nothing it may not see.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use roster_host::sandbox::gate::ActionKind;
use roster_host::{ExecutionReport, LoadedWorker, Status};
use serde_json::json;
use test_programs_artifacts::LIMITS_HOSTILE;

use crate::common::*;

/// Everything the hostile worker imports; optional, so a test grants only what it needs.
const REQUESTED: &str = "\
[records.objects.task]
write = [\"subject\"]
create = true
[notify]
channels = [\"in-app\"]
recipients = [\"*\"]
[http]
allow = [{ url = \"https://example.com\" }]
[inference]
models = [\"model\"]
[memory]
quota-bytes = 1024
";

const OPTIONAL: &str =
    "optional-capabilities = [\"records\", \"notify\", \"http\", \"inference\", \"memory\"]";

fn hostile_with_halt(id: &str, granted: &str, limits: &str, halt: Arc<AtomicBool>) -> LoadedWorker {
    let bytes = std::fs::read(LIMITS_HOSTILE).unwrap();
    runtime()
        .load_with_halt(
            &bytes,
            &manifest_with(id, OPTIONAL, REQUESTED),
            &grant_with_limits(id, granted, limits),
            halt,
        )
        .unwrap()
}

fn hostile(id: &str, granted: &str, limits: &str) -> LoadedWorker {
    hostile_with_halt(id, granted, limits, Arc::default())
}

fn attack(worker: &LoadedWorker, name: &str) -> ExecutionReport {
    run(worker, &payload_event(json!({ "attack": name })))
}

#[test]
pub fn limits_hostile() {
    // A worker that sleeps for an hour under a 2 s limit ends as a timeout at its limit.
    let worker = hostile("test.hostile-sleep", "", "timeout-ms = 2000");
    let started = Instant::now();
    let report = attack(&worker, "sleep");
    let took = started.elapsed();
    println!(
        "a one-hour sleep under a 2 s limit ended as {} after {took:?}",
        report.status
    );
    assert_eq!(report.status, Status::Timeout, "{report:#?}");
    assert!(report.duration_us >= 2_000_000, "{}", report.duration_us);
    // A generous bound (the execution benchmark measures it): far below the hour.
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        report.error.as_deref().unwrap().contains("interrupt"),
        "{:?}",
        report.error
    );

    // A blocking read of standard input ends at once: the sandbox's stdin is closed.
    let report = attack(&worker, "stdin");
    assert_eq!(report.status, Status::Success, "{report:#?}");
    assert_host_still_healthy("hostile");
}

#[test]
fn the_kill_switch_stops_a_sleeping_worker() {
    let halt = Arc::new(AtomicBool::new(false));
    let worker = hostile_with_halt(
        "test.hostile-killed",
        "",
        "timeout-ms = 60_000",
        halt.clone(),
    );
    let running = std::thread::spawn(move || attack(&worker, "sleep"));
    // Let it reach its sleep.
    std::thread::sleep(Duration::from_millis(500));
    let paused = Instant::now();
    halt.store(true, Ordering::SeqCst);
    let report = running.join().unwrap();
    let took = paused.elapsed();
    println!("the kill switch ended a sleeping worker {took:?} after the pause");
    assert_eq!(report.status, Status::Interrupted, "{report:#?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn every_list_a_worker_passes_is_counted_and_capped() {
    let worker = hostile("test.hostile-lists", "", "");
    for name in [
        "fields",
        "text-list",
        "filters",
        "headers",
        "recipients",
        "labels",
    ] {
        let report = attack(&worker, name);
        assert_eq!(report.status, Status::PayloadLimit, "{name}: {report:#?}");
        assert_eq!(
            report.error.as_deref(),
            Some("a host call passed a list of 800000 elements, more than the limit of 1000"),
            "{name}"
        );
        let kept = serde_json::to_vec(&report).unwrap().len();
        assert!(kept < 16 << 10, "{name}: the report keeps {kept} bytes");
    }
    assert_host_still_healthy("lists");
}

#[test]
fn what_denied_calls_leave_in_the_report_is_bounded() {
    // 200 denied creates, each naming a 60 kB field: 12 MB of names if all were kept.
    let worker = hostile(
        "test.hostile-denied",
        "[records.objects.task]\nwrite = [\"subject\"]\ncreate = true\n",
        "",
    );
    let report = attack(&worker, "denied-writes");
    assert_eq!(report.status, Status::Success, "{report:#?}");
    assert_eq!(report.outcome.as_ref().unwrap().summary, "denied 200");
    let kept = serde_json::to_vec(&report).unwrap().len();
    println!("200 denied calls with 60 kB field names: the report keeps {kept} bytes");
    assert!(kept < 1 << 20, "the report keeps {kept} bytes");
    assert_eq!(report.actions.len(), 200);
}

#[test]
fn errors_and_summaries_a_worker_returns_are_cut_to_the_limit() {
    let worker = hostile("test.hostile-strings", "", "");
    let report = attack(&worker, "huge-error");
    assert_eq!(report.status, Status::Failed, "{:?}", report.status);
    let error = report.error.unwrap();
    assert!(error.len() < (1 << 20) + 64, "{}", error.len());
    assert!(
        error.ends_with(&format!("[truncated from {} bytes]", (24 << 20) + 7)),
        "{}",
        &error[error.len() - 60..]
    );
    let report = attack(&worker, "huge-summary");
    assert_eq!(report.status, Status::Success);
    let summary = &report.outcome.unwrap().summary;
    assert!(summary.len() < (1 << 20) + 64, "{}", summary.len());
}

#[test]
fn memory_writes_are_the_workers_own_state_not_actions() {
    let worker = hostile(
        "test.hostile-memory",
        "[memory]\nquota-bytes = 1024\n",
        "actions = 1",
    );
    let report = attack(&worker, "memory-writes");
    assert_eq!(report.status, Status::Success, "{report:#?}");
    let writes = report
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::State)
        .count();
    assert_eq!(writes, 10, "ten memory writes under an action limit of one");
}

/// `roster run` ends a worker that sleeps for an hour at its 2 s limit.
#[test]
fn roster_run_ends_a_sleeping_worker_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("worker.toml");
    let grant = dir.path().join("grant.toml");
    let requested: String = REQUESTED
        .lines()
        .map(|l| match l.strip_prefix('[') {
            Some(rest) => format!("[capabilities.{rest}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(
        &manifest,
        format!(
            "[plugin]\nid = \"test.sleeper\"\nname = \"sleeper\"\nversion = \"1.0.0\"\n\
             domain = \"revenue\"\ndescription = \"sleeps\"\n{OPTIONAL}\n\
             [owners]\nbusiness = \"b@example.com\"\ntechnical = \"t@example.com\"\n{requested}"
        ),
    )
    .unwrap();
    std::fs::write(
        &grant,
        "[grant]\nplugin = \"test.sleeper\"\n[limits]\ntimeout-ms = 2000\n",
    )
    .unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["run", LIMITS_HOSTILE, "--manifest"])
        .arg(&manifest)
        .arg("--grant")
        .arg(&grant)
        .args(["--event", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"trigger": {"type": "manual"}, "payload": {"attack": "sleep"}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("roster run: a one-hour sleep under a 2 s limit returned after {took:?}");
    assert!(
        stdout.contains("status    timeout"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
}

mod api {
    //! The API under attack: every refusal is a 4xx that changes nothing.

    use std::sync::Arc;

    use roster_host::service::Service;
    use roster_host::store::ApprovalStatus;
    use roster_host::value::FieldValue;

    use crate::access::{Api, person};
    use crate::approvals::{Host, held, opportunity, propose};
    use crate::serve::Fixture;

    fn stage_of(service: &Service, id: &str) -> FieldValue {
        service
            .store()
            .get_record("opportunity", id)
            .unwrap()
            .unwrap()
            .fields["stage"]
            .clone()
    }

    fn decide(api: &Api, token: &str, id: &str, body: &str) -> (u16, serde_json::Value) {
        api.call(
            Some(token),
            "POST",
            &format!("/v1/approvals/{id}/decide"),
            body,
        )
    }

    /// A reviewer's edit changes values only: it cannot point the action at another record
    /// or object, and what is applied is checked against the worker's grant as it stands.
    #[test]
    fn a_reviewers_edit_cannot_retarget_a_held_action() {
        let host = Host::new("[review]\nstage = \"assistive\"\n");
        let service = host.start();
        opportunity(&service, "O-1", 1000);
        opportunity(&service, "O-2", 1000);
        let rita = person(&service, "rita@example.com", &["reviewer@revenue"]);
        let api = Api::start(service.clone());
        propose(&service, "run-1", "O-1", None);
        let update = held(&service, ApprovalStatus::Pending)
            .into_iter()
            .find(|a| a.proposed.action() == "records.update")
            .unwrap();

        for (edited, says) in [
            (
                r#"{"kind":"record-update","object":"opportunity","id":"O-2","fields":{"stage":"closed-won"}}"#,
                "which record",
            ),
            (
                r#"{"kind":"record-update","object":"invoice","id":"I-000","fields":{"stage":"paid"}}"#,
                "cannot change the object",
            ),
            (
                r#"{"kind":"record-delete","object":"opportunity","id":"O-1"}"#,
                "same kind of action",
            ),
        ] {
            let (status, answer) = decide(
                &api,
                &rita,
                &update.id,
                &format!(r#"{{"verdict":"edit","edited":{edited}}}"#),
            );
            assert_eq!(status, 400, "{answer}");
            assert!(answer.to_string().contains(says), "{answer}");
        }
        assert_eq!(
            stage_of(&service, "O-2"),
            FieldValue::Text("discovery".into())
        );
        assert!(
            service
                .store()
                .get_record("invoice", "I-000")
                .unwrap()
                .is_none(),
            "the invoice was not written"
        );
        let still = service.store().approval(&update.id).unwrap().unwrap();
        assert_eq!(still.status, ApprovalStatus::Pending);

        // A grant narrowed since the proposal stops what it no longer covers.
        drop(api);
        service.stop();
        drop(service);
        let grant = host.config.with_file_name("grant.toml");
        let narrowed = std::fs::read_to_string(&grant)
            .unwrap()
            .replace("write = [\"stage\"]\n", "");
        std::fs::write(&grant, narrowed).unwrap();
        let service = host.start();
        let api = Api::start(service.clone());
        let (status, answer) = decide(&api, &rita, &update.id, r#"{"verdict":"approve"}"#);
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer
                .to_string()
                .contains("`stage` of `opportunity` is not writable"),
            "{answer}"
        );
        assert_eq!(
            stage_of(&service, "O-1"),
            FieldValue::Text("discovery".into())
        );
        drop(api);
        service.stop();
    }

    /// Account ids are one identity whatever their case; reserved ids cannot be taken.
    #[test]
    fn identities_are_case_insensitive_and_reserved_ids_are_refused() {
        let host = Host::new("[review]\nstage = \"assistive\"\n");
        let service = host.start();
        opportunity(&service, "O-1", 1000);
        let admin = person(&service, "ada@example.com", &["admin"]);
        let api = Api::start(service.clone());
        // The proposer's owner is owner@example.com; the same person in capitals.
        let (status, answer) = api.call(
            Some(&admin),
            "POST",
            "/v1/people",
            r#"{"id":"Owner@Example.COM","kind":"user","roles":["reviewer@revenue"]}"#,
        );
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["account"]["id"], "owner@example.com");
        let (status, answer) = api.call(
            Some(&admin),
            "POST",
            "/v1/people/OWNER@example.com/tokens",
            r#"{"name":"laptop"}"#,
        );
        assert_eq!(status, 201, "{answer}");
        let owner = answer["token"].as_str().unwrap().to_string();
        propose(&service, "run-1", "O-1", None);
        let pending = held(&service, ApprovalStatus::Pending);
        let (status, answer) = decide(&api, &owner, &pending[0].id, r#"{"verdict":"approve"}"#);
        assert_eq!(status, 403, "{answer}");
        assert!(answer.to_string().contains("no-self-approval"), "{answer}");

        for id in ["root", "ROOT", "anonymous", " Root "] {
            let (status, answer) = api.call(
                Some(&admin),
                "POST",
                "/v1/people",
                &format!(r#"{{"id":"{id}","kind":"service","roles":["admin"]}}"#),
            );
            assert_eq!(status, 400, "{id}: {answer}");
        }
        assert!(service.store().account("root").unwrap().is_none());
        drop(api);
        service.stop();
    }

    /// A reversal names an action the worker performed, once.
    #[test]
    fn a_reversal_names_a_performed_action_of_that_worker_once() {
        let host = Host::new("[review]\nstage = \"supervised\"\n");
        let service = host.start();
        opportunity(&service, "O-1", 1000);
        let rita = person(&service, "rita@example.com", &["reviewer@revenue"]);
        let api = Api::start(service.clone());
        let summary = propose(&service, "run-1", "O-1", None);
        assert!(summary.starts_with("update=performed"), "{summary}");
        let entry = service
            .store()
            .executions_after(0, usize::MAX)
            .unwrap()
            .into_iter()
            .find(|e| e.event_id == "run-1/proposer")
            .unwrap();
        let actions = entry.report.unwrap()["actions"].clone();
        let performed = actions
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["result"] == "performed" && a["kind"] == "effect")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let held_one = actions
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["result"] == "held")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let reverse = |action: &str| {
            api.call(
                Some(&rita),
                "POST",
                "/v1/workers/proposer/reversals",
                &format!(r#"{{"action":"{action}","reason":"wrong stage"}}"#),
            )
        };
        let fake = format!("{}/0", uuid_now());
        for (action, says) in [
            ("x/0", "not an action"),
            (fake.as_str(), "not an action"),
            (held_one.as_str(), "was not performed"),
        ] {
            let (status, answer) = reverse(action);
            assert_eq!(status, 400, "{action}: {answer}");
            assert!(answer.to_string().contains(says), "{action}: {answer}");
        }
        assert_eq!(service.trust("proposer").unwrap().metrics.reversals, 0);
        let (status, answer) = reverse(&performed);
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = reverse(&performed);
        assert_eq!(status, 400, "{answer}");
        assert!(answer.to_string().contains("already"), "{answer}");
        assert_eq!(service.trust("proposer").unwrap().metrics.reversals, 1);
        drop(api);
        service.stop();
    }

    fn uuid_now() -> String {
        // A well-formed execution id that names no execution.
        "0190f5f4-7a2b-7c3d-8e4f-0123456789ab".to_string()
    }

    fn recorder_host() -> (Fixture, Arc<Service>) {
        let fixture = Fixture::pinged("");
        let service = Arc::new(fixture.start());
        (fixture, service)
    }

    /// Numbers from outside are checked: cursors at their extremes answer, never fail.
    #[test]
    fn cursors_at_their_extremes_answer_without_failing() {
        let (_fixture, service) = recorder_host();
        let auditor = person(&service, "sam@example.com", &["security-auditor"]);
        let api = Api::start(service.clone());
        let (status, answer) = api.call(
            Some(&auditor),
            "GET",
            "/v1/audit?after=18446744073709551615",
            "",
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["entries"], serde_json::json!([]));
        let (status, answer) = api.call(
            Some(&auditor),
            "GET",
            "/v1/audit?after=18446744073709551616",
            "",
        );
        assert_eq!(status, 400, "{answer}");
        let (status, _) = api.call(
            Some(&auditor),
            "GET",
            "/v1/audit/export?after=18446744073709551615",
            "",
        );
        assert_eq!(status, 200);
        drop(api);
        service.stop();
    }

    /// The smaller holes: existence is not leaked, the scheme is case-insensitive, a token
    /// that could never work is refused, failed authentication is throttled.
    #[test]
    fn the_api_leaks_nothing_and_refuses_what_cannot_work() {
        let (_fixture, service) = recorder_host();
        let admin = person(&service, "ada@example.com", &["admin"]);
        let nobody = person(&service, "nora@example.com", &[]);
        let api = Api::start(service.clone());
        // An account with no roles cannot tell an existing worker from a missing one.
        for path in [
            "/v1/workers/w1/trust",
            "/v1/workers/no-such-worker/trust",
            "/v1/approvals/apr-none",
        ] {
            let (status, answer) = api.call(Some(&nobody), "GET", path, "");
            assert_eq!(status, 403, "{path}: {answer}");
        }
        let (status, _) = api.call(Some(&admin), "GET", "/v1/workers/no-such-worker/trust", "");
        assert_eq!(status, 404);

        // `bearer` in any case.
        let (status, _) = crate::serve_process::http(
            api.port,
            "GET",
            "/v1/whoami",
            &[("authorization", format!("bearer {admin}"))],
            b"",
        )
        .unwrap();
        assert_eq!(status, 200);

        // A token that expires after zero days would never work.
        let (status, answer) = api.call(
            Some(&admin),
            "POST",
            "/v1/people/nora@example.com/tokens",
            r#"{"name":"x","expires_days":0}"#,
        );
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            service
                .store()
                .tokens(Some("nora@example.com"))
                .unwrap()
                .len(),
            1
        );

        // Guessing tokens is throttled per client: after the burst, every request from
        // that address waits, valid or not, until the bucket refills.
        let burst = roster_host::config::DEFAULT_FAILED_AUTH_BURST;
        for _ in 0..burst {
            assert_eq!(api.call(Some("rst_guess"), "GET", "/v1/whoami", "").0, 401);
        }
        let (status, answer) = api.call(Some("rst_guess"), "GET", "/v1/whoami", "");
        assert_eq!(status, 429, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains("retry in"),
            "{answer}"
        );
        assert_eq!(api.call(Some(&admin), "GET", "/v1/whoami", "").0, 429);
        std::thread::sleep(roster_host::server::throttle::REFILL * 2);
        assert_eq!(api.call(Some(&admin), "GET", "/v1/whoami", "").0, 200);
        drop(api);
        service.stop();
    }
}

mod webhooks {
    //! The webhook of a running `roster serve`.

    use std::time::{Duration, Instant};

    use roster_host::webhook::sign;

    use crate::serve_process::{SECRET, Server, fixture, free_port, http};

    /// The same signed delivery, without an id, sent twice within the tolerance runs once;
    /// a timestamp at the edge of the integer range is refused, not a dropped connection.
    #[test]
    fn a_replayed_delivery_runs_once_and_extreme_timestamps_are_refused() {
        let port = free_port();
        let fx = fixture(1000, port);
        let server = Server::start(&fx.config, port);
        let body = br#"{"payload": {"n": 1}}"#;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let headers = [
            ("x-roster-timestamp", ts.to_string()),
            ("x-roster-signature", sign(SECRET, ts, body)),
        ];
        let first = http(port, "POST", "/v1/events/ping", &headers, body).unwrap();
        assert_eq!(first.0, 202, "{}", first.1);
        let again = http(port, "POST", "/v1/events/ping", &headers, body).unwrap();
        assert_eq!(again.0, 200, "{}", again.1);
        assert!(again.1.contains(r#""duplicate":true"#), "{}", again.1);

        for edge in [i64::MIN, i64::MAX, -1] {
            let headers = [
                ("x-roster-timestamp", edge.to_string()),
                ("x-roster-signature", sign(SECRET, edge, body)),
            ];
            let answer = http(port, "POST", "/v1/events/ping", &headers, body);
            let (status, text) = answer.expect("an answer, not a dropped connection");
            assert_eq!(status, 401, "{edge}: {text}");
            assert!(text.contains("too old or from the future"), "{text}");
        }

        let deadline = Instant::now() + Duration::from_secs(60);
        while server.executions().is_empty() {
            assert!(Instant::now() < deadline, "the delivery did not run");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(server.executions().len(), 1, "the replay did not run again");
    }
}

mod service {
    //! The same sandbox in `roster serve`: a sleeping worker ends at its limit, and the
    //! kill switch stops one that sleeps.

    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use roster_host::clock::ManualClock;
    use roster_host::config::HostConfig;
    use roster_host::service::{EventSubmission, Service};
    use test_programs_artifacts::LIMITS_HOSTILE;

    use super::{OPTIONAL, REQUESTED};
    use crate::serve::{T0, executions};

    /// A service with two sleepers: `short` under a 2 s limit, `long` under a minute.
    fn start(dir: &std::path::Path) -> Service {
        let requested: String = REQUESTED
            .lines()
            .map(|l| match l.strip_prefix('[') {
                Some(rest) => format!("[capabilities.{rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(
            dir.join("manifest.toml"),
            format!(
                "[plugin]\nid = \"test.sleeper\"\nname = \"sleeper\"\nversion = \"1.0.0\"\n\
                 domain = \"revenue\"\ndescription = \"sleeps\"\n{OPTIONAL}\n\
                 [owners]\nbusiness = \"b@example.com\"\ntechnical = \"t@example.com\"\n\
                 {requested}"
            ),
        )
        .unwrap();
        for (name, timeout) in [("short", 2000), ("long", 60_000)] {
            std::fs::write(
                dir.join(format!("grant-{name}.toml")),
                format!("[grant]\nplugin = \"test.sleeper\"\n[limits]\ntimeout-ms = {timeout}\n"),
            )
            .unwrap();
            std::fs::write(
                dir.join(format!("{name}.toml")),
                format!(
                    "[worker]\nname = \"{name}\"\ncomponent = \"{LIMITS_HOSTILE}\"\n\
                     manifest = \"manifest.toml\"\ngrant = \"grant-{name}.toml\"\n\
                     principal = \"svc\"\n\n[[triggers]]\non = \"event\"\nname = \"{name}\"\n"
                ),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join("roster.toml"),
            "data-dir = \"data\"\nexecutors = 2\nworkers = [\"short.toml\", \"long.toml\"]\n\
             [[principals]]\nid = \"svc\"\nkind = \"service\"\nsees = \"all\"\n",
        )
        .unwrap();
        let config = HostConfig::load(&dir.join("roster.toml")).unwrap();
        Service::start(config, Arc::new(ManualClock::new(T0))).unwrap()
    }

    fn sleep_event(service: &Service, name: &str) {
        service
            .accept_event(
                name,
                EventSubmission {
                    id: Some(format!("{name}-1")),
                    payload: Some(serde_json::json!({ "attack": "sleep" })),
                    ..EventSubmission::default()
                },
            )
            .unwrap();
    }

    fn status_of(service: &Service, worker: &str) -> String {
        executions(service)
            .into_iter()
            .find(|e| e.worker == worker)
            .map(|e| e.status)
            .unwrap_or_default()
    }

    #[test]
    fn a_sleeping_worker_ends_at_its_limit_and_at_the_kill_switch() {
        let dir = tempfile::tempdir().unwrap();
        let service = Arc::new(start(dir.path()));

        let started = Instant::now();
        sleep_event(&service, "short");
        assert!(service.wait_idle(Duration::from_secs(120)));
        let took = started.elapsed();
        println!("roster serve: a one-hour sleep under a 2 s limit ended after {took:?}");
        assert_eq!(status_of(&service, "short"), "timeout");
        assert!(took < Duration::from_secs(60), "{took:?}");

        sleep_event(&service, "long");
        let deadline = Instant::now() + Duration::from_secs(30);
        while service.queue_status().running < 1 {
            assert!(Instant::now() < deadline, "{:?}", service.queue_status());
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        let paused = Instant::now();
        service.pause("long", "ann", "stop the sleeper").unwrap();
        assert!(service.wait_idle(Duration::from_secs(30)));
        println!(
            "roster serve: the kill switch ended a sleeping worker within {:?}",
            paused.elapsed()
        );
        assert_eq!(status_of(&service, "long"), "interrupted");
        assert!(paused.elapsed() < Duration::from_secs(10));
        service.stop();
    }
}
