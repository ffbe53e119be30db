//! The service: triggers, conditions, schedules, delays, thresholds, visibility, capacity
//! windows and restarts, driven by a manual clock (no sleeps decide anything).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use roster_host::clock::{DAY_MS, HOUR_MS, MINUTE_MS, ManualClock};
use roster_host::config::HostConfig;
use roster_host::service::{EventSubmission, Service};
use roster_host::store::ExecutionEntry;
use roster_host::value::FieldValue;
use test_programs_artifacts::SERVE_RECORDER;

/// 2026-01-01T08:00:00Z.
pub const T0: i64 = 1_767_254_400_000;

const MANIFEST: &str = r#"[plugin]
id = "test.recorder"
name = "Recorder"
version = "1.0.0"
domain = "revenue"
description = "reports what started it"
[owners]
business = "b@example.com"
technical = "t@example.com"
[capabilities.records.objects.lead]
read = ["*"]
[capabilities.records.objects.opportunity]
read = ["*"]
[capabilities.records.objects.account]
read = ["*"]
"#;

const GRANT: &str = r#"[grant]
plugin = "test.recorder"
[capabilities.records.objects.lead]
read = ["*"]
[capabilities.records.objects.opportunity]
read = ["*"]
[capabilities.records.objects.account]
read = ["*"]
"#;

/// A configuration directory with recorder workers, and a manual clock.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub config: PathBuf,
}

impl Fixture {
    /// `host` is extra roster.toml text; each worker is (name, principal, triggers and
    /// conditions text).
    pub fn new(host: &str, workers: &[(&str, &str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("manifest.toml"), MANIFEST).unwrap();
        std::fs::write(d.join("grant.toml"), GRANT).unwrap();
        let mut names = Vec::new();
        for (name, principal, body) in workers {
            let text = format!(
                "[worker]\nname = \"{name}\"\ncomponent = \"{SERVE_RECORDER}\"\nmanifest = \"manifest.toml\"\ngrant = \"grant.toml\"\nprincipal = \"{principal}\"\n\n{body}\n"
            );
            std::fs::write(d.join(format!("{name}.toml")), text).unwrap();
            names.push(format!("\"{name}.toml\""));
        }
        let principals = "[[principals]]\nid = \"svc\"\nkind = \"service\"\nsees = \"all\"\n\n[[principals]]\nid = \"ann\"\nteams = [\"emea\"]\nroles = [\"ae\", \"admin\"]\n\n[[principals]]\nid = \"bob\"\nteams = [\"emea\"]\nroles = [\"ae\"]\n\n[[principals]]\nid = \"cat\"\nteams = [\"apac\"]\n\n[[principals]]\nid = \"svc-emea\"\nkind = \"service\"\nteams = [\"emea\"]\n";
        let config = d.join("roster.toml");
        std::fs::write(
            &config,
            format!(
                "data-dir = \"data\"\n{}workers = [{}]\n{host}\n{principals}",
                if host.contains("executors") {
                    ""
                } else {
                    "executors = 2\n"
                },
                names.join(", ")
            ),
        )
        .unwrap();
        Fixture {
            _dir: dir,
            clock: ManualClock::new(T0),
            config,
        }
    }

    /// A fixture with one recorder worker, `w1`, acting as `svc` and triggered by the
    /// named event `ping`.
    pub fn pinged(host: &str) -> Fixture {
        Fixture::new(
            host,
            &[(
                "w1",
                "svc",
                "[[triggers]]\non = \"event\"\nname = \"ping\"\n",
            )],
        )
    }

    pub fn start(&self) -> Service {
        let config = HostConfig::load(&self.config).unwrap();
        Service::start(config, Arc::new(self.clock.clone())).unwrap()
    }
}

pub fn idle(service: &Service) {
    assert!(
        service.wait_idle(Duration::from_secs(30)),
        "{:?}",
        service.queue_status()
    );
}

pub fn executions(service: &Service) -> Vec<ExecutionEntry> {
    service.store().executions_after(0, usize::MAX).unwrap()
}

/// The outcome summaries of a worker's executions that ran, in order.
pub fn ran(service: &Service, worker: &str) -> Vec<String> {
    executions(service)
        .into_iter()
        .filter(|e| e.worker == worker && e.report.is_some())
        .map(|e| {
            e.report.unwrap()["outcome"]["summary"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches(" -")
                .to_string()
        })
        .collect()
}

pub(crate) fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.into())
}

pub(crate) fn fields(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn create(service: &Service, object: &str, id: &str, owner: &str, f: &[(&str, FieldValue)]) {
    service
        .store()
        .create_record(
            object,
            Some(id.into()),
            Some(owner.into()),
            fields(f),
            "test",
        )
        .unwrap();
}

fn update(service: &Service, object: &str, id: &str, f: &[(&str, FieldValue)]) {
    service
        .store()
        .update_record(object, id, &fields(f), "test")
        .unwrap()
        .unwrap();
}

#[test]
pub fn serve_recorder() {
    let fx = Fixture::new(
        "",
        &[
            (
                "on-create",
                "svc",
                "[[triggers]]\non = \"record-created\"\nobject = \"lead\"",
            ),
            (
                "on-status",
                "svc",
                "[[triggers]]\non = \"record-updated\"\nobject = \"lead\"\nfields = [\"status\"]",
            ),
            (
                "on-any-update",
                "svc",
                "[[triggers]]\non = \"record-updated\"\nobject = \"lead\"",
            ),
            (
                "on-delete",
                "svc",
                "[[triggers]]\non = \"record-deleted\"\nobject = \"lead\"",
            ),
        ],
    );
    let s = fx.start();
    create(&s, "lead", "L1", "ann", &[("status", text("new"))]);
    create(
        &s,
        "opportunity",
        "O1",
        "ann",
        &[("stage", text("Discovery"))],
    );
    idle(&s);
    update(&s, "lead", "L1", &[("name", text("Ada"))]);
    idle(&s);
    update(&s, "lead", "L1", &[("status", text("open"))]);
    idle(&s);
    s.store().delete_record("lead", "L1", "test").unwrap();
    idle(&s);
    assert_eq!(ran(&s, "on-create"), ["created lead/L1"]);
    assert_eq!(ran(&s, "on-status"), ["updated[status] lead/L1"]);
    assert_eq!(
        ran(&s, "on-any-update"),
        ["updated[name] lead/L1", "updated[status] lead/L1"]
    );
    assert_eq!(ran(&s, "on-delete"), ["deleted"]);
    assert_eq!(executions(&s).len(), 5, "nothing fired for the opportunity");
}

#[test]
fn conditions_filter_before_any_sandbox_and_are_logged() {
    let fx = Fixture::new(
        "",
        &[(
            "qualified",
            "svc",
            r#"[[triggers]]
on = "record-created"
object = "lead"

[conditions]
all = [
  { field = "status", op = "equals", value = "new" },
  { any = [
      { field = "source", op = "equals", value = "referral" },
      { field = "employees", op = "greater-than", value = 200 },
  ] },
  { owner-in-team = "emea" },
  { not = { field = "email", op = "ends-with", value = "@gmail.com" } },
]"#,
        )],
    );
    let s = fx.start();
    let base = [("status", text("new")), ("email", text("x@corp.test"))];
    create(
        &s,
        "lead",
        "yes-referral",
        "ann",
        &[&base[..], &[("source", text("referral"))]].concat(),
    );
    create(
        &s,
        "lead",
        "yes-big",
        "bob",
        &[&base[..], &[("employees", FieldValue::Integer(500))]].concat(),
    );
    create(
        &s,
        "lead",
        "no-small",
        "ann",
        &[&base[..], &[("employees", FieldValue::Integer(5))]].concat(),
    );
    create(
        &s,
        "lead",
        "no-team",
        "cat",
        &[&base[..], &[("source", text("referral"))]].concat(),
    );
    create(
        &s,
        "lead",
        "no-gmail",
        "ann",
        &[
            ("status", text("new")),
            ("source", text("referral")),
            ("email", text("x@gmail.com")),
        ],
    );
    idle(&s);
    let mut ran = ran(&s, "qualified");
    ran.sort();
    assert_eq!(ran, ["created lead/yes-big", "created lead/yes-referral"]);
    let skipped: BTreeMap<String, ExecutionEntry> = executions(&s)
        .into_iter()
        .filter(|e| e.status == "skipped")
        .map(|e| (e.record.clone().unwrap(), e))
        .collect();
    assert_eq!(skipped.len(), 3);
    for e in skipped.values() {
        assert!(e.report.is_none(), "a filtered-out event runs no sandbox");
        assert_eq!(e.conditions.len(), 5, "{:?}", e.conditions);
    }
    let team = &skipped["lead/no-team"].conditions;
    assert!(
        team.iter()
            .any(|c| c.condition == "owner in team \"emea\"" && !c.passed)
    );
    let gmail = &skipped["lead/no-gmail"].conditions;
    assert!(
        gmail
            .iter()
            .any(|c| c.condition == "not (email ends-with \"@gmail.com\")" && !c.passed)
    );
}

#[test]
fn a_worker_sees_only_its_principals_records() {
    let fx = Fixture::new(
        "",
        &[(
            "emea-only",
            "svc-emea",
            "[[triggers]]\non = \"record-created\"\nobject = \"lead\"",
        )],
    );
    let s = fx.start();
    create(&s, "lead", "ann-lead", "ann", &[]);
    create(&s, "lead", "cat-lead", "cat", &[]);
    idle(&s);
    assert_eq!(ran(&s, "emea-only"), ["created lead/ann-lead"]);
}

#[test]
fn a_delayed_trigger_survives_a_restart() {
    let fx = Fixture::new(
        "",
        &[(
            "follow-up",
            "svc",
            "[[triggers]]\non = \"record-created\"\nobject = \"meeting\"\ndelay = \"2h\"",
        )],
    );
    let s = fx.start();
    create(&s, "meeting", "M1", "ann", &[("subject", text("Demo"))]);
    idle(&s);
    fx.clock.advance(HOUR_MS);
    idle(&s);
    assert!(executions(&s).is_empty(), "not before the delay");
    assert_eq!(s.queue_status().delayed, 1);
    s.shutdown();

    fx.clock.advance(HOUR_MS - MINUTE_MS);
    let s = fx.start();
    idle(&s);
    assert!(executions(&s).is_empty());
    fx.clock.advance(2 * MINUTE_MS);
    idle(&s);
    assert_eq!(executions(&s).len(), 1);
    assert_eq!(executions(&s)[0].started_at, T0 + 2 * HOUR_MS + MINUTE_MS);
}

#[test]
fn a_cron_schedule_fires_on_time_and_once_after_downtime() {
    let fx = Fixture::new(
        "",
        &[(
            "morning",
            "svc",
            "[[triggers]]\non = \"schedule\"\ncron = \"0 9 * * *\"\ntimezone = \"Europe/London\"",
        )],
    );
    let s = fx.start();
    idle(&s);
    fx.clock.advance(59 * MINUTE_MS);
    idle(&s);
    assert!(executions(&s).is_empty(), "08:59 is not 09:00");
    fx.clock.advance(MINUTE_MS);
    idle(&s);
    assert_eq!(ran(&s, "morning"), ["schedule(schedule)"]);
    s.shutdown();

    // Down for two days: it fires once on restart, not once per missed morning.
    fx.clock.advance(2 * DAY_MS);
    let s = fx.start();
    idle(&s);
    assert_eq!(ran(&s, "morning").len(), 2);
    fx.clock.advance(DAY_MS - 30 * MINUTE_MS);
    idle(&s);
    assert_eq!(ran(&s, "morning").len(), 2, "not before the next 09:00");
    fx.clock.advance(31 * MINUTE_MS);
    idle(&s);
    assert_eq!(ran(&s, "morning").len(), 3);
}

#[test]
fn an_interval_scan_runs_once_per_matching_record() {
    let fx = Fixture::new(
        "",
        &[(
            "sweep",
            "svc",
            "[[triggers]]\non = \"schedule\"\nevery = \"15m\"\nobject = \"lead\"\n\n[conditions]\nfield = \"status\"\nop = \"equals\"\nvalue = \"open\"",
        )],
    );
    let s = fx.start();
    create(&s, "lead", "a", "ann", &[("status", text("open"))]);
    create(&s, "lead", "b", "ann", &[("status", text("closed"))]);
    create(&s, "lead", "c", "ann", &[("status", text("open"))]);
    idle(&s);
    fx.clock.advance(15 * MINUTE_MS);
    idle(&s);
    let mut ran = ran(&s, "sweep");
    ran.sort();
    assert_eq!(
        ran,
        [
            "schedule(schedule lead) lead/a",
            "schedule(schedule lead) lead/c"
        ]
    );
}

#[test]
fn a_threshold_fires_once_per_crossing() {
    let fx = Fixture::new(
        "",
        &[(
            "big-deal",
            "svc",
            "[[triggers]]\non = \"threshold\"\nobject = \"opportunity\"\nfield = \"amount\"\nabove = 100000",
        )],
    );
    let s = fx.start();
    create(
        &s,
        "opportunity",
        "O1",
        "ann",
        &[("amount", FieldValue::Number(50_000.0))],
    );
    idle(&s);
    for amount in [150_000.0, 160_000.0, 90_000.0, 120_000.0, 130_000.0] {
        update(
            &s,
            "opportunity",
            "O1",
            &[("amount", FieldValue::Number(amount))],
        );
        idle(&s);
    }
    assert_eq!(
        ran(&s, "big-deal").len(),
        2,
        "50k→150k and 90k→120k cross; the rest do not"
    );
}

#[test]
fn a_date_coming_within_range_fires_once() {
    let fx = Fixture::new(
        "",
        &[(
            "renewal",
            "svc",
            "[[triggers]]\non = \"date-within\"\nobject = \"account\"\nfield = \"renewal_date\"\nwithin = \"30d\"",
        )],
    );
    let s = fx.start();
    create(
        &s,
        "account",
        "A1",
        "ann",
        &[(
            "renewal_date",
            FieldValue::Timestamp {
                timestamp: T0 + 40 * DAY_MS,
            },
        )],
    );
    idle(&s);
    fx.clock.advance(DAY_MS);
    idle(&s);
    assert!(executions(&s).is_empty(), "39 days away");
    fx.clock.advance(10 * DAY_MS);
    idle(&s);
    fx.clock.advance(DAY_MS);
    idle(&s);
    assert_eq!(
        ran(&s, "renewal"),
        ["threshold(date-within account) account/A1"]
    );
    // A new date re-arms it.
    update(
        &s,
        "account",
        "A1",
        &[(
            "renewal_date",
            FieldValue::Timestamp {
                timestamp: T0 + 90 * DAY_MS,
            },
        )],
    );
    fx.clock.advance(50 * DAY_MS);
    idle(&s);
    assert_eq!(ran(&s, "renewal").len(), 2);
}

#[test]
fn named_events_and_signals_reach_their_workers() {
    let fx = Fixture::new(
        "",
        &[
            (
                "on-form",
                "svc",
                "[[triggers]]\non = \"event\"\nname = \"form-submitted\"",
            ),
            (
                "on-signal",
                "svc",
                "[[triggers]]\non = \"signal\"\ntopic = \"revenue.*\"",
            ),
        ],
    );
    let s = fx.start();
    let ids = s
        .submit_event(
            "form-submitted",
            EventSubmission {
                payload: Some(serde_json::json!({"form": "demo"})),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert!(
        s.submit_event("nobody-listens", EventSubmission::default())
            .unwrap()
            .is_empty()
    );
    let err = s
        .submit_event(
            "form-submitted",
            EventSubmission {
                object: Some("widget".into()),
                record_id: Some("1".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("unknown object `widget`"), "{err}");
    s.store()
        .record_signal(&roster_host::store::SignalEntry {
            seq: 0,
            id: "x".into(),
            worker: "someone-else".into(),
            topic: "revenue.closed-won".into(),
            payload: "{\"deal\":\"O1\"}".into(),
            chain: Vec::new(),
        })
        .unwrap();
    idle(&s);
    assert_eq!(
        ran(&s, "on-form"),
        ["event(form-submitted) - {\"form\":\"demo\"}"]
    );
    assert_eq!(
        ran(&s, "on-signal"),
        ["signal(revenue.closed-won) - {\"deal\":\"O1\"}"]
    );
}

#[test]
fn conditions_on_the_payload_filter_webhook_events_typed_by_the_declaration() {
    let fx = Fixture::new(
        "[events.form-submitted]\nbudget = \"number\"\ncompany = \"text\"\n",
        &[(
            "big-forms",
            "svc",
            "[[triggers]]\non = \"event\"\nname = \"form-submitted\"\n[conditions]\nall = [{ field = \"payload.budget\", op = \"greater-than\", value = 10000 }, { not = { field = \"payload.company\", op = \"is-empty\" } }]",
        )],
    );
    let s = fx.start();
    let submit = |payload: serde_json::Value| {
        s.submit_event(
            "form-submitted",
            EventSubmission {
                payload: Some(payload),
                ..Default::default()
            },
        )
    };
    submit(serde_json::json!({"budget": 12500, "company": "Acme"})).unwrap();
    submit(serde_json::json!({"budget": 900, "company": "Acme"})).unwrap();
    submit(serde_json::json!({"budget": 50000})).unwrap();
    // A declared field with the wrong type is refused and queues nothing.
    let err = submit(serde_json::json!({"budget": "a lot", "company": "Acme"})).unwrap_err();
    assert!(
        err.to_string()
            .contains("`payload of form-submitted.budget` is a number field"),
        "{err}"
    );
    idle(&s);
    // In the order submitted.
    let mut log = executions(&s);
    log.sort_by_key(|e| e.queue_seq);
    assert_eq!(log.len(), 3, "{log:#?}");
    let statuses: Vec<(&str, Option<&str>)> = log
        .iter()
        .map(|e| (e.status.as_str(), e.detail.as_deref()))
        .collect();
    assert_eq!(statuses[0].0, "success", "{log:#?}");
    assert_eq!(statuses[1], ("skipped", Some("conditions not met")));
    assert_eq!(statuses[2], ("skipped", Some("conditions not met")));
    let shown: Vec<(String, bool)> = log[1]
        .conditions
        .iter()
        .map(|c| (c.condition.clone(), c.passed))
        .collect();
    assert_eq!(
        shown,
        [
            ("payload.budget greater-than 10000.0".to_string(), false),
            ("not (payload.company is-empty)".to_string(), true),
        ]
    );

    // A declared event refuses conditions on fields it does not declare, at load.
    let bad = Fixture::new(
        "[events.form-submitted]\nbudget = \"number\"\n",
        &[(
            "typo",
            "svc",
            "[[triggers]]\non = \"event\"\nname = \"form-submitted\"\n[conditions]\nfield = \"payload.bugdet\"\nop = \"greater-than\"\nvalue = 1",
        )],
    );
    let err = HostConfig::load(&bad.config).unwrap_err();
    assert!(
        err.to_string()
            .contains("declares no payload field `bugdet`"),
        "{err}"
    );
}

#[test]
fn updates_to_one_record_run_in_order() {
    let fx = Fixture::new(
        "executors = 4",
        &[(
            "ordered",
            "svc",
            "[[triggers]]\non = \"record-updated\"\nobject = \"lead\"\nfields = [\"score\"]",
        )],
    );
    let s = fx.start();
    create(&s, "lead", "L", "ann", &[]);
    for i in 1..=20 {
        update(&s, "lead", "L", &[("score", FieldValue::Integer(i))]);
    }
    idle(&s);
    let queue_order: Vec<u64> = executions(&s).iter().map(|e| e.queue_seq).collect();
    let mut sorted = queue_order.clone();
    sorted.sort();
    assert_eq!(queue_order.len(), 20);
    assert_eq!(
        queue_order, sorted,
        "executions of one record's updates finish in order"
    );
}

#[test]
fn a_flood_past_the_hourly_cap_waits_for_later_windows_and_alerts() {
    let fx = Fixture::new(
        "plan = \"tiny\"\n[plans.tiny]\nexecutions-per-hour = 5\nactions-per-execution = 5\n[capacity-alert]\nhits = 2\nwindows = 3",
        &[(
            "flooded",
            "svc",
            "[[triggers]]\non = \"event\"\nname = \"ping\"",
        )],
    );
    let s = fx.start();
    for i in 0..12 {
        s.submit_event(
            "ping",
            EventSubmission {
                id: Some(format!("p{i}")),
                ..Default::default()
            },
        )
        .unwrap();
    }
    idle(&s);
    assert_eq!(ran(&s, "flooded").len(), 5);
    assert_eq!(s.queue_status().waiting_for_capacity, 7);
    assert!(
        s.store().alerts().unwrap().is_empty(),
        "one capped window is not yet a pattern"
    );
    fx.clock.advance(HOUR_MS);
    idle(&s);
    assert_eq!(ran(&s, "flooded").len(), 10);
    let alerts = s.store().alerts().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].message.contains("flooded"));
    let outbox = s.store().outbox().unwrap();
    assert!(
        outbox.iter().any(|n| n.recipients == ["ann"]
            && n.subject.as_deref() == Some("flooded is at its hourly limit")),
        "{outbox:?}"
    );
    fx.clock.advance(HOUR_MS);
    idle(&s);
    assert_eq!(
        ran(&s, "flooded").len(),
        12,
        "every trigger ran; none were dropped"
    );
    assert_eq!(s.store().queue_len().unwrap(), 0);
}

#[test]
fn every_condition_operator_is_evaluated_and_logged() {
    let fx = Fixture::new(
        "",
        &[(
            "ops",
            "svc",
            r#"[[triggers]]
on = "record-created"
object = "lead"

[conditions]
any = [
  { field = "status", op = "equals", value = "NEW" },
  { field = "status", op = "not-equals", value = "new" },
  { field = "company", op = "contains", value = "acme" },
  { field = "tags", op = "contains", value = "vip" },
  { field = "email", op = "starts-with", value = "ada@" },
  { field = "email", op = "ends-with", value = "@gmail.com" },
  { field = "phone", op = "is-empty" },
  { field = "title", op = "is-not-empty" },
  { field = "employees", op = "greater-than", value = 100 },
  { field = "employees", op = "less-than", value = 100 },
  { owner-has-role = "ae" },
  { no-activity-for = "30d" },
]"#,
        )],
    );
    let s = fx.start();
    create(
        &s,
        "lead",
        "ops-1",
        "bob",
        &[
            ("status", text("New")),
            ("company", text("ACME Corp")),
            ("tags", FieldValue::TextList(vec!["VIP".into()])),
            ("email", text("ada@acme.test")),
            ("title", text("CTO")),
            ("employees", FieldValue::Integer(250)),
        ],
    );
    idle(&s);
    let entry = executions(&s).remove(0);
    let results: Vec<(String, bool)> = entry
        .conditions
        .into_iter()
        .map(|c| (c.condition, c.passed))
        .collect();
    let expected = [
        ("status equals \"NEW\"", true),
        ("status not-equals \"new\"", false),
        ("company contains \"acme\"", true),
        ("tags contains \"vip\"", true),
        ("email starts-with \"ada@\"", true),
        ("email ends-with \"@gmail.com\"", false),
        ("phone is-empty", true),
        ("title is-not-empty", true),
        ("employees greater-than 100", true),
        ("employees less-than 100", false),
        ("owner has role \"ae\"", true),
        ("no activity for 30 days", false),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(c, p)| (c.to_string(), *p)).collect();
    assert_eq!(results, expected);
    assert_eq!(entry.status, "success", "any = [...] held");
}

#[test]
fn an_aggregate_threshold_fires_once_per_group_crossing() {
    let fx = Fixture::new(
        "",
        &[(
            "quota",
            "svc",
            r#"[[triggers]]
on = "threshold"
object = "opportunity"
aggregate = "sum"
field = "amount"
group-by = "owner"
where = [{ field = "status", op = "equals", value = "won" }]
above = 100000"#,
        )],
    );
    let s = fx.start();
    let won = |id: &str, owner: &str, amount: f64| {
        create(
            &s,
            "opportunity",
            id,
            owner,
            &[
                ("status", text("won")),
                ("amount", FieldValue::Number(amount)),
            ],
        );
        idle(&s);
    };
    won("a1", "ann", 60_000.0);
    create(
        &s,
        "opportunity",
        "a-open",
        "ann",
        &[
            ("status", text("open")),
            ("amount", FieldValue::Number(500_000.0)),
        ],
    );
    idle(&s);
    assert!(ran(&s, "quota").is_empty(), "open deals do not count");
    won("a2", "ann", 50_000.0);
    won("a3", "ann", 10_000.0);
    won("b1", "bob", 120_000.0);
    let mut fired = ran(&s, "quota");
    fired.sort();
    assert_eq!(
        fired,
        [
            "threshold(threshold opportunity) - {\"group\":\"ann\",\"value\":110000.0,\"above\":100000.0}",
            "threshold(threshold opportunity) - {\"group\":\"bob\",\"value\":120000.0,\"above\":100000.0}",
        ]
    );
    // Moving a deal away takes ann back under; winning again crosses again.
    update(&s, "opportunity", "a2", &[("status", text("lost"))]);
    idle(&s);
    won("a4", "ann", 45_000.0);
    assert_eq!(ran(&s, "quota").len(), 3);
}
