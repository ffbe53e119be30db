//! Rules without code in the console: the saved rules, and the rule builder — a trigger
//! picker, condition rows in an all/any group, a chain of steps with a merge-field picker
//! listing the object's fields, validation as the rule is written (the API's checks,
//! every problem by step), a dry run on a sample record, saving and deploying. The
//! builder writes a rule file (`draft.rs`) and the API does the rest, as the signed-in
//! account.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::segment;
use super::fmt;
use super::layout::{self, Nav, Notice};
use super::session::{Posted, Visitor};

mod draft;

use draft::{Cond, Draft, SPECIAL, StepDraft};

/// The most condition rows or steps a form may carry.
const MAX_ROWS: usize = 40;

const TRIGGERS: [(&str, &str); 8] = [
    ("record-created", "a record is created"),
    ("record-updated", "a record is updated"),
    ("record-deleted", "a record is deleted"),
    ("schedule", "on a schedule"),
    ("event", "a webhook event arrives"),
    ("signal", "another worker signals"),
    ("threshold", "a value crosses a threshold"),
    ("date-within", "a date comes within range"),
];

const OPS: [&str; 9] = [
    "equals",
    "not-equals",
    "contains",
    "starts-with",
    "ends-with",
    "is-empty",
    "is-not-empty",
    "greater-than",
    "less-than",
];

const ACTIONS: [(&str, &str); 8] = [
    ("create", "Create a record"),
    ("update", "Update fields"),
    ("notify", "Send a notification"),
    ("assign", "Assign an owner"),
    ("log-activity", "Log an activity"),
    ("sequence", "Add to / remove from / advance a sequence"),
    ("request-approval", "Request approval"),
    ("emit", "Emit a signal"),
];

const DOMAINS: [&str; 6] = [
    "revenue",
    "customer-experience",
    "it-operations",
    "finance",
    "security",
    "hr",
];

/// Choices of the inputs that have a fixed set.
fn choices(input: &str) -> Option<&'static [&'static str]> {
    match input {
        "channel" => Some(&["in-app", "email", "sms", "slack", "teams"]),
        "strategy" => Some(&["round-robin", "territory", "capacity", "score"]),
        "op" => Some(&["add", "remove", "advance"]),
        _ => None,
    }
}

/// What an input is for, shown beside it.
fn hint(input: &str) -> &'static str {
    match input {
        "fields" | "set" => {
            "one per line: name = value (a number, true/false, +2d, or text with {{merge fields}})"
        }
        "increment" => "one per line: number field = amount",
        "append" => "one per line: multi-select field = option",
        "clear" => "fields to empty, comma-separated",
        "record" => "object/id to change (empty: the triggering record)",
        "to" => "comma-separated: recipients, or principals to choose from",
        "territories" => "one per line: value = principal",
        "open" => "which records count as open: field = value",
        "payload" => "one per line: name = value",
        "reviewers" => "principals or team:NAME, comma-separated",
        "field" => "the field a territory or score is read from",
        _ => "",
    }
}

/// `GET /rules`: the saved rules and the presets to start from.
pub(super) async fn list(v: Visitor) -> Response {
    let answer = match v.get("/v1/rules").await {
        Ok(a) => a,
        Err(r) => return layout::refused(&v, Nav::Rules, &r),
    };
    let rules = answer["rules"].as_array().cloned().unwrap_or_default();
    let content = html! {
        h1 { "Rules" }
        p.lede { "Workers made without code: a trigger, conditions and a chain of steps. Each runs on the rules worker, under a grant computed from what it does." }
        p { a.button href="/rules/new" { "New rule" } }
        @if rules.is_empty() {
            (layout::empty("No rule is saved yet. Start from a preset below, or from an empty rule."))
        } @else {
            table {
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Versions" } th scope="col" { "Deployed" } th scope="col" { "Newest version ready" } } }
                tbody { @for r in &rules { tr {
                    th scope="row" { a href=(format!("/rules/{}", segment(fmt::text(&r["rule"]["name"])))) { (fmt::text(&r["rule"]["name"])) } }
                    td { (r["rule"]["versions"].as_array().map_or(0, Vec::len)) }
                    td { @match r["rule"]["deployed"].as_u64() { Some(n) => { "version " (n) }, None => { span.muted { "not deployed" } } } }
                    td { @if r["readiness"].as_array().is_some_and(|i| i.iter().all(|i| i["ok"] == true)) { span.badge.ok { "ready" } } @else { span.badge.warn { "not yet" } } }
                } } }
            }
        }
        h2 { "Presets" }
        ul { @for (name, _) in crate::rules::PRESETS {
            li { a href=(format!("/rules/new?from={name}")) { (name) } }
        } }
    };
    layout::page(&v, "Rules", Nav::Rules, None, content)
}

/// `?from=` of the new-rule page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct NewQuery {
    from: Option<String>,
}

/// `GET /rules/new`: the builder, empty or from a preset.
pub(super) async fn new(v: Visitor, Query(q): Query<NewQuery>) -> Response {
    let draft = match q.from.as_deref() {
        None => Draft::default(),
        Some(from) => match crate::rules::PRESETS.iter().find(|(p, _)| *p == from) {
            Some((_, text)) => Draft::from_toml(text).unwrap_or_default(),
            None => {
                return layout::refusal(StatusCode::NOT_FOUND, &format!("No preset `{from}`."));
            }
        },
    };
    builder(&v, draft, None, None, StatusCode::OK).await
}

/// `GET /rules/{name}`: a saved rule, its versions and readiness.
pub(super) async fn show(
    v: Visitor,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let answer = match v.get(&format!("/v1/rules/{}", segment(&name))).await {
        Ok(a) => a,
        Err(r) => return layout::refused(&v, Nav::Rules, &r),
    };
    let rule = &answer["rule"];
    let versions = rule["versions"].as_array().cloned().unwrap_or_default();
    let latest = versions.last().cloned().unwrap_or_default();
    let content = html! {
        p { a href="/rules" { "← Rules" } }
        h1 { "Rule " (name) }
        dl.facts {
            dt { "Deployed" } dd { @match rule["deployed"].as_u64() { Some(n) => { "version " (n) }, None => { "not deployed" } } }
            dt { "Installed" } dd { @if answer["installed"] == true { a href=(format!("/workers/{}", segment(&name))) { "yes — its worker page" } } @else { "no" } }
        }
        h2 { "Readiness of version " (fmt::value(&latest["version"])) }
        ul { @for i in answer["readiness"].as_array().into_iter().flatten() {
            li { @if i["ok"] == true { span.badge.ok { "ok" } } @else { span.badge.bad { "no" } } " " strong { (fmt::text(&i["item"])) } ": " (fmt::text(&i["detail"])) }
        } }
        p { a.button href=(format!("/rules/{}/edit", segment(&name))) { "Edit in the builder" } }
        h2 { "Versions" }
        table {
            thead { tr { th scope="col" { "Version" } th scope="col" { "Saved" } th scope="col" { "By" } th scope="col" { "Digest" } } }
            tbody { @for ver in versions.iter().rev() { tr {
                th scope="row" { (fmt::value(&ver["version"])) }
                td { (fmt::time_of(&ver["saved-at"])) }
                td { (fmt::text(&ver["by"])) }
                td { code { (fmt::text(&ver["digest"])) } }
            } } }
        }
        @if !rule["history"].as_array().is_none_or(Vec::is_empty) {
            form method="post" action=(format!("/rules/{}/rollback", segment(&name))) data-confirm="Deploy the version that ran before this one?" {
                (layout::csrf(&v))
                label { "Why " input name="reason" required; }
                button.danger type="submit" { "Roll back" }
            }
        }
        h2 { "The newest version's file" }
        pre tabindex="0" { (fmt::text(&latest["text"])) }
    };
    layout::page(&v, &format!("Rule {name}"), Nav::Rules, None, content)
}

/// `GET /rules/{name}/edit`: the builder on a saved rule's newest version.
pub(super) async fn edit(
    v: Visitor,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let answer = match v.get(&format!("/v1/rules/{}", segment(&name))).await {
        Ok(a) => a,
        Err(r) => return layout::refused(&v, Nav::Rules, &r),
    };
    let text = answer["rule"]["versions"]
        .as_array()
        .and_then(|v| v.last())
        .map(|v| fmt::text(&v["text"]).to_string())
        .unwrap_or_default();
    match Draft::from_toml(&text) {
        Ok(draft) => builder(&v, draft, None, None, StatusCode::OK).await,
        Err(e) => layout::refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("The rule's file does not read: {e}"),
        ),
    }
}

/// `POST /rules/{name}/rollback`.
pub(super) async fn rollback(
    axum::extract::Path(name): axum::extract::Path<String>,
    Posted { visitor: v, form }: Posted,
) -> Response {
    let reason = form.text("reason").unwrap_or_default();
    match v
        .post(
            &format!("/v1/rules/{}/rollback", segment(&name)),
            &json!({ "reason": reason }),
        )
        .await
    {
        Ok(_) => Redirect::to(&format!("/rules/{}", segment(&name))).into_response(),
        Err(r) => layout::refused(&v, Nav::Rules, &r),
    }
}

/// `POST /rules/check`: the builder's validation as the rule is written (a fragment).
pub(super) async fn check(Posted { visitor: v, form }: Posted) -> Response {
    let draft = Draft::from_form(&form);
    let text = draft.to_toml();
    let checked = v.post("/v1/rules/check", &json!({ "text": text })).await;
    Html(check_markup(&checked, &text).into_string()).into_response()
}

/// `POST /rules/draft`: the builder's buttons — add or remove a row, check, save, try
/// on a sample record, deploy.
pub(super) async fn act(Posted { visitor: v, form }: Posted) -> Response {
    let mut draft = Draft::from_form(&form);
    let todo = form.get("do").unwrap_or("check").to_string();
    match todo.as_str() {
        "add-condition" if draft.conditions.len() < MAX_ROWS => {
            draft.conditions.push(Cond::default())
        }
        "add-step" if draft.steps.len() < MAX_ROWS => draft.steps.push(StepDraft {
            action: "notify".into(),
            ..StepDraft::default()
        }),
        other => {
            let index = |prefix: &str| {
                other
                    .strip_prefix(prefix)
                    .and_then(|i| i.parse::<usize>().ok())
            };
            if let Some(i) = index("remove-condition-").filter(|i| *i < draft.conditions.len()) {
                draft.conditions.remove(i);
            }
            if let Some(i) = index("remove-step-").filter(|i| *i < draft.steps.len()) {
                draft.steps.remove(i);
            }
        }
    }
    let text = draft.to_toml();
    let name = draft.rule.get("name").cloned().unwrap_or_default();
    if !matches!(todo.as_str(), "save" | "try" | "deploy") {
        return builder(&v, draft, None, None, StatusCode::OK).await;
    }
    // Saving comes first: a dry run and a deployment are of a saved version.
    if let Err(r) = v.post("/v1/rules", &json!({ "text": text })).await {
        let status = if r.status.is_client_error() {
            r.status
        } else {
            StatusCode::BAD_GATEWAY
        };
        return builder(&v, draft, Some(Notice::Failed(r.message)), None, status).await;
    }
    let rule = segment(&name);
    match todo.as_str() {
        "try" => {
            let sample: Vec<String> = form.text("sample").into_iter().collect();
            match v
                .post(
                    &format!("/v1/rules/{rule}/test"),
                    &json!({ "sample": sample }),
                )
                .await
            {
                Ok(answer) => {
                    let s = &answer["staging"]["summary"];
                    let notice = Notice::Done(format!(
                        "Tried in dry-run: {} ran, {} skipped, {} failed, {} actions proposed. Nothing was performed.",
                        s["ran"], s["skipped"], s["failed"], s["proposed"]
                    ));
                    builder(
                        &v,
                        draft,
                        Some(notice),
                        Some(answer["staging"].clone()),
                        StatusCode::OK,
                    )
                    .await
                }
                Err(r) => builder(&v, draft, Some(Notice::Failed(r.message)), None, r.status).await,
            }
        }
        "deploy" => {
            let reason = form.text("reason").unwrap_or_default();
            match v
                .post(
                    &format!("/v1/rules/{rule}/deploy"),
                    &json!({ "reason": reason }),
                )
                .await
            {
                Ok(_) => Redirect::to(&format!("/rules/{rule}")).into_response(),
                Err(r) => builder(&v, draft, Some(Notice::Failed(r.message)), None, r.status).await,
            }
        }
        _ => {
            let notice = Notice::Done(format!(
                "Saved rule {name}. Try it on a record, then deploy it."
            ));
            builder(&v, draft, Some(notice), None, StatusCode::OK).await
        }
    }
}

/// The validation panel: every problem, or what the rule touches and the grant it gets;
/// and the rule file the builder wrote.
fn check_markup(checked: &Result<Value, super::api::Refusal>, text: &str) -> Markup {
    html! {
        @match checked {
            Ok(c) if c["valid"] == true => {
                p.notice.done role="status" { "The rule checks. It acts as " code { (fmt::text(&c["principal"])) } "." }
                ul { @for t in c["touches"].as_array().into_iter().flatten() { li { (fmt::text(t)) } } }
                details { summary { "The grant it gets" } pre tabindex="0" { (fmt::text(&c["grant"])) } }
            }
            Ok(c) => {
                p.notice.failed role="alert" { "The rule does not check yet:" }
                ul.problems { @for p in c["problems"].as_array().into_iter().flatten() { li { (fmt::text(p)) } } }
            }
            Err(r) => p.notice.failed role="alert" { (r.message) },
        }
        details { summary { "The rule file" } pre.rule-file tabindex="0" { (text) } }
    }
}

/// The builder page.
async fn builder(
    v: &Visitor,
    draft: Draft,
    notice: Option<Notice>,
    tried: Option<Value>,
    status: StatusCode,
) -> Response {
    let text = draft.to_toml();
    let checked = v.post("/v1/rules/check", &json!({ "text": text })).await;
    let config = v.console.service.config();
    let object = draft.trigger.get("object").cloned().unwrap_or_default();
    let fields: Vec<String> = config
        .schema
        .object(&object)
        .map(|o| o.fields.keys().cloned().collect())
        .unwrap_or_default();
    let objects: Vec<String> = config.schema.objects().map(|(o, _)| o.clone()).collect();
    let samples = match v
        .get(&format!("/v1/records/{}?limit=20", segment(&object)))
        .await
    {
        Ok(page) => page["records"].as_array().cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let rule = |k: &str| draft.rule.get(k).cloned().unwrap_or_default();
    let trigger = |k: &str| draft.trigger.get(k).cloned().unwrap_or_default();
    let content = html! {
        p { a href="/rules" { "← Rules" } }
        h1 { "Rule builder" }
        form #rule-builder method="post" action="/rules/draft" data-rule-builder {
            (layout::csrf(v))
            input type="hidden" name="conditions" value=(draft.conditions.len());
            input type="hidden" name="steps" value=(draft.steps.len());
            datalist #fields { @for f in &fields { option value=(f) {} } @for s in SPECIAL { option value=(s) {} } }
            div.builder {
                div.builder-main {
                    section.panel {
                        h2 { "Rule" }
                        div.row {
                            label { "Name " input name="name" value=(rule("name")) required pattern="[a-z0-9_\\-]{1,64}"; }
                            label { "Domain " select name="domain" { @for d in DOMAINS { option value=(d) selected[rule("domain") == d] { (d) } } } }
                            label { "Acts as " input name="principal" value=(rule("principal")) placeholder="the domain's service account"; }
                            label { "Starts at " select name="stage" {
                                @for (s, label) in [("", "supervised (default)"), ("assistive", "assistive"), ("supervised", "supervised"), ("conditional-autonomy", "conditional autonomy"), ("high-trust", "high trust")] {
                                    option value=(s) selected[rule("stage") == s] { (label) }
                                }
                            } }
                        }
                        label.wide { "What it is for " input name="description" value=(rule("description")); }
                    }
                    section.panel {
                        h2 { "When" }
                        div.row {
                            label { "Trigger " select name="trigger.on" data-refresh { @for (t, label) in TRIGGERS { option value=(t) selected[trigger("on") == t] { (label) } } } }
                            label { "Object " select name="trigger.object" data-refresh {
                                option value="" { "—" }
                                @for o in &objects { option value=(o) selected[&object == o] { (o) } }
                            } }
                        }
                        @let on = trigger("on");
                        div.row {
                            @if on == "record-updated" { label { "Watched fields " input name="trigger.fields" value=(trigger("fields")) placeholder="comma-separated; empty: any"; } }
                            @if on == "date-within" { label { "Date field " input name="trigger.fields" value=(trigger("fields")) list="fields"; } label { "Within " input name="trigger.within" value=(trigger("within")) placeholder="90d"; } }
                            @if on == "schedule" { label { "Cron " input name="trigger.cron" value=(trigger("cron")) placeholder="0 8 * * *"; } label { "or every " input name="trigger.every" value=(trigger("every")) placeholder="15m"; } }
                            @if on == "event" { label { "Event name " input name="trigger.name" value=(trigger("name")); } }
                            @if on == "signal" { label { "Topic " input name="trigger.topic" value=(trigger("topic")) placeholder="revenue.*"; } }
                        }
                        label.wide { "More (TOML, one key per line) " textarea name="trigger.more" rows="2" { (trigger("more")) } }
                        label.wide { "Other triggers (TOML, one inline table per line) " textarea name="more_triggers" rows="2" { (draft.more_triggers) } }
                    }
                    section.panel {
                        h2 { "Only if" }
                        label { "Act when " select name="group" {
                            option value="all" selected[draft.group == "all"] { "all of these hold" }
                            option value="any" selected[draft.group == "any"] { "any of these holds" }
                        } }
                        ol.conditions { @for (i, c) in draft.conditions.iter().enumerate() {
                            li { (cond_row(&format!("c{i}"), c)) button.ghost type="submit" name="do" value=(format!("remove-condition-{i}")) aria-label=(format!("Remove condition {}", i + 1)) { "✕" } }
                        } }
                        button type="submit" name="do" value="add-condition" { "Add a condition" }
                    }
                    section.panel {
                        h2 { "Then" }
                        ol.steps { @for (i, s) in draft.steps.iter().enumerate() { li.step { (step_panel(i, s)) } } }
                        button type="submit" name="do" value="add-step" { "Add a step" }
                    }
                }
                aside.panel.merge-fields {
                    h2 { "Merge fields" }
                    p.muted { "Click one to put it where you are typing." }
                    @if fields.is_empty() {
                        p.muted { "The trigger is not about a record: use " code { "{{payload.NAME}}" } "." }
                    }
                    ul { @for f in &fields { li { button.ghost type="button" data-merge=(format!("{{{{{object}.{f}}}}}")) { (format!("{{{{{object}.{f}}}}}")) } } } }
                    ul {
                        li { button.ghost type="button" data-merge="{{now}}" { "{{now}}" } }
                        @for s in draft.steps.iter().filter(|s| !s.id.is_empty()) {
                            @for out in step_outputs(&s.action) {
                                li { button.ghost type="button" data-merge=(format!("{{{{steps.{}.{out}}}}}", s.id)) { (format!("{{{{steps.{}.{out}}}}}", s.id)) } }
                            }
                        }
                    }
                    p.muted { "Formats: " code { "| date" } ", " code { "| money: EUR" } ", " code { "| number" } ", " code { "| days-ago" } ", " code { "| default: none" } "." }
                }
            }
            section.panel #rule-check aria-live="polite" { (check_markup(&checked, &text)) }
            div.actions {
                button type="submit" name="do" value="check" { "Check" }
                button type="submit" name="do" value="save" { "Save" }
            }
            section.panel {
                h2 { "Try it on a record" }
                p.muted { "Saves the rule, then runs it in dry-run on a copy of the record: every action is shown with its values, none is performed." }
                datalist #samples { @for r in &samples { option value=(format!("{}/{}", fmt::text(&r["object"]), fmt::text(&r["id"]))) {} } }
                label { "Record " input name="sample" list="samples" placeholder=(format!("{object}/ID")); }
                button type="submit" name="do" value="try" { "Try it" }
                @if let Some(report) = &tried { (tried_markup(report)) }
            }
            section.panel {
                h2 { "Deploy" }
                p.muted { "A version is deployed once it checks and has been tried without failures; it then runs live under the grant shown above." }
                label { "Why " input name="reason" placeholder="what it is for"; }
                button.primary type="submit" name="do" value="deploy" { "Deploy" }
            }
        }
    };
    let mut response = layout::page(v, "Rule builder", Nav::Rules, notice, content);
    *response.status_mut() = status;
    response
}

/// What a step's output holds, for the merge-field picker.
fn step_outputs(action: &str) -> &'static [&'static str] {
    match action {
        "create" | "log-activity" | "sequence" => &["id"],
        "update" => &["updated"],
        "notify" => &["sent"],
        "assign" => &["owner"],
        "emit" => &["topic"],
        "request-approval" => &["requested"],
        _ => &[],
    }
}

/// One condition row: field, operator, value, negation (or the condition as TOML).
fn cond_row(prefix: &str, c: &Cond) -> Markup {
    html! {
        @if !c.expr.is_empty() {
            label { "Condition (TOML) " input name=(format!("{prefix}.expr")) value=(c.expr) size="60"; }
        } @else {
            label { "Field " input name=(format!("{prefix}.field")) value=(c.field) list="fields" placeholder="field, payload.NAME or owner-in-team"; }
            label { "is " select name=(format!("{prefix}.op")) {
                @for op in OPS { option value=(op) selected[c.op == op] { (op) } }
            } }
            label { "Value " input name=(format!("{prefix}.value")) value=(c.value); }
            label { input type="checkbox" name=(format!("{prefix}.not")) value="yes" checked[c.not]; " not" }
        }
    }
}

/// One step of the chain.
fn step_panel(i: usize, s: &StepDraft) -> Markup {
    let p = format!("s{i}");
    html! {
        div.row {
            strong { "Step " (i + 1) }
            label { "Action " select name=(format!("{p}.action")) data-refresh {
                @for (a, label) in ACTIONS { option value=(a) selected[s.action == a] { (label) } }
            } }
            label { "Name " input name=(format!("{p}.id")) value=(s.id) size="10" placeholder="for later steps"; }
            button.ghost type="submit" name="do" value=(format!("remove-step-{i}")) aria-label=(format!("Remove step {}", i + 1)) { "Remove" }
        }
        @for input in draft::inputs_of(&s.action) {
            @let name = format!("{p}.{input}");
            @let value = s.inputs.get(*input).cloned().unwrap_or_default();
            label.wide {
                (input) " "
                @if let Some(options) = choices(input) {
                    select name=(name) { @for o in options { option value=(o) selected[value == *o] { (o) } } }
                } @else if draft::is_lines(input) || *input == "message" {
                    textarea name=(name) rows="3" data-merge-target { (value) }
                } @else {
                    input name=(name) value=(value) data-merge-target;
                }
                @let h = hint(input);
                @if !h.is_empty() { small.muted { " " (h) } }
            }
        }
        details open[!s.when.field.is_empty() || !s.when.expr.is_empty()] {
            summary { "Only when…" }
            (cond_row(&format!("{p}.when"), &s.when))
        }
    }
}

/// A dry run's report: each event, its conditions, and the actions it would take.
fn tried_markup(report: &Value) -> Markup {
    html! {
        @for run in report["runs"].as_array().into_iter().flatten() {
            section.tried {
                h3 { (fmt::text(&run["event"]["id"])) }
                ul { @for c in run["conditions"].as_array().into_iter().flatten() {
                    li { @if c["passed"] == true { span.badge.ok { "holds" } } @else { span.badge.bad { "fails" } } " " (fmt::text(&c["condition"])) }
                } }
                @if let Some(why) = run["skipped"].as_str() { p { "Skipped: " (why) } }
                @if let Some(error) = run["report"]["error"].as_str() { p.error { (error) } }
                ol { @for a in run["report"]["actions"].as_array().into_iter().flatten().filter(|a| a["kind"] == "effect") {
                    li {
                        code { (fmt::text(&a["capability"])) "." (fmt::text(&a["operation"])) } " " (fmt::text(&a["target"]))
                        @if !a["proposal"].is_null() { pre { (serde_json::to_string_pretty(&a["proposal"]).unwrap_or_default()) } }
                    }
                } }
            }
        }
    }
}
