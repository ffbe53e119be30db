//! The approvals inbox: the actions held for the visitor's domains, each with its trigger,
//! the data the worker used, the proposed action (a before/after table for record changes,
//! the message as it would be sent), confidence and reasons; approve, edit within what a
//! reviewer may change, or reject with a reason; bulk approval of one worker's actions;
//! new held actions arriving by server-sent events.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Refusal, query, segment};
use super::fmt;
use super::layout::{self, Nav, Notice};
use super::session::{Posted, Visitor};
use crate::governance::access::{Operation, Resource};

/// The most held actions one page shows.
const PAGE: usize = 200;
/// The most held actions one bulk approval decides.
const MAX_BULK: usize = 2_000;

/// `?worker=&next=&done=&n=` of the inbox.
#[derive(Debug, Default, Deserialize)]
pub(super) struct InboxQuery {
    worker: Option<String>,
    next: Option<String>,
    done: Option<String>,
    n: Option<u64>,
}

/// The pending held actions the visitor may see, longest waiting first: at most [`PAGE`]
/// of them (from `next`, the API's cursor, when the visitor sees one scope), held at or
/// after `since` when given; and the cursor of the next page.
async fn pending(
    v: &Visitor,
    worker: Option<&str>,
    since: Option<i64>,
    next: Option<String>,
) -> Result<(Vec<Value>, Option<String>), Refusal> {
    let scopes: Vec<Option<String>> = if v.may_host(Operation::ApprovalsList) {
        vec![None]
    } else {
        v.domains_where(Operation::ApprovalsList)
            .into_iter()
            .map(Some)
            .collect()
    };
    let single = scopes.len() == 1;
    let mut held = Vec::new();
    let mut cursor = None;
    for domain in scopes {
        let path = format!(
            "/v1/approvals{}",
            query(&[
                ("status", Some("pending".into())),
                ("domain", domain),
                ("worker", worker.map(str::to_string)),
                ("since", since.map(|t| t.to_string())),
                ("limit", Some(PAGE.to_string())),
                ("next", if single { next.clone() } else { None }),
            ])
        );
        let answer = v.get(&path).await?;
        held.extend(answer["approvals"].as_array().cloned().unwrap_or_default());
        if single {
            cursor = answer["next"].as_str().map(str::to_string);
        }
    }
    held.sort_by(|a, b| {
        a["created_at"]
            .as_i64()
            .cmp(&b["created_at"].as_i64())
            .then_with(|| fmt::text(&a["id"]).cmp(fmt::text(&b["id"])))
    });
    if held.len() > PAGE {
        held.truncate(PAGE);
        cursor = None;
    }
    Ok((held, cursor))
}

/// A held action as the access policies see it.
fn resource(a: &Value) -> Resource {
    Resource::Approval {
        id: fmt::text(&a["id"]).to_string(),
        worker: fmt::text(&a["worker"]).to_string(),
        domain: fmt::text(&a["domain"]).to_string(),
        owners: a["owners"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.as_str().map(str::to_string))
            .collect(),
    }
}

/// The current values of the record a held change is about, if the visitor may read it.
async fn before(v: &Visitor, a: &Value) -> BTreeMap<String, Value> {
    let effect = &a["proposed"];
    if effect["kind"] != "record-update" {
        return BTreeMap::new();
    }
    let path = format!(
        "/v1/records/{}/{}",
        segment(fmt::text(&effect["object"])),
        segment(fmt::text(&effect["id"]))
    );
    match v.get(&path).await {
        Ok(answer) => answer["record"]["fields"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    }
}

/// A field value as a reviewer reads and types it.
fn shown(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(fmt::value).collect::<Vec<_>>().join(", "),
        Value::Object(o) if o.contains_key("timestamp") => fmt::time_of(&o["timestamp"]),
        other => fmt::value(other),
    }
}

/// The kind of a proposed field value, so an edit reads back the same kind.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::Array(_) => "list",
        Value::Object(o) if o.contains_key("timestamp") => "timestamp",
        Value::Null => "null",
        _ => "text",
    }
}

/// The typed value of an edited field, or why it does not read.
fn typed(name: &str, kind: &str, text: &str) -> Result<Value, String> {
    let text = text.trim();
    let bad = |what: &str| format!("field `{name}`: `{text}` is not {what}");
    Ok(match kind {
        "boolean" => match text {
            "true" | "yes" => json!(true),
            "false" | "no" => json!(false),
            _ => return Err(bad("true or false")),
        },
        "integer" => json!(text.parse::<i64>().map_err(|_| bad("a whole number"))?),
        "number" => {
            let n = text.parse::<f64>().map_err(|_| bad("a number"))?;
            if !n.is_finite() {
                return Err(bad("a finite number"));
            }
            json!(n)
        }
        "list" => json!(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        ),
        "timestamp" => {
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S UTC")
                        .map(|t| t.and_utc().timestamp_millis())
                })
                .map_err(|_| bad("a time (YYYY-MM-DD HH:MM:SS UTC)"))?;
            json!({ "timestamp": at })
        }
        "null" if text.is_empty() || text == "—" => Value::Null,
        _ => json!(text),
    })
}

/// What the action would do, as a reviewer reads it.
fn proposal(e: &Value, before: &BTreeMap<String, Value>) -> Markup {
    let kind = fmt::text(&e["kind"]);
    // The record's current values, for a change still waiting.
    let now = kind == "record-update" && !before.is_empty();
    html! {
        @match kind {
            "record-update" | "record-create" => {
                p {
                    @if kind == "record-update" { "Change " } @else { "Create " }
                    code { (fmt::text(&e["object"])) "/" (fmt::text(&e["id"])) }
                }
                table.diff {
                    thead { tr { th scope="col" { "Field" } @if now { th scope="col" { "Now" } } th scope="col" { "Proposed" } } }
                    tbody {
                        @for (field, value) in e["fields"].as_object().into_iter().flatten() {
                            tr {
                                th scope="row" { (field) }
                                @if now {
                                    td.before { (before.get(field).map(shown).unwrap_or_else(|| "—".into())) }
                                }
                                td.after { (shown(value)) }
                            }
                        }
                    }
                }
            }
            "record-delete" => {
                p { "Delete " code { (fmt::text(&e["object"])) "/" (fmt::text(&e["id"])) } }
            }
            "notify" => {
                p { "Send by " strong { (fmt::text(&e["channel"])) } " to "
                    (e["recipients"].as_array().into_iter().flatten().map(fmt::value).collect::<Vec<_>>().join(", ")) }
                @if let Some(subject) = e["subject"].as_str() { p { strong { "Subject: " } (subject) } }
                div.message { (fmt::text(&e["body"])) }
            }
            "signal" => {
                p { "Emit the signal " code { (fmt::text(&e["topic"])) } }
                pre { (fmt::text(&e["payload"])) }
            }
            _ => { pre { (serde_json::to_string_pretty(e).unwrap_or_default()) } }
        }
    }
}

/// The form that edits what a reviewer may change.
fn edit_form(v: &Visitor, a: &Value) -> Option<Markup> {
    let e = &a["proposed"];
    let id = fmt::text(&a["id"]);
    let fields = match fmt::text(&e["kind"]) {
        "record-update" | "record-create" => html! {
            @for (field, value) in e["fields"].as_object().into_iter().flatten() {
                label for=(format!("{id}-f-{field}")) { (field) }
                input id=(format!("{id}-f-{field}")) name=(format!("field:{field}")) value=(shown(value));
                input type="hidden" name=(format!("type:{field}")) value=(kind_of(value));
            }
        },
        "notify" => html! {
            fieldset {
                legend { "Recipients (you may remove some)" }
                @for r in e["recipients"].as_array().into_iter().flatten() {
                    @let r = fmt::value(r);
                    label { input type="checkbox" name="recipient" value=(r) checked; " " (r) }
                }
            }
            @if e["subject"].is_string() {
                label for=(format!("{id}-subject")) { "Subject" }
                input id=(format!("{id}-subject")) name="subject" value=(fmt::text(&e["subject"]));
            }
            label for=(format!("{id}-body")) { "Message" }
            textarea id=(format!("{id}-body")) name="body" rows="6" { (fmt::text(&e["body"])) }
        },
        "signal" => html! {
            label for=(format!("{id}-payload")) { "Payload (JSON)" }
            textarea id=(format!("{id}-payload")) name="payload" rows="6" { (fmt::text(&e["payload"])) }
        },
        _ => return None,
    };
    Some(html! {
        details.edit {
            summary { "Edit before approving" }
            form method="post" action=(format!("/approvals/{}/decide", segment(id))) {
                (layout::csrf(v))
                input type="hidden" name="verdict" value="edit";
                (fields)
                label for=(format!("{id}-edit-reason")) { "Why (optional)" }
                input id=(format!("{id}-edit-reason")) name="reason";
                div.actions { button.primary type="submit" { "Approve as edited" } }
            }
        }
    })
}

/// One held action as a card.
fn card_markup(v: &Visitor, a: &Value, before: &BTreeMap<String, Value>) -> Markup {
    let id = fmt::text(&a["id"]);
    let now = v.console.service.store().clock().now_ms();
    let age = now
        .saturating_sub(a["created_at"].as_i64().unwrap_or(now))
        .max(0);
    let may_decide = v.may(Operation::ApprovalDecide, &resource(a));
    let risk = fmt::text(&a["risk"]);
    let risk_class = match risk {
        "financial-or-irreversible" => "badge bad",
        "external-communication" => "badge warn",
        _ => "badge",
    };
    html! {
        article.held id=(format!("held-{id}")) data-worker=(fmt::text(&a["worker"])) {
            header {
                h2 { a href=(format!("/approvals/{}", segment(id))) { (fmt::text(&a["worker"])) " proposes " (a["proposed"]["kind"].as_str().unwrap_or("an action").replace('-', " ")) } }
                span class=(risk_class) { (risk.replace('-', " ")) }
                span.muted { (fmt::text(&a["domain"])) " · held " (fmt::millis(age as f64)) " ago" }
            }
            dl {
                dt { "Trigger" } dd { (fmt::text(&a["trigger"])) }
                @if let Some(record) = a["record"].as_str() { dt { "Record" } dd { code { (record) } } }
                dt { "Confidence" } dd { (a["confidence"].as_f64().map(|c| format!("{:.0}%", c * 100.0)).unwrap_or_else(|| "not reported".into())) }
                dt { "Why it was held" } dd {
                    @for r in a["reasons"].as_array().into_iter().flatten() { (fmt::value(r)) br; }
                }
            }
            (proposal(&a["proposed"], before))
            details {
                summary { "Data the worker used" }
                pre { (serde_json::to_string_pretty(&a["data"]).unwrap_or_default()) }
            }
            @if may_decide {
                div.actions {
                    form.inline method="post" action=(format!("/approvals/{}/decide", segment(id))) {
                        (layout::csrf(v))
                        input type="hidden" name="verdict" value="approve";
                        button.primary type="submit" data-verdict="approve" { "Approve" }
                    }
                    form.inline.reject method="post" action=(format!("/approvals/{}/decide", segment(id))) {
                        (layout::csrf(v))
                        input type="hidden" name="verdict" value="reject";
                        label.visually-hidden for=(format!("{id}-reason")) { "Reason to reject" }
                        input id=(format!("{id}-reason")) name="reason" placeholder="Reason to reject" required;
                        " "
                        button.danger type="submit" data-verdict="reject" { "Reject" }
                    }
                }
                @if let Some(form) = edit_form(v, a) { (form) }
            }
        }
    }
}

/// `GET /approvals`: the inbox.
pub(super) async fn inbox(v: Visitor, Query(q): Query<InboxQuery>) -> Response {
    let (held, more) = match pending(&v, q.worker.as_deref(), None, q.next.clone()).await {
        Ok(h) => h,
        Err(r) => return layout::refused(&v, Nav::Approvals, &r),
    };
    let mut cards = Vec::new();
    for a in &held {
        let before = before(&v, a).await;
        cards.push(card_markup(&v, a, &before));
    }
    // Workers whose held actions the visitor may approve in bulk.
    let mut bulk: BTreeMap<String, usize> = BTreeMap::new();
    for a in &held {
        if v.may(Operation::ApprovalDecide, &resource(a)) {
            *bulk.entry(fmt::text(&a["worker"]).to_string()).or_default() += 1;
        }
    }
    let notice = match (q.done.as_deref(), q.n) {
        (Some("approve"), _) => Some(Notice::Done("Approved; the action was applied.".into())),
        (Some("edit"), _) => Some(Notice::Done(
            "Approved as edited; the edited action was applied.".into(),
        )),
        (Some("reject"), _) => Some(Notice::Done("Rejected; nothing was done.".into())),
        (Some("bulk"), Some(n)) => Some(Notice::Done(format!("Approved {n} held actions."))),
        _ => None,
    };
    let now = v.console.service.store().clock().now_ms();
    let live = format!(
        "/approvals/events{}",
        query(&[
            ("worker", q.worker.clone()),
            ("after", Some(now.to_string()))
        ])
    );
    let content = html! {
        h1 { "Approvals" }
        p.lede {
            span data-held-count { (held.len()) } " held actions waiting for a person"
            @if more.is_some() || held.len() == PAGE { ", the longest waiting first (more on the next page)" }
            @if let Some(w) = &q.worker { " from " strong { (w) } " · " a href="/approvals" { "all workers" } }
            ". New ones appear at the end as they arrive."
            " "
            span.live data-live=(live) hidden { "live" }
        }
        p.shortcuts { "Keys: " kbd { "j" } " / " kbd { "k" } " next and previous, " kbd { "a" } " approve, " kbd { "e" } " edit, " kbd { "r" } " reject, " kbd { "?" } " all keys." }
        div #shortcuts.panel hidden {
            h2 { "Keyboard" }
            dl.facts {
                dt { kbd { "j" } } dd { "next held action" }
                dt { kbd { "k" } } dd { "previous held action" }
                dt { kbd { "a" } } dd { "approve the selected one" }
                dt { kbd { "e" } } dd { "edit it before approving" }
                dt { kbd { "r" } } dd { "type a reason and reject it" }
                dt { kbd { "Esc" } } dd { "leave a field" }
            }
        }
        @if !bulk.is_empty() {
            form.filters method="post" action="/approvals/bulk" data-confirm="Approve every action this worker has waiting?" {
                (layout::csrf(&v))
                div {
                    label for="bulk-worker" { "Approve everything held for" }
                    select #bulk-worker name="worker" {
                        @for (w, n) in &bulk { option value=(w) { (w) " (" (n) ")" } }
                    }
                }
                button type="submit" { "Approve all" }
            }
        }
        p #held-empty.empty hidden[!held.is_empty()] { "Nothing is waiting for you. New held actions appear here as they arrive." }
        div #held-list { @for c in cards { (c) } }
        @if let Some(next) = &more {
            p.pager { a.button href=(format!("/approvals{}", query(&[("worker", q.worker.clone()), ("next", Some(next.clone()))]))) { "Next page →" } }
        }
    };
    layout::page(&v, "Approvals", Nav::Approvals, notice, content)
}

/// One held action, fetched through the API (a 404 or 403 in words otherwise).
async fn one(v: &Visitor, id: &str) -> Result<Value, Refusal> {
    let answer = v.get(&format!("/v1/approvals/{}", segment(id))).await?;
    Ok(answer["approval"].clone())
}

/// `GET /approvals/{id}`: one held action, decided or not.
pub(super) async fn show(v: Visitor, Path(id): Path<String>) -> Response {
    let a = match one(&v, &id).await {
        Ok(a) => a,
        Err(r) => return layout::refused(&v, Nav::Approvals, &r),
    };
    show_page(&v, &a, None).await
}

async fn show_page(v: &Visitor, a: &Value, notice: Option<Notice>) -> Response {
    let status = fmt::text(&a["status"]);
    let before = if status == "pending" {
        before(v, a).await
    } else {
        BTreeMap::new()
    };
    let content = html! {
        p { a href="/approvals" { "← All held actions" } }
        h1 { "Held action " code { (fmt::text(&a["id"])) } }
        p.lede { "Status: " span.badge { (status) } }
        @if status == "pending" {
            div #held-list { (card_markup(v, a, &before)) }
        } @else {
            section.panel {
                (proposal(&a["proposed"], &before))
                @if let Some(d) = a["decision"].as_object() {
                    h2 { "Decision" }
                    dl.facts {
                        dt { "Verdict" } dd { (fmt::value(&d["verdict"])) }
                        dt { "By" } dd { (fmt::value(&d["by"])) }
                        dt { "At" } dd { (fmt::time_of(&d["at"])) }
                        @if let Some(reason) = d["reason"].as_str() { dt { "Reason" } dd { (reason) } }
                    }
                    @if d["edited"].is_object() {
                        h3 { "As edited and applied" }
                        (proposal(&d["edited"], &before))
                    }
                }
            }
        }
    };
    let failed = matches!(notice, Some(Notice::Failed(_)));
    let mut response = layout::page(v, "Held action", Nav::Approvals, notice, content);
    if failed {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// `GET /approvals/{id}/card`: one pending held action's card, for the live inbox.
pub(super) async fn card(v: Visitor, Path(id): Path<String>) -> Response {
    match one(&v, &id).await {
        Ok(a) if a["status"] == "pending" => {
            let before = before(&v, &a).await;
            Html(card_markup(&v, &a, &before).into_string()).into_response()
        }
        Ok(_) => StatusCode::GONE.into_response(),
        Err(r) => (r.status, r.message).into_response(),
    }
}

/// The decision a form asks for, as the API's request.
fn decision(form: &super::session::Form, proposed: &Value) -> Result<Value, String> {
    let verdict = form.get("verdict").unwrap_or_default();
    let reason = form.text("reason");
    match verdict {
        "approve" => Ok(json!({ "verdict": "approve", "reason": reason })),
        "reject" => {
            if reason.is_none() {
                return Err("Give a reason to reject.".into());
            }
            Ok(json!({ "verdict": "reject", "reason": reason }))
        }
        "edit" => {
            let mut edited = proposed.clone();
            match fmt::text(&proposed["kind"]) {
                "record-update" | "record-create" => {
                    let mut fields = serde_json::Map::new();
                    for (name, value) in &form.0 {
                        if let Some(field) = name.strip_prefix("field:") {
                            let kind = form.get(&format!("type:{field}")).unwrap_or("text");
                            fields.insert(field.to_string(), typed(field, kind, value)?);
                        }
                    }
                    edited["fields"] = Value::Object(fields);
                }
                "notify" => {
                    edited["recipients"] = json!(form.all("recipient"));
                    if proposed["subject"].is_string() {
                        edited["subject"] = json!(form.get("subject").unwrap_or_default());
                    }
                    edited["body"] = json!(form.get("body").unwrap_or_default());
                }
                "signal" => {
                    let payload = form.get("payload").unwrap_or_default();
                    if serde_json::from_str::<Value>(payload).is_err() {
                        return Err("The payload is not JSON.".into());
                    }
                    edited["payload"] = json!(payload);
                }
                _ => return Err("This action can be approved or rejected, not edited.".into()),
            }
            Ok(json!({ "verdict": "edit", "reason": reason, "edited": edited }))
        }
        other => Err(format!(
            "`{other}` is not a decision: approve, edit or reject."
        )),
    }
}

/// `POST /approvals/{id}/decide`: approve, edit or reject, through the API.
pub(super) async fn decide(
    Path(id): Path<String>,
    Posted { visitor: v, form }: Posted,
) -> Response {
    let a = match one(&v, &id).await {
        Ok(a) => a,
        Err(r) => return layout::refused(&v, Nav::Approvals, &r),
    };
    let request = match decision(&form, &a["proposed"]) {
        Ok(r) => r,
        Err(message) => return show_page(&v, &a, Some(Notice::Failed(message))).await,
    };
    let verdict = fmt::text(&request["verdict"]).to_string();
    match v
        .post(&format!("/v1/approvals/{}/decide", segment(&id)), &request)
        .await
    {
        Ok(_) => Redirect::to(&format!("/approvals?done={verdict}")).into_response(),
        Err(r) if r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND => {
            layout::refused(&v, Nav::Approvals, &r)
        }
        Err(r) => {
            let a = one(&v, &id).await.unwrap_or(a);
            show_page(&v, &a, Some(Notice::Failed(r.message))).await
        }
    }
}

/// `POST /approvals/bulk`: approves every pending action of one worker the visitor may
/// decide, one API request each.
pub(super) async fn bulk(Posted { visitor: v, form }: Posted) -> Response {
    let Some(worker) = form.text("worker") else {
        return layout::refusal(StatusCode::BAD_REQUEST, "Choose a worker.");
    };
    let mut held = Vec::new();
    let mut next = None;
    loop {
        match pending(&v, Some(&worker), None, next.clone()).await {
            Ok((page, more)) => {
                held.extend(page);
                match more {
                    Some(m) if held.len() < MAX_BULK => next = Some(m),
                    _ => break,
                }
            }
            Err(r) => return layout::refused(&v, Nav::Approvals, &r),
        }
    }
    held.truncate(MAX_BULK);
    let (mut done, mut failed) = (0u64, Vec::new());
    for a in held.iter().filter(|a| a["worker"] == worker.as_str()) {
        let id = fmt::text(&a["id"]);
        match v
            .post(
                &format!("/v1/approvals/{}/decide", segment(id)),
                &json!({ "verdict": "approve", "reason": "approved in bulk" }),
            )
            .await
        {
            Ok(_) => done += 1,
            Err(r) => failed.push(format!("{id}: {}", r.message)),
        }
    }
    if failed.is_empty() {
        return Redirect::to(&format!("/approvals?done=bulk&n={done}")).into_response();
    }
    let content = html! {
        h1 { "Approvals" }
        p { "Approved " (done) " of " (done + failed.len() as u64) " held actions of " strong { (worker) } "." }
        ul { @for f in &failed { li { (f) } } }
        p { a href="/approvals" { "Back to the inbox" } }
    };
    layout::page(
        &v,
        "Approvals",
        Nav::Approvals,
        Some(Notice::Failed(format!(
            "{} could not be approved.",
            failed.len()
        ))),
        content,
    )
}

/// `?worker=&after=` of the live updates.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EventsQuery {
    worker: Option<String>,
    /// When the page was drawn: held actions from later are sent at once.
    after: Option<i64>,
}

/// `GET /approvals/events`: `held` (an id) when an action starts waiting after the page
/// was drawn, `gone` when one of those stops waiting; polled through the API every second
/// while the page is open.
pub(super) async fn events(v: Visitor, Query(q): Query<EventsQuery>) -> Response {
    let since = q
        .after
        .unwrap_or_else(|| v.console.service.store().clock().now_ms());
    let state = (
        v,
        q.worker,
        BTreeSet::<String>::new(),
        Vec::<Event>::new(),
        true,
    );
    let stream = futures_util::stream::unfold(
        state,
        move |(v, worker, mut known, mut queue, mut first)| async move {
            loop {
                if let Some(event) = queue.pop() {
                    return Some((
                        Ok::<Event, Infallible>(event),
                        (v, worker, known, queue, first),
                    ));
                }
                if !first {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                first = false;
                // Those held since the page was drawn; the page has the ones before.
                let Ok((now, _)) = pending(&v, worker.as_deref(), Some(since), None).await else {
                    continue;
                };
                let ids: BTreeSet<String> = now
                    .iter()
                    .map(|a| fmt::text(&a["id"]).to_string())
                    .collect();
                for gone in known.difference(&ids) {
                    queue.push(Event::default().event("gone").data(gone.clone()));
                }
                // Newest first on the queue, so they are sent oldest first, in the order
                // the page lists them.
                for a in now.iter().rev() {
                    let id = fmt::text(&a["id"]);
                    if !known.contains(id) {
                        queue.push(Event::default().event("held").data(id));
                    }
                }
                known = ids;
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
