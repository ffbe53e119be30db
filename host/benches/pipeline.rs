//! Run with: `cargo bench -p roster-host --bench pipeline` (`-- --records N` to change the
//! record-store size, 1,000,000 by default; `-- --only accept|executions|records` for one
//! part).
//!
//! A load generator for the pipeline, printing sustained rates on this machine:
//! 1. triggers accepted per second, durably (each accepted trigger is fsynced before the
//!    call returns; concurrent submitters share commits);
//! 2. executions per second end to end for a trivial worker (dispatch, conditions, a fresh
//!    sandbox, the execution log written with the queue item removed);
//! 3. the record store at N records: import rate and the time of the queries triggers and
//!    workers make (by field, by owner, no activity for N days, dates within N days).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roster_host::clock::{Clock, DAY_MS, SystemClock};
use roster_host::config::HostConfig;
use roster_host::filter::{Filter, Op};
use roster_host::service::{EventSubmission, Service};
use roster_host::store::{RecordQuery, Store};
use roster_host::value::{FieldValue, Record};

const MANIFEST: &str = "[plugin]\nid = \"bench.recorder\"\nname = \"Recorder\"\nversion = \"1.0.0\"\ndomain = \"revenue\"\ndescription = \"trivial worker\"\n[owners]\nbusiness = \"b\"\ntechnical = \"t\"\n";
const GRANT: &str = "[grant]\nplugin = \"bench.recorder\"\n";

fn config(dir: &Path, executions_per_hour: u32) -> HostConfig {
    std::fs::write(dir.join("manifest.toml"), MANIFEST).expect("write");
    std::fs::write(dir.join("grant.toml"), GRANT).expect("write");
    std::fs::write(
        dir.join("w.toml"),
        format!(
            "[worker]\nname = \"w\"\ncomponent = \"{}\"\nmanifest = \"manifest.toml\"\ngrant = \"grant.toml\"\n[[triggers]]\non = \"event\"\nname = \"ping\"\n",
            test_programs_artifacts::SERVE_RECORDER
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("roster.toml"),
        format!(
            "data-dir = \"data\"\nplan = \"bench\"\nworkers = [\"w.toml\"]\n[plans.bench]\nexecutions-per-hour = {executions_per_hour}\nactions-per-execution = 5\n"
        ),
    )
    .expect("write");
    HostConfig::load(&dir.join("roster.toml")).expect("config")
}

fn accept_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A cap of one execution keeps the executors out of the way: this measures acceptance.
    let service =
        Arc::new(Service::start(config(dir.path(), 1), Arc::new(SystemClock)).expect("start"));
    let threads = 16;
    let run_for = Duration::from_secs(5);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let service = service.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while started.elapsed() < run_for {
                    service
                        .submit_event(
                            "ping",
                            EventSubmission {
                                id: Some(format!("{t}-{n}")),
                                ..Default::default()
                            },
                        )
                        .expect("accept");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("join")).sum();
    let secs = started.elapsed().as_secs_f64();
    let stored = service.store().queue_len().expect("len");
    println!(
        "triggers accepted (durable, {threads} concurrent submitters): {total} in {secs:.1} s = {:.0}/s; {stored} in the queue",
        total as f64 / secs
    );
}

fn execution_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 20_000u64;
    // Fill the queue first, then start the service and time the drain.
    {
        let service = Service::start(config(dir.path(), 1), Arc::new(SystemClock)).expect("start");
        let batch: Vec<_> = (0..n).collect();
        for chunk in batch.chunks(1000) {
            for i in chunk {
                service
                    .submit_event(
                        "ping",
                        EventSubmission {
                            id: Some(format!("e{i}")),
                            ..Default::default()
                        },
                    )
                    .expect("accept");
            }
        }
        service.shutdown();
    }
    let config = config(dir.path(), 10_000_000);
    let executors = config.executors;
    let started = Instant::now();
    let service = Service::start(config, Arc::new(SystemClock)).expect("start");
    while service.store().queue_len().expect("len") > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let done = service
        .store()
        .executions_after(0, usize::MAX)
        .expect("log")
        .len();
    println!(
        "executions end to end (trivial worker, {executors} executors): {done} in {secs:.1} s = {:.0}/s",
        done as f64 / secs
    );
}

fn record_store(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("records.redb")).expect("open");
    let now = SystemClock.now_ms();
    let owners = ["ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"];
    let statuses = ["new", "open", "working", "qualified", "closed"];
    let started = Instant::now();
    let batch = 10_000;
    for start in (0..n).step_by(batch) {
        let records: Vec<Record> = (start..(start + batch).min(n))
            .map(|i| {
                let mut fields = BTreeMap::new();
                fields.insert("name".to_string(), FieldValue::Text(format!("Lead {i}")));
                fields.insert(
                    "email".to_string(),
                    FieldValue::Text(format!("lead{i}@company{}.example", i % 5000)),
                );
                fields.insert(
                    "status".to_string(),
                    FieldValue::Text(statuses[i % statuses.len()].into()),
                );
                fields.insert(
                    "employees".to_string(),
                    FieldValue::Integer((i % 5000) as i64),
                );
                fields.insert(
                    "source".to_string(),
                    FieldValue::Text(["web", "referral", "event"][i % 3].into()),
                );
                // Last activity spread over the past 400 days.
                fields.insert(
                    "last_activity_at".to_string(),
                    FieldValue::Timestamp {
                        timestamp: now - ((i * 7919) % 400) as i64 * DAY_MS,
                    },
                );
                Record {
                    object: "lead".into(),
                    id: format!("L{i:07}"),
                    owner: Some(owners[i % owners.len()].into()),
                    fields,
                }
            })
            .collect();
        store.import_records(records, "bench").expect("import");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "record store: imported {n} leads in {secs:.1} s = {:.0} records/s",
        n as f64 / secs
    );

    let time = |label: &str, q: RecordQuery| {
        // Warm once, then take the median of five runs.
        let _ = store.query(&q).expect("query");
        let mut runs: Vec<(f64, usize)> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let found = store.query(&q).expect("query").len();
                (t.elapsed().as_secs_f64() * 1000.0, found)
            })
            .collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        println!(
            "  {label}: {} records in {:.2} ms (median of 5)",
            runs[2].1, runs[2].0
        );
    };
    let f = |field: &str, op: Op, value: FieldValue| Filter {
        field: field.into(),
        op,
        value,
    };
    let q = |filters: Vec<Filter>, owners: Option<Vec<String>>, limit: usize| RecordQuery {
        object: "lead".into(),
        filters,
        owners,
        limit,
    };
    time(
        "by id-like field (email equals)",
        q(
            vec![f(
                "email",
                Op::Equals,
                FieldValue::Text("lead123456@company3456.example".into()),
            )],
            None,
            100,
        ),
    );
    time(
        "by field (status = qualified, first 100)",
        q(
            vec![f(
                "status",
                Op::Equals,
                FieldValue::Text("qualified".into()),
            )],
            None,
            100,
        ),
    );
    time(
        "by owner (ann, first 100)",
        q(vec![], Some(vec!["ann".into()]), 100),
    );
    time(
        "by team (3 owners) + status, first 100",
        q(
            vec![f("status", Op::Equals, FieldValue::Text("open".into()))],
            Some(vec!["ann".into(), "bob".into(), "cat".into()]),
            100,
        ),
    );
    time(
        "no activity for 395 days (all matches)",
        q(
            vec![f(
                "last_activity_at",
                Op::LessThan,
                FieldValue::Timestamp {
                    timestamp: now - 395 * DAY_MS,
                },
            )],
            None,
            10_000,
        ),
    );
    time(
        "activity within the last day (dates within N days)",
        q(
            vec![
                f(
                    "last_activity_at",
                    Op::GreaterThan,
                    FieldValue::Timestamp {
                        timestamp: now - DAY_MS,
                    },
                ),
                f(
                    "last_activity_at",
                    Op::LessThan,
                    FieldValue::Timestamp {
                        timestamp: now + DAY_MS,
                    },
                ),
            ],
            None,
            10_000,
        ),
    );
    time(
        "indexed range: employees > 4990 (all matches)",
        q(
            vec![f("employees", Op::GreaterThan, FieldValue::Integer(4990))],
            None,
            10_000,
        ),
    );
    time(
        "unindexed: name ends with \"99999\" (full scan)",
        q(
            vec![f("name", Op::EndsWith, FieldValue::Text("99999".into()))],
            None,
            10,
        ),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args
        .iter()
        .position(|a| a == "--records")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    if only.is_none_or(|o| o == "accept") {
        accept_rate();
    }
    if only.is_none_or(|o| o == "executions") {
        execution_rate();
    }
    if only.is_none_or(|o| o == "records") {
        record_store(n);
    }
}
