//! Crash recovery: `roster serve` is killed with SIGKILL at random moments under a steady
//! trigger load and restarted each time. An independent ledger in the test records every
//! trigger the service acknowledged, and the connector records every side effect it
//! received. At the end no acknowledged trigger is lost and no side effect happened twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_host::store::{RecordQuery, Store};
use roster_host::value::FieldValue;
use roster_host::webhook::sign;
use serde_json::json;

use crate::connector::Connector;
use crate::failures::Host;
use crate::serve_process::{SECRET, Server, free_port, http};

/// How many times the service is killed.
const KILLS: usize = 50;

/// A small deterministic generator for the kill moments (the seed is printed).
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Sends one signed event; whether the service acknowledged it (2xx).
fn submit(port: u16, id: &str, sink: &str) -> bool {
    let body = json!({ "id": id, "payload": { "url": sink, "ref": id } }).to_string();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig = sign(SECRET, ts, body.as_bytes());
    matches!(
        http(
            port,
            "POST",
            "/v1/events/order",
            &[
                ("x-roster-timestamp", ts.to_string()),
                ("x-roster-signature", sig),
            ],
            body.as_bytes(),
        ),
        Some((200..=299, _))
    )
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_trigger_and_repeats_no_side_effect() {
    let sink = Connector::start();
    let port = free_port();
    let host = Host::new(
        &sink,
        &format!(
            "listen = \"127.0.0.1:{port}\"\napi-token-env = \"ROSTER_TEST_TOKEN\"\nwebhook-secret-env = \"ROSTER_TEST_SECRET\"\nplan = \"enterprise\"\n"
        ),
        &[(
            "order",
            "[retry]\nmax-retries = 10\nintervals = [\"200ms\"]\n",
        )],
    );
    let sink_url = sink.url("/sink");

    // The steady load: one event every 15 ms; an event that was not acknowledged (the
    // service was down or died mid-request) is sent again with the same id until it is.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acknowledged, stop, sink_url) = (acknowledged.clone(), stop.clone(), sink_url.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let id = format!("o-{n}");
                while !submit(port, &id, &sink_url) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                acknowledged.lock().unwrap().insert(id);
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill schedule seed: {seed}");
    let mut random = Xorshift(seed);
    let started = Instant::now();
    for _ in 0..KILLS {
        let server = Server::start(&host.config, port);
        std::thread::sleep(Duration::from_millis(50 + random.below(600)));
        server.kill();
    }
    let killing = started.elapsed();

    // A last start; stop the load once it has been acknowledged a little longer, then let
    // the queue drain.
    let server = Server::start(&host.config, port);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, queue) = server.api("GET", "/v1/queue", "");
        if queue["stored"] == 0 && queue["status"]["running"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the queue did not drain: {queue}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();

    // The ledger against what happened.
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut effects: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let received = sink.received_on("/sink");
    for r in &received {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        effects
            .entry(body["ref"].as_str().unwrap().to_string())
            .or_default()
            .insert(
                r.key
                    .clone()
                    .expect("every request carries its idempotency key"),
            );
    }
    let delivered: usize = effects.values().map(BTreeSet::len).sum();
    let redeliveries = received.len() - delivered;
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !effects.contains_key(*id))
        .collect();
    let duplicate_requests: Vec<(&String, usize)> = effects
        .iter()
        .filter(|(_, keys)| keys.len() > 1)
        .map(|(id, keys)| (id, keys.len()))
        .collect();

    let store = Store::open(&host.config.with_file_name("data").join("roster.redb")).unwrap();
    let mut tasks: BTreeMap<String, usize> = BTreeMap::new();
    for t in store
        .query(&RecordQuery {
            object: "task".into(),
            filters: Vec::new(),
            owners: None,
            limit: usize::MAX,
        })
        .unwrap()
    {
        if let Some(FieldValue::Text(r)) = t.fields.get("related_to") {
            *tasks.entry(r.clone()).or_default() += 1;
        }
    }
    let duplicate_tasks: Vec<(&String, &usize)> = tasks.iter().filter(|(_, n)| **n > 1).collect();
    let missing_tasks = acknowledged
        .iter()
        .filter(|id| !tasks.contains_key(*id))
        .count();

    // The audit of what happened before each crash is intact: every entry decodes, in an
    // unbroken sequence, and every acknowledged trigger has a successful execution.
    let log = store.executions_after(0, usize::MAX).unwrap();
    assert!(log.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    let succeeded: BTreeSet<String> = log
        .iter()
        .filter(|e| e.status == "success")
        .map(|e| e.event_id.trim_end_matches("/order").to_string())
        .collect();
    let unexecuted = acknowledged
        .iter()
        .filter(|id| !succeeded.contains(*id))
        .count();
    let replayed = log
        .iter()
        .filter_map(|e| e.report.as_ref())
        .flat_map(|r| r["actions"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["replayed"] == json!(true))
        .count();
    let retried_executions = log.iter().filter(|e| e.attempt > 1).count();

    println!(
        "crash test: {KILLS} SIGKILLs in {:.1} s; triggers acknowledged {}; executions logged {}; \
         side effects received {} ({} distinct, {} redeliveries of an already-received key); \
         effects replayed from the journal {}; executions retried {}; \
         acknowledged triggers lost {}; duplicate side effects {} (connector) + {} (tasks); \
         missing tasks {}; acknowledged without a successful execution {}",
        killing.as_secs_f64(),
        acknowledged.len(),
        log.len(),
        received.len(),
        delivered,
        redeliveries,
        replayed,
        retried_executions,
        lost.len(),
        duplicate_requests.len(),
        duplicate_tasks.len(),
        missing_tasks,
        unexecuted,
    );
    assert!(acknowledged.len() > KILLS, "the load kept going");
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(duplicate_requests.is_empty(), "{duplicate_requests:?}");
    assert!(duplicate_tasks.is_empty(), "{duplicate_tasks:?}");
    assert_eq!(missing_tasks, 0);
    assert_eq!(unexecuted, 0);
}
