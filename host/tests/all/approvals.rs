//! Human-in-the-loop checkpoints with a real component (`review_proposer`): held actions
//! approved, edited or rejected exactly once (also across a stop between the decision and
//! its application), feedback the worker reads from its memory, confidence and record-value
//! rules, separation of duties, and the kill switch cancelling what waits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use roster_host::clock::ManualClock;
use roster_host::config::HostConfig;
use roster_host::service::{EventSubmission, KillScope, Service};
use roster_host::store::{Approval, ApprovalFilter, ApprovalStatus, Decision, Verdict};
use roster_host::value::FieldValue;
use test_programs_artifacts::REVIEW_PROPOSER;

use crate::access::{Api, person};
use crate::serve::T0;

const MANIFEST: &str = r#"[plugin]
id = "test.proposer"
name = "Proposer"
version = "1.0.0"
domain = "revenue"
description = "proposes a stage change, an email and a signal"
[owners]
business = "owner@example.com"
technical = "tech@example.com"
[capabilities.records.objects.opportunity]
read = ["*"]
write = ["stage"]
[capabilities.notify]
channels = ["email"]
recipients = ["*@example.com"]
[capabilities.signals]
topics = ["revenue.*"]
[capabilities.memory]
quota-bytes = 65536
"#;

const GRANT: &str = r#"[grant]
plugin = "test.proposer"
[capabilities.records.objects.opportunity]
read = ["*"]
write = ["stage"]
[capabilities.notify]
channels = ["email"]
recipients = ["*@example.com"]
[capabilities.signals]
topics = ["revenue.*"]
[capabilities.memory]
quota-bytes = 65536
"#;

pub(crate) struct Host {
    _dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    clock: ManualClock,
}

impl Host {
    /// One `proposer` worker with `review` as its `[review]` section.
    pub(crate) fn new(review: &str) -> Host {
        Host::with(review, "")
    }

    /// Like [`Host::new`], with `host` added to `roster.toml`.
    pub(crate) fn with(review: &str, host: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("grant.toml"), GRANT).unwrap();
        let config = d.join("roster.toml");
        std::fs::write(
            &config,
            format!("data-dir = \"data\"\nexecutors = 2\nworkers = [\"proposer.toml\"]\n{host}\n[[principals]]\nid = \"svc\"\nkind = \"service\"\nsees = \"all\"\n"),
        )
        .unwrap();
        let host = Host {
            _dir: dir,
            config,
            clock: ManualClock::new(T0),
        };
        host.install(REVIEW_PROPOSER, "1.0.0", "", review);
        host
    }

    /// (Re)writes the `proposer` worker, triggered by the `propose` event: `component` as
    /// plugin version `version`, with `keys` added to its `[worker]` section and `extra`
    /// sections ([review], [escalation], ...).
    pub(crate) fn install(&self, component: &str, version: &str, keys: &str, extra: &str) {
        let d = self.config.parent().unwrap();
        let manifest = self.manifest(version);
        std::fs::write(
            d.join("proposer.toml"),
            format!(
                "[worker]\nname = \"proposer\"\ncomponent = \"{component}\"\nmanifest = \"{manifest}\"\ngrant = \"grant.toml\"\nprincipal = \"svc\"\n{keys}\n\n[[triggers]]\non = \"event\"\nname = \"propose\"\n\n{extra}\n"
            ),
        )
        .unwrap();
    }

    /// Writes the manifest of plugin version `version`; returns its file name.
    pub(crate) fn manifest(&self, version: &str) -> String {
        let name = format!("manifest-{version}.toml");
        std::fs::write(
            self.config.with_file_name(&name),
            MANIFEST.replace("version = \"1.0.0\"", &format!("version = \"{version}\"")),
        )
        .unwrap();
        name
    }

    pub(crate) fn start(&self) -> Arc<Service> {
        let config = HostConfig::load(&self.config).unwrap();
        Arc::new(Service::start(config, Arc::new(self.clock.clone())).unwrap())
    }
}

/// The audit entries recording what `principal` did, oldest first.
pub(crate) fn audited(
    service: &Service,
    principal: &str,
) -> Vec<roster_host::store::ExecutionEntry> {
    let query = roster_host::store::AuditQuery {
        principal: Some(principal.into()),
        ..Default::default()
    };
    service.store().audit_search(&query, 1000).unwrap()
}

pub(crate) fn opportunity(service: &Service, id: &str, amount: i64) {
    let fields = BTreeMap::from([
        ("name".to_string(), FieldValue::Text(format!("Deal {id}"))),
        ("stage".to_string(), FieldValue::Text("discovery".into())),
        ("amount".to_string(), FieldValue::Integer(amount)),
    ]);
    service
        .store()
        .create_record(
            "opportunity",
            Some(id.into()),
            Some("svc".into()),
            fields,
            "test",
        )
        .unwrap();
}

/// Runs the worker on `id` (with an optional confidence) and returns its summary.
pub(crate) fn propose(service: &Service, event: &str, id: &str, confidence: Option<f64>) -> String {
    service
        .accept_event(
            "propose",
            EventSubmission {
                id: Some(event.into()),
                object: Some("opportunity".into()),
                record_id: Some(id.into()),
                payload: confidence.map(|c| serde_json::json!({ "confidence": c })),
            },
        )
        .unwrap();
    assert!(service.wait_idle(Duration::from_secs(30)));
    let last = service
        .store()
        .executions_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.event_id == format!("{event}/proposer"))
        .expect("the execution is logged");
    // Success, or awaiting approval when something it proposed waits for a person.
    let held = last.report.as_ref().unwrap()["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["result"] == "held");
    let settled = service
        .approvals(&ApprovalFilter {
            status: Some(ApprovalStatus::Pending),
            ..ApprovalFilter::default()
        })
        .unwrap()
        .iter()
        .any(|a| a.event_id == last.event_id);
    let expected = if held && settled {
        "awaiting-approval"
    } else {
        "success"
    };
    assert_eq!(last.status, expected, "{last:?}");
    last.report.unwrap()["outcome"]["summary"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(crate) fn held(service: &Service, status: ApprovalStatus) -> Vec<Approval> {
    service
        .approvals(&ApprovalFilter {
            status: Some(status),
            ..ApprovalFilter::default()
        })
        .unwrap()
}

fn stage_of(service: &Service, id: &str) -> String {
    let r = service
        .store()
        .get_record("opportunity", id)
        .unwrap()
        .unwrap();
    match &r.fields["stage"] {
        FieldValue::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    }
}

pub(crate) fn emails(service: &Service) -> Vec<roster_host::store::OutboxEntry> {
    let mut all = service.store().outbox().unwrap();
    all.retain(|e| e.channel == "email");
    all
}

/// Held actions approved, edited and rejected through the API, each exactly once, with
/// the decisions fed back to the worker.
#[test]
pub fn review_proposer() {
    let host = Host::new("[review]\nstage = \"supervised\"\nreviewers = [\"rita@example.com\"]\n");
    let service = host.start();
    for id in ["O-1", "O-2", "O-3"] {
        opportunity(&service, id, 1000);
    }
    let reviewer = person(&service, "rita@example.com", &["reviewer@revenue"]);
    let owner = person(&service, "owner@example.com", &["business-owner@revenue"]);
    let outsider = person(&service, "fin@example.com", &["reviewer@finance"]);
    let api = Api::start(service.clone());

    // Supervised: the internal write and the signal go ahead; the email waits.
    let summary = propose(&service, "e1", "O-1", None);
    assert_eq!(
        summary,
        "update=performed email=held signal=performed feedback=[]"
    );
    assert_eq!(stage_of(&service, "O-1"), "proposal");
    assert!(emails(&service).is_empty());
    let pending = held(&service, ApprovalStatus::Pending);
    assert_eq!(pending.len(), 1);
    let first = &pending[0];
    assert_eq!(first.reasons, ["supervised stage"]);
    assert_eq!(first.record.as_deref(), Some("opportunity/O-1"));
    assert_eq!(first.data["record"]["name"], "Deal O-1");
    assert_eq!(first.proposed.action(), "notify.send");
    // The reviewer is told in the in-app notification centre.
    let told: Vec<_> = service
        .store()
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|e| e.channel == "in-app")
        .collect();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].recipients, ["rita@example.com"]);
    assert!(told[0].body.contains(&first.id));

    // What the reviewer sees.
    let (status, shown) = api.call(
        Some(&reviewer),
        "GET",
        &format!("/v1/approvals/{}", first.id),
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(shown["approval"]["proposed"]["subject"], "Deal update");
    assert!(shown["approval"]["trigger"].is_string());
    // Separation of duties: the worker's owner may not decide; other domains may not either.
    let decide = format!("/v1/approvals/{}/decide", first.id);
    let (status, answer) = api.call(Some(&owner), "POST", &decide, r#"{"verdict":"approve"}"#);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("no-self-approval")
    );
    let (status, _) = api.call(Some(&outsider), "POST", &decide, r#"{"verdict":"approve"}"#);
    assert_eq!(status, 403);
    // Approve: applied once; a second decision is refused and changes nothing.
    let (status, answer) = api.call(Some(&reviewer), "POST", &decide, r#"{"verdict":"approve"}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["approval"]["status"], "applied");
    assert_eq!(emails(&service).len(), 1);
    assert_eq!(emails(&service)[0].id, first.key);
    let (status, answer) = api.call(
        Some(&reviewer),
        "POST",
        &decide,
        r#"{"verdict":"reject","reason":"late"}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(emails(&service).len(), 1);

    // Edit then approve: the edited message goes out, and only the proposal's values change.
    propose(&service, "e2", "O-2", None);
    let second = held(&service, ApprovalStatus::Pending).remove(0);
    let decide = format!("/v1/approvals/{}/decide", second.id);
    let widened = r#"{"verdict":"edit","edited":{"kind":"notify","channel":"email","recipients":["ann@example.com","boss@example.com"],"subject":"x","body":"y"}}"#;
    let (status, answer) = api.call(Some(&reviewer), "POST", &decide, widened);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("only remove recipients")
    );
    let edited = r#"{"verdict":"edit","reason":"friendlier","edited":{"kind":"notify","channel":"email","recipients":["ann@example.com"],"subject":"Proposal for O-2","body":"Ann, the proposal is ready."}}"#;
    let (status, answer) = api.call(Some(&reviewer), "POST", &decide, edited);
    assert_eq!(status, 200, "{answer}");
    let sent = emails(&service);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent.iter().find(|e| e.id == second.key).unwrap().body,
        "Ann, the proposal is ready."
    );

    // Reject: a reason is required; nothing is sent.
    propose(&service, "e3", "O-3", None);
    let third = held(&service, ApprovalStatus::Pending).remove(0);
    let decide = format!("/v1/approvals/{}/decide", third.id);
    let (status, _) = api.call(Some(&reviewer), "POST", &decide, r#"{"verdict":"reject"}"#);
    assert_eq!(status, 400);
    let (status, _) = api.call(
        Some(&reviewer),
        "POST",
        &decide,
        r#"{"verdict":"reject","reason":"wrong contact"}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(emails(&service).len(), 2);
    assert_eq!(held(&service, ApprovalStatus::Rejected).len(), 1);

    // The worker reads the three decisions from its memory.
    let summary = propose(&service, "e4", "O-1", None);
    assert!(
        summary.ends_with("feedback=[approve:-,edit:friendlier,reject:wrong contact]"),
        "{summary}"
    );

    // Each decision is in the audit trail, by the reviewer.
    let (_, audit) = api.call(Some(&reviewer), "GET", "/v1/approvals?worker=proposer", "");
    assert_eq!(audit["approvals"].as_array().unwrap().len(), 4);
    let decisions: Vec<(String, String)> = audited(&service, "rita@example.com")
        .into_iter()
        .filter(|e| e.trigger.starts_with("governance:approval."))
        .map(|e| {
            (
                e.trigger,
                e.report.unwrap()["principal"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            (
                "governance:approval.approve".to_string(),
                "rita@example.com".to_string()
            ),
            ("governance:approval.edit".into(), "rita@example.com".into()),
            (
                "governance:approval.reject".into(),
                "rita@example.com".into()
            ),
        ]
    );
    drop(api);
    service.stop();
}

#[test]
fn an_approval_is_applied_once_across_a_stop_between_decision_and_application() {
    let host = Host::new("[review]\nstage = \"supervised\"\n");
    let service = host.start();
    opportunity(&service, "O-1", 1000);
    propose(&service, "e1", "O-1", None);
    let approval = held(&service, ApprovalStatus::Pending).remove(0);
    // The decision's transaction commits; the host stops before applying it.
    let decision = Decision {
        verdict: Verdict::Approve,
        by: "rita@example.com".into(),
        at: T0,
        reason: None,
        edited: None,
    };
    let decided = service
        .store()
        .decide(&approval.id, decision, None)
        .unwrap();
    assert_eq!(decided.status, ApprovalStatus::Approved);
    assert!(emails(&service).is_empty());
    service.stop();
    drop(service);

    // On start the approved action is applied, once.
    let service = host.start();
    let applied = service.store().approval(&approval.id).unwrap().unwrap();
    assert_eq!(applied.status, ApprovalStatus::Applied);
    assert_eq!(emails(&service).len(), 1);
    assert_eq!(service.apply_approved().unwrap(), 0);
    service.stop();
    drop(service);
    let service = host.start();
    assert_eq!(emails(&service).len(), 1);
    // Applying again directly is a no-op too.
    service.store().apply_approved(&approval.id).unwrap();
    assert_eq!(emails(&service).len(), 1);
    service.stop();
}

#[test]
fn low_confidence_waits_for_a_person_and_high_confidence_is_released() {
    let host =
        Host::new("[review]\nstage = \"conditional-autonomy\"\nconfidence-threshold = 0.8\n");
    let service = host.start();
    opportunity(&service, "O-1", 1000);
    opportunity(&service, "O-2", 1000);

    let summary = propose(&service, "sure", "O-1", Some(0.93));
    assert_eq!(summary, "update=held email=held signal=held feedback=[]");
    let released = held(&service, ApprovalStatus::Applied);
    assert_eq!(released.len(), 3, "{released:?}");
    assert!(
        released
            .iter()
            .all(|a| a.decision.as_ref().unwrap().by == "policy:confidence")
    );
    assert_eq!(stage_of(&service, "O-1"), "proposal");
    assert_eq!(emails(&service).len(), 1);
    assert_eq!(service.store().signals_after(0, 10).unwrap().len(), 1);

    propose(&service, "unsure", "O-2", Some(0.41));
    let waiting = held(&service, ApprovalStatus::Pending);
    assert_eq!(waiting.len(), 3);
    assert!(waiting.iter().all(|a| a.confidence == Some(0.41)));
    assert_eq!(stage_of(&service, "O-2"), "discovery");
    assert_eq!(emails(&service).len(), 1);
    service.stop();
}

#[test]
fn record_value_rules_hold_big_deals_only_and_the_kill_switch_cancels_what_waits() {
    let host = Host::new(
        "[review]\nstage = \"high-trust\"\n[[review.rule]]\naction = \"records.update\"\nrecord-value = { field = \"amount\", at-least = 10000 }\nreason = \"large deal\"\n",
    );
    let service = host.start();
    opportunity(&service, "SMALL", 500);
    opportunity(&service, "BIG", 50_000);
    let summary = propose(&service, "s", "SMALL", None);
    assert_eq!(
        summary,
        "update=performed email=performed signal=performed feedback=[]"
    );
    let summary = propose(&service, "b", "BIG", None);
    assert_eq!(
        summary,
        "update=held email=performed signal=performed feedback=[]"
    );
    let pending = held(&service, ApprovalStatus::Pending);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].reasons, ["large deal"]);
    assert_eq!(stage_of(&service, "BIG"), "discovery");

    // A second proposal on the big deal, edited: the values are checked against the
    // schema, and the edited change is what is applied.
    propose(&service, "b2", "BIG", None);
    let second = held(&service, ApprovalStatus::Pending)
        .into_iter()
        .find(|a| a.id != pending[0].id)
        .unwrap();
    let edit = |fields: serde_json::Value| roster_host::service::DecisionRequest {
        verdict: Verdict::Edit,
        reason: Some("later stage".into()),
        edited: Some(
            serde_json::from_value(serde_json::json!({
                "kind": "record-update", "object": "opportunity", "id": "BIG", "fields": fields
            }))
            .unwrap(),
        ),
    };
    let wrong_type = service.decide(
        &second.id,
        "rita@example.com",
        edit(serde_json::json!({ "stage": true })),
    );
    assert!(
        wrong_type
            .unwrap_err()
            .to_string()
            .contains("the edited action")
    );
    let widened = service.decide(
        &second.id,
        "rita@example.com",
        edit(serde_json::json!({ "amount": 1 })),
    );
    assert!(
        widened
            .unwrap_err()
            .to_string()
            .contains("was not in the proposal")
    );
    let edited = service
        .decide(
            &second.id,
            "rita@example.com",
            edit(serde_json::json!({ "stage": "negotiation" })),
        )
        .unwrap();
    assert_eq!(edited.status, ApprovalStatus::Applied);
    assert_eq!(stage_of(&service, "BIG"), "negotiation");

    // The kill switch cancels it; nobody can approve it afterwards.
    let report = service
        .kill(
            &KillScope::Worker("proposer".into()),
            "ops@example.com",
            "incident",
            false,
        )
        .unwrap();
    assert_eq!(report.cancelled, [pending[0].id.clone()]);
    let cancelled = service.store().approval(&pending[0].id).unwrap().unwrap();
    assert_eq!(cancelled.status, ApprovalStatus::Cancelled);
    let request = roster_host::service::DecisionRequest {
        verdict: Verdict::Approve,
        reason: None,
        edited: None,
    };
    assert!(
        service
            .decide(&pending[0].id, "rita@example.com", request)
            .is_err()
    );
    // The cancelled proposal (`proposal`) was never applied; the edited one stands.
    assert_eq!(stage_of(&service, "BIG"), "negotiation");
    service.stop();
}

fn decide_all(service: &Service, verdict: Verdict, reason: Option<&str>) -> usize {
    let pending = held(service, ApprovalStatus::Pending);
    for a in &pending {
        let request = roster_host::service::DecisionRequest {
            verdict,
            reason: reason.map(str::to_string),
            edited: None,
        };
        service.decide(&a.id, "rita@example.com", request).unwrap();
    }
    pending.len()
}

#[test]
fn the_trust_curve_proposes_and_a_business_owner_promotes_on_audited_metrics() {
    let host = Host::with(
        "[review]\nstage = \"assistive\"\n",
        "[trust]\nmin-executions = 5\nmin-decisions = 10\n",
    );
    let service = host.start();
    opportunity(&service, "O-1", 1000);
    let reviewer = person(&service, "rita@example.com", &["reviewer@revenue"]);
    let owner = person(&service, "owner@example.com", &["business-owner@revenue"]);
    let api = Api::start(service.clone());
    let stage = |to: &str, token: &str| {
        api.call(
            Some(token),
            "POST",
            "/v1/workers/proposer/stage",
            &format!(r#"{{"to":"{to}","reason":"reviewed the metrics"}}"#),
        )
    };

    // Assistive: everything is held. One rejection early on.
    let summary = propose(&service, "run-0", "O-1", None);
    assert_eq!(summary, "update=held email=held signal=held feedback=[]");
    assert_eq!(decide_all(&service, Verdict::Reject, Some("not yet")), 3);
    let (status, answer) = stage("supervised", &owner);
    assert_eq!(status, 400, "{answer}");
    let error = answer["detail"].as_str().unwrap();
    assert!(
        error.contains("executions") && error.contains("rejection-rate"),
        "{error}"
    );

    for i in 1..10 {
        propose(&service, &format!("run-{i}"), "O-1", None);
        assert_eq!(decide_all(&service, Verdict::Approve, None), 3);
    }
    let (status, answer) = api.call(Some(&reviewer), "GET", "/v1/workers/proposer/trust", "");
    assert_eq!(status, 200);
    let trust = &answer["trust"];
    assert_eq!(trust["stage"], "assistive");
    assert_eq!(trust["metrics"]["executions"], 10);
    assert_eq!(trust["metrics"]["approved"], 27);
    assert_eq!(trust["metrics"]["rejected"], 3);
    assert_eq!(trust["metrics"]["approval_rate"], 0.9);
    assert_eq!(trust["metrics"]["rejection_rate"], 0.1);
    // 10% rejected is above the 5% the default allows: not ready yet.
    assert_eq!(trust["promotion"]["ready"], false);
    for i in 10..20 {
        propose(&service, &format!("run-{i}"), "O-1", None);
        assert_eq!(decide_all(&service, Verdict::Approve, None), 3);
    }
    let report = service.trust("proposer").unwrap();
    let promotion = report.promotion.unwrap();
    assert!(promotion.ready, "{promotion:?}");
    assert_eq!(report.metrics.rejection_rate, 0.05);
    // The owners were alerted once with the proposal.
    let alerts = service.store().alerts().unwrap();
    let proposals: Vec<_> = alerts.iter().filter(|a| a.kind == "promotion").collect();
    assert_eq!(proposals.len(), 1);

    // Only a role the policies allow promotes, one stage at a time.
    assert_eq!(stage("supervised", &reviewer).0, 403);
    let (status, answer) = stage("conditional-autonomy", &owner);
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = stage("supervised", &owner);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["trust"]["stage"], "supervised");
    let summary = propose(&service, "after", "O-1", None);
    assert!(
        summary.starts_with("update=performed email=held signal=performed"),
        "{summary}"
    );

    // A reversal of an action it performed counts against it; a demotion needs only a
    // reason.
    let performed = service
        .store()
        .executions_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .find(|e| e.event_id == "after/proposer")
        .unwrap()
        .report
        .unwrap()["actions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, answer) = api.call(
        Some(&reviewer),
        "POST",
        "/v1/workers/proposer/reversals",
        &format!(r#"{{"action":"{performed}","reason":"wrong stage"}}"#),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(service.trust("proposer").unwrap().metrics.reversals, 1);
    let (status, _) = stage("assistive", &owner);
    assert_eq!(status, 200);
    let summary = propose(&service, "demoted", "O-1", None);
    assert!(
        summary.starts_with("update=held email=held signal=held"),
        "{summary}"
    );

    // Promotion and demotion are in the audit trail, by the owner.
    let moves: Vec<(String, String)> = audited(&service, "owner@example.com")
        .into_iter()
        .map(|e| (e.trigger, e.detail.unwrap_or_default()))
        .collect();
    assert_eq!(
        moves,
        [
            (
                "governance:trust.promote".to_string(),
                "reviewed the metrics".to_string()
            ),
            (
                "governance:trust.demote".into(),
                "reviewed the metrics".into()
            ),
        ]
    );
    drop(api);
    service.stop();
}
