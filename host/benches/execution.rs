//! Run with: `cargo bench -p roster-host --bench execution`
//!
//! Measures one fresh-sandbox execution: a new store, instantiation from the worker's
//! `InstancePre`, one handler call that makes two host calls (a record read from the
//! embedded store and a log line), and dropping the store. Then, for a worker that sleeps
//! for an hour in WASI: how long after the kill switch is pulled its execution has ended,
//! and how long an execution under a 100 ms limit takes in all.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use roster_host::value::TriggerInput;
use roster_host::value::{FieldValue, Record};
use roster_host::{EventInput, Grant, Manifest, Mode, Runtime, RuntimeConfig, Status};

const MANIFEST: &str = r#"
[plugin]
id = "bench.two-calls"
name = "bench"
version = "1.0.0"
domain = "revenue"
description = "benchmark worker"
[owners]
business = "b@example.com"
technical = "t@example.com"
[capabilities.records.objects.lead]
read = ["*"]
"#;

const GRANT: &str = r#"
[grant]
plugin = "bench.two-calls"
[capabilities.records.objects.lead]
read = ["*"]
"#;

fn fresh_sandbox(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = Runtime::open(RuntimeConfig::new(dir.path())).expect("runtime");
    runtime
        .store()
        .put_records(&[Record {
            object: "lead".into(),
            id: "L-1".into(),
            owner: Some("ann".into()),
            fields: [("name".to_string(), FieldValue::Text("Bench Lead".into()))].into(),
        }])
        .expect("seed");
    let manifest = Manifest::parse(Path::new("worker.toml"), MANIFEST).expect("manifest");
    let grant = Grant::parse(Path::new("grant.toml"), GRANT).expect("grant");
    let bytes = std::fs::read(test_programs_artifacts::BENCH_TWO_CALLS).expect("component");
    let worker = runtime.load(&bytes, &manifest, &grant).expect("load");
    let event = EventInput {
        id: Some("bench".into()),
        trigger: TriggerInput::Manual,
        object: None,
        record_id: None,
        payload: None,
        occurred_at: Some(0),
    };
    let first = worker.execute(&event, Mode::Live).expect("execute");
    assert_eq!(first.status, Status::Success);
    assert_eq!(first.host_calls, 2);

    c.bench_function(
        "fresh sandbox: instantiate + handle (2 host calls) + drop",
        |b| b.iter(|| worker.execute(&event, Mode::Live).expect("execute")),
    );
}

const SLEEPER_MANIFEST: &str = r#"
[plugin]
id = "bench.sleeper"
name = "sleeper"
version = "1.0.0"
domain = "revenue"
description = "sleeps for an hour"
optional-capabilities = ["records", "notify", "http", "inference", "memory"]
[owners]
business = "b@example.com"
technical = "t@example.com"
[capabilities.records.objects.task]
create = true
[capabilities.notify]
channels = ["in-app"]
recipients = ["*"]
[capabilities.http]
allow = [{ url = "https://example.com" }]
[capabilities.inference]
models = ["model"]
[capabilities.memory]
quota-bytes = 1024
"#;

fn sleeping_worker(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = Runtime::open(RuntimeConfig::new(dir.path())).expect("runtime");
    let manifest = Manifest::parse(Path::new("worker.toml"), SLEEPER_MANIFEST).expect("manifest");
    let bytes = std::fs::read(test_programs_artifacts::LIMITS_HOSTILE).expect("component");
    let grant = |timeout_ms: u64| {
        let text =
            format!("[grant]\nplugin = \"bench.sleeper\"\n[limits]\ntimeout-ms = {timeout_ms}\n");
        Grant::parse(Path::new("grant.toml"), &text).expect("grant")
    };
    let event = EventInput {
        id: Some("bench".into()),
        trigger: TriggerInput::Manual,
        object: None,
        record_id: None,
        payload: Some(serde_json::json!({ "attack": "sleep" })),
        occurred_at: Some(0),
    };

    let halt = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(
        runtime
            .load_with_halt(&bytes, &manifest, &grant(60_000), halt.clone())
            .expect("load"),
    );
    let mut group = c.benchmark_group("sleeping worker");
    group.sample_size(20);
    group.bench_function("kill switch: pause -> sleeping execution ended", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                halt.store(false, Ordering::SeqCst);
                let (worker, event) = (killed.clone(), event.clone());
                let running = std::thread::spawn(move || worker.execute(&event, Mode::Live));
                // Into its sleep.
                std::thread::sleep(Duration::from_millis(20));
                let paused = Instant::now();
                halt.store(true, Ordering::SeqCst);
                let report = running.join().expect("join").expect("execute");
                total += paused.elapsed();
                assert_eq!(report.status, Status::Interrupted);
            }
            total
        })
    });
    let limited = runtime.load(&bytes, &manifest, &grant(100)).expect("load");
    group.bench_function(
        "one-hour sleep under a 100 ms limit: whole execution",
        |b| {
            b.iter(|| {
                let report = limited.execute(&event, Mode::Live).expect("execute");
                assert_eq!(report.status, Status::Timeout);
            })
        },
    );
    group.finish();
}

criterion_group!(benches, fresh_sandbox, sleeping_worker);
criterion_main!(benches);
