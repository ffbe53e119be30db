//! Loading: the component's actual imports decide what must be granted.

use roster_host::Error;
use roster_host::sandbox::gate::ActionResult;
use roster_host::sandbox::loader::Linked;
use roster_host::scope::CapabilityName;
use roster_host::{Runtime, RuntimeConfig, Status};
use serde_json::json;
use test_programs_artifacts::{BENCH_TWO_CALLS, CAPABILITY_PROBE, WORKER_WELL_BEHAVED};

use crate::common::*;

const PROBE_ALL: &str = "\
[records.objects.lead]
read = [\"*\"]
[notify]
channels = [\"email\"]
recipients = [\"*@example.com\"]
[http]
allow = [{ url = \"https://api.example.com\" }]
[memory]
[signals]
topics = [\"revenue.*\"]
";

#[test]
pub fn worker_well_behaved() {
    seed_lead("L-wb", "ann", &[("name", "Ada"), ("status", "new")]);
    let worker = load_granted(
        WORKER_WELL_BEHAVED,
        "test.well-behaved",
        WELL_BEHAVED_CAPS,
        "",
    );
    let first = run(&worker, &record_event("lead", "L-wb"));
    assert_eq!(first.status, Status::Success, "{first:#?}");
    assert_eq!(first.outcome.as_ref().unwrap().confidence, Some(0.9));
    let second = run(&worker, &record_event("lead", "L-wb"));
    assert!(
        second.outcome.as_ref().unwrap().summary.ends_with("run 2"),
        "memory persists between executions: {second:#?}"
    );
    let performed: Vec<String> = first
        .actions
        .iter()
        .filter(|a| matches!(a.result, ActionResult::Performed { .. }))
        .map(|a| format!("{}.{}", a.capability, a.operation))
        .collect();
    assert_eq!(
        performed,
        ["records.get", "records.update", "notify.send", "memory.set"]
    );
    let outbox = runtime().store().outbox().unwrap();
    assert!(
        outbox
            .iter()
            .any(|n| n.worker == "test.well-behaved" && n.recipients == ["ann"])
    );
    assert_eq!(first.logs[0].message, "reviewed L-wb (run 1)");
}

#[test]
pub fn bench_two_calls() {
    seed_lead("L-1", "ann", &[("name", "Bench Lead")]);
    let worker = load_granted(
        BENCH_TWO_CALLS,
        "test.bench",
        "[records.objects.lead]\nread = [\"*\"]\n",
        "",
    );
    let report = run(&worker, &payload_event(json!({})));
    assert_eq!(report.status, Status::Success, "{report:#?}");
    assert_eq!(report.host_calls, 2);
}

#[test]
fn a_component_importing_ungranted_capabilities_is_refused_naming_them() {
    let m = manifest("test.probe-refused", PROBE_ALL);
    let g = grant(
        "test.probe-refused",
        "[records.objects.lead]\nread = [\"*\"]\n[memory]\n",
    );
    let err = load(CAPABILITY_PROBE, &m, &g).unwrap_err();
    let Error::NotGranted { missing } = &err else {
        panic!("expected NotGranted, got {err}");
    };
    let text = err.to_string();
    for cap in ["`notify`", "`http`", "`signals`"] {
        assert!(text.contains(cap), "{text} should name {cap}");
    }
    assert_eq!(missing.len(), 3, "{missing:?}");
    assert!(text.contains("roster:http/outbound@0.1.0"), "{text}");
    assert_host_still_healthy("refused-import");
}

#[test]
fn an_optional_capability_is_linked_to_a_denying_stub() {
    let m = manifest_with(
        "test.probe-optional",
        "optional-capabilities = [\"http\", \"notify\", \"signals\"]",
        PROBE_ALL,
    );
    let g = grant(
        "test.probe-optional",
        "[records.objects.lead]\nread = [\"*\"]\n[memory]\n",
    );
    let worker = load(CAPABILITY_PROBE, &m, &g).unwrap();
    assert!(
        worker
            .linked
            .contains(&(CapabilityName::Http, Linked::DeniedStub))
    );
    assert!(
        worker
            .linked
            .contains(&(CapabilityName::Records, Linked::Granted))
    );
    let report = run(
        &worker,
        &payload_event(json!({"calls": [
            {"op": "http", "url": "https://api.example.com/v1"},
            {"op": "emit", "topic": "revenue.won", "payload": "{}"},
        ]})),
    );
    let lines = lines(&report);
    assert_eq!(lines[0], "denied capability `http` is not granted");
    assert_eq!(lines[1], "denied capability `signals` is not granted");
    assert_eq!(report.denials().count(), 2);
}

#[test]
fn malformed_components_and_mismatched_grants_are_refused() {
    let m = manifest("test.bad", "[memory]\n");
    let g = grant("test.bad", "[memory]\n");
    for bytes in [
        &b""[..],
        b"\0asm\x01\0\0\0",
        b"garbage that is not wasm",
        &std::fs::read(CAPABILITY_PROBE).unwrap()[..100],
    ] {
        let err = runtime().load(bytes, &m, &g).unwrap_err();
        assert!(matches!(err, Error::InvalidComponent { .. }), "{err}");
    }
    let other = grant("test.someone-else", "[memory]\n");
    let err = load(WORKER_WELL_BEHAVED, &m, &other).unwrap_err();
    assert!(err.to_string().contains("not `test.bad`"), "{err}");
    let wider = grant("test.bad", "[memory]\n[signals]\ntopics = [\"*\"]\n");
    let err = load(WORKER_WELL_BEHAVED, &m, &wider).unwrap_err();
    assert!(
        err.to_string()
            .contains("`signals` is granted but not requested"),
        "{err}"
    );
}

#[test]
fn compiled_components_are_cached_on_disk_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(WORKER_WELL_BEHAVED).unwrap();
    let m = manifest("test.cached", WELL_BEHAVED_CAPS);
    let g = grant("test.cached", WELL_BEHAVED_CAPS);
    let cache = dir.path().join("cache");
    // The single cached file and its modification time.
    let cached = || {
        let entries: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(entries.len(), 1, "one compiled component in the cache");
        entries[0].metadata().unwrap().modified().unwrap()
    };
    {
        let first = Runtime::open(RuntimeConfig::new(dir.path())).unwrap();
        first.load(&bytes, &m, &g).unwrap();
    }
    let written = cached();
    let second = Runtime::open(RuntimeConfig::new(dir.path())).unwrap();
    let worker = second.load(&bytes, &m, &g).unwrap();
    assert_eq!(
        written,
        cached(),
        "the restart reused the compiled file instead of rewriting it"
    );
    second
        .store()
        .put_records(&[roster_host::value::Record {
            object: "lead".into(),
            id: "C-1".into(),
            owner: None,
            fields: Default::default(),
        }])
        .unwrap();
    let report = worker
        .execute(&record_event("lead", "C-1"), roster_host::Mode::Live)
        .unwrap();
    assert_eq!(report.status, Status::Success, "{report:#?}");
}

#[test]
fn dry_run_records_side_effects_without_performing_them() {
    seed_lead("L-dry", "ann", &[("name", "Dry"), ("status", "new")]);
    let worker = load_granted(WORKER_WELL_BEHAVED, "test.dry", WELL_BEHAVED_CAPS, "");
    let report = worker
        .execute(&record_event("lead", "L-dry"), roster_host::Mode::DryRun)
        .unwrap();
    assert_eq!(report.status, Status::Success, "{report:#?}");
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.result == ActionResult::DryRun)
    );
    let stored = runtime()
        .store()
        .get_record("lead", "L-dry")
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.fields["status"],
        roster_host::value::FieldValue::Text("new".into())
    );
}

#[test]
fn events_about_missing_records_are_refused_before_anything_runs() {
    let worker = load_granted(WORKER_WELL_BEHAVED, "test.missing", WELL_BEHAVED_CAPS, "");
    let err = worker
        .execute(
            &record_event("lead", "no-such-lead"),
            roster_host::Mode::Live,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("lead/no-such-lead does not exist"),
        "{err}"
    );
}
