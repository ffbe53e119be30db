//! First-party plugins, run under their own manifests.

use std::path::Path;

use roster_host::value::TriggerInput;
use roster_host::value::{FieldValue, Record};
use roster_host::{EventInput, Manifest, Status};
use test_programs_artifacts::{
    ACCESS_REQUEST, ALERT_CLASSIFICATION, CANDIDATE_REVIEW, CHURN_SIGNAL, CUSTOMER_ONBOARDING,
    DEAL_STAGE_NOTIFIER, DUPLICATE_MERGER, INVOICE_REVIEW, MEETING_NO_SHOW_FOLLOW_UP,
    NEW_LEAD_ENRICHER, QUOTA_MILESTONE_ALERT, RENEWAL_REMINDER, REVENUE_EXECUTION, RULES,
    STALE_LEAD_ALERTER, TICKET_TRIAGE, WIN_LOSS_LOGGER,
};

use crate::common::*;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const NOW: i64 = 1_800_000_000_000;

fn plugin_dir(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(name)
}

fn plugin_manifest(name: &str) -> Manifest {
    Manifest::load(&plugin_dir(name).join("worker.toml")).unwrap()
}

/// Runs a plugin's fixture cases (`plugins/NAME/tests/*.toml`) under exactly what its
/// manifest requests and the review it recommends; every case must pass, and there must be
/// at least one where it acts and one where it does nothing.
fn fixture_cases(component: &str, name: &str) {
    let dir = plugin_dir(name);
    let manifest = plugin_manifest(name);
    let grant = roster_host::Grant::requested(&manifest, "svc-fixtures");
    let scratch = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(component).unwrap();
    let results =
        roster_host::cli::fixtures::run_cases(&dir, &bytes, &manifest, &grant, scratch.path())
            .unwrap();
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.failure.as_ref().map(|f| format!("{}: {f}", r.name)))
        .collect();
    assert!(failures.is_empty(), "{name}: {failures:#?}");
    let cases = |acting: bool| {
        std::fs::read_dir(dir.join("tests"))
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .filter(|text| text.contains("actions = []") != acting)
            .count()
    };
    assert!(cases(true) >= 1, "{name} needs a case where it acts");
    assert!(
        cases(false) >= 1,
        "{name} needs a case where it does nothing"
    );
}

#[test]
pub fn access_request() {
    fixture_cases(ACCESS_REQUEST, "access-request");
}

#[test]
pub fn alert_classification() {
    fixture_cases(ALERT_CLASSIFICATION, "alert-classification");
}

#[test]
pub fn candidate_review() {
    fixture_cases(CANDIDATE_REVIEW, "candidate-review");
}

#[test]
pub fn churn_signal() {
    fixture_cases(CHURN_SIGNAL, "churn-signal");
}

#[test]
pub fn customer_onboarding() {
    fixture_cases(CUSTOMER_ONBOARDING, "customer-onboarding");
}

#[test]
pub fn deal_stage_notifier() {
    fixture_cases(DEAL_STAGE_NOTIFIER, "deal-stage-notifier");
}

#[test]
pub fn duplicate_merger() {
    fixture_cases(DUPLICATE_MERGER, "duplicate-merger");
}

#[test]
pub fn invoice_review() {
    fixture_cases(INVOICE_REVIEW, "invoice-review");
}

#[test]
pub fn meeting_no_show_follow_up() {
    fixture_cases(MEETING_NO_SHOW_FOLLOW_UP, "meeting-no-show-follow-up");
}

#[test]
pub fn new_lead_enricher() {
    fixture_cases(NEW_LEAD_ENRICHER, "new-lead-enricher");
}

#[test]
pub fn quota_milestone_alert() {
    fixture_cases(QUOTA_MILESTONE_ALERT, "quota-milestone-alert");
}

#[test]
pub fn renewal_reminder() {
    fixture_cases(RENEWAL_REMINDER, "renewal-reminder");
}

#[test]
pub fn revenue_execution() {
    fixture_cases(REVENUE_EXECUTION, "revenue-execution");
}

#[test]
pub fn ticket_triage() {
    fixture_cases(TICKET_TRIAGE, "ticket-triage");
}

#[test]
pub fn rules() {
    fixture_cases(RULES, "rules");
}

#[test]
pub fn win_loss_logger() {
    fixture_cases(WIN_LOSS_LOGGER, "win-loss-logger");
}

fn lead(id: &str, owner: &str, status: &str, idle_days: i64) -> Record {
    Record {
        object: "lead".into(),
        id: id.into(),
        owner: Some(owner.into()),
        fields: [
            ("name".to_string(), FieldValue::Text(format!("Lead {id}"))),
            ("status".to_string(), FieldValue::Text(status.into())),
            (
                "last_activity_at".to_string(),
                FieldValue::Timestamp {
                    timestamp: NOW - idle_days * DAY_MS,
                },
            ),
        ]
        .into(),
    }
}

#[test]
pub fn stale_lead_alerter() {
    fixture_cases(STALE_LEAD_ALERTER, "stale-lead-alerter");
    runtime()
        .store()
        .put_records(&[
            lead("stale-1", "ann", "open", 20),
            lead("stale-2", "bob", "open", 40),
            lead("stale-fresh", "ann", "open", 3),
            lead("stale-closed", "ann", "closed", 90),
        ])
        .unwrap();
    let manifest = plugin_manifest("stale-lead-alerter");
    let grant_text = format!(
        "[grant]\nplugin = \"{}\"\n[capabilities.records.objects.lead]\nread = [\"name\", \"status\", \"last_activity_at\", \"stale\"]\nwrite = [\"stale\"]\n[capabilities.notify]\nchannels = [\"in-app\"]\nrecipients = [\"*\"]\n[capabilities.memory]\n",
        manifest.plugin.id
    );
    let grant = roster_host::Grant::parse(Path::new("grant.toml"), &grant_text).unwrap();
    let worker = load(STALE_LEAD_ALERTER, &manifest, &grant).unwrap();
    let event = EventInput {
        id: None,
        trigger: TriggerInput::Schedule {
            name: "daily".into(),
        },
        object: None,
        record_id: None,
        payload: Some(serde_json::json!({"days": 14})),
        occurred_at: Some(NOW),
    };

    let first = run(&worker, &event);
    assert_eq!(first.status, Status::Success, "{first:#?}");
    assert_eq!(
        first.outcome.as_ref().unwrap().summary,
        "alerted owners of 2 stale leads (idle > 14 days)"
    );
    for id in ["stale-1", "stale-2"] {
        let r = runtime().store().get_record("lead", id).unwrap().unwrap();
        assert_eq!(r.fields["stale"], FieldValue::Boolean(true), "{id}");
    }
    for id in ["stale-fresh", "stale-closed"] {
        let r = runtime().store().get_record("lead", id).unwrap().unwrap();
        assert!(!r.fields.contains_key("stale"), "{id}");
    }
    let alerts: Vec<_> = runtime()
        .store()
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|n| n.worker == manifest.plugin.id)
        .collect();
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().any(
        |n| n.recipients == ["bob"] && n.body == "Lead stale-2 has had no activity for 40 days"
    ));

    let second = run(&worker, &event);
    assert_eq!(
        second.status,
        Status::Skipped,
        "each stale lead is alerted once: {second:#?}"
    );

    // Without a payload, the installation's settings decide: `days = 30` (checked against
    // the manifest's [config] schema) finds only the lead idle for 40 days, already alerted;
    // `days = 10` is what the schema allows, `days = 0` and unknown settings are refused.
    let given: toml::Table = toml::from_str("days = 30").unwrap();
    let settings = manifest.settings(&given).unwrap();
    assert_eq!(settings["days"], 30);
    assert_eq!(settings["limit"], 200, "the default");
    let configured = load(STALE_LEAD_ALERTER, &manifest, &grant)
        .unwrap()
        .with_settings(&settings);
    let plain = EventInput {
        payload: None,
        ..event.clone()
    };
    let third = run(&configured, &plain);
    assert_eq!(
        third.outcome.as_ref().unwrap().summary,
        "no new stale leads (idle > 30 days)",
        "{third:#?}"
    );
    let problems = manifest
        .settings(
            &toml::from_str(
                "days = 0
weeks = 2",
            )
            .unwrap(),
        )
        .unwrap_err();
    assert_eq!(
        problems,
        [
            "setting `days`: 0 is outside 1..=365",
            "setting `weeks` is not in the plugin's [config] schema (days, limit)"
        ]
    );
}
