//! The dashboard (what the workers did) and the value page (what it was worth), both
//! from the API's statistics, which count hours rather than reading the log.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::api::{query, segment};
use super::chart::{self, Bar};
use super::fmt;
use super::layout::{self, Nav};
use super::session::Visitor;
use crate::clock::{DAY_MS, HOUR_MS};

/// The filters both pages take, as the form sends them.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct Filters {
    /// `24h`, `7d`, `30d`, `90d` or `custom` (with `from` and `to` days).
    range: Option<String>,
    /// The first day, `YYYY-MM-DD` (UTC).
    from: Option<String>,
    /// The last day.
    to: Option<String>,
    domain: Option<String>,
    worker: Option<String>,
    kind: Option<String>,
    status: Option<String>,
}

/// The range a filter asks for: start, end (exclusive), step.
fn range(f: &Filters, now: i64) -> Result<(i64, i64, &'static str), String> {
    let next_hour = (now.div_euclid(HOUR_MS) + 1) * HOUR_MS;
    let tomorrow = (now.div_euclid(DAY_MS) + 1) * DAY_MS;
    match f.range.as_deref().unwrap_or("7d") {
        "24h" => Ok((next_hour - DAY_MS, next_hour, "hour")),
        "7d" => Ok((tomorrow - 7 * DAY_MS, tomorrow, "day")),
        "30d" => Ok((tomorrow - 30 * DAY_MS, tomorrow, "day")),
        "90d" => Ok((tomorrow - 90 * DAY_MS, tomorrow, "day")),
        "custom" => {
            let from = f
                .from
                .as_deref()
                .and_then(fmt::parse_day)
                .ok_or("Give the first day as YYYY-MM-DD.")?;
            let to =
                f.to.as_deref()
                    .and_then(fmt::parse_day)
                    .ok_or("Give the last day as YYYY-MM-DD.")?
                    + DAY_MS;
            if to <= from {
                return Err("The last day must not be before the first.".into());
            }
            Ok((
                from,
                to,
                if to - from <= 2 * DAY_MS {
                    "hour"
                } else {
                    "day"
                },
            ))
        }
        other => Err(format!("`{other}` is not a range this page knows.")),
    }
}

impl Filters {
    /// The API query for these filters.
    fn api_query(&self, from: i64, to: i64, bucket: Option<&str>, status: bool) -> String {
        query(&[
            ("from", Some(from.to_string())),
            ("to", Some(to.to_string())),
            ("domain", self.domain.clone()),
            ("worker", self.worker.clone()),
            ("kind", self.kind.clone()),
            ("status", if status { self.status.clone() } else { None }),
            ("bucket", bucket.map(str::to_string)),
        ])
    }
}

/// The filter form.
fn filter_form(v: &Visitor, f: &Filters, action: &str, with_status: bool) -> Markup {
    let workers = v.console.service.workers();
    let mut domains: Vec<&str> = workers
        .values()
        .map(|w| w.config.manifest.plugin.domain.as_str())
        .collect();
    domains.sort();
    domains.dedup();
    let chosen = |field: &Option<String>, value: &str| field.as_deref() == Some(value);
    let range = f.range.clone().unwrap_or_else(|| "7d".into());
    html! {
        form.filters method="get" action=(action) data-autosubmit {
            div {
                label for="range" { "Range" }
                select #range name="range" {
                    @for (value, label) in [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days"), ("custom", "From … to …")] {
                        option value=(value) selected[range == value] { (label) }
                    }
                }
            }
            div {
                label for="from" { "From (UTC)" }
                input #from type="date" name="from" value=[f.from.as_deref()];
            }
            div {
                label for="to" { "To (UTC)" }
                input #to type="date" name="to" value=[f.to.as_deref()];
            }
            div {
                label for="domain" { "Domain" }
                select #domain name="domain" {
                    option value="" { "All domains" }
                    @for d in &domains {
                        option value=(d) selected[chosen(&f.domain, d)] { (d) }
                    }
                }
            }
            div {
                label for="worker" { "Worker" }
                select #worker name="worker" {
                    option value="" { "All workers" }
                    @for name in workers.keys() {
                        option value=(name) selected[chosen(&f.worker, name)] { (name) }
                    }
                }
            }
            div {
                label for="kind" { "Kind" }
                select #kind name="kind" {
                    option value="" { "Rules and AI" }
                    option value="rules" selected[chosen(&f.kind, "rules")] { "Rules" }
                    option value="ai" selected[chosen(&f.kind, "ai")] { "AI" }
                }
            }
            @if with_status {
                div {
                    label for="status" { "Status" }
                    select #status name="status" {
                        option value="" { "Any status" }
                        @for s in ["success", "partial", "awaiting-approval", "skipped", "interrupted", "failed", "trapped", "timeout", "out-of-fuel", "memory-limit", "action-limit", "host-call-limit", "instantiation-failed"] {
                            option value=(s) selected[chosen(&f.status, s)] { (s) }
                        }
                    }
                }
            }
            button type="submit" { "Apply" }
        }
    }
}

fn card(label: &str, value: String, sub: Option<String>) -> Markup {
    html! {
        div.card {
            div.label { (label) }
            div.value { (value) }
            @if let Some(sub) = sub { div.sub { (sub) } }
        }
    }
}

fn step_label(from: i64, bucket: &str) -> String {
    let t = chrono::DateTime::from_timestamp_millis(from);
    match (t, bucket) {
        (Some(t), "hour") => t.format("%H:00").to_string(),
        (Some(t), _) => t.format("%b %d").to_string(),
        (None, _) => String::new(),
    }
}

/// `GET /`: the dashboard.
pub(super) async fn activity(v: Visitor, Query(f): Query<Filters>) -> Response {
    let now = v.console.service.store().clock().now_ms();
    let (from, to, bucket) = match range(&f, now) {
        Ok(r) => r,
        Err(e) => {
            let content = html! { h1 { "Dashboard" } (filter_form(&v, &f, "/", true)) };
            return layout::failed(
                &v,
                ("Dashboard", Nav::Dashboard),
                StatusCode::BAD_REQUEST,
                e,
                content,
            );
        }
    };
    let path = format!(
        "/v1/stats/activity{}",
        f.api_query(from, to, Some(bucket), true)
    );
    let d = match v.get(&path).await {
        Ok(d) => d,
        Err(r) => return layout::refused(&v, Nav::Dashboard, &r),
    };
    let t = &d["totals"];
    let bars: Vec<Bar> = d["series"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| Bar {
            label: step_label(s["from"].as_i64().unwrap_or(0), bucket),
            ok: s["activity"]["succeeded"].as_u64().unwrap_or(0),
            skipped: s["activity"]["skipped"].as_u64().unwrap_or(0)
                + s["activity"]["interrupted"].as_u64().unwrap_or(0),
            failed: s["activity"]["failed"].as_u64().unwrap_or(0),
        })
        .collect();
    let content = html! {
        h1 { "Dashboard" }
        p.lede { "What the workers did from " (fmt::time(from)) " to " (fmt::time(to)) "." }
        (filter_form(&v, &f, "/", true))
        section.cards aria-label="Totals" data-totals {
            (card("Executions", fmt::count_of(&t["executions"]), Some(format!("{} succeeded · {} skipped · {} interrupted · {} failed", fmt::count_of(&t["succeeded"]), fmt::count_of(&t["skipped"]), fmt::count_of(&t["interrupted"]), fmt::count_of(&t["failed"])))))
            (card("Success rate", fmt::percent(&t["success_rate"]), None))
            (card("Error rate", fmt::percent(&t["error_rate"]), None))
            (card("Average duration", fmt::millis_of(&t["average_duration_ms"]), None))
            (card("p95 duration", fmt::millis_of(&t["p95_duration_ms"]), None))
            (card("Records affected", fmt::count_of(&t["records_affected"]), None))
            (card("Actions held", fmt::count_of(&t["actions_held"]), Some("for a person's approval".into())))
        }
        section.panel {
            h2 { "Executions per " (bucket) }
            (chart::bars(&format!("Executions per {bucket}"), &bars))
        }
        h2 { "Per worker" }
        @let workers = d["workers"].as_array().cloned().unwrap_or_default();
        @if workers.is_empty() {
            (layout::empty("No executions match these filters in this range."))
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Worker" } th scope="col" { "Domain" } th scope="col" { "Kind" }
                    th.num scope="col" { "Executions" } th.num scope="col" { "Success" } th.num scope="col" { "Errors" }
                    th.num scope="col" { "Avg" } th.num scope="col" { "p95" } th.num scope="col" { "Records" } th.num scope="col" { "Held" }
                    th scope="col" { "Open" }
                } }
                tbody {
                    @for w in &workers {
                        @let name = fmt::text(&w["worker"]);
                        @let a = &w["activity"];
                        tr {
                            th scope="row" { a href=(format!("/workers/{}", segment(name))) { (name) } }
                            td { (fmt::text(&w["domain"])) }
                            td { (fmt::text(&w["kind"])) }
                            td.num { (fmt::count_of(&a["executions"])) }
                            td.num { (fmt::percent(&a["success_rate"])) }
                            td.num { (fmt::percent(&a["error_rate"])) }
                            td.num { (fmt::millis_of(&a["average_duration_ms"])) }
                            td.num { (fmt::millis_of(&a["p95_duration_ms"])) }
                            td.num { (fmt::count_of(&a["records_affected"])) }
                            td.num { (fmt::count_of(&a["actions_held"])) }
                            td {
                                a href=(format!("/workers/{}#executions", segment(name))) { "executions" }
                                " · "
                                a href=(format!("/audit?worker={}", segment(name))) { "audit" }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&v, "Dashboard", Nav::Dashboard, None, content)
}

fn worth_row(name: Markup, domain: Option<&str>, w: &Value, currency: &str) -> Markup {
    html! {
        tr {
            th scope="row" { (name) }
            @if let Some(domain) = domain { td { (domain) } }
            td.num { (fmt::count_of(&w["executions"])) }
            td.num { (fmt::percent(&w["without_person_rate"])) }
            td.num { (fmt::percent(&w["approval_rate"])) }
            td.num { (fmt::percent(&w["edit_rate"])) }
            td.num { (fmt::percent(&w["rejection_rate"])) }
            td.num { (fmt::percent(&w["escalation_rate"])) }
            td.num { (fmt::percent(&w["reversal_rate"])) }
            td.num { (hours(&w["minutes_saved"])) }
            td.num { (w["cost_per_task"].as_f64().map(|c| fmt::money(c, currency)).unwrap_or_else(|| "—".into())) }
        }
    }
}

fn worth_head(first: &str, domain: bool) -> Markup {
    html! {
        thead { tr {
            th scope="col" { (first) } @if domain { th scope="col" { "Domain" } }
            th.num scope="col" { "Executions" } th.num scope="col" { "Without a person" }
            th.num scope="col" { "Approved" } th.num scope="col" { "Edited" } th.num scope="col" { "Rejected" }
            th.num scope="col" { "Escalated" } th.num scope="col" { "Reversed" }
            th.num scope="col" { "Time saved" } th.num scope="col" { "Cost per task" }
        } }
    }
}

fn hours(minutes: &Value) -> String {
    let m = minutes.as_f64().unwrap_or(0.0);
    if m < 120.0 {
        format!("{m:.0} min")
    } else {
        format!("{:.1} h", m / 60.0)
    }
}

/// `GET /value`: what the work was worth.
pub(super) async fn value(v: Visitor, Query(f): Query<Filters>) -> Response {
    let now = v.console.service.store().clock().now_ms();
    let (from, to, _) = match range(&f, now) {
        Ok(r) => r,
        Err(e) => {
            let content = html! { h1 { "Value" } (filter_form(&v, &f, "/value", false)) };
            return layout::failed(
                &v,
                ("Value", Nav::Value),
                StatusCode::BAD_REQUEST,
                e,
                content,
            );
        }
    };
    let path = format!("/v1/stats/value{}", f.api_query(from, to, None, false));
    let r = match v.get(&path).await {
        Ok(r) => r,
        Err(refusal) => return layout::refused(&v, Nav::Value, &refusal),
    };
    let currency = fmt::text(&r["currency"]).to_string();
    let t = &r["totals"];
    let backlog = &r["backlog"];
    let content = html! {
        h1 { "Value" }
        p.lede { "What the digital workforce did for the business from " (fmt::day(from)) " to " (fmt::day(to - 1)) "." }
        (filter_form(&v, &f, "/value", false))
        section.cards aria-label="Value" {
            (card("Handled without a person", fmt::percent(&t["without_person_rate"]), Some(format!("{} of {} executions", fmt::count_of(&t["without_person"]), fmt::count_of(&t["executions"])))))
            (card("Time saved", hours(&t["minutes_saved"]), Some(format!("{} side effects performed", fmt::count_of(&t["effects"])))))
            (card("Cost per task", t["cost_per_task"].as_f64().map(|c| fmt::money(c, &currency)).unwrap_or_else(|| "—".into()), Some(format!("{} in all", fmt::money(t["cost"].as_f64().unwrap_or(0.0), &currency)))))
            (card("Approved as proposed", fmt::percent(&t["approval_rate"]), Some(format!("{} decisions", fmt::count_of(&t["decisions"])))))
            (card("Edited", fmt::percent(&t["edit_rate"]), None))
            (card("Rejected", fmt::percent(&t["rejection_rate"]), None))
            (card("Escalated", fmt::percent(&t["escalation_rate"]), Some(format!("{} escalations", fmt::count_of(&t["escalations"])))))
            (card("Reversed", fmt::percent(&t["reversal_rate"]), Some(format!("{} reversals", fmt::count_of(&t["reversals"])))))
            (card("Held now", fmt::count_of(&backlog["held"]), Some(match backlog["oldest_age_ms"].as_f64() {
                Some(age) => format!("oldest waiting {}", fmt::millis(age)),
                None => "nothing waiting".into(),
            })))
        }
        h2 { "Per domain" }
        @let domains = r["domains"].as_array().cloned().unwrap_or_default();
        @if domains.is_empty() {
            (layout::empty("No executions match these filters in this range."))
        } @else {
            table {
                (worth_head("Domain", false))
                tbody { @for d in &domains { (worth_row(html! { (fmt::text(&d["name"])) }, None, &d["worth"], &currency)) } }
            }
        }
        h2 { "Per worker" }
        @let workers = r["workers"].as_array().cloned().unwrap_or_default();
        @if workers.is_empty() {
            (layout::empty("No worker ran in this range."))
        } @else {
            table {
                (worth_head("Worker", true))
                tbody { @for w in &workers {
                    @let name = fmt::text(&w["name"]);
                    (worth_row(html! { a href=(format!("/workers/{}", segment(name))) { (name) } }, Some(fmt::text(&w["domain"])), &w["worth"], &currency))
                } }
            }
        }
        div.grid2 {
            section {
                h2 { "Time saved per week" }
                @let weeks = r["weeks"].as_array().cloned().unwrap_or_default();
                @if weeks.is_empty() {
                    (layout::empty("No time saved in this range. Minutes saved per kind of action are set in roster.toml's [value] section and in each worker's file."))
                } @else {
                    table {
                        thead { tr { th scope="col" { "Week of" } th scope="col" { "Domain" } th.num scope="col" { "Saved" } } }
                        tbody { @for w in &weeks { tr {
                            td { (fmt::day(w["week"].as_i64().unwrap_or(0))) }
                            td { (fmt::text(&w["domain"])) }
                            td.num { (hours(&w["minutes_saved"])) }
                        } } }
                    }
                }
            }
            section {
                h2 { "Backlog of held actions" }
                @let waiting = backlog["workers"].as_array().cloned().unwrap_or_default();
                @if waiting.is_empty() {
                    (layout::empty("Nothing is waiting for a person."))
                } @else {
                    table {
                        thead { tr { th scope="col" { "Worker" } th.num scope="col" { "Held" } th.num scope="col" { "Oldest waiting" } } }
                        tbody { @for w in &waiting { tr {
                            th scope="row" { a href=(format!("/approvals?worker={}", segment(fmt::text(&w["worker"])))) { (fmt::text(&w["worker"])) } }
                            td.num { (fmt::count_of(&w["held"])) }
                            td.num { (fmt::millis_of(&w["oldest_age_ms"])) }
                        } } }
                    }
                }
            }
        }
    };
    layout::page(&v, "Value", Nav::Value, None, content)
}
