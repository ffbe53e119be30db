//! Run with: `cargo bench -p roster-host --bench dashboard` (`-- --entries N` to change the
//! size of the execution log, 200,000 by default).
//!
//! What the console's dashboard costs as the execution log grows: the totals of 30 days,
//! read from the statistics rows the store keeps per hour, worker and status, against the
//! same totals worked out by reading the whole log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use roster_host::clock::{DAY_MS, ManualClock};
use roster_host::schema::Schema;
use roster_host::store::{AuditQuery, ExecutionEntry, Finish, Store, Tally};

const WORKERS: usize = 20;
const DAYS: i64 = 30;
const STATUSES: [&str; 5] = [
    "success",
    "success",
    "skipped",
    "awaiting-approval",
    "failed",
];

fn entries() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--entries")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000)
}

/// An execution entry, shaped as the executor writes them.
fn entry(i: u64, start: i64, span: i64) -> ExecutionEntry {
    let at = start + (i as i64 * 7_919) % span;
    ExecutionEntry {
        seq: 0,
        worker: format!("worker-{}", i as usize % WORKERS),
        trigger: "record-updated lead".into(),
        queue_seq: 0,
        event_id: format!("e-{i}"),
        record: Some(format!("lead/L-{}", i % 5000)),
        accepted_at: at,
        started_at: at,
        finished_at: at + (i % 40) as i64,
        status: STATUSES[(i % 5) as usize].to_string(),
        conditions: Vec::new(),
        detail: None,
        report: Some(serde_json::json!({
            "fuel_consumed": 120_000 + i % 1000,
            "actions": [
                {"kind": "read", "result": "performed", "capability": "records", "operation": "get", "target": "lead/L-1"},
                {"kind": "effect", "result": if i % 5 == 3 { "held" } else { "performed" }, "capability": "records", "operation": "update", "target": "lead/L-1"}
            ]
        })),
        attempt: 1,
        failure: None,
        retry_at: None,
        escalation: None,
        cause: None,
        request_id: None,
        trace_id: None,
        prev_hash: String::new(),
    }
}

fn main() {
    let n = entries();
    let dir = tempfile::tempdir().expect("tempdir");
    let start = 1_796_000_000_000 / DAY_MS * DAY_MS;
    let clock = Arc::new(ManualClock::new(start + DAYS * DAY_MS));
    let store =
        Store::open_with(&dir.path().join("db.redb"), Schema::standard(), clock).expect("store");
    println!("writing {n} executions over {DAYS} days for {WORKERS} workers ...");
    let written = Instant::now();
    let threads = 16u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut i = t;
                while i < n {
                    let finish = Finish {
                        entry: Some(entry(i, start, DAYS * DAY_MS)),
                        ..Finish::default()
                    };
                    store.finish(finish).expect("finish");
                    i += threads;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer");
    }
    println!("  written in {:.1} s", written.elapsed().as_secs_f64());

    let to = start + DAYS * DAY_MS;
    let rounds = 20;
    // From the hourly rows.
    let t = Instant::now();
    let mut from_rows = Tally::default();
    for _ in 0..rounds {
        from_rows = Tally::default();
        for row in store.execution_stats(start, to - 1).expect("stats") {
            if row.status != "governance" {
                from_rows.add(&row.tally);
            }
        }
    }
    let rows_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    let rows = store.execution_stats(start, to - 1).expect("stats").len();

    // From the whole log.
    let t = Instant::now();
    let mut from_log = Tally::default();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let query = AuditQuery {
        since: Some(start),
        until: Some(to),
        ..AuditQuery::default()
    };
    store
        .audit_scan(&query, |e, _, _| {
            if e.status != "governance" {
                from_log.add(&Tally::of(e));
                *by_status.entry(e.status.clone()).or_default() += 1;
            }
            true
        })
        .expect("scan");
    let log_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(from_rows, from_log, "the rows add up to the log");
    println!(
        "30-day totals of {} executions: {rows_ms:.2} ms from {rows} hourly rows, {log_ms:.0} ms reading the log ({:.0}x)",
        from_log.entries,
        log_ms / rows_ms
    );
    println!("  by status: {by_status:?}");
}
