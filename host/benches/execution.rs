//! Run with: `cargo bench -p roster-host --bench execution`
//!
//! Measures one fresh-sandbox execution: a new store, instantiation from the worker's
//! `InstancePre`, one handler call that makes two host calls (a record read from the
//! embedded store and a log line), and dropping the store.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use roster_host::event::TriggerInput;
use roster_host::store::{FieldValue, Record};
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

criterion_group!(benches, fresh_sandbox);
criterion_main!(benches);
