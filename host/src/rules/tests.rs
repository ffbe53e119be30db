use super::*;
use crate::governance::directory::{Principal, PrincipalKind, Sees};

const ROUTING: &str = r#"
[rule]
name = "enterprise-lead-routing"
description = "Enterprise leads in EMEA: round-robin to the enterprise reps, a call task, a Slack note"
domain = "revenue"

[[triggers]]
on = "record-created"
object = "lead"

[conditions]
all = [
  { field = "employees", op = "greater-than", value = 500 },
  { owner-in-team = "emea" },
]

[[steps]]
id = "owner"
action = "assign"
strategy = "round-robin"
to = ["ann", "bob"]

[[steps]]
id = "task"
action = "create"
object = "task"
fields = { subject = "Call {{lead.name}} ({{lead.company}})", due_date = { in-days = 2 }, assignee = "{{steps.owner.owner}}", related_to = "lead/{{lead.id}}", priority = "high" }

[[steps]]
action = "notify"
channel = "slack"
to = ["{{steps.owner.owner}}"]
message = "New enterprise lead {{lead.name}} from {{lead.company}}: call task {{steps.task.id}}"
"#;

fn directory() -> Directory {
    let person = |id: &str| Principal {
        id: id.into(),
        kind: PrincipalKind::User,
        teams: vec!["emea".into()],
        roles: vec![],
        sees: Sees::Team,
        email: None,
    };
    Directory::new(vec![person("ann"), person("bob")]).unwrap()
}

fn checked(text: &str) -> Result<Checked, Vec<String>> {
    let file: RuleFile = toml::from_str(text).unwrap();
    check(&file, &Schema::standard(), &directory())
}

#[test]
fn the_routing_rule_checks_and_says_what_it_touches() {
    let rule = checked(ROUTING).unwrap();
    assert_eq!(rule.chain.rule, "enterprise-lead-routing");
    assert_eq!(rule.chain.object.as_deref(), Some("lead"));
    assert_eq!(rule.chain.steps.len(), 3);
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(rule.reads["lead"], set(&["company", "employees", "name"]));
    assert_eq!(rule.writes["lead"], set(&["owner"]));
    assert_eq!(
        rule.writes["task"],
        set(&["assignee", "due_date", "priority", "related_to", "subject"])
    );
    assert_eq!(rule.creates, set(&["task"]));
    assert_eq!(rule.channels, BTreeSet::from([Channel::Slack]));
    assert!(rule.topics.is_empty());
    // The grant: exactly that, Slack to the principals an owner can be.
    let scopes = rule.scopes();
    let records = scopes.records.unwrap();
    assert_eq!(
        records.objects["lead"].read,
        ["company", "employees", "name"]
    );
    assert_eq!(records.objects["lead"].write, ["owner"]);
    assert!(!records.objects["lead"].create && records.objects["task"].create);
    let notify = scopes.notify.unwrap();
    assert_eq!(notify.channels, [Channel::Slack]);
    assert_eq!(notify.recipients, ["ann", "bob"]);
    assert_eq!(scopes.signals.unwrap().topics, Vec::<String>::new());
    assert!(scopes.http.is_none() && scopes.inference.is_none());
}

#[test]
fn steps_may_have_conditions_and_read_the_change() {
    let rule = checked(&format!(
        "{}
[[steps]]
action = \"sequence\"
op = \"add\"
sequence = \"enterprise-nurture\"
when = {{ field = \"company\", op = \"is-not-empty\" }}
",
        ROUTING
    ))
    .unwrap();
    assert_eq!(rule.when.len(), 1);
    assert!(rule.when.contains_key(&4));
    assert!(rule.creates.contains("sequence_enrollment"));
    // A step condition is checked like any condition.
    let e = checked(&format!(
        "{ROUTING}\n[[steps]]\naction = \"sequence\"\nop = \"add\"\nsequence = \"n\"\nwhen = {{ field = \"compnay\", op = \"is-not-empty\" }}\n"
    ))
    .unwrap_err();
    assert!(
        e[0].starts_with("step 4 (sequence): when:") && e[0].contains("compnay"),
        "{e:?}"
    );
    // `changes` needs a record-updated trigger.
    let e =
        checked(&ROUTING.replacen("{{lead.company}})", "{{changes.company.old}})", 1)).unwrap_err();
    assert!(
        e[0].contains("`changes` needs a record-updated trigger"),
        "{e:?}"
    );
}

#[test]
fn an_approval_holds_the_steps_after_it() {
    let text = ROUTING.replacen(
        "[[steps]]\naction = \"notify\"",
        "[[steps]]\naction = \"request-approval\"\nreason = \"Slack posts are reviewed\"\n\n[[steps]]\naction = \"notify\"",
        1,
    );
    let rule = checked(&text).unwrap();
    let review = rule.review();
    assert_eq!(review.stage, crate::store::Stage::Supervised);
    assert_eq!(review.rules.len(), 1);
    assert_eq!(review.rules[0].action.as_deref(), Some("notify.send"));
    // An approval in front of a step whose action also came before it would hold both.
    let text = ROUTING.replacen(
        "[[steps]]\nid = \"task\"",
        "[[steps]]\naction = \"request-approval\"\nreason = \"check\"\n\n[[steps]]\naction = \"assign\"\nstrategy = \"round-robin\"\nto = [\"bob\"]\n\n[[steps]]\nid = \"task\"",
        1,
    );
    let e = checked(&text).unwrap_err();
    assert!(e[0].contains("would be held too"), "{e:?}");
}

#[test]
fn each_mistake_is_named_by_its_step() {
    let with = |from: &str, to: &str| {
        assert!(ROUTING.contains(from), "{from}");
        checked(&ROUTING.replacen(from, to, 1)).unwrap_err()
    };
    // An unknown field, in a merge field and in a written field.
    let e = with("{{lead.company}})", "{{lead.compnay}})");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("step 2 (create `task`): field `subject`: `{{lead.compnay}}`"),
        "{e:?}"
    );
    assert!(e[0].contains("compnay"), "{e:?}");
    let e = with("priority = \"high\"", "prio = \"high\"");
    assert!(
        e[0].starts_with("step 2 (create `task`)") && e[0].contains("prio"),
        "{e:?}"
    );
    // A value that does not fit the field's type; an operator that does not fit.
    let e = with("due_date = { in-days = 2 }", "due_date = \"soon\"");
    assert!(e[0].contains("timestamp field"), "{e:?}");
    let e = with(
        "op = \"greater-than\", value = 500",
        "op = \"greater-than\", value = \"many\"",
    );
    assert!(
        e[0].starts_with("conditions:") && e[0].contains("integer field"),
        "{e:?}"
    );
    // A channel that does not exist; a principal that does not.
    let e = with("channel = \"slack\"", "channel = \"pager\"");
    assert!(
        e[0].starts_with("step 3 (notify): `pager` is not a channel"),
        "{e:?}"
    );
    let e = with("to = [\"ann\", \"bob\"]", "to = [\"ann\", \"zed\"]");
    assert!(
        e[0].starts_with("step 1 (assign `owner`): `zed` is not a principal"),
        "{e:?}"
    );
    // A later step's output used before it exists.
    let e = with("{{steps.task.id}}", "{{steps.later.id}}");
    assert!(e[0].contains("no earlier step is named `later`"), "{e:?}");
    let e = with(
        "{{steps.owner.owner}}\", related_to",
        "{{steps.owner.id}}\", related_to",
    );
    assert!(e[0].contains("step `owner` gives `owner`"), "{e:?}");
    // A misspelt action is refused when the file is read.
    let err = toml::from_str::<RuleFile>(&ROUTING.replacen(
        "action = \"notify\"",
        "action = \"nofity\"",
        1,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown variant `nofity`"), "{err}");
}

#[test]
fn a_rule_triggered_by_what_it_emits_is_a_cycle() {
    let e = checked(
        r#"
        [rule]
        name = "echo"
        domain = "revenue"
        [[triggers]]
        on = "signal"
        topic = "revenue.*"
        [[steps]]
        action = "emit"
        topic = "revenue.again"
        payload = { from = "{{payload.deal}}" }
        "#,
    )
    .unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("emits `revenue.again`, which triggers this rule (`revenue.*`): a cycle"),
        "{e:?}"
    );
}

#[test]
fn steps_that_need_a_record_say_so_on_record_less_triggers() {
    let e = checked(
        r#"
        [rule]
        name = "forms"
        domain = "revenue"
        [[triggers]]
        on = "event"
        name = "form-submitted"
        [conditions]
        field = "payload.budget"
        op = "greater-than"
        value = 10000
        [[steps]]
        action = "update"
        set = { status = "hot" }
        [[steps]]
        action = "notify"
        channel = "in-app"
        to = ["ann"]
        message = "Big form: {{payload.budget | money}} for {{lead.name}}"
        "#,
    )
    .unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("step 1 (update): needs a triggering record"),
        "{e:?}"
    );
    assert!(e[1].contains("the trigger is not about a record"), "{e:?}");
}

#[test]
fn the_documented_json_schema_is_the_rule_files_own() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/rules.schema.json");
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    let schema = format!("{}\n", serde_json::to_string_pretty(&schema()).unwrap());
    assert!(
        written == schema,
        "{} is not the schema of rule files; write it again with `roster rules schema > docs/rules.schema.json`",
        path.display()
    );
    // It describes every step and the header's fields.
    for action in [
        "create",
        "update",
        "notify",
        "assign",
        "log-activity",
        "sequence",
        "request-approval",
        "emit",
    ] {
        assert!(schema.contains(&format!("\"{action}\"")), "{action}");
    }
    assert!(schema.contains("\"owner-in-team\"") && schema.contains("\"principal\""));
}

#[test]
fn a_merge_field_may_read_a_related_record() {
    let rule = |message: &str| {
        checked(&format!(
            "[rule]\nname = \"r\"\ndomain = \"revenue\"\n\n[[triggers]]\non = \"record-created\"\nobject = \"opportunity\"\n\n[[steps]]\naction = \"notify\"\nchannel = \"in-app\"\nto = [\"ann\"]\nmessage = \"{message}\"\n"
        ))
    };
    let ok = rule("{{opportunity.name}} at {{opportunity.account.name}}").unwrap();
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(ok.reads["opportunity"], set(&["account_id", "name"]));
    assert_eq!(ok.reads["account"], set(&["name"]));
    let e = rule("{{opportunity.acount.name}}").unwrap_err();
    assert!(
        e[0].contains("`acount` is not a field or a related record"),
        "{e:?}"
    );
    let e = rule("{{opportunity.account.nmae}}").unwrap_err();
    assert!(e[0].contains("nmae"), "{e:?}");
    let e = rule("{{opportunity.account.owner}}").unwrap_err();
    assert!(
        e[0].contains("its id is `{{opportunity.account_id}}`"),
        "{e:?}"
    );
}

#[test]
fn adding_to_a_value_reads_it_and_an_approval_takes_no_condition() {
    let rule = checked(&format!(
        "{ROUTING}\n[[steps]]\naction = \"update\"\nincrement = {{ score = 1 }}\nappend = {{ tags = \"enterprise\" }}\n"
    ))
    .unwrap();
    let lead = &rule.reads["lead"];
    assert!(lead.contains("score") && lead.contains("tags"), "{lead:?}");
    assert!(rule.scopes().records.unwrap().objects["lead"].may_read("score"));
    let e = checked(&format!(
        "{ROUTING}\n[[steps]]\naction = \"request-approval\"\nreason = \"big\"\nwhen = {{ field = \"employees\", op = \"greater-than\", value = 5000 }}\n\n[[steps]]\naction = \"log-activity\"\nsubject = \"x\"\n"
    ))
    .unwrap_err();
    assert!(e[0].contains("takes no `when`"), "{e:?}");
}
