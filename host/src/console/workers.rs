//! Workers: the inventory, one worker's page (owners, grant and scopes, trust stage and
//! its metrics, promotion, versions with deploy and rollback, the readiness checklist,
//! shadow-run differences, recent executions, pause and resume), and the kill switch.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{query, segment};
use super::fmt;
use super::layout::{self, Nav, Notice};
use super::session::{Posted, Visitor};
use crate::governance::access::{Operation, Resource};

/// `?domain=&status=` of the inventory.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    domain: Option<String>,
    status: Option<String>,
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "live" => "badge ok",
        "paused" | "disabled" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

/// `GET /workers`: the inventory.
pub(super) async fn list(v: Visitor, Query(q): Query<ListQuery>) -> Response {
    let path = format!(
        "/v1/inventory{}",
        query(&[("domain", q.domain.clone()), ("limit", Some("1000".into()))])
    );
    let answer = match v.get(&path).await {
        Ok(a) => a,
        Err(r) => return layout::refused(&v, Nav::Workers, &r),
    };
    let mut workers = answer["workers"].as_array().cloned().unwrap_or_default();
    if let Some(status) = q.status.as_deref().filter(|s| !s.is_empty()) {
        workers.retain(|w| w["status"] == status);
    }
    let content = html! {
        h1 { "Workers" }
        p.lede { (workers.len()) " installed workers: who answers for each, what it may touch and how it has been doing." }
        form.filters method="get" action="/workers" data-autosubmit {
            div {
                label for="domain" { "Domain" }
                input #domain name="domain" value=[q.domain.as_deref()] placeholder="any";
            }
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "Any" }
                    @for s in ["live", "paused", "staging", "disabled"] {
                        option value=(s) selected[q.status.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            button type="submit" { "Apply" }
        }
        @if workers.is_empty() {
            (layout::empty("No workers match. Admins install workers from the Install page."))
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Worker" } th scope="col" { "Plugin" } th scope="col" { "Domain" }
                    th scope="col" { "Business owner" } th scope="col" { "Acts as" } th scope="col" { "Status" }
                    th.num scope="col" { "This week" } th.num scope="col" { "Failed" }
                } }
                tbody {
                    @for w in &workers {
                        @let name = fmt::text(&w["name"]);
                        @let week = w["accuracy_history"].as_array().and_then(|h| h.last()).cloned().unwrap_or(Value::Null);
                        tr {
                            th scope="row" { a href=(format!("/workers/{}", segment(name))) { (name) } }
                            td { (fmt::text(&w["plugin"])) }
                            td { (fmt::text(&w["domain"])) }
                            td { (fmt::text(&w["business_owner"])) }
                            td { code { (fmt::text(&w["principal"])) } }
                            td { (status_badge(fmt::text(&w["status"]))) }
                            td.num { (fmt::count_of(&week["executions"])) }
                            td.num { (fmt::count_of(&week["failed"])) }
                        }
                    }
                }
            }
        }
    };
    layout::page(&v, "Workers", Nav::Workers, None, content)
}

/// `?done=` of a worker's page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ShowQuery {
    done: Option<String>,
}

fn list_of(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(fmt::value)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A form posting one action on a worker, with a reason when it needs one.
fn action_form(
    v: &Visitor,
    name: &str,
    action: &str,
    label: &str,
    danger: bool,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(format!("/workers/{}/do", segment(name))) data-confirm=[confirm] {
            (layout::csrf(v))
            input type="hidden" name="action" value=(action);
            label.visually-hidden for=(format!("reason-{action}")) { "Reason" }
            input id=(format!("reason-{action}")) name="reason" placeholder="Reason" required;
            " "
            button class=(if danger { "danger" } else { "primary" }) type="submit" { (label) }
        }
    }
}

/// `GET /workers/{name}`: one worker.
pub(super) async fn show(
    v: Visitor,
    Path(name): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let base = format!("/v1/workers/{}", segment(&name));
    let detail = match v.get(&base).await {
        Ok(d) => d,
        Err(r) => return layout::refused(&v, Nav::Workers, &r),
    };
    // Each part the visitor may not see is left out, not an error.
    let trust = v.get(&format!("{base}/trust")).await.ok();
    let versions = v.get(&format!("{base}/versions")).await.ok();
    let readiness = v.get(&format!("{base}/readiness")).await.ok();
    let shadow = v.get(&format!("{base}/shadow")).await.ok();
    let inventory = v
        .get(&format!(
            "/v1/inventory{}",
            query(&[("limit", Some("1000".into()))])
        ))
        .await
        .ok()
        .and_then(|i| {
            i["workers"]
                .as_array()
                .and_then(|ws| ws.iter().find(|w| w["name"] == name.as_str()).cloned())
        });
    let resource = v.worker_resource(&name).unwrap_or(Resource::Host);
    let may = |op| v.may(op, &resource);
    let paused = detail["paused"].as_bool().unwrap_or(false);
    let notice = q.done.as_deref().map(|d| {
        Notice::Done(
            match d {
                "pause" => "Paused: its triggers are held until it is resumed.",
                "resume" => "Resumed: held triggers run now.",
                "deploy" => "Deployed: the checked version is live.",
                "rollback" => "Rolled back to the previous version.",
                "promote" => "Moved on the trust curve.",
                "install" => "Installed: it runs from now on.",
                _ => "Done.",
            }
            .to_string(),
        )
    });
    let content = html! {
        p { a href="/workers" { "← All workers" } }
        h1 { (name) " " @if paused { span.badge.bad { "paused" } } @else { span.badge.ok { "running" } } }
        p.lede { (fmt::text(&detail["description"])) }
        div.grid2 {
            section.panel {
                h2 { "Who and what" }
                dl.facts {
                    dt { "Plugin" } dd { code { (fmt::text(&detail["plugin"])) } " " (fmt::text(&detail["version"])) }
                    dt { "Domain" } dd { (fmt::text(&detail["domain"])) }
                    dt { "Business owner" } dd { (fmt::text(&detail["owners"]["business"])) }
                    dt { "Technical owner" } dd { (fmt::text(&detail["owners"]["technical"])) }
                    dt { "Alerted" } dd { (list_of(&detail["alert-owners"])) }
                    dt { "Acts as" } dd { code { (fmt::text(&detail["principal"])) } }
                    dt { "Triggers" } dd { (list_of(&detail["triggers"])) }
                    dt { "Conditions" } dd {
                        @match fmt::text(&detail["conditions"]) {
                            "All([])" => { "none: every trigger runs it" },
                            c => { code { (c) } },
                        }
                    }
                    dt { "Component" } dd { code { (fmt::text(&detail["component-digest"])) } }
                    @if let Some(c) = detail["control"].as_object() {
                        dt { "Paused by" } dd { (fmt::value(&c["by"])) ": " (fmt::value(&c["reason"])) }
                    }
                }
            }
            section.panel {
                h2 { "Grant and scopes" }
                p { "Capabilities granted: " strong { (list_of(&detail["granted"])) } }
                @if let Some(i) = &inventory {
                    h3 { "Data it may read and write" }
                    ul { @for s in i["data_scope"].as_array().into_iter().flatten() { li { (fmt::value(s)) } } }
                    h3 { "What it may do" }
                    ul { @for s in i["permitted_actions"].as_array().into_iter().flatten() { li { (fmt::value(s)) } } }
                    h3 { "Systems it reaches" }
                    p { (list_of(&i["connected_systems"])) }
                    h3 { "When it fails" }
                    p { (fmt::text(&i["escalation_path"])) }
                }
            }
        }
        section.panel {
            h2 { "Control" }
            div.actions {
                @if paused {
                    @if may(Operation::WorkerResume) { (action_form(&v, &name, "resume", "Resume", false, None)) }
                } @else if may(Operation::WorkerPause) {
                    (action_form(&v, &name, "pause", "Pause", true, Some("Pause this worker? Its triggers are held until it is resumed.")))
                }
                @if !may(Operation::WorkerPause) && !may(Operation::WorkerResume) {
                    p.muted { "You may not pause or resume this worker." }
                }
            }
        }
        @if let Some(t) = &trust {
            @let m = &t["trust"]["metrics"];
            section.panel {
                h2 { "Trust" }
                p { "Stage: " strong { (t["trust"]["stage"].as_str().unwrap_or("no review settings")) } }
                table {
                    thead { tr { th.num scope="col" { "Executions" } th.num scope="col" { "Errors" } th.num scope="col" { "Escalations" } th.num scope="col" { "Actions" } th.num scope="col" { "Approved" } th.num scope="col" { "Edited" } th.num scope="col" { "Rejected" } th.num scope="col" { "Reversals" } } }
                    tbody { tr {
                        td.num { (fmt::count_of(&m["executions"])) } td.num { (fmt::count_of(&m["errors"])) }
                        td.num { (fmt::count_of(&m["escalations"])) } td.num { (fmt::count_of(&m["actions"])) }
                        td.num { (fmt::count_of(&m["approved"])) } td.num { (fmt::count_of(&m["edited"])) }
                        td.num { (fmt::count_of(&m["rejected"])) } td.num { (fmt::count_of(&m["reversals"])) }
                    } }
                }
                @if let Some(p) = t["trust"]["promotion"].as_object() {
                    h3 { "Promotion to " (fmt::value(&p["to"])) }
                    ul {
                        @for c in p["checks"].as_array().into_iter().flatten() {
                            li {
                                @if c["ok"] == true { span.badge.ok { "met" } } @else { span.badge.warn { "not yet" } }
                                " " (fmt::text(&c["metric"])) ": " (fmt::value(&c["value"]))
                                @if c["minimum"] == true { " (at least " } @else { " (at most " }
                                (fmt::value(&c["threshold"])) ")"
                            }
                        }
                    }
                    @if p["ready"] == true && may(Operation::TrustPromote) {
                        form.inline method="post" action=(format!("/workers/{}/do", segment(&name))) {
                            (layout::csrf(&v))
                            input type="hidden" name="action" value="promote";
                            input type="hidden" name="to" value=(fmt::value(&p["to"]));
                            input name="reason" placeholder="Reason" required aria-label="Reason to promote";
                            " " button.primary type="submit" { "Promote to " (fmt::value(&p["to"])) }
                        }
                    }
                }
            }
        }
        @if let Some(vs) = &versions {
            section.panel {
                h2 { "Versions" }
                table {
                    thead { tr { th scope="col" { "Version" } th scope="col" { "Digest" } th scope="col" { "First seen" } th scope="col" { span.visually-hidden { "Running" } } } }
                    tbody { @for ver in vs["versions"].as_array().into_iter().flatten() { tr {
                        td { (fmt::text(&ver["version"])) }
                        td { code { (fmt::text(&ver["digest"]).chars().take(19).collect::<String>()) "…" } }
                        td { (fmt::time_of(&ver["first_seen"])) }
                        td { @if ver["running"] == true { span.badge.ok { "running" } } }
                    } } }
                }
                div.actions {
                    @if may(Operation::WorkerRollback) && vs["versions"].as_array().is_some_and(|a| a.len() > 1) {
                        (action_form(&v, &name, "rollback", "Roll back", true, Some("Roll back to the previous version?")))
                    }
                }
            }
        }
        @if let Some(r) = &readiness {
            @let r = &r["readiness"];
            section.panel {
                h2 { "Readiness of " (fmt::text(&r["version"])) " " @if r["ready"] == true { span.badge.ok { "ready" } } @else { span.badge.warn { "not ready" } } }
                ul {
                    @for item in r["items"].as_array().into_iter().flatten() {
                        li {
                            @if item["ok"] == true { span.badge.ok { "✓" } } @else { span.badge.bad { "✗" } }
                            " " strong { (fmt::text(&item["item"])) } " — " (fmt::text(&item["detail"]))
                        }
                    }
                }
                @if r["ready"] == true && may(Operation::WorkerDeploy) {
                    div.actions { (action_form(&v, &name, "deploy", "Deploy", false, Some("Make this version live?"))) }
                }
            }
        }
        @if let Some(s) = &shadow {
            @let s = &s["shadow"];
            @if s["runs"].as_u64().unwrap_or(0) > 0 {
                section.panel {
                    h2 { "Shadow runs" }
                    p { (fmt::count_of(&s["runs"])) " runs, " (fmt::count_of(&s["agreed"])) " agreed, " (fmt::count_of(&s["differed"])) " differed (" (fmt::percent(&s["agreement_rate"])) " agreement)." }
                    @let differing = s["differing"].as_array().cloned().unwrap_or_default();
                    @if !differing.is_empty() {
                        table {
                            thead { tr { th scope="col" { "When" } th scope="col" { "Record" } th scope="col" { "Live" } th scope="col" { "Shadow" } } }
                            tbody { @for d in differing.iter().take(20) { tr {
                                td { (fmt::time_of(&d["at"])) }
                                td { (fmt::value(&d["record"])) }
                                td { (fmt::text(&d["live_version"])) ": " (fmt::text(&d["live_status"])) ", " (d["live"].as_array().map_or(0, Vec::len)) " actions" }
                                td { (fmt::text(&d["shadow_version"])) ": " (fmt::text(&d["shadow_status"])) ", " (d["shadow"].as_array().map_or(0, Vec::len)) " actions" }
                            } } }
                        }
                    }
                }
            }
        }
        section #executions {
            h2 { "Recent executions" }
            @let recent = detail["recent"].as_array().cloned().unwrap_or_default();
            @if recent.is_empty() {
                (layout::empty("It has not run yet."))
            } @else {
                table {
                    thead { tr { th scope="col" { "#" } th scope="col" { "Started" } th scope="col" { "Trigger" } th scope="col" { "Record" } th scope="col" { "Status" } th.num scope="col" { "Took" } } }
                    tbody { @for e in &recent { tr {
                        td { a href=(format!("/audit/{}", e["seq"])) { (fmt::value(&e["seq"])) } }
                        td { (fmt::time_of(&e["started_at"])) }
                        td { (fmt::text(&e["trigger"])) }
                        td { (fmt::value(&e["record"])) }
                        td { (fmt::text(&e["status"])) }
                        td.num { (fmt::millis((e["finished_at"].as_i64().unwrap_or(0) - e["started_at"].as_i64().unwrap_or(0)) as f64)) }
                    } } }
                }
                p { a href=(format!("/audit?worker={}", segment(&name))) { "All of its audit entries →" } }
            }
        }
    };
    layout::page(&v, &name, Nav::Workers, notice, content)
}

/// `POST /workers/{name}/do`: pause, resume, deploy, rollback or promote, through the API.
pub(super) async fn act(Path(name): Path<String>, Posted { visitor: v, form }: Posted) -> Response {
    let action = form.get("action").unwrap_or_default().to_string();
    let Some(reason) = form.text("reason") else {
        return layout::refusal(StatusCode::BAD_REQUEST, "Give a reason.");
    };
    let base = format!("/v1/workers/{}", segment(&name));
    let (path, body) = match action.as_str() {
        "pause" | "resume" | "deploy" | "rollback" => {
            (format!("{base}/{action}"), json!({ "reason": reason }))
        }
        "promote" => (
            format!("{base}/stage"),
            json!({ "to": form.get("to").unwrap_or_default(), "reason": reason }),
        ),
        other => {
            return layout::refusal(
                StatusCode::BAD_REQUEST,
                &format!("`{other}` is not something a worker's page does."),
            );
        }
    };
    match v.post(&path, &body).await {
        Ok(_) => {
            Redirect::to(&format!("/workers/{}?done={action}", segment(&name))).into_response()
        }
        Err(r) => layout::refused(&v, Nav::Workers, &r),
    }
}

/// The kill switch's form: worker, domain or everything, a reason, and a confirmation.
fn kill_form(v: &Visitor) -> Markup {
    let workers = v.console.service.workers();
    let everything = v.may_host(Operation::Kill);
    let domains = v.domains_where(Operation::Kill);
    html! {
        section.danger-zone {
            h2 { "Stop workers now" }
            p { "Pausing interrupts what is running at the next tick, holds every queued trigger and cancels the actions waiting for approval. Nothing is lost: resuming a worker runs what was held." }
            form method="post" action="/kill" {
                (layout::csrf(v))
                fieldset {
                    legend { "What to stop" }
                    @if everything {
                        label { input type="radio" name="scope" value="all"; " Every worker on this host" }
                    }
                    label { input type="radio" name="scope" value="domain" checked; " Every worker of a domain" }
                    select name="domain" aria-label="Domain" {
                        @for d in &domains { option value=(d) { (d) } }
                    }
                    label { input type="radio" name="scope" value="worker"; " One worker" }
                    select name="worker" aria-label="Worker" {
                        @for (name, w) in workers.iter() {
                            @let r = Resource::Worker { name: name.clone(), domain: w.config.manifest.plugin.domain.as_str().to_string(), owners: w.config.accountable() };
                            @if v.may(Operation::Kill, &r) { option value=(name) { (name) } }
                        }
                    }
                }
                label for="kill-reason" { "Reason (recorded in the audit trail)" }
                input #kill-reason name="reason" required;
                label { input type="checkbox" name="confirm" value="yes" required; " I understand that these workers stop now." }
                div.actions { button.danger type="submit" { "Pull the kill switch" } }
            }
        }
    }
}

/// `GET /kill`: the kill switch.
pub(super) async fn kill_page(v: Visitor) -> Response {
    let content = html! {
        h1 { "Kill switch" }
        (kill_form(&v))
    };
    layout::page(&v, "Kill switch", Nav::Kill, None, content)
}

/// `POST /kill`: pulls the kill switch through the API and shows what it stopped.
pub(super) async fn kill(Posted { visitor: v, form }: Posted) -> Response {
    let failed = |v: &Visitor, message: &str| {
        let content = html! { h1 { "Kill switch" } (kill_form(v)) };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        layout::failed(
            v,
            ("Kill switch", Nav::Kill),
            status,
            message.into(),
            content,
        )
    };
    if form.get("confirm") != Some("yes") {
        return failed(&v, "Tick the confirmation to pull the kill switch.");
    }
    let Some(reason) = form.text("reason") else {
        return failed(&v, "Give a reason.");
    };
    let scope = match form.get("scope") {
        Some("all") => json!("all"),
        Some("domain") => match form.text("domain") {
            Some(d) => json!({ "domain": d }),
            None => return failed(&v, "Choose a domain."),
        },
        Some("worker") => match form.text("worker") {
            Some(w) => json!({ "worker": w }),
            None => return failed(&v, "Choose a worker."),
        },
        _ => return failed(&v, "Choose what to stop."),
    };
    let report = match v
        .post("/v1/kill", &json!({ "scope": scope, "reason": reason }))
        .await
    {
        Ok(r) => r["report"].clone(),
        Err(r) => return layout::refused(&v, Nav::Kill, &r),
    };
    let content = html! {
        h1 { "Kill switch pulled" }
        section.cards data-kill-report {
            div.card { div.label { "Workers paused" } div.value { (report["paused"].as_array().map_or(0, Vec::len)) } }
            div.card { div.label { "Running executions interrupted" } div.value { (report["interrupted"].as_array().map_or(0, Vec::len)) } }
            div.card { div.label { "Queued triggers held" } div.value { (fmt::count_of(&report["held"])) } }
            div.card { div.label { "Held actions cancelled" } div.value { (report["cancelled"].as_array().map_or(0, Vec::len)) } }
        }
        section.panel {
            h2 { "Paused" }
            @if report["paused"].as_array().is_none_or(Vec::is_empty) { p.muted { "No worker was running." } }
            ul data-paused { @for w in report["paused"].as_array().into_iter().flatten() {
                li { a href=(format!("/workers/{}", segment(fmt::text(w)))) { (fmt::text(w)) } }
            } }
            h2 { "Interrupted (queue positions; their triggers are held)" }
            p { (list_of(&report["interrupted"])) @if report["interrupted"].as_array().is_none_or(Vec::is_empty) { span.muted { "Nothing was running at that moment." } } }
            h2 { "Cancelled held actions" }
            @let cancelled = report["cancelled"].as_array().cloned().unwrap_or_default();
            @if cancelled.is_empty() {
                p.muted { "None were waiting." }
            } @else {
                details {
                    summary { (cancelled.len()) " held actions will not be applied" }
                    ul { @for id in &cancelled {
                        li { a href=(format!("/approvals/{}", segment(fmt::text(id)))) { code { (fmt::text(id)) } } }
                    } }
                }
            }
            @if report["reviews"].as_array().is_some_and(|r| !r.is_empty()) {
                h2 { "Review tasks opened" }
                p { (list_of(&report["reviews"])) }
            }
        }
        p { a href="/workers" { "Workers" } " — resume each from its page when it is safe." }
    };
    layout::page(
        &v,
        "Kill switch",
        Nav::Kill,
        Some(Notice::Done(format!("Stopped: {reason}"))),
        content,
    )
}
