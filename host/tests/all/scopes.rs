//! Scopes: inside each granted capability, every call is checked against the grant; a
//! denial returns `denied` to the plugin and is recorded.

use roster_host::Status;
use roster_host::sandbox::gate::ActionResult;
use roster_host::value::FieldValue;
use serde_json::json;
use test_programs_artifacts::CAPABILITY_PROBE;

use crate::common::*;

const REQUEST: &str = "\
[records.objects.lead]
read = [\"*\"]
write = [\"*\"]
create = true
delete = true
[records.objects.account]
read = [\"*\"]
[notify]
channels = [\"email\", \"in-app\", \"sms\"]
recipients = [\"*\"]
[memory]
quota-bytes = 100
[signals]
topics = [\"*\"]
[http]
allow = []
";

const GRANT: &str = "\
[records.objects.lead]
read = [\"name\", \"status\", \"score\"]
write = [\"score\"]
[notify]
channels = [\"email\"]
recipients = [\"*@example.com\"]
[memory]
quota-bytes = 40
[signals]
topics = [\"revenue.*\"]
";

fn probe(id: &str) -> roster_host::LoadedWorker {
    let manifest = manifest_with(id, "optional-capabilities = [\"http\"]", REQUEST);
    load(CAPABILITY_PROBE, &manifest, &grant(id, GRANT)).unwrap()
}

#[test]
pub fn capability_probe() {
    seed_lead(
        "S-1",
        "ann",
        &[
            ("name", "Scoped One"),
            ("status", "open"),
            ("phone", "+1 555 0100"),
        ],
    );
    let worker = probe("test.scopes-granted");
    let report = run(
        &worker,
        &payload_event(json!({"calls": [
            {"op": "get", "object": "lead", "id": "S-1"},
            {"op": "update", "object": "lead", "id": "S-1", "fields": {"score": 88}},
            {"op": "find", "object": "lead", "field": "name", "value": "scoped one"},
            {"op": "notify", "channel": "email", "to": ["ann@example.com"], "body": "hi"},
            {"op": "mem-set", "key": "k", "value": "v"},
            {"op": "mem-get", "key": "k"},
            {"op": "emit", "topic": "revenue.closed-won", "payload": "{\"deal\": 1}"},
            {"op": "get", "object": "lead", "id": "nope"},
        ]})),
    );
    let lines = lines(&report);
    assert_eq!(
        lines[0], "ok S-1 fields=name,status",
        "hidden fields are not returned"
    );
    assert!(lines[1].starts_with("ok "), "{lines:?}");
    assert_eq!(lines[2], "ok S-1");
    assert!(lines[3].starts_with("ok "), "{lines:?}");
    assert_eq!(lines[4], "ok set");
    assert_eq!(lines[5], "ok v");
    assert!(lines[6].starts_with("ok "), "{lines:?}");
    assert_eq!(lines[7], "not-found lead/nope");
    let stored = runtime()
        .store()
        .get_record("lead", "S-1")
        .unwrap()
        .unwrap();
    assert_eq!(stored.fields["score"], FieldValue::Number(88.0));
    assert!(
        runtime()
            .store()
            .signals()
            .unwrap()
            .iter()
            .any(|s| s.topic == "revenue.closed-won")
    );
    assert_eq!(report.denials().count(), 0);
    assert_host_still_healthy("capability_probe");
}

#[test]
fn out_of_scope_objects_and_fields_are_denied_and_recorded() {
    seed_lead(
        "S-2",
        "ann",
        &[
            ("name", "Scoped Two"),
            ("status", "open"),
            ("phone", "+1 555 0100"),
        ],
    );
    let worker = probe("test.scopes-records");
    let report = run(
        &worker,
        &payload_event(json!({"calls": [
            {"op": "get", "object": "account", "id": "A-1"},
            {"op": "update", "object": "lead", "id": "S-2", "fields": {"status": "won", "score": 1}},
            {"op": "find", "object": "lead", "field": "phone", "value": "+1 555 0100"},
            {"op": "create", "object": "lead", "fields": {"score": 1}},
            {"op": "delete", "object": "lead", "id": "S-2"},
        ]})),
    );
    let lines = lines(&report);
    assert_eq!(lines[0], "denied object `account` is not granted");
    assert_eq!(lines[1], "denied fields not writable on `lead`: status");
    assert_eq!(
        lines[2],
        "denied filters name fields not readable on `lead`: phone"
    );
    assert_eq!(lines[3], "denied creating `lead` records is not granted");
    assert_eq!(lines[4], "denied deleting `lead` records is not granted");
    assert_eq!(report.denials().count(), 5);
    let stored = runtime()
        .store()
        .get_record("lead", "S-2")
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.fields["status"],
        FieldValue::Text("open".into()),
        "a denied write changes nothing"
    );
    assert!(!stored.fields.contains_key("score"));
    assert_host_still_healthy("out_of_scope_objects_and_fields_are_denied_and_recorded");
}

#[test]
fn out_of_scope_recipients_channels_topics_and_quota_are_refused() {
    let worker = probe("test.scopes-notify");
    let report = run(
        &worker,
        &payload_event(json!({"calls": [
            {"op": "notify", "channel": "email", "to": ["ann@example.com", "eve@evil.test"], "body": "x"},
            {"op": "notify", "channel": "sms", "to": ["+15550100"], "body": "x"},
            {"op": "notify", "channel": "email", "to": ["ann@example.com.evil.test"], "body": "x"},
            {"op": "emit", "topic": "finance.invoice-paid", "payload": "{}"},
            {"op": "emit", "topic": "revenue.won", "payload": "not json"},
            {"op": "mem-set", "key": "big", "value": "0123456789012345678901234567890123456789"},
        ]})),
    );
    let lines = lines(&report);
    assert_eq!(
        lines[0],
        "denied recipients outside the granted patterns: eve@evil.test"
    );
    assert_eq!(lines[1], "denied channel `sms` is not granted");
    assert_eq!(
        lines[2],
        "denied recipients outside the granted patterns: ann@example.com.evil.test"
    );
    assert_eq!(
        lines[3],
        "denied topic `finance.invoice-paid` is outside the granted topics"
    );
    assert!(
        lines[4].starts_with("invalid-input the payload is not JSON"),
        "{lines:?}"
    );
    assert!(
        lines[5].starts_with("budget-exceeded memory quota of 40 bytes"),
        "{lines:?}"
    );
    assert_eq!(report.denials().count(), 4);
    let outbox = runtime().store().outbox().unwrap();
    assert!(
        !outbox.iter().any(|n| n.worker == "test.scopes-notify"),
        "nothing was sent"
    );
    let recorded: Vec<&str> = report
        .actions
        .iter()
        .filter_map(|a| match &a.result {
            ActionResult::Denied { .. } => Some(a.target.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        recorded,
        [
            "email:ann@example.com,eve@evil.test",
            "sms:+15550100",
            "email:ann@example.com.evil.test",
            "topic:finance.invoice-paid"
        ]
    );
    assert_host_still_healthy("out_of_scope_recipients_channels_topics_and_quota_are_refused");
}

#[test]
fn memory_is_private_to_each_worker() {
    let writer = probe("test.scopes-mem-a");
    let reader = probe("test.scopes-mem-b");
    let w = run(
        &writer,
        &payload_event(json!({"calls": [{"op": "mem-set", "key": "secret", "value": "a"}]})),
    );
    assert_eq!(lines(&w), ["ok set"]);
    let r = run(
        &reader,
        &payload_event(json!({"calls": [{"op": "mem-get", "key": "secret"}]})),
    );
    assert_eq!(lines(&r), ["ok <none>"]);
    assert_eq!(r.status, Status::Success);
    assert_host_still_healthy("memory_is_private_to_each_worker");
}

#[test]
fn records_outside_the_principals_visibility_are_hidden_and_protected() {
    use roster_host::governance::directory::{Directory, Principal, PrincipalKind, Sees};
    use roster_host::{Runtime, RuntimeConfig};
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::new(dir.path());
    let person = |id: &str, team: &str| Principal {
        id: id.into(),
        kind: PrincipalKind::User,
        teams: vec![team.into()],
        roles: vec![],
        sees: Sees::Team,
        email: None,
    };
    config.directory = Directory::new(vec![
        person("svc-test", "emea"),
        person("ann", "emea"),
        person("cat", "apac"),
    ])
    .unwrap();
    let runtime = Runtime::open(config).unwrap();
    let lead = |id: &str, owner: &str| roster_host::value::Record {
        object: "lead".into(),
        id: id.into(),
        owner: Some(owner.into()),
        fields: [("name".to_string(), FieldValue::Text(format!("Lead {id}")))].into(),
    };
    runtime
        .store()
        .put_records(&[lead("mine", "ann"), lead("theirs", "cat")])
        .unwrap();
    let id = "test.visibility";
    let manifest = manifest_with(id, "optional-capabilities = [\"http\"]", REQUEST);
    let bytes = std::fs::read(CAPABILITY_PROBE).unwrap();
    let worker = runtime.load(&bytes, &manifest, &grant(id, GRANT)).unwrap();
    let report = worker
        .execute(
            &payload_event(json!({"calls": [
                {"op": "get", "object": "lead", "id": "mine"},
                {"op": "get", "object": "lead", "id": "theirs"},
                {"op": "find", "object": "lead", "field": "name", "value": "Lead theirs"},
                {"op": "update", "object": "lead", "id": "theirs", "fields": {"score": 1}},
                {"op": "find", "object": "lead", "field": "name", "value": "Lead mine"},
            ]})),
            roster_host::Mode::Live,
        )
        .unwrap();
    let lines = lines(&report);
    assert_eq!(lines[0], "ok mine fields=name");
    assert_eq!(
        lines[1], "not-found lead/theirs",
        "a hidden record looks missing"
    );
    assert_eq!(lines[2], "ok ", "find does not return hidden records");
    assert_eq!(lines[4], "ok mine");
    assert_eq!(
        lines[3],
        "denied lead/theirs is outside the visibility of `svc-test`"
    );
    let denied: Vec<&str> = report.denials().map(|a| a.target.as_str()).collect();
    assert_eq!(
        denied,
        ["lead/theirs", "lead/theirs"],
        "both attempts are recorded as denials"
    );
    let theirs = runtime
        .store()
        .get_record("lead", "theirs")
        .unwrap()
        .unwrap();
    assert!(!theirs.fields.contains_key("score"));
}

#[test]
fn a_record_is_handed_to_another_owner_only_when_the_grant_names_owner() {
    seed_lead("S-9", "ann", &[("name", "Owned"), ("status", "open")]);
    // The probe imports every capability; these grants give records only.
    let optional = "optional-capabilities = [\"notify\", \"http\", \"memory\", \"signals\"]";
    let others = "[notify]\nchannels = [\"in-app\"]\nrecipients = [\"*\"]\n[memory]\nquota-bytes = 10\n[signals]\ntopics = [\"x\"]\n[http]\nallow = []\n";
    let hand_over = |fields: serde_json::Value| {
        payload_event(json!({"calls": [
            {"op": "update", "object": "lead", "id": "S-9", "fields": fields},
        ]}))
    };
    // `*` covers every field of the schema, not the owner.
    let star = "[records.objects.lead]\nread = [\"*\"]\nwrite = [\"*\"]\n";
    let id = "test.scopes-owner-star";
    let worker = load(
        CAPABILITY_PROBE,
        &manifest_with(id, optional, &format!("{star}{others}")),
        &grant(id, star),
    )
    .unwrap();
    let report = run(&worker, &hand_over(json!({"owner": "bob"})));
    assert_eq!(
        lines(&report)[0],
        "denied fields not writable on `lead`: owner"
    );
    let store = runtime().store();
    let owner = || store.get_record("lead", "S-9").unwrap().unwrap().owner;
    assert_eq!(owner().as_deref(), Some("ann"));

    // Named in the grant, the owner changes with the other fields, in one change.
    let named = "[records.objects.lead]\nread = [\"*\"]\nwrite = [\"status\", \"owner\"]\n";
    let id = "test.scopes-owner-named";
    let worker = load(
        CAPABILITY_PROBE,
        &manifest_with(id, optional, &format!("{named}{others}")),
        &grant(id, named),
    )
    .unwrap();
    let report = run(
        &worker,
        &hand_over(json!({"owner": "bob", "status": "assigned"})),
    );
    assert_eq!(report.denials().count(), 0, "{:?}", lines(&report));
    assert_eq!(report.status, Status::Success, "{:?}", lines(&report));
    let stored = store.get_record("lead", "S-9").unwrap().unwrap();
    assert_eq!(stored.owner.as_deref(), Some("bob"));
    assert_eq!(stored.fields["status"], FieldValue::Text("assigned".into()));

    // The owner must name someone.
    let report = run(&worker, &hand_over(json!({"owner": ""})));
    assert!(
        lines(&report)[0].contains("`owner` must name a principal"),
        "{:?}",
        lines(&report)
    );
    assert_eq!(
        owner().as_deref(),
        Some("bob"),
        "a refused hand-over changes nothing"
    );
    assert_host_still_healthy(
        "a_record_is_handed_to_another_owner_only_when_the_grant_names_owner",
    );
}
