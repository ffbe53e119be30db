//! Rules made without code: each template's preset, deployed through the rules worker on
//! the demo business, does what the code template does (their action logs compared, same
//! business, same clock, same events); rules are refused on save with errors naming the
//! step; a deployed rule is versioned and rolled back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use roster_host::Error;
use roster_host::clock::{DAY_MS, MINUTE_MS, ManualClock};
use roster_host::config::HostConfig;
use roster_host::distribution::install::{GrantChoice, InstallOptions};
use roster_host::governance::directory::{Directory, Principal, PrincipalKind, Sees};
use roster_host::service::staging::Dataset;
use roster_host::service::{InstallSource, Service};
use test_programs_artifacts as artifacts;

use crate::install::Registry;
use crate::serve::{executions, idle};

const TOKEN: &str = "push-token-for-tests";
/// The demo business's "now" when it is loaded: 2027-03-01T07:00:00Z.
const START: i64 = 1_803_884_400_000;
const SEED: u64 = 7;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The signing key the tests publish with.
fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[11u8; 32])
}

/// Signs and pushes a first-party plugin (its built component and manifest) as
/// `roster/<package>:<version>`; returns the reference.
fn publish(registry: &Registry, package: &str, component: &str) -> String {
    let manifest = repo().join("plugins").join(package).join("worker.toml");
    publish_as(
        registry,
        package,
        component,
        &std::fs::read_to_string(&manifest).unwrap(),
    )
}

/// Signs and pushes a first-party plugin's component under the manifest `text`.
fn publish_as(registry: &Registry, package: &str, component: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("worker.toml");
    std::fs::write(&manifest, text).unwrap();
    let text = text.to_string();
    let version = roster_host::Manifest::parse(&manifest, &text)
        .unwrap()
        .plugin
        .version;
    let reference = registry.at(&format!("roster/{package}:{version}"));
    roster_host::distribution::publish::prepare(
        &manifest,
        &text,
        std::fs::read(component).unwrap(),
        Some(&key()),
        &reference,
        "2026-12-01T00:00:00Z",
    )
    .unwrap()
    .push(&reference, Some(TOKEN.into()))
    .unwrap();
    reference
}

fn principal(id: &str, kind: PrincipalKind, teams: &[&str], sees: Sees) -> Principal {
    Principal {
        id: id.into(),
        kind,
        teams: teams.iter().map(|t| t.to_string()).collect(),
        roles: vec!["ae".into()],
        sees,
        email: None,
    }
}

/// A service over the demo business (its history loaded, triggering nothing), installing
/// from `registry`.
struct Business {
    _dir: tempfile::TempDir,
    clock: ManualClock,
    service: Service,
}

impl Business {
    fn open(registry: &Registry) -> Business {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HostConfig::defaults();
        config.data_dir = dir.path().join("data");
        config.trusted_keys = vec![key().verifying_key()];
        config.registry_sources = vec![format!("127.0.0.1:{}", registry.port)];
        // One executor: executions in the order their events came, for both to compare.
        config.executors = 1;
        config.directory = Directory::new(vec![
            principal("ann", PrincipalKind::User, &["emea"], Sees::Team),
            principal("bob", PrincipalKind::User, &["emea"], Sees::Team),
            principal("cat", PrincipalKind::User, &["na"], Sees::Team),
            principal("dan", PrincipalKind::User, &["na"], Sees::Team),
            principal("svc-revenue", PrincipalKind::Service, &[], Sees::All),
        ])
        .unwrap();
        let clock = ManualClock::new(START);
        let service = Service::start(config, Arc::new(clock.clone())).unwrap();
        let store = service.store();
        let history = roster_host::cli::demo::history(SEED, START);
        for chunk in history.chunks(500) {
            store
                .import_records(chunk.to_vec(), "demo-history")
                .unwrap();
        }
        store
            .set_counter("trigger-cursor", store.counter("changes").unwrap())
            .unwrap();
        idle(&service);
        Business {
            _dir: dir,
            clock,
            service,
        }
    }

    /// Installs a code template under exactly what it requests, as `svc-revenue`.
    fn install(&self, reference: &str) -> String {
        let options = InstallOptions {
            grant: Some(GrantChoice::Requested),
            principal: Some("svc-revenue".into()),
            by: "test".into(),
            ..InstallOptions::default()
        };
        let plan = self
            .service
            .plan_install(InstallSource::Registry(reference.into()), &options)
            .unwrap();
        self.service.install(plan).unwrap()
    }

    /// Saves a rule, tries it on `dataset`, deploys it.
    fn deploy(&self, text: &str, dataset: &Dataset) -> String {
        let view = self.service.save_rule(text, "test").unwrap();
        let name = view.rule.name.clone();
        let report = self
            .service
            .test_rule(&name, None, dataset, "test")
            .unwrap();
        assert!(
            report.summary.ran > 0 && report.summary.failed == 0,
            "{name}: {:#?}",
            report.summary
        );
        self.service
            .deploy_rule(&name, None, "test", "the preset")
            .unwrap();
        name
    }

    /// `steps` of the day's activity, `every` apart, each settled before the next.
    fn run_business(&self, steps: u64, every: i64) {
        let store = self.service.store();
        for n in 0..steps {
            let now = roster_host::clock::Clock::now_ms(&self.clock);
            if let Some(step) = roster_host::cli::demo::activity(SEED, n, now)
                .resolve(store)
                .unwrap()
            {
                let actor = format!("demo:{}", roster_host::cli::demo::SELLERS[(n % 4) as usize]);
                step.apply(store, &actor).unwrap();
            }
            idle(&self.service);
            self.clock.advance(every);
        }
        idle(&self.service);
    }

    /// The side effects `worker`'s executions took, as `capability.operation target`, in
    /// order (held ones marked), and how many executions acted.
    fn actions(&self, worker: &str) -> (Vec<String>, usize) {
        let mut lines = Vec::new();
        let mut acted = 0;
        for e in executions(&self.service) {
            if e.worker != worker {
                continue;
            }
            let Some(report) = e.report else { continue };
            let before = lines.len();
            for a in report["actions"].as_array().into_iter().flatten() {
                if a["kind"] != "effect" {
                    continue;
                }
                let held = if a["result"]["held"].is_object() || a["result"] == "held" {
                    " [held]"
                } else {
                    ""
                };
                lines.push(format!(
                    "{}.{} {}{held}",
                    a["capability"].as_str().unwrap_or_default(),
                    a["operation"].as_str().unwrap_or_default(),
                    a["target"].as_str().unwrap_or_default()
                ));
            }
            acted += usize::from(lines.len() > before);
        }
        (lines, acted)
    }
}

/// Records of `object` from the demo business, as a dataset to try a rule on.
fn sample(object: &str, most: usize) -> Dataset {
    let records: Vec<_> = roster_host::cli::demo::history(SEED, START)
        .into_iter()
        .filter(|r| r.object == object)
        .take(most)
        .collect();
    Dataset {
        records,
        events: Vec::new(),
    }
}

/// Records of `object` with `field` set to `value` on every `nth` one.
fn sample_with(object: &str, most: usize, field: &str, value: &str, nth: usize) -> Dataset {
    let mut d = sample(object, most);
    for r in d.records.iter_mut().step_by(nth) {
        r.fields.insert(
            field.into(),
            roster_host::value::FieldValue::Text(value.into()),
        );
    }
    d
}

fn preset(name: &str) -> String {
    std::fs::read_to_string(repo().join("examples/rules").join(format!("{name}.toml"))).unwrap()
}

/// Runs the demo business once with the code template installed and once with its preset
/// deployed, and compares what each did. Returns the rule run's action lines.
fn same_actions(
    package: &str,
    component: &str,
    dataset: Dataset,
    steps: u64,
    every: i64,
) -> Vec<String> {
    let registry = Registry::start();
    let template = publish(&registry, package, component);
    publish(&registry, "rules", artifacts::RULES);

    let code = Business::open(&registry);
    let name = code.install(&template);
    code.run_business(steps, every);
    let (mut expected, code_acted) = code.actions(&name);
    code.service.shutdown();

    let rule = Business::open(&registry);
    let name = rule.deploy(&preset(package), &dataset);
    rule.run_business(steps, every);
    let (mut got, rule_acted) = rule.actions(&name);
    rule.service.shutdown();

    assert!(
        !expected.is_empty(),
        "{package}: the template did nothing to compare"
    );
    expected.sort();
    got.sort();
    if got != expected {
        let mut only_template = expected.clone();
        let mut only_rule = Vec::new();
        for line in &got {
            match only_template.iter().position(|l| l == line) {
                Some(i) => {
                    only_template.remove(i);
                }
                None => only_rule.push(line.clone()),
            }
        }
        panic!(
            "{package}: the preset's actions differ from the template's\nonly the template: {only_template:?}\nonly the rule: {only_rule:?}"
        );
    }
    eprintln!(
        "{package}: {} actions, the same (template: {code_acted} acting executions, rule: {rule_acted})",
        got.len()
    );
    got
}

#[test]
fn the_deal_stage_notifier_preset_does_what_the_template_does() {
    same_actions(
        "deal-stage-notifier",
        artifacts::DEAL_STAGE_NOTIFIER,
        sample("opportunity", 20),
        400,
        5 * MINUTE_MS,
    );
}

#[test]
fn the_win_loss_logger_preset_does_what_the_template_does() {
    let got = same_actions(
        "win-loss-logger",
        artifacts::WIN_LOSS_LOGGER,
        sample("opportunity", 40),
        600,
        5 * MINUTE_MS,
    );
    assert!(got.iter().any(|l| l.starts_with("signals.emit")), "{got:?}");
}

#[test]
fn the_stale_lead_alerter_preset_does_what_the_template_does() {
    same_actions(
        "stale-lead-alerter",
        artifacts::STALE_LEAD_ALERTER,
        sample("lead", 60),
        60,
        40 * MINUTE_MS,
    );
}

#[test]
fn the_renewal_reminder_preset_does_what_the_template_does() {
    same_actions(
        "renewal-reminder",
        artifacts::RENEWAL_REMINDER,
        sample("account", 40),
        48,
        DAY_MS / 2,
    );
}

#[test]
fn the_meeting_no_show_preset_does_what_the_template_does() {
    same_actions(
        "meeting-no-show-follow-up",
        artifacts::MEETING_NO_SHOW_FOLLOW_UP,
        sample_with("meeting", 20, "status", "no-show", 3),
        600,
        5 * MINUTE_MS,
    );
}

#[test]
fn the_quota_milestone_preset_does_what_the_template_does() {
    let mut dataset = sample("opportunity", 0);
    dataset.events = serde_json::from_value(serde_json::json!([
        { "trigger": { "type": "threshold", "name": "threshold" }, "payload": { "group": "ann", "value": 85000.0, "above": 80000.0 } }
    ]))
    .unwrap();
    same_actions(
        "quota-milestone-alert",
        artifacts::QUOTA_MILESTONE_ALERT,
        dataset,
        600,
        5 * MINUTE_MS,
    );
}

#[test]
fn a_rule_is_refused_on_save_naming_the_step_and_nothing_is_deployed() {
    let registry = Registry::start();
    // A rules worker whose publisher allows in-app and email only.
    let manifest = std::fs::read_to_string(repo().join("plugins/rules/worker.toml")).unwrap();
    let narrowed = manifest.replacen(
        "channels = [\"in-app\", \"email\", \"sms\", \"slack\", \"teams\"]",
        "channels = [\"in-app\", \"email\"]",
        1,
    );
    assert_ne!(narrowed, manifest);
    publish_as(&registry, "rules", artifacts::RULES, &narrowed);
    let b = Business::open(&registry);
    let routing = preset("enterprise-lead-routing");
    let refused = |text: &str| match b.service.save_rule(text, "test") {
        Err(Error::RuleRefused(problems)) => problems,
        other => panic!("{other:?}"),
    };
    // An unknown field.
    let p = refused(&routing.replacen("{{lead.company}})", "{{lead.compnay}})", 1));
    assert!(
        p[0].starts_with("step 2 (create `task`): field `subject`") && p[0].contains("compnay"),
        "{p:?}"
    );
    // An operator that does not fit the field's type.
    let p = refused(&routing.replacen(
        "op = \"greater-than\", value = 500",
        "op = \"greater-than\", value = \"many\"",
        1,
    ));
    assert!(
        p[0].starts_with("conditions:") && p[0].contains("integer"),
        "{p:?}"
    );
    // A channel that is not one.
    let p = refused(&routing.replacen("channel = \"slack\"", "channel = \"fax\"", 1));
    assert!(
        p[0].starts_with("step 3 (notify): `fax` is not a channel"),
        "{p:?}"
    );
    // A channel the rules worker is not granted.
    let p = refused(&routing);
    assert_eq!(
        p,
        [
            "step 3 (notify): channel `slack` is not granted to the rules worker (its manifest allows in-app, email)"
        ]
    );
    // A cycle of signals.
    let p = refused(
        "[rule]\nname = \"echo\"\ndomain = \"revenue\"\n\n[[triggers]]\non = \"signal\"\ntopic = \"revenue.*\"\n\n[[steps]]\naction = \"emit\"\ntopic = \"revenue.echo\"\n",
    );
    assert!(
        p[0].starts_with("step 1 (emit)") && p[0].contains("cycle"),
        "{p:?}"
    );
    // Nothing was saved or installed.
    assert!(b.service.rules().unwrap().is_empty());
    assert!(b.service.installations().is_empty());
    b.service.shutdown();
}

#[test]
fn a_rule_is_versioned_gated_deployed_and_rolled_back() {
    let registry = Registry::start();
    publish(&registry, "rules", artifacts::RULES);
    let b = Business::open(&registry);
    let v1 = preset("enterprise-lead-routing");
    let view = b.service.save_rule(&v1, "test").unwrap();
    let name = view.rule.name.clone();
    assert_eq!(view.rule.versions.len(), 1);
    // Saving the same text again adds no version.
    assert_eq!(
        b.service
            .save_rule(&v1, "test")
            .unwrap()
            .rule
            .versions
            .len(),
        1
    );
    // Not tried in dry-run yet: not ready, and deploying is refused.
    let e = b
        .service
        .deploy_rule(&name, None, "test", "go")
        .unwrap_err();
    assert!(e.to_string().contains("tested:"), "{e}");
    assert!(b.service.installations().is_empty());
    let enterprise = || {
        let mut d = sample("lead", 10);
        for r in &mut d.records {
            r.owner = Some("ann".into());
            r.fields.insert(
                "employees".into(),
                roster_host::value::FieldValue::Integer(900),
            );
        }
        d
    };
    let report = b
        .service
        .test_rule(&name, None, &enterprise(), "test")
        .unwrap();
    assert!(report.summary.ran > 0, "{:?}", report.summary);
    assert_eq!(report.summary.failed, 0);
    let view = b.service.deploy_rule(&name, None, "test", "go").unwrap();
    assert_eq!(view.rule.deployed, Some(1));
    let installed = b.service.installations();
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].plugin, "roster.rules");
    assert_eq!(installed[0].principal, "svc-revenue");

    // Version 2 posts to a channel instead; deployed, then rolled back to version 1.
    let v2 = v1.replacen(
        "to = [\"{{steps.owner.owner}}\"]",
        "to = [\"#enterprise\"]",
        1,
    );
    assert_eq!(
        b.service
            .save_rule(&v2, "test")
            .unwrap()
            .rule
            .versions
            .len(),
        2
    );
    b.service
        .test_rule(&name, None, &enterprise(), "test")
        .unwrap();
    let view = b
        .service
        .deploy_rule(&name, None, "test", "channel")
        .unwrap();
    assert_eq!(
        (view.rule.deployed, view.rule.history.clone()),
        (Some(2), vec![1])
    );
    let grant = b
        .service
        .store()
        .installs(&name)
        .unwrap()
        .last()
        .unwrap()
        .grant
        .clone();
    assert!(grant.contains("#enterprise"), "{grant}");
    let view = b.service.rollback_rule(&name, "test", "back").unwrap();
    assert_eq!(
        (view.rule.deployed, view.rule.history.clone()),
        (Some(1), vec![])
    );
    let grant = b
        .service
        .store()
        .installs(&name)
        .unwrap()
        .last()
        .unwrap()
        .grant
        .clone();
    assert!(
        !grant.contains("#enterprise") && grant.contains("\"ann\""),
        "{grant}"
    );
    // Each step is in the audit trail.
    let query = roster_host::store::AuditQuery {
        worker: Some(name.clone()),
        ..Default::default()
    };
    let actions: Vec<String> = b
        .service
        .store()
        .audit_search(&query, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.trigger.strip_prefix("governance:").map(str::to_string))
        .filter(|a| a.starts_with("rule."))
        .collect();
    assert_eq!(
        actions,
        [
            "rule.save",
            "rule.test",
            "rule.deploy",
            "rule.save",
            "rule.test",
            "rule.deploy",
            "rule.rollback"
        ]
    );
    b.service.shutdown();
}

/// The rule of the first paragraph of docs/rules.md, written as a file from its preset
/// and applied with the CLI to `roster up`'s running service: it fires on a matching new
/// lead and not on two that do not match, and its audit entries hold every condition and
/// every action with the merge fields filled in.
#[test]
fn the_routing_rule_applied_through_the_cli_fires_only_on_a_matching_lead() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let (data, cwd) = (data.path(), cwd.path());
    let port = crate::serve_process::free_port();
    let mut up = crate::up::Up::start_with(data, port, &["--no-activity"]);
    let published = up.until(Duration::from_secs(600), |l| {
        l.contains("published roster.rules")
    });
    assert!(published.contains("for rules"), "{published}");
    up.until(Duration::from_secs(300), |l| {
        l.starts_with("roster serving on")
    });
    let ok = |args: &[&str]| {
        let (code, out, err) = crate::cli_live::roster(cwd, data, args, &[]);
        assert_eq!(code, 0, "roster {args:?}:\n{out}\n{err}");
        out
    };

    // Written from the preset, checked, tried, deployed.
    ok(&[
        "rules",
        "new",
        "emea-routing",
        "--from",
        "enterprise-lead-routing",
    ]);
    let file = cwd.join("emea-routing.toml");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("name = \"emea-routing\"")
    );
    let checked = ok(&["rules", "validate", "emea-routing.toml"]);
    assert!(
        checked.contains("is valid; it acts as svc-revenue"),
        "{checked}"
    );
    assert!(checked.contains("write = [\"owner\"]"), "{checked}");
    let lead = |id: &str, owner: &str, name: &str, company: &str, employees: i64| {
        serde_json::json!({
            "object": "lead", "id": id, "owner": owner,
            "fields": { "name": name, "company": company, "employees": employees, "status": "open" }
        })
    };
    let dataset = serde_json::json!({ "records": [lead("L-T1", "bob", "Tess Ode", "Acme", 800)] });
    std::fs::write(cwd.join("staging.json"), dataset.to_string()).unwrap();
    let tried = ok(&[
        "rules",
        "test",
        "emea-routing.toml",
        "--dataset",
        "staging.json",
    ]);
    assert!(
        tried.contains("1 ran") && tried.contains("0 failed"),
        "{tried}"
    );
    let deployed = ok(&[
        "rules",
        "deploy",
        "emea-routing",
        "--reason",
        "EMEA enterprise routing",
    ]);
    let deployed: serde_json::Value = serde_json::from_str(&deployed).unwrap();
    assert_eq!(deployed["rule"]["deployed"], 1, "{deployed}");
    assert_eq!(deployed["installed"], true);

    // Three new leads: an EMEA enterprise lead, an NA one and a small EMEA one.
    let leads = [
        lead("L-RULE-1", "bob", "Ada Park", "Globex", 900),
        lead("L-RULE-2", "cat", "Ben Ode", "Initech", 900),
        lead("L-RULE-3", "ann", "Cy Lo", "Tiny Ltd", 40),
    ];
    let lines: Vec<String> = leads.iter().map(|l| l.to_string()).collect();
    std::fs::write(cwd.join("leads.jsonl"), lines.join("\n")).unwrap();
    ok(&["records", "import", "leads.jsonl"]);

    // Its audit entries: one per lead, once each has been decided.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let entries = loop {
        let out = ok(&["audit", "search", "--worker", "emea-routing", "--json"]);
        let entries: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|e| e["entry"].clone())
            .filter(|e| {
                e["record"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("lead/L-RULE"))
            })
            .collect();
        if entries.len() >= 3 || std::time::Instant::now() > deadline {
            break entries;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let of = |id: &str| {
        entries
            .iter()
            .find(|e| e["record"] == format!("lead/{id}"))
            .unwrap_or_else(|| panic!("no entry for {id}: {entries:#?}"))
    };
    // The NA lead and the small one: conditions not met, no sandbox, nothing done.
    for (id, failed) in [
        ("L-RULE-2", "owner in team \"emea\""),
        ("L-RULE-3", "employees greater-than 500"),
    ] {
        let e = of(id);
        assert!(e["report"].is_null(), "{e}");
        assert_eq!(e["detail"], "conditions not met", "{e}");
        assert!(
            e["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["passed"] == false && c["condition"].as_str().unwrap().contains(failed)),
            "{id}: {e}"
        );
    }
    // The EMEA enterprise lead: every condition held; assigned, a call task, a Slack post
    // (held for a person: the rule runs supervised).
    let e = of("L-RULE-1");
    assert!(
        e["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true),
        "{e}"
    );
    let actions: Vec<String> = e["report"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "effect")
        .map(|a| {
            format!(
                "{}.{} {} {}",
                a["capability"].as_str().unwrap(),
                a["operation"].as_str().unwrap(),
                a["target"].as_str().unwrap(),
                a["result"]
            )
        })
        .collect();
    assert_eq!(actions.len(), 3, "{actions:#?}");
    assert!(
        actions[0].starts_with("records.update lead/L-RULE-1 \"performed\""),
        "{actions:?}"
    );
    assert!(
        actions[1].starts_with("records.create task \"performed\""),
        "{actions:?}"
    );
    assert!(
        actions[2].starts_with("notify.send slack:ann"),
        "{actions:?}"
    );
    let logs = e["report"]["logs"].to_string();
    for resolved in [
        "assigned lead/L-RULE-1 to ann (round-robin)",
        "subject=\\\"Call Ada Park (Globex)\\\"",
        "assignee=\\\"ann\\\"",
        "related_to=\\\"lead/L-RULE-1\\\"",
        "slack to ann: New enterprise lead Ada Park from Globex (900 employees) is yours",
    ] {
        assert!(logs.contains(resolved), "{resolved} not in {logs}");
    }
    assert!(
        !logs.contains("{{"),
        "every merge field is filled in: {logs}"
    );
    let record = ok(&["records", "get", "lead", "L-RULE-1"]);
    assert!(record.contains("\"owner\": \"ann\""), "{record}");
    let (status, _) = up.interrupt();
    assert!(status.success());
}

/// Every preset is valid against the documented JSON Schema (checked by Python's
/// `jsonschema`, which the API tests' schemathesis installs), and a misspelt step is not.
#[test]
fn the_presets_follow_the_documented_json_schema() {
    let script = r#"
import json, sys, tomllib
import jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        rule = tomllib.load(f)
    errors = sorted(e.message for e in validator.iter_errors(rule))
    print(json.dumps({"file": path, "errors": errors}))
"#;
    let work = tempfile::tempdir().unwrap();
    let bad = work.path().join("bad.toml");
    std::fs::write(
        &bad,
        preset("enterprise-lead-routing").replacen("action = \"notify\"", "action = \"nofity\"", 1),
    )
    .unwrap();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(repo().join("examples/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(repo().join("docs/rules.schema.json"))
        .args(&files)
        .arg(&bad)
        .output()
        .expect("python3 runs (apt-get install -y python3)");
    assert!(
        out.status.success(),
        "python3 with jsonschema is needed (python3 -m pip install schemathesis==4.32.5): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), files.len() + 1);
    for r in &results[..files.len()] {
        assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    }
    assert_ne!(results[files.len()]["errors"], serde_json::json!([]));
}

/// A merge field of a related record is filled from that record (the account an
/// opportunity's `account_id` names), and shows empty when the link names none.
#[test]
fn a_related_record_fills_its_merge_fields() {
    let registry = Registry::start();
    publish(&registry, "rules", artifacts::RULES);
    let b = Business::open(&registry);
    let rule = r#"
[rule]
name = "deal-heads-up"
domain = "revenue"

[[triggers]]
on = "record-created"
object = "opportunity"

[[steps]]
action = "notify"
channel = "in-app"
to = ["ann"]
message = "{{opportunity.name}} for {{opportunity.account.name | default: no account}}"
"#;
    b.service.save_rule(rule, "test").unwrap();
    let dataset: Dataset = serde_json::from_value(serde_json::json!({
        "records": [
            { "object": "account", "id": "A-X", "owner": "ann", "fields": { "name": "Globex Corporation" } },
            { "object": "opportunity", "id": "O-X", "owner": "ann", "fields": { "name": "Renewal", "account_id": "A-X" } },
            { "object": "opportunity", "id": "O-Y", "owner": "ann", "fields": { "name": "Orphan" } }
        ]
    }))
    .unwrap();
    let report = b
        .service
        .test_rule("deal-heads-up", None, &dataset, "test")
        .unwrap();
    let bodies: Vec<String> = report
        .runs
        .iter()
        .flat_map(|r| r.report.iter())
        .flat_map(|r| r.actions.iter())
        .filter_map(|a| a.proposal.as_ref())
        .map(|p| p["body"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        bodies,
        ["Renewal for Globex Corporation", "Orphan for no account"],
        "{report:#?}"
    );
    b.service.shutdown();
}
