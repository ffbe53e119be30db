//! Shared set-up: one runtime (one engine) for all tests, and builders for manifests,
//! grants and events.

use std::path::Path;
use std::sync::OnceLock;

use roster_host::sandbox::limits::Limits;
use roster_host::value::{FieldValue, Record};
use roster_host::{
    EventInput, ExecutionReport, Grant, LoadedWorker, Manifest, Mode, Runtime, RuntimeConfig,
    Status,
};

/// The runtime every test shares. Its maximum fuel is high so that tests can show a
/// timeout that fuel does not pre-empt.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<(tempfile::TempDir, Runtime)> = OnceLock::new();
    &RUNTIME
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let mut config = RuntimeConfig::new(dir.path());
            config.max_limits = Limits {
                fuel: u64::MAX / 4,
                timeout_ms: 60_000,
                ..Limits::default()
            };
            let runtime = Runtime::open(config).unwrap();
            (dir, runtime)
        })
        .1
}

/// A manifest for plugin `id` requesting `capabilities` (TOML under `[capabilities]`), with
/// extra `[plugin]` lines.
pub fn manifest_with(id: &str, plugin_extra: &str, capabilities: &str) -> Manifest {
    let text = format!(
        "[plugin]\nid = \"{id}\"\nname = \"{id}\"\nversion = \"1.0.0\"\ndomain = \"revenue\"\n\
         description = \"test worker\"\n{plugin_extra}\n\
         [owners]\nbusiness = \"owner@example.com\"\ntechnical = \"dev@example.com\"\n\n{}",
        prefixed(capabilities)
    );
    Manifest::parse(Path::new("worker.toml"), &text).unwrap()
}

/// A manifest for plugin `id` requesting `capabilities`.
pub fn manifest(id: &str, capabilities: &str) -> Manifest {
    manifest_with(id, "", capabilities)
}

/// A grant for plugin `id` of `capabilities`, with `limits` (TOML under `[limits]`).
pub fn grant_with_limits(id: &str, capabilities: &str, limits: &str) -> Grant {
    let text = format!(
        "[grant]\nplugin = \"{id}\"\nprincipal = \"svc-test\"\n\n{}\n[limits]\n{limits}\n",
        prefixed(capabilities)
    );
    Grant::parse(Path::new("grant.toml"), &text).unwrap()
}

/// A grant for plugin `id` of `capabilities`.
pub fn grant(id: &str, capabilities: &str) -> Grant {
    grant_with_limits(id, capabilities, "")
}

/// Turns `[records.objects.lead]`-style tables into `[capabilities.records.objects.lead]`.
fn prefixed(capabilities: &str) -> String {
    capabilities
        .lines()
        .map(|l| match l.trim_start().strip_prefix('[') {
            Some(rest) => format!("[capabilities.{rest}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads a test program.
pub fn load(
    program: &str,
    manifest: &Manifest,
    grant: &Grant,
) -> Result<LoadedWorker, roster_host::Error> {
    let bytes = std::fs::read(program).unwrap();
    runtime().load(&bytes, manifest, grant)
}

/// Loads a test program whose grant equals its request.
pub fn load_granted(program: &str, id: &str, capabilities: &str, limits: &str) -> LoadedWorker {
    load(
        program,
        &manifest(id, capabilities),
        &grant_with_limits(id, capabilities, limits),
    )
    .unwrap()
}

/// An event about one record.
pub fn record_event(object: &str, id: &str) -> EventInput {
    EventInput {
        id: None,
        trigger: roster_host::value::TriggerInput::RecordCreated,
        object: Some(object.into()),
        record_id: Some(id.into()),
        payload: None,
        occurred_at: None,
    }
}

/// A manual event with a JSON payload.
pub fn payload_event(payload: serde_json::Value) -> EventInput {
    EventInput {
        id: None,
        trigger: roster_host::value::TriggerInput::Manual,
        object: None,
        record_id: None,
        payload: Some(payload),
        occurred_at: None,
    }
}

/// Runs an event live.
pub fn run(worker: &LoadedWorker, event: &EventInput) -> ExecutionReport {
    worker.execute(event, Mode::Live).unwrap()
}

/// Stores a lead with text fields.
pub fn seed_lead(id: &str, owner: &str, fields: &[(&str, &str)]) {
    runtime()
        .store()
        .put_records(&[Record {
            object: "lead".into(),
            id: id.into(),
            owner: Some(owner.into()),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), FieldValue::Text(v.to_string())))
                .collect(),
        }])
        .unwrap();
}

/// The capabilities the well-behaved worker needs.
pub const WELL_BEHAVED_CAPS: &str = "\
[records.objects.lead]
read = [\"name\", \"status\"]
write = [\"status\"]
[notify]
channels = [\"in-app\"]
recipients = [\"*\"]
[memory]
quota-bytes = 1024
";

/// Runs the well-behaved worker on a fresh lead and checks that it succeeded: used after
/// every failure to show the host carries on.
pub fn assert_host_still_healthy(tag: &str) {
    let id = format!("healthy-{tag}");
    seed_lead(&id, "ann", &[("name", "Healthy Lead"), ("status", "new")]);
    let worker = load_granted(
        test_programs_artifacts::WORKER_WELL_BEHAVED,
        &format!("test.healthy-{tag}"),
        WELL_BEHAVED_CAPS,
        "",
    );
    let report = run(&worker, &record_event("lead", &id));
    assert_eq!(report.status, Status::Success, "{report:#?}");
    let stored = runtime().store().get_record("lead", &id).unwrap().unwrap();
    assert_eq!(stored.fields["status"], FieldValue::Text("reviewed".into()));
}

/// The outcome summary's lines (the probe writes one line per call).
pub fn lines(report: &ExecutionReport) -> Vec<String> {
    assert_eq!(report.status, Status::Success, "{report:#?}");
    report
        .outcome
        .as_ref()
        .unwrap()
        .summary
        .lines()
        .map(str::to_string)
        .collect()
}
