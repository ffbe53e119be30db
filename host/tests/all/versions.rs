//! Staging and versions with real components: a dry run on a staging dataset that records
//! every action and applies none, the deployment-readiness gate in front of a staged
//! worker, and rollback to the previous version (kept across restarts until redeployed).

use crate::access::{Api, person};
use crate::approvals::{Host, audited, emails, opportunity, propose};
use test_programs_artifacts::{REVIEW_PROPOSER, SERVE_RECORDER};

const DATASET: &str = r#"{
  "records": [
    {"object": "opportunity", "id": "S-1", "owner": "svc",
     "fields": {"name": "Staged deal", "stage": "discovery", "amount": 7000}}
  ],
  "events": [
    {"id": "s1", "trigger": {"type": "named", "name": "propose"},
     "object": "opportunity", "record-id": "S-1", "payload": {"confidence": 0.7}},
    {"id": "s2", "trigger": {"type": "named", "name": "propose"},
     "object": "opportunity", "record-id": "S-404"}
  ]
}"#;

#[test]
fn a_dry_run_on_a_staging_dataset_records_every_action_and_applies_none() {
    let host = Host::new("[review]\nstage = \"high-trust\"\n");
    let service = host.start();
    let publisher = person(&service, "pub@example.com", &["publisher"]);
    let viewer = person(&service, "vi@example.com", &["viewer"]);
    let api = Api::start(service.clone());

    let (status, _) = api.call(
        Some(&viewer),
        "POST",
        "/v1/workers/proposer/dry-run",
        DATASET,
    );
    assert_eq!(status, 403);
    let (status, answer) = api.call(
        Some(&publisher),
        "POST",
        "/v1/workers/proposer/dry-run",
        "{\"records\": 3}",
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("not a staging dataset")
    );

    let (status, answer) = api.call(
        Some(&publisher),
        "POST",
        "/v1/workers/proposer/dry-run",
        DATASET,
    );
    assert_eq!(status, 200, "{answer}");
    let staging = &answer["staging"];
    assert_eq!(staging["summary"]["events"], 2);
    assert_eq!(staging["summary"]["ran"], 1);
    assert_eq!(staging["summary"]["skipped"], 1);
    assert_eq!(staging["summary"]["failed"], 0);
    assert_eq!(staging["summary"]["proposed"], 3);
    let run = &staging["runs"][0]["report"];
    assert_eq!(
        run["outcome"]["summary"],
        "update=dry-run email=dry-run signal=dry-run feedback=[]"
    );
    let actions = run["actions"].as_array().unwrap();
    let update = actions.iter().find(|a| a["operation"] == "update").unwrap();
    assert_eq!(update["result"], "dry-run");
    assert_eq!(update["proposal"]["fields"]["stage"], "proposal");
    let email = actions.iter().find(|a| a["operation"] == "send").unwrap();
    assert_eq!(email["proposal"]["body"], "S-1 needs a proposal");
    assert!(
        staging["runs"][1]["skipped"]
            .as_str()
            .unwrap()
            .contains("S-404 is not in the dataset")
    );

    // Nothing reached the live store, and the run is in the audit trail.
    assert!(
        service
            .store()
            .get_record("opportunity", "S-1")
            .unwrap()
            .is_none()
    );
    assert!(emails(&service).is_empty());
    assert!(service.store().signals_after(0, 10).unwrap().is_empty());
    let runs = audited(&service, "pub@example.com");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, "governance:staging.dry-run");
    drop(api);
    service.stop();
}

#[test]
fn a_staged_worker_goes_live_only_when_its_readiness_checklist_passes() {
    let host = Host::with(
        "",
        "[alerts]\nwebhook-url = \"http://127.0.0.1:9/alerts\"\n",
    );
    host.install(REVIEW_PROPOSER, "1.0.0", "deployment = \"staging\"", "");
    let service = host.start();
    opportunity(&service, "O-1", 1000);
    let owner = person(&service, "bo@example.com", &["business-owner@revenue"]);
    let api = Api::start(service.clone());

    // In staging its triggers do not run.
    service
        .accept_event(
            "propose",
            roster_host::service::EventSubmission {
                id: Some("early".into()),
                object: Some("opportunity".into()),
                record_id: Some("O-1".into()),
                payload: None,
            },
        )
        .unwrap();
    assert!(service.wait_idle(std::time::Duration::from_secs(30)));
    assert!(service.store().executions_after(0, 10).unwrap().is_empty());

    let (status, answer) = api.call(Some(&owner), "GET", "/v1/workers/proposer/readiness", "");
    assert_eq!(status, 200);
    let failing: Vec<&str> = answer["readiness"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["ok"] == false)
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["review-rules", "escalation", "staging"]);
    let (status, answer) = api.call(
        Some(&owner),
        "POST",
        "/v1/workers/proposer/deploy",
        r#"{"reason":"launch"}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("review-rules"));
    service.stop();
    drop(api);
    drop(service);

    // With review rules and an escalation path, after a clean dry run, it goes live.
    host.install(
        REVIEW_PROPOSER,
        "1.0.0",
        "deployment = \"staging\"",
        "[review]\nstage = \"supervised\"\n\n[escalation]\npolicy = \"pause\"\n",
    );
    let service = host.start();
    let api = Api::start(service.clone());
    let (status, _) = api.call(
        Some(&owner),
        "POST",
        "/v1/workers/proposer/dry-run",
        DATASET,
    );
    assert_eq!(status, 200);
    let (_, answer) = api.call(Some(&owner), "GET", "/v1/workers/proposer/readiness", "");
    assert_eq!(answer["readiness"]["ready"], true, "{answer}");
    let (status, answer) = api.call(
        Some(&owner),
        "POST",
        "/v1/workers/proposer/deploy",
        r#"{"reason":"launch"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let summary = propose(&service, "live", "O-1", None);
    assert_eq!(
        summary,
        "update=performed email=held signal=performed feedback=[]"
    );
    drop(api);
    service.stop();
}

#[test]
fn a_worker_rolls_back_to_its_previous_version_until_it_is_deployed_again() {
    let host = Host::new("[review]\nstage = \"high-trust\"\n");
    let service = host.start();
    opportunity(&service, "O-1", 1000);
    let operator = person(&service, "op@example.com", &["operator@revenue"]);
    let viewer = person(&service, "vi@example.com", &["viewer"]);
    assert!(propose(&service, "v1", "O-1", None).starts_with("update=performed"));
    let api = Api::start(service.clone());
    let (status, answer) = api.call(
        Some(&operator),
        "POST",
        "/v1/workers/proposer/rollback",
        r#"{"reason":"x"}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("no earlier version")
    );
    drop(api);
    service.stop();
    drop(service);

    // Version 2 is a different component.
    host.install(
        SERVE_RECORDER,
        "2.0.0",
        "",
        "[review]\nstage = \"high-trust\"\n",
    );
    let service = host.start();
    assert_eq!(
        propose(&service, "v2", "O-1", None),
        "event(propose) opportunity/O-1 -"
    );
    let api = Api::start(service.clone());
    let (_, answer) = api.call(Some(&viewer), "GET", "/v1/workers/proposer/versions", "");
    let versions = answer["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["running"], true);
    assert_eq!(versions[1]["version"], "2.0.0");

    let (status, _) = api.call(
        Some(&viewer),
        "POST",
        "/v1/workers/proposer/rollback",
        r#"{"reason":"x"}"#,
    );
    assert_eq!(status, 403);
    let (status, answer) = api.call(
        Some(&operator),
        "POST",
        "/v1/workers/proposer/rollback",
        r#"{"reason":"v2 drops the email"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rolled-back-to"]["version"], "1.0.0");
    assert!(propose(&service, "back", "O-1", None).starts_with("update=performed"));
    drop(api);
    service.stop();
    drop(service);

    // The rollback holds across a restart, though the worker file names version 2.
    let service = host.start();
    assert!(propose(&service, "restarted", "O-1", None).starts_with("update=performed"));
    let rollbacks = audited(&service, "op@example.com");
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(rollbacks[0].trigger, "governance:rollback");
    assert_eq!(rollbacks[0].detail.as_deref(), Some("v2 drops the email"));
    service.stop();
}

#[test]
fn a_shadow_version_runs_beside_the_live_one_and_reports_where_it_differs() {
    // The same component as 1.1.0: it proposes exactly what the live one does.
    let host = Host::new("");
    let same = host.manifest("1.1.0");
    host.install(
        REVIEW_PROPOSER,
        "1.0.0",
        "",
        &format!("[review]\nstage = \"high-trust\"\n\n[shadow]\ncomponent = \"{REVIEW_PROPOSER}\"\nmanifest = \"{same}\"\n"),
    );
    let service = host.start();
    opportunity(&service, "O-1", 1000);
    opportunity(&service, "O-2", 2000);
    propose(&service, "a", "O-1", None);
    propose(&service, "b", "O-2", None);
    let report = service.shadow_report("proposer").unwrap();
    assert_eq!((report.runs, report.agreed, report.differed), (2, 2, 0));
    // Only the live version acted: one email and one signal per run, and the shadow's
    // dry run left the memory alone.
    assert_eq!(emails(&service).len(), 2);
    assert_eq!(service.store().signals_after(0, 10).unwrap().len(), 2);
    let runs = service.store().shadow_runs("proposer").unwrap();
    assert_eq!(runs[0].shadow_version, "1.1.0");
    assert_eq!(runs[0].live.len(), 3);
    assert_eq!(
        runs[0].shadow[1].proposal.as_ref().unwrap()["body"],
        "O-1 needs a proposal"
    );
    service.stop();
    drop(service);

    // A version that proposes nothing: every action of the live run is reported missing.
    let quiet = host.manifest("2.0.0");
    host.install(
        REVIEW_PROPOSER,
        "1.0.0",
        "",
        &format!("[review]\nstage = \"high-trust\"\n\n[shadow]\ncomponent = \"{SERVE_RECORDER}\"\nmanifest = \"{quiet}\"\n"),
    );
    let service = host.start();
    propose(&service, "c", "O-1", None);
    let api = Api::start(service.clone());
    let viewer = person(&service, "vi@example.com", &["viewer"]);
    let (status, answer) = api.call(Some(&viewer), "GET", "/v1/workers/proposer/shadow", "");
    assert_eq!(status, 200);
    let shadow = &answer["shadow"];
    assert_eq!(shadow["runs"], 3);
    assert_eq!(shadow["differed"], 1);
    let differences: Vec<&str> = shadow["differing"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(
        differences,
        [
            "action 1: only live records.update opportunity/O-1",
            "action 2: only live notify.send email:ann@example.com",
            "action 3: only live signals.emit topic:revenue.next-step",
        ]
    );
    drop(api);
    service.stop();
}
