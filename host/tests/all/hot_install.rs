//! Installing, upgrading and removing a worker in a running service through the API,
//! from a registry on loopback, while events arrive all the time: nothing accepted is
//! lost or run twice, and each execution records the version that ran it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use roster_host::clock::SystemClock;
use roster_host::config::HostConfig;
use roster_host::service::{EventSubmission, Service};
use test_programs_artifacts::SERVE_RECORDER;

use crate::access::{Api, person};
use crate::install::Registry;

const TOKEN: &str = "push-token-for-tests";

fn manifest(version: &str, more: &str) -> String {
    format!(
        r#"[plugin]
id = "test.recorder"
name = "Recorder"
version = "{version}"
domain = "revenue"
description = "reports what started it"
[owners]
business = "b@example.com"
technical = "t@example.com"
[capabilities.records.objects.lead]
read = ["*"]
{more}
[[triggers]]
on = "event"
name = "ping"
"#
    )
}

/// Signs and pushes the recorder under `manifest` as `roster/recorder:<version>`.
fn publish(
    registry: &Registry,
    key: &ed25519_dalek::SigningKey,
    dir: &Path,
    version: &str,
    more: &str,
) -> String {
    let text = manifest(version, more);
    let path = dir.join(format!("worker-{version}.toml"));
    std::fs::write(&path, &text).unwrap();
    let reference = registry.at(&format!("roster/recorder:{version}"));
    let component = std::fs::read(SERVE_RECORDER).unwrap();
    roster_host::distribution::publish::prepare(
        &path,
        &text,
        component,
        Some(key),
        &reference,
        "2026-12-01T00:00:00Z",
    )
    .unwrap()
    .push(&reference, Some(TOKEN.into()))
    .unwrap();
    reference
}

#[test]
fn a_worker_is_installed_upgraded_and_removed_while_events_flow() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let v1 = publish(&registry, &key, work.path(), "1.0.0", "");
    let v2 = publish(&registry, &key, work.path(), "1.1.0", "");
    let v3 = publish(
        &registry,
        &key,
        work.path(),
        "1.2.0",
        "[capabilities.notify]\nchannels = [\"in-app\"]\nrecipients = [\"*\"]\n",
    );

    let mut config = HostConfig::defaults();
    config.data_dir = work.path().join("data");
    config.trusted_keys = vec![key.verifying_key()];
    config.registry_sources = vec![format!("127.0.0.1:{}", registry.port)];
    let service = Arc::new(Service::start(config, Arc::new(SystemClock)).unwrap());
    let admin = person(&service, "admin@example.com", &["admin"]);
    let viewer = person(&service, "viewer@example.com", &["viewer"]);
    let api = Api::start(service.clone());
    let post = |token: &str, body: serde_json::Value| {
        api.call(Some(token), "POST", "/v1/installations", &body.to_string())
    };

    // Events arrive all the time; each accepted one is remembered by its queue position.
    let flowing = Arc::new(AtomicBool::new(true));
    let sender = {
        let (service, flowing) = (service.clone(), flowing.clone());
        std::thread::spawn(move || {
            let mut accepted = Vec::new();
            let mut n = 0u64;
            while flowing.load(Ordering::SeqCst) {
                n += 1;
                let seqs = service
                    .submit_event(
                        "ping",
                        EventSubmission {
                            id: Some(format!("e{n}")),
                            ..EventSubmission::default()
                        },
                    )
                    .unwrap();
                accepted.extend(seqs);
                std::thread::sleep(Duration::from_millis(2));
            }
            accepted
        })
    };
    let executions = |service: &Service| -> Vec<roster_host::store::ExecutionEntry> {
        service
            .store()
            .executions_since(0)
            .unwrap()
            .into_iter()
            .filter(|e| e.worker == "recorder")
            .collect()
    };
    let settle = |n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while executions(&service).len() < n {
            assert!(std::time::Instant::now() < deadline, "no executions");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // The review changes nothing; a viewer may not even ask for it.
    let review =
        serde_json::json!({ "reference": v1, "grant_requested": true, "principal": "svc" });
    let (status, body) = post(&viewer, review.clone());
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(&admin, review.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], false);
    assert_eq!(body["change"], "install");
    assert_eq!(body["review"]["version"], "1.0.0");
    assert!(body["review"]["signer"].is_string(), "{body}");
    let (_, listed) = api.call(Some(&admin), "GET", "/v1/installations", "");
    assert_eq!(listed["installations"], serde_json::json!([]), "{listed}");
    // Without a grant it is not installed.
    let (status, body) = post(
        &admin,
        serde_json::json!({ "reference": v1, "apply": true }),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "install-refused");
    // A registry this host does not install from is refused before anything is pulled.
    let (status, body) = post(
        &admin,
        serde_json::json!({ "reference": "registry.example.com/roster/recorder:1.0.0" }),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("[registry] sources"),
        "{body}"
    );

    // Install: live at once, with its trigger.
    let mut apply = review.clone();
    apply["apply"] = true.into();
    let (status, body) = post(&admin, apply);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], true);
    settle(20);

    // Upgrade with the same grant: taken over between executions.
    let now = || roster_host::clock::Clock::now_ms(&SystemClock);
    let asked_v2 = now();
    let (status, body) = post(
        &admin,
        serde_json::json!({ "reference": v2, "apply": true }),
    );
    let done_v2 = now();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["change"], "upgrade");
    let after_v2 = executions(&service).len();
    settle(after_v2 + 20);

    // An upgrade asking for more needs a new grant; until then 1.1.0 runs on.
    let (status, body) = post(
        &admin,
        serde_json::json!({ "reference": v3, "apply": true }),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("notify"),
        "{body}"
    );
    let (_, listed) = api.call(Some(&admin), "GET", "/v1/installations", "");
    assert_eq!(listed["installations"][0]["version"], "1.1.0", "{listed}");
    let asked_v3 = now();
    let (status, body) = post(
        &admin,
        serde_json::json!({ "reference": v3, "grant_requested": true, "apply": true }),
    );
    let done_v3 = now();
    assert_eq!(status, 200, "{body}");
    let after_v3 = executions(&service).len();
    settle(after_v3 + 20);

    // Removal: its trigger stops, what was queued runs, its audit stays.
    let (status, body) = api.call(
        Some(&admin),
        "DELETE",
        "/v1/installations/recorder?reason=retired",
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["left-queued"], 0, "{body}");
    std::thread::sleep(Duration::from_millis(200));
    flowing.store(false, Ordering::SeqCst);
    let accepted = sender.join().unwrap();
    assert!(service.wait_idle(Duration::from_secs(60)));
    let (_, listed) = api.call(Some(&admin), "GET", "/v1/installations", "");
    assert_eq!(listed["installations"], serde_json::json!([]), "{listed}");

    // Every accepted trigger ran exactly once, on one version, in version order.
    let ran = executions(&service);
    let mut by_item: BTreeMap<u64, usize> = BTreeMap::new();
    for e in &ran {
        *by_item.entry(e.queue_seq).or_default() += 1;
    }
    let twice: Vec<_> = by_item.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "executed twice: {twice:?}");
    let lost: Vec<_> = accepted
        .iter()
        .filter(|s| !by_item.contains_key(s))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} accepted triggers lost",
        lost.len(),
        accepted.len()
    );
    assert_eq!(ran.len(), accepted.len());
    let versions: Vec<String> = ran
        .iter()
        .map(|e| {
            assert_eq!(e.status, "success", "{e:?}");
            e.report.as_ref().unwrap()["version"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        assert!(versions.iter().any(|x| x == v), "no execution on {v}");
    }
    // Executions that started before an upgrade was asked for ran the old version; those
    // that started after it was answered, the new one.
    for (e, v) in ran.iter().zip(&versions) {
        let expected: &[&str] = if e.started_at < asked_v2 {
            &["1.0.0"]
        } else if e.started_at <= done_v2 {
            &["1.0.0", "1.1.0"]
        } else if e.started_at < asked_v3 {
            &["1.1.0"]
        } else if e.started_at <= done_v3 {
            &["1.1.0", "1.2.0"]
        } else {
            &["1.2.0"]
        };
        assert!(
            expected.contains(&v.as_str()),
            "execution {} started at {} ran {v}",
            e.seq,
            e.started_at
        );
    }

    let count = |v: &str| versions.iter().filter(|x| *x == v).count();
    eprintln!(
        "accepted {} triggers, ran {} once each: 1.0.0 {}, 1.1.0 {}, 1.2.0 {}",
        accepted.len(),
        ran.len(),
        count("1.0.0"),
        count("1.1.0"),
        count("1.2.0")
    );

    // Each step is an audit entry.
    let trail: Vec<String> = service
        .store()
        .audit_search(&roster_host::store::AuditQuery::default(), 100_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.worker.is_empty() || e.worker == "recorder")
        .map(|e| e.trigger)
        .filter(|t| t.starts_with("governance:worker."))
        .collect();
    for step in [
        "governance:worker.review",
        "governance:worker.install",
        "governance:worker.upgrade",
        "governance:worker.remove",
    ] {
        assert!(trail.iter().any(|t| t == step), "{step} not in {trail:?}");
    }

    // An artifact uploaded (an OCI layout's blobs) instead of pulled, verified the same way.
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let pulled = roster_host::distribution::oci::Client::new(None)
        .unwrap()
        .pull(&roster_host::distribution::oci::Reference::parse(&v1).unwrap())
        .unwrap();
    let artifact = serde_json::json!({
        "manifest": b64(&pulled.manifest),
        "config": b64(&pulled.config),
        "layer": b64(&pulled.layer),
    });
    let mut tampered = artifact.clone();
    tampered["layer"] = b64(b"not the component that was signed").into();
    let upload = |artifact: &serde_json::Value| {
        post(
            &admin,
            serde_json::json!({
                "artifact": artifact,
                "name": "uploaded",
                "grant_requested": true,
                "principal": "svc",
                "apply": true,
            }),
        )
    };
    let (status, body) = upload(&tampered);
    assert_eq!(status, 409, "{body}");
    let (status, body) = upload(&artifact);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], true);
    let (_, listed) = api.call(Some(&admin), "GET", "/v1/installations", "");
    assert_eq!(listed["installations"][0]["name"], "uploaded", "{listed}");
    drop(api);
}
