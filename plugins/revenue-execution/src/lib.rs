//! Revenue Execution (Revenue): on its weekday schedule, checks every open opportunity for
//! what slows a deal down — no activity for `stalled-days`, no next step, no close date or
//! one in the past, no amount — and gives the owner one task per opportunity listing what
//! to fix (again only when the list changes). It is also the receiving end of two
//! escalation paths: a churn risk from Customer Experience becomes a task for the account
//! owner and a drafted check-in email to the account's contact (held for approval); an
//! overdue invoice near renewal from Finance becomes an in-app note and a task for the owner.

use roster_sdk::notify::{self, Channel};
use roster_sdk::records::{self, Comparison};
use roster_sdk::time::{DAY_MS, date};
use roster_sdk::{Event, Outcome, Trigger, Value, Worker, WorkerError, field, memory};

struct RevenueExecution;

fn task(
    subject: &str,
    related_to: &str,
    assignee: &str,
    due: i64,
    priority: &str,
) -> Result<(), WorkerError> {
    records::create(
        "task",
        &[
            field("subject", subject),
            field("status", "open"),
            field("due_date", Value::Timestamp(due)),
            field("priority", priority),
            field("related_to", related_to),
            field("assignee", assignee),
        ],
    )?;
    Ok(())
}

fn pipeline_review(event: &Event) -> Result<Outcome, WorkerError> {
    let stalled_days = event.setting_number("stalled-days").unwrap_or(21.0) as i64;
    let limit = event.setting_number("limit").unwrap_or(1000.0) as u32;
    let now = event.occurred_at;
    let open = records::find(&records::query(
        "opportunity",
        vec![
            records::filter("stage", Comparison::NotEquals, "closed-won"),
            records::filter("stage", Comparison::NotEquals, "closed-lost"),
        ],
        limit,
    ))?;
    let mut flagged = 0;
    for opp in &open {
        let mut issues = Vec::new();
        if opp
            .timestamp("last_activity_at")
            .is_some_and(|t| now - t > stalled_days * DAY_MS)
        {
            issues.push(format!("no activity for over {stalled_days} days"));
        }
        if opp.text("next_step").is_none_or(|s| s.trim().is_empty()) {
            issues.push("no next step".to_string());
        }
        match opp.timestamp("close_date") {
            None => issues.push("no close date".to_string()),
            Some(t) if t < now => issues.push(format!("close date {} has passed", date(t))),
            _ => {}
        }
        if opp.number("amount").is_none_or(|a| a <= 0.0) {
            issues.push("no amount".to_string());
        }
        let key = format!("flagged/{}", opp.id);
        let summary = issues.join("; ");
        if issues.is_empty() || memory::get_text(&key)?.is_some_and(|s| s == summary) {
            continue;
        }
        let Some(owner) = &opp.owner else { continue };
        let name = opp.text("name").unwrap_or(&opp.id);
        task(
            &format!("Move {name} forward: {summary}"),
            &format!("opportunity/{}", opp.id),
            owner,
            now + 2 * DAY_MS,
            if issues.len() > 2 { "high" } else { "normal" },
        )?;
        memory::set_text(&key, &summary)?;
        flagged += 1;
    }
    if flagged == 0 {
        return Ok(Outcome::skipped(format!(
            "{} open opportunities, nothing new to flag",
            open.len()
        )));
    }
    Ok(Outcome::success(format!(
        "flagged {flagged} of {} open opportunities",
        open.len()
    )))
}

fn churn_follow_up(event: &Event) -> Result<Outcome, WorkerError> {
    let account = event
        .payload_text("account_id")
        .ok_or_else(|| WorkerError::InvalidInput("a churn risk needs account_id".into()))?;
    let name = event
        .payload_text("account_name")
        .unwrap_or_else(|| account.clone());
    let owner = event.payload_text("owner").ok_or_else(|| {
        WorkerError::InvalidInput("a churn risk needs the account's owner".into())
    })?;
    let health = event.payload_number("health_score").unwrap_or_default();
    let urgent = event.payload_number("urgent_tickets").unwrap_or_default();
    task(
        &format!(
            "Churn risk at {name} (health {health:.0}, {urgent:.0} urgent tickets): call the sponsor"
        ),
        &format!("account/{account}"),
        &owner,
        event.occurred_at + DAY_MS,
        "high",
    )?;
    let contacts = records::find(&records::query(
        "contact",
        vec![
            records::filter("account_id", Comparison::Equals, account.as_str()),
            records::filter("email", Comparison::IsNotEmpty, ""),
        ],
        20,
    ))?;
    let contact = contacts.iter().find(|c| c.text("status") != Some("merged"));
    if let Some(c) = contact {
        let first = c
            .text("name")
            .and_then(|n| n.split_whitespace().next())
            .unwrap_or("there");
        notify::send(&notify::message(
            Channel::Email,
            &[c.text("email").unwrap_or_default()],
            Some(&format!("Checking in on {name}")),
            &format!(
                "Hi {first},\n\nI wanted to check in on how things are going with us at {name}. \
                 I know a few issues have been open lately; could we find 20 minutes this week \
                 to go through them and make sure you are getting what you need?\n\nBest regards"
            ),
        ))?;
    }
    Ok(Outcome::success(format!(
        "churn follow-up for {name}: task for {owner}{}",
        if contact.is_some() {
            ", check-in drafted"
        } else {
            ""
        }
    )))
}

fn overdue_near_renewal(event: &Event) -> Result<Outcome, WorkerError> {
    let (Some(account), Some(owner)) = (
        event.payload_text("account_id"),
        event.payload_text("owner"),
    ) else {
        return Err(WorkerError::InvalidInput(
            "an overdue-invoice signal needs account_id and owner".into(),
        ));
    };
    let name = event
        .payload_text("account_name")
        .unwrap_or_else(|| account.clone());
    let invoice = event.payload_text("invoice").unwrap_or_default();
    let amount = event.payload_number("amount").unwrap_or_default();
    let renewal = event
        .payload_number("renewal_date")
        .map(|d| date(d as i64))
        .unwrap_or_default();
    let text = format!(
        "Invoice {invoice} ({amount:.0}) for {name} is overdue and the account renews on {renewal}. \
         Settle it before the renewal conversation."
    );
    notify::send(&notify::message(
        Channel::InApp,
        &[owner.as_str()],
        Some("Overdue invoice before renewal"),
        &text,
    ))?;
    task(
        &format!("Resolve overdue invoice {invoice} before {name}'s renewal"),
        &format!("account/{account}"),
        &owner,
        event.occurred_at + 3 * DAY_MS,
        "high",
    )?;
    Ok(Outcome::success(format!(
        "{owner} told about overdue {invoice}"
    )))
}

impl Worker for RevenueExecution {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        match &event.trigger {
            Trigger::Signal(topic) if topic == "cx.churn-risk" => churn_follow_up(&event),
            Trigger::Signal(topic) if topic == "finance.overdue-near-renewal" => {
                overdue_near_renewal(&event)
            }
            Trigger::Signal(topic) => {
                Ok(Outcome::skipped(format!("signal `{topic}` is not handled")))
            }
            _ => pipeline_review(&event),
        }
    }
}

roster_sdk::export!(RevenueExecution);
