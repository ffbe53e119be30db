//! Renewal Reminder (template): when an account's `renewal_date` comes within range (the
//! date-within trigger), creates a renewal task for the account's owner, due `lead-days`
//! before the date (high priority when the account's health is at risk), and emails the
//! owner a reminder. Once per account and renewal date.

use roster_sdk::notify::{self, Channel};
use roster_sdk::time::{DAY_MS, date, days_between};
use roster_sdk::{Event, Outcome, Worker, WorkerError, field, memory, records};

struct RenewalReminder;

impl Worker for RenewalReminder {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let account = event.require_record()?;
        let Some(renewal) = account.timestamp("renewal_date") else {
            return Ok(Outcome::skipped("the account has no renewal date"));
        };
        if renewal < event.occurred_at {
            return Ok(Outcome::skipped("the renewal date has passed"));
        }
        let Some(owner) = &account.owner else {
            return Ok(Outcome::skipped("the account has no owner to remind"));
        };
        let key = format!("reminded/{}", account.id);
        if memory::get_text(&key)?.is_some_and(|d| d == renewal.to_string()) {
            return Ok(Outcome::skipped("already reminded of this renewal"));
        }
        let name = account.text("name").unwrap_or(&account.id);
        let lead = event.setting_number("lead-days").unwrap_or(30.0) as i64;
        let due = (renewal - lead * DAY_MS).max(event.occurred_at);
        let health = account.number("health_score");
        let at_risk =
            health.is_some_and(|h| h < event.setting_number("at-risk-health").unwrap_or(50.0));
        let days = days_between(event.occurred_at, renewal);
        let subject = format!("Renewal: {name} on {}", date(renewal));
        records::create(
            "task",
            &[
                field("subject", subject.as_str()),
                field("status", "open"),
                field("due_date", roster_sdk::Value::Timestamp(due)),
                field("priority", if at_risk { "high" } else { "normal" }),
                field("related_to", format!("account/{}", account.id)),
                field("assignee", owner.as_str()),
            ],
        )?;
        let mut body = format!(
            "{name} renews in {days} days, on {}. A task is due on {}.",
            date(renewal),
            date(due)
        );
        if let (true, Some(h)) = (at_risk, health) {
            body.push_str(&format!(
                " Its health score is {h:.0}: plan the conversation early."
            ));
        }
        notify::send(&notify::message(
            Channel::Email,
            &[owner.as_str()],
            Some(&subject),
            &body,
        ))?;
        memory::set_text(&key, &renewal.to_string())?;
        Ok(Outcome::success(format!("reminded {owner}: {subject}")))
    }
}

roster_sdk::export!(RenewalReminder);
