//! The worker inventory: what each installed worker is, may do and has been doing,
//! listable and filterable from the library, the API's service handle and the CLI.

use std::process::Command;

use roster_host::service::KillScope;
use roster_host::service::inventory::InventoryFilter;
use serde_json::json;

use crate::connector::Connector;
use crate::failures::{Host, call};
use crate::serve::idle;

#[test]
fn the_inventory_lists_scope_status_and_accuracy_and_filters() {
    let connector = Connector::start();
    let host = Host::new(
        &connector,
        "",
        &[
            (
                "caller",
                "[escalation]\npolicy = \"create-task\"\nassignee = \"ann\"\n",
            ),
            ("ops-recorder", ""),
        ],
    );
    let service = host.start();
    call(
        &service,
        "caller",
        "i-1",
        json!({ "url": connector.url("/ok"), "ref": "i-1" }),
    );
    call(
        &service,
        "caller",
        "i-2",
        json!({ "url": connector.url("/ok"), "ref": "i-2", "deny": true }),
    );
    idle(&service);
    service
        .kill(
            &KillScope::Worker("ops-recorder".into()),
            "ann",
            "under review",
            false,
        )
        .unwrap();

    let all = service.inventory(&InventoryFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    let caller = all.iter().find(|e| e.name == "caller").unwrap();
    assert_eq!(caller.plugin, "test.connector-client");
    assert_eq!(caller.domain, "revenue");
    assert_eq!(
        (
            caller.business_owner.as_str(),
            caller.technical_owner.as_str()
        ),
        ("ann", "bob")
    );
    assert_eq!(caller.triggers, ["event"]);
    assert!(
        caller
            .connected_systems
            .contains(&format!("http: {}", connector.origin()))
    );
    assert!(
        caller
            .data_scope
            .contains(&"task: read [*], write [subject, related_to]".to_string()),
        "{:?}",
        caller.data_scope
    );
    assert!(
        caller
            .permitted_actions
            .contains(&"records.create task".to_string())
    );
    assert!(
        !caller
            .permitted_actions
            .iter()
            .any(|a| a.contains("account") && a.contains("create"))
    );
    assert_eq!(caller.escalation_path, "task for ann");
    assert!(caller.review_checkpoints[0].starts_with("retries: 3 on trap"));
    assert_eq!(caller.status, "live");
    let week = caller.accuracy_history.last().unwrap();
    assert_eq!((week.executions, week.succeeded, week.failed), (2, 1, 1));
    assert!(caller.last_modified.is_some());
    let ops = all.iter().find(|e| e.name == "ops-recorder").unwrap();
    assert_eq!(ops.domain, "it-operations");
    assert_eq!(ops.status, "paused");
    assert!(
        ops.paused_reason
            .as_deref()
            .unwrap()
            .contains("under review")
    );

    let names = |filter: InventoryFilter| -> Vec<String> {
        service
            .inventory(&filter)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    let filter =
        |domain: Option<&str>, owner: Option<&str>, status: Option<&str>| InventoryFilter {
            domain: domain.map(Into::into),
            owner: owner.map(Into::into),
            status: status.map(Into::into),
        };
    assert_eq!(
        names(filter(Some("it-operations"), None, None)),
        ["ops-recorder"]
    );
    assert_eq!(names(filter(None, Some("bob"), None)), ["caller"]);
    assert_eq!(names(filter(None, None, Some("paused"))), ["ops-recorder"]);
    assert!(names(filter(Some("finance"), None, None)).is_empty());
    service.shutdown();

    // From the command line, on the data directory.
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--config")
        .arg(&host.config)
        .args(["workers", "inventory", "--json", "--status", "paused"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "ops-recorder");
    assert_eq!(listed[0]["status"], "paused");
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--config")
        .arg(&host.config)
        .args(["workers", "inventory"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("caller — test.connector-client 1.0.0 [revenue] live"),
        "{text}"
    );
    assert!(text.contains("escalation   task for ann"), "{text}");
}
