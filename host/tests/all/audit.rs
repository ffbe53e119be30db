//! The audit trail: what each entry holds, and `roster audit verify` on an intact chain and
//! on copies altered, with an entry deleted, reordered, truncated, or fully rewritten (caught
//! against a checkpoint kept elsewhere).

use std::path::{Path, PathBuf};
use std::process::Command;

use redb::{Database, ReadableTable, TableDefinition};
use roster_host::store::{AuditQuery, Checkpoint, GENESIS, Store};
use roster_host::value::{FieldValue, Record};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::connector::Connector;
use crate::failures::Host;
use crate::serve::idle;

const EXECUTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("executions");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("trigger_state");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_checkpoints");

/// A stopped host with `n` executions in its log; returns it and its store file.
fn history(connector: &Connector, n: usize) -> (Host, PathBuf) {
    let host = Host::new(connector, "", &[("auditee", "")]);
    let service = host.start();
    service
        .store()
        .put_records(&[Record {
            object: "task".into(),
            id: "T-1".into(),
            owner: None,
            fields: [("subject".to_string(), FieldValue::Text("x".into()))].into(),
        }])
        .unwrap();
    for i in 0..n {
        let deny = i == 1;
        service
            .submit_event(
                "auditee",
                roster_host::service::EventSubmission {
                    id: Some(format!("a-{i}")),
                    object: Some("task".into()),
                    record_id: Some("T-1".into()),
                    payload: Some(json!({ "url": connector.url("/ok"), "ref": format!("a-{i}"), "deny": deny })),
                },
            )
            .unwrap();
        idle(&service);
    }
    service.shutdown();
    let store = host.config.with_file_name("data").join("roster.redb");
    (host, store)
}

fn copy(store: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("roster.redb");
    std::fs::copy(store, &to).unwrap();
    std::fs::copy(
        store.with_extension("audit-key"),
        to.with_extension("audit-key"),
    )
    .unwrap();
    (dir, to)
}

fn verify(store: &Path, external: &[Checkpoint]) -> Result<(), String> {
    let store = Store::open(store).unwrap();
    store
        .verify_audit(external)
        .unwrap()
        .map(|_| ())
        .map_err(|p| p.to_string())
}

fn tamper(store: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::create(store).unwrap();
    let tx = db.begin_write().unwrap();
    f(&tx);
    tx.commit().unwrap();
}

fn entry(tx: &redb::WriteTransaction, seq: u64) -> serde_json::Value {
    let table = tx.open_table(EXECUTIONS).unwrap();
    let v = table.get(seq).unwrap().unwrap();
    serde_json::from_slice(v.value()).unwrap()
}

fn put(tx: &redb::WriteTransaction, seq: u64, value: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(value).unwrap();
    tx.open_table(EXECUTIONS)
        .unwrap()
        .insert(seq, bytes.as_slice())
        .unwrap();
    hex::encode(Sha256::digest(&bytes))
}

#[test]
fn every_execution_is_audited_with_its_context() {
    let connector = Connector::start();
    let (_host, store) = history(&connector, 3);
    let store = Store::open(&store).unwrap();
    let log = store.executions_after(0, usize::MAX).unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].prev_hash, GENESIS);
    for e in &log {
        assert_eq!(e.trigger, "event");
        assert_eq!(e.record.as_deref(), Some("task/T-1"));
        assert!(
            e.accepted_at > 0 && e.started_at >= e.accepted_at && e.finished_at >= e.started_at
        );
        let report = e.report.as_ref().unwrap();
        assert_eq!(report["worker"], "test.connector-client");
        assert_eq!(report["version"], "1.0.0");
        assert_eq!(report["principal"], "svc");
        assert!(
            report["grant_digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        assert!(
            report["component_digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        for action in report["actions"].as_array().unwrap() {
            for field in [
                "capability",
                "operation",
                "target",
                "input",
                "result",
                "duration_us",
            ] {
                assert!(action.get(field).is_some(), "{field} in {action}");
            }
        }
    }
    assert_eq!(log[0].status, "success");
    let actions = log[0].report.as_ref().unwrap()["actions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(actions[0]["operation"], "create");
    assert!(actions[0]["output"]["id"].is_string(), "outputs are kept");
    assert_eq!(actions[1]["output"]["status"], 200);
    // The denied attempt: the denial, the status and the error.
    assert_eq!(log[1].status, "failed");
    assert_eq!(log[1].failure.as_deref(), Some("denied"));
    let denied = &log[1].report.as_ref().unwrap()["actions"][0];
    assert_eq!(denied["result"], "denied");
    assert!(denied["reason"].as_str().unwrap().contains("not granted"));
    assert!(log[1].detail.as_deref().unwrap().starts_with("denied:"));
    assert_eq!(store.verify_audit(&[]).unwrap().unwrap().entries, 3);
}

#[test]
fn verify_names_the_first_bad_entry_of_an_altered_log() {
    let connector = Connector::start();
    let (host, store) = history(&connector, 8);

    // Intact, from the command line; a checkpoint is saved elsewhere.
    let roster = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--config")
            .arg(&host.config)
            .args(args)
            .output()
            .unwrap()
    };
    let saved = store.with_file_name("elsewhere.json");
    let out = roster(&["audit", "checkpoint", "--output", saved.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let external: Checkpoint =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(external.seq, 8);
    let out = roster(&["audit", "verify", "--checkpoint", saved.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("audit chain intact: entries 1..8"),
        "{stdout}"
    );

    // Altered: entry 3 (a success) says it was skipped.
    let (_d, altered) = copy(&store);
    tamper(&altered, |tx| {
        let mut e = entry(tx, 3);
        assert_eq!(e["status"], "success");
        e["status"] = json!("skipped");
        put(tx, 3, &e);
    });
    let err = verify(&altered, &[]).unwrap_err();
    assert!(err.starts_with("audit entry 3: altered"), "{err}");

    // Deleted: entry 4 is gone.
    let (_d, deleted) = copy(&store);
    tamper(&deleted, |tx| {
        tx.open_table(EXECUTIONS).unwrap().remove(4).unwrap();
    });
    let err = verify(&deleted, &[]).unwrap_err();
    assert!(err.starts_with("audit entry 4: missing"), "{err}");

    // Reordered: entries 5 and 6 swapped.
    let (_d, reordered) = copy(&store);
    tamper(&reordered, |tx| {
        let (five, six) = (entry(tx, 5), entry(tx, 6));
        put(tx, 5, &six);
        put(tx, 6, &five);
    });
    let err = verify(&reordered, &[]).unwrap_err();
    assert!(err.starts_with("audit entry 5: holds entry 6"), "{err}");

    // Truncated: the last two entries removed.
    let (_d, truncated) = copy(&store);
    tamper(&truncated, |tx| {
        let mut t = tx.open_table(EXECUTIONS).unwrap();
        t.remove(7).unwrap();
        t.remove(8).unwrap();
    });
    let err = verify(&truncated, &[]).unwrap_err();
    assert!(err.starts_with("audit entry 7: missing"), "{err}");
    assert!(err.contains("truncated"), "{err}");

    // Fully rewritten: entry 2 altered and every later link and the head recomputed, the
    // stored checkpoints removed. The chain alone looks consistent; the checkpoint held
    // elsewhere does not match it.
    let (_d, rewritten) = copy(&store);
    tamper(&rewritten, |tx| {
        let mut prev = String::new();
        for seq in 1..=8 {
            let mut e = entry(tx, seq);
            if seq == 2 {
                e["status"] = json!("skipped");
            }
            if seq > 1 {
                e["prev_hash"] = json!(prev);
            }
            prev = put(tx, seq, &e);
        }
        tx.open_table(STATE)
            .unwrap()
            .insert("audit\u{1f}head", format!("8 {prev}").as_bytes())
            .unwrap();
        let mut checkpoints = tx.open_table(CHECKPOINTS).unwrap();
        let keys: Vec<u64> = checkpoints
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        for k in keys {
            checkpoints.remove(k).unwrap();
        }
    });
    assert_eq!(verify(&rewritten, &[]), Ok(()), "consistent on its own");
    let err = verify(&rewritten, std::slice::from_ref(&external)).unwrap_err();
    assert!(err.starts_with("audit entry 8: history rewritten"), "{err}");
    // The host's own stored checkpoints catch it too when they are left in place.
    let (_d, rewritten_kept) = copy(&store);
    tamper(&rewritten_kept, |tx| {
        let mut e = entry(tx, 8);
        e["status"] = json!("skipped");
        let hash = put(tx, 8, &e);
        tx.open_table(STATE)
            .unwrap()
            .insert("audit\u{1f}head", format!("8 {hash}").as_bytes())
            .unwrap();
    });
    let err = verify(&rewritten_kept, &[]).unwrap_err();
    assert!(err.starts_with("audit entry 8: history rewritten"), "{err}");
    // A forged checkpoint (another key, or a changed hash) is refused.
    let mut forged = external.clone();
    forged.hash = "0".repeat(64);
    let err = verify(&store, &[forged]).unwrap_err();
    assert!(err.contains("signature does not match"), "{err}");

    // From the command line, a broken chain exits 1 naming the entry.
    std::fs::copy(&altered, &store).unwrap();
    let out = roster(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("audit chain BROKEN: audit entry 3: altered"),
        "{stderr}"
    );
}

#[test]
fn search_export_and_push_carry_the_same_entries_and_pruning_keeps_the_chain() {
    let connector = Connector::start();
    let host = Host::new(
        &connector,
        &format!(
            "[audit]\nretention-days = 1\nwebhooks = [{{ url = \"{}\" }}]\n",
            connector.url("/audit")
        ),
        &[("auditee", "[retry]\nmax-retries = 0\n")],
    );
    let service = host.start();
    for i in 0..4 {
        service
            .submit_event(
                "auditee",
                roster_host::service::EventSubmission {
                    id: Some(format!("s-{i}")),
                    payload: Some(json!({ "url": connector.url("/ok"), "ref": i, "deny": i == 3 })),
                    ..Default::default()
                },
            )
            .unwrap();
        idle(&service);
    }
    // Pushed to the webhook as they were written, without holding anything up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let pushed = loop {
        let pushed: Vec<serde_json::Value> = connector
            .received_on("/audit")
            .iter()
            .flat_map(|r| {
                let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                body["entries"].as_array().unwrap().clone()
            })
            .collect();
        if pushed.len() >= 4 || std::time::Instant::now() > deadline {
            break pushed;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let seqs: Vec<u64> = pushed.iter().map(|p| p["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "each entry pushed once, in order");

    // Search by worker, status, action type, principal and time.
    let store = service.store();
    let search = |q: AuditQuery| store.audit_search(&q, 100).unwrap().len();
    assert_eq!(
        search(AuditQuery {
            worker: Some("auditee".into()),
            ..Default::default()
        }),
        4
    );
    assert_eq!(
        search(AuditQuery {
            status: Some("failed".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        search(AuditQuery {
            action: Some("http".into()),
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        search(AuditQuery {
            action: Some("records.create".into()),
            ..Default::default()
        }),
        4
    );
    assert_eq!(
        search(AuditQuery {
            principal: Some("svc".into()),
            ..Default::default()
        }),
        4
    );
    assert_eq!(
        search(AuditQuery {
            principal: Some("ann".into()),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        search(AuditQuery {
            record: Some("lead/L-1".into()),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        search(AuditQuery {
            until: Some(crate::serve::T0),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        search(AuditQuery {
            since: Some(crate::serve::T0),
            ..Default::default()
        }),
        4
    );
    service.shutdown();

    // The export carries exactly what was pushed; the CSV has a row per entry.
    let roster = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--config")
            .arg(&host.config)
            .args(args)
            .output()
            .unwrap()
    };
    let jsonl = host.config.with_file_name("audit.jsonl");
    let out = roster(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        "--output",
        jsonl.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported, pushed);
    let csv_path = host.config.with_file_name("audit.csv");
    let out = roster(&[
        "audit",
        "export",
        "--format",
        "csv",
        "--output",
        csv_path.to_str().unwrap(),
        "--status",
        "failed",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv_text = std::fs::read_to_string(&csv_path).unwrap();
    let rows: Vec<&str> = csv_text.lines().collect();
    assert_eq!(rows.len(), 2, "{csv_text}");
    assert!(rows[0].starts_with("seq,hash,prev_hash,worker"));
    assert!(rows[1].contains(",failed,denied,"), "{}", rows[1]);
    let out = roster(&[
        "audit",
        "export",
        "--format",
        "xml",
        "--output",
        csv_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());

    // Two days later the first entries are past the one-day retention: pruned on start,
    // and what remains (with new entries) still verifies.
    host.clock.advance(2 * roster_host::clock::DAY_MS);
    let service = host.start();
    service
        .submit_event(
            "auditee",
            roster_host::service::EventSubmission {
                id: Some("s-later".into()),
                payload: Some(json!({ "url": connector.url("/ok"), "ref": "later" })),
                ..Default::default()
            },
        )
        .unwrap();
    idle(&service);
    let summary = service.store().verify_audit(&[]).unwrap().unwrap();
    assert_eq!(
        (summary.first, summary.last, summary.entries),
        (5, 5, 1),
        "{summary:?}"
    );
    assert_eq!(service.store().executions_after(0, 100).unwrap().len(), 1);
    service.shutdown();
}
