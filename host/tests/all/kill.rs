//! The kill switch: a worker, a domain or everything paused at once; running executions
//! interrupted (a CPU-bound one at the next epoch tick, one waiting on a connector as soon
//! as it is paused); their triggers held; owners alerted and review tasks opened; grants
//! revoked until a person restores them.

use std::time::{Duration, Instant};

use roster_host::service::{KillScope, Service};
use serde_json::json;

use crate::connector::Connector;
use crate::failures::{Host, call};
use crate::serve::{executions, idle};

const LONG: &str = "[limits]\nfuel = 1_000_000_000_000_000\ntimeout-ms = 60_000\n";

fn wait_running(service: &Service, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.queue_status().running < n {
        assert!(Instant::now() < deadline, "{:?}", service.queue_status());
        std::thread::sleep(Duration::from_millis(5));
    }
    // Past instantiation and into the handler.
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn pausing_a_domain_interrupts_running_executions_and_holds_their_triggers() {
    let connector = Connector::start();
    let host = Host::new(
        &connector,
        LONG,
        &[("spinner", LONG), ("caller", ""), ("ops-recorder", "")],
    );
    let service = host.start();
    call(&service, "spinner", "s-1", json!({}));
    call(
        &service,
        "caller",
        "c-1",
        json!({ "url": connector.url("/hang/kill"), "ref": "c-1", "timeout-ms": 30_000 }),
    );
    wait_running(&service, 2);

    let killed = Instant::now();
    assert!(
        service
            .kill(&KillScope::Domain("revenue".into()), "ann", " ", false)
            .is_err(),
        "a reason is required"
    );
    assert!(service.controls().is_empty(), "nothing paused without one");
    let report = service
        .kill(
            &KillScope::Domain("revenue".into()),
            "ann",
            "suspected data leak",
            false,
        )
        .unwrap();
    assert_eq!(report.paused, ["caller", "spinner"]);
    assert_eq!(report.interrupted.len(), 2, "{report:?}");
    assert_eq!(report.reviews.len(), 2);
    idle(&service);
    println!(
        "kill switch: both executions recorded as interrupted {} ms after the pause",
        killed.elapsed().as_millis()
    );

    let log = executions(&service);
    for worker in ["spinner", "caller"] {
        let e = log.iter().find(|e| e.worker == worker).unwrap();
        assert_eq!(e.status, "interrupted", "{e:#?}");
        assert_eq!(e.failure.as_deref(), Some("interrupted"));
        assert!(e.retry_at.is_none() && e.escalation.is_none());
    }
    // Their triggers are held, and new ones too; other domains carry on.
    call(
        &service,
        "caller",
        "c-2",
        json!({ "url": connector.url("/ok"), "ref": "c-2" }),
    );
    call(&service, "ops-recorder", "o-1", json!({}));
    idle(&service);
    assert_eq!(
        service.queue_status().held,
        3,
        "{:?}",
        service.queue_status()
    );
    assert!(
        connector.received_on("/ok").is_empty(),
        "nothing of the paused worker ran"
    );
    let ops = executions(&service);
    assert_eq!(
        ops.iter().filter(|e| e.worker == "ops-recorder").count(),
        1,
        "the IT-operations worker was not paused"
    );

    // Owners alerted, a review task opened for each worker's business owner.
    let alerts = service.store().alerts().unwrap();
    assert_eq!(alerts.iter().filter(|a| a.kind == "paused").count(), 2);
    for review in &report.reviews {
        let (object, id) = review.split_once('/').unwrap();
        let task = service.store().get_record(object, id).unwrap().unwrap();
        assert_eq!(task.owner.as_deref(), Some("ann"));
        assert!(
            format!("{:?}", task.fields["subject"]).contains("suspected data leak"),
            "{task:?}"
        );
    }
    let control = &service.controls()["caller"];
    assert!(
        control.paused && control.by == "manual:ann" && control.reason == "suspected data leak"
    );
}

#[test]
fn a_global_pause_with_revoked_grants_resumes_only_when_restored() {
    let connector = Connector::start();
    let host = Host::new(&connector, "", &[("caller", ""), ("ops-recorder", "")]);
    let service = host.start();
    assert!(
        service
            .kill(&KillScope::Domain("finance".into()), "ann", "why", false)
            .is_err(),
        "no worker in that domain"
    );
    let report = service
        .kill(&KillScope::All, "ann", "incident drill", true)
        .unwrap();
    assert_eq!(report.paused, ["caller", "ops-recorder"]);
    assert!(report.interrupted.is_empty());
    call(&service, "ops-recorder", "o-1", json!({}));
    call(
        &service,
        "caller",
        "c-1",
        json!({ "url": connector.url("/ok"), "ref": "c-1" }),
    );
    idle(&service);
    assert_eq!(service.queue_status().held, 2);
    assert!(executions(&service).is_empty());

    let err = service
        .resume("ops-recorder", "ann", "drill over", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("grant was revoked"), "{err}");
    service
        .resume("ops-recorder", "ann", "drill over", true)
        .unwrap();
    idle(&service);
    let log = executions(&service);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].worker, "ops-recorder");
    assert_eq!(log[0].status, "success");
    assert_eq!(service.queue_status().held, 1, "the caller is still paused");
    // Paused state survives a restart.
    service.shutdown();
    let service = host.start();
    idle(&service);
    assert!(service.controls()["caller"].paused);
    assert!(service.controls()["caller"].grant_revoked);
    assert_eq!(service.queue_status().held, 1);
}
