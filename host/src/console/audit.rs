//! The audit trail: search with filters, one entry in full (conditions, actions with
//! their inputs and outputs, the backtrace of a trap), verification of the hash chain,
//! and export as CSV or JSON Lines.

use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::query;
use super::fmt;
use super::layout::{self, Nav, Notice};
use super::session::{Posted, Visitor};

/// The entries one page shows.
const PAGE: usize = 100;

/// The search form's fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct Search {
    worker: Option<String>,
    record: Option<String>,
    principal: Option<String>,
    status: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    next: Option<String>,
    format: Option<String>,
}

impl Search {
    fn pairs(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("worker", self.worker.clone()),
            ("record", self.record.clone()),
            ("principal", self.principal.clone()),
            ("status", self.status.clone()),
            ("action", self.action.clone()),
            ("since", self.since.clone()),
            ("until", self.until.clone()),
        ]
    }
}

fn search_form(s: &Search) -> Markup {
    let field = |name: &str, label: &str, value: &Option<String>, placeholder: &str| {
        html! {
            div {
                label for=(format!("f-{name}")) { (label) }
                input id=(format!("f-{name}")) name=(name) value=[value.as_deref()] placeholder=(placeholder);
            }
        }
    };
    html! {
        form.filters method="get" action="/audit" {
            (field("worker", "Worker", &s.worker, "any"))
            (field("record", "Record", &s.record, "lead/L-1"))
            (field("principal", "Acting as", &s.principal, "any"))
            (field("status", "Status", &s.status, "success, failed, governance…"))
            (field("action", "Action", &s.action, "records.update"))
            div {
                label for="f-since" { "Since" }
                input #f-since type="date" name="since" value=[s.since.as_deref()];
            }
            div {
                label for="f-until" { "Until" }
                input #f-until type="date" name="until" value=[s.until.as_deref()];
            }
            button.primary type="submit" { "Search" }
        }
    }
}

/// What an entry says in one line.
fn summary(entry: &Value) -> String {
    if entry["status"] == "governance" {
        let g = &entry["report"]["governance"];
        let subject = g["subject"]
            .as_str()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        return format!(
            "{} by {}{subject}",
            fmt::text(&g["action"]),
            fmt::text(&g["by"])
        );
    }
    entry["report"]["outcome"]["summary"]
        .as_str()
        .or_else(|| entry["detail"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "success" | "partial" => "badge ok",
        "skipped" | "governance" => "badge",
        _ => "badge bad",
    };
    html! { span class=(class) { (status) } }
}

/// `GET /audit`: search.
pub(super) async fn search(v: Visitor, Query(s): Query<Search>) -> Response {
    let mut pairs = s.pairs();
    pairs.push(("order", Some("newest".into())));
    pairs.push(("limit", Some(PAGE.to_string())));
    pairs.push(("next", s.next.clone()));
    let answer = match v.get(&format!("/v1/audit{}", query(&pairs))).await {
        Ok(a) => a,
        Err(r) if r.status == StatusCode::BAD_REQUEST => {
            let content = html! { h1 { "Audit trail" } (search_form(&s)) };
            return layout::page(
                &v,
                "Audit",
                Nav::Audit,
                Some(Notice::Failed(r.message)),
                content,
            );
        }
        Err(r) => return layout::refused(&v, Nav::Audit, &r),
    };
    let entries = answer["entries"].as_array().cloned().unwrap_or_default();
    let filters = query(&s.pairs());
    let joiner = if filters.is_empty() { "?" } else { "&" };
    let content = html! {
        h1 { "Audit trail" }
        p.lede { "Every execution and every person's decision, newest first, each linked to the one before by its hash." }
        (search_form(&s))
        div.actions {
            a.button href=(format!("/audit/export{filters}{joiner}format=csv")) { "Export CSV" }
            a.button href=(format!("/audit/export{filters}{joiner}format=jsonl")) { "Export JSON Lines" }
            form.inline method="post" action="/audit/verify" {
                (layout::csrf(&v))
                button type="submit" { "Verify the chain" }
            }
        }
        @if entries.is_empty() {
            (layout::empty("No entries match."))
        } @else {
            table {
                thead { tr { th.num scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Worker" } th scope="col" { "Status" } th scope="col" { "Record" } th scope="col" { "What" } } }
                tbody { @for item in &entries {
                    @let e = &item["entry"];
                    tr {
                        td.num { a href=(format!("/audit/{}", item["seq"])) { (fmt::value(&item["seq"])) } }
                        td { (fmt::time_of(&e["started_at"])) }
                        td { (fmt::text(&e["worker"])) }
                        td { (status_badge(fmt::text(&e["status"]))) }
                        td { (fmt::value(&e["record"])) }
                        td { (summary(e)) }
                    }
                } }
            }
            @if let Some(next) = answer["next"].as_str() {
                @let more = [s.pairs(), vec![("next", Some(next.to_string()))]].concat();
                p.pager { a.button href=(format!("/audit{}", query(&more))) { "Older entries →" } }
            }
        }
    };
    layout::page(&v, "Audit", Nav::Audit, None, content)
}

/// `GET /audit/{seq}`: one entry in full.
pub(super) async fn entry(v: Visitor, Path(seq): Path<u64>) -> Response {
    let path = format!(
        "/v1/audit{}",
        query(&[
            ("after", seq.checked_sub(1).map(|s| s.to_string())),
            ("limit", Some("1".into()))
        ])
    );
    let answer = match v.get(&path).await {
        Ok(a) => a,
        Err(r) => return layout::refused(&v, Nav::Audit, &r),
    };
    let Some(item) = answer["entries"]
        .as_array()
        .and_then(|e| e.first())
        .filter(|i| i["seq"].as_u64() == Some(seq))
        .cloned()
    else {
        return layout::refused(
            &v,
            Nav::Audit,
            &super::api::Refusal {
                status: StatusCode::NOT_FOUND,
                message: format!("The audit trail has no entry {seq}."),
            },
        );
    };
    let e = &item["entry"];
    let report = &e["report"];
    let content = html! {
        p { a href="/audit" { "← The audit trail" } }
        h1 { "Entry " (seq) " " (status_badge(fmt::text(&e["status"]))) }
        p.lede { (summary(e)) }
        section.panel {
            dl.facts {
                dt { "Worker" } dd { (fmt::text(&e["worker"])) " " (fmt::text(&report["version"])) }
                dt { "Acting as" } dd { code { (fmt::value(&report["principal"])) } }
                dt { "Trigger" } dd { (fmt::text(&e["trigger"])) }
                dt { "Event" } dd { code { (fmt::text(&e["event_id"])) } }
                dt { "Record" } dd { (fmt::value(&e["record"])) }
                dt { "Accepted" } dd { (fmt::time_of(&e["accepted_at"])) }
                dt { "Started" } dd { (fmt::time_of(&e["started_at"])) }
                dt { "Finished" } dd { (fmt::time_of(&e["finished_at"])) }
                dt { "Attempt" } dd { (fmt::value(&e["attempt"])) }
                @if let Some(d) = e["detail"].as_str() { dt { "Detail" } dd { (d) } }
                @if let Some(f) = e["failure"].as_str() { dt { "Failure" } dd { (f) } }
                @if let Some(r) = e["request_id"].as_str() { dt { "API request" } dd { code { (r) } } }
                @if let Some(t) = e["trace_id"].as_str() { dt { "Trace" } dd { code { (t) } } }
                dt { "Fuel" } dd { (fmt::count_of(&report["fuel_consumed"])) }
                dt { "Hash" } dd { code { (fmt::text(&item["hash"])) } }
                dt { "Previous hash" } dd { code { (fmt::text(&e["prev_hash"])) } }
            }
        }
        @if let Some(g) = report["governance"].as_object() {
            section.panel {
                h2 { "Decision" }
                dl.facts {
                    dt { "What" } dd { code { (fmt::value(&g["action"])) } }
                    dt { "By" } dd { (fmt::value(&g["by"])) }
                    @if !g["subject"].is_null() { dt { "About" } dd { (fmt::value(&g["subject"])) } }
                    @if !g["reason"].is_null() { dt { "Reason" } dd { (fmt::value(&g["reason"])) } }
                }
                @if g["data"].as_object().is_some_and(|d| !d.is_empty()) {
                    pre { (serde_json::to_string_pretty(&g["data"]).unwrap_or_default()) }
                }
            }
        }
        @if let Some(conditions) = e["conditions"].as_array().filter(|c| !c.is_empty()) {
            section.panel {
                h2 { "Conditions" }
                table {
                    thead { tr { th scope="col" { "Condition" } th scope="col" { "Passed" } } }
                    tbody { @for c in conditions { tr {
                        td { code { (fmt::value(&c["condition"])) } }
                        td { @if c["passed"] == true { span.badge.ok { "yes" } } @else { span.badge.bad { "no" } } }
                    } } }
                }
            }
        }
        @if let Some(actions) = report["actions"].as_array().filter(|a| !a.is_empty()) {
            section.panel {
                h2 { "Actions" }
                table {
                    thead { tr { th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Result" } th scope="col" { "Input" } th scope="col" { "Output" } } }
                    tbody { @for a in actions { tr {
                        td { code { (fmt::text(&a["capability"])) "." (fmt::text(&a["operation"])) } }
                        td { (fmt::text(&a["target"])) }
                        td { (fmt::text(&a["result"])) @if let Some(r) = a["reason"].as_str() { br; span.muted { (r) } } @if let Some(r) = a["error"].as_str() { br; span.muted { (r) } } }
                        td { pre { (serde_json::to_string_pretty(&a["input"]).unwrap_or_default()) } }
                        td { @if !a["output"].is_null() { pre { (serde_json::to_string_pretty(&a["output"]).unwrap_or_default()) } } }
                    } } }
                }
            }
        }
        @if let Some(b) = report["backtrace"].as_str() {
            section.panel { h2 { "Backtrace" } pre { (b) } }
        }
        @if let Some(logs) = report["logs"].as_array().filter(|l| !l.is_empty()) {
            section.panel {
                h2 { "Logs" }
                pre { @for l in logs { (fmt::text(&l["level"])) " " (fmt::text(&l["message"])) "\n" } }
            }
        }
        details {
            summary { "The entry as stored" }
            pre { (serde_json::to_string_pretty(e).unwrap_or_default()) }
        }
    };
    layout::page(&v, &format!("Audit entry {seq}"), Nav::Audit, None, content)
}

/// `POST /audit/verify`: checks every link of the chain, its head and its checkpoints.
pub(super) async fn verify(Posted { visitor: v, .. }: Posted) -> Response {
    let answer = match v.post("/v1/audit/verify", &json!({})).await {
        Ok(a) => a,
        Err(r) => return layout::refused(&v, Nav::Audit, &r),
    };
    let intact = answer["ok"] == true;
    let s = &answer["summary"];
    let notice = if intact {
        Notice::Done(format!(
            "The chain holds: {} entries ({} to {}), {} checkpoints, head {}.",
            fmt::count_of(&s["entries"]),
            fmt::value(&s["first"]),
            fmt::value(&s["last"]),
            fmt::value(&s["checkpoints"]),
            fmt::text(&s["head"])
        ))
    } else {
        Notice::Failed(format!(
            "The chain is broken: {}",
            fmt::text(&answer["message"])
        ))
    };
    let content = html! {
        h1 { "Audit trail" }
        (search_form(&Search::default()))
        @if !intact {
            p { a href=(format!("/audit/{}", answer["problem"]["seq"])) { "The first broken entry" } }
        }
    };
    layout::page(&v, "Audit", Nav::Audit, Some(notice), content)
}

/// `GET /audit/export?format=`: the API's export, streamed to the browser as a file.
pub(super) async fn export(v: Visitor, Query(s): Query<Search>) -> Response {
    let format = s.format.clone().unwrap_or_else(|| "jsonl".into());
    let mut pairs = s.pairs();
    pairs.push(("format", Some(format.clone())));
    let response = match v.raw(&format!("/v1/audit/export{}", query(&pairs))).await {
        Ok(r) => r,
        Err(r) => return layout::refused(&v, Nav::Audit, &r),
    };
    if !response.status().is_success() {
        let status = response.status();
        return layout::refused(
            &v,
            Nav::Audit,
            &super::api::Refusal {
                status,
                message: "The export was refused; check the filters.".into(),
            },
        );
    }
    let name = if format == "csv" {
        "audit.csv"
    } else {
        "audit.jsonl"
    };
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        parts.headers.insert(header::CONTENT_DISPOSITION, value);
    }
    (parts, body).into_response()
}
