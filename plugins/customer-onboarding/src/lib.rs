//! Customer Onboarding (Customer Experience): the receiving end of the closed-won
//! escalation path. A `revenue.closed-won` signal carries the deal's `account_id` and
//! `opportunity_id`; the worker creates one task per onboarding step for the customer
//! success team (a week apart), related to the account, and tells them in-app. Once per
//! opportunity.

use roster_sdk::notify::{self, Channel};
use roster_sdk::time::DAY_MS;
use roster_sdk::{Event, Outcome, Value, Worker, WorkerError, field, memory, records};

struct CustomerOnboarding;

impl Worker for CustomerOnboarding {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let (Some(account_id), Some(deal)) = (
            event.payload_text("account_id"),
            event.payload_text("opportunity_id"),
        ) else {
            return Err(WorkerError::InvalidInput(
                "a closed-won signal needs account_id and opportunity_id".into(),
            ));
        };
        let key = format!("onboarded/{deal}");
        if memory::get_text(&key)?.is_some() {
            return Ok(Outcome::skipped(format!(
                "onboarding for {deal} already opened"
            )));
        }
        let account = records::get("account", &account_id)?;
        let name = account.text("name").unwrap_or(&account_id).to_string();
        let csm = event
            .setting_text("csm")
            .unwrap_or_else(|| "cs-team".into());
        let steps = event.setting_list("steps");
        let priority = if account.text("tier") == Some("enterprise") {
            "high"
        } else {
            "normal"
        };
        for (i, step) in steps.iter().enumerate() {
            records::create(
                "task",
                &[
                    field("subject", format!("Onboarding {name}: {step}")),
                    field("status", "open"),
                    field(
                        "due_date",
                        Value::Timestamp(event.occurred_at + (i as i64 * 7 + 2) * DAY_MS),
                    ),
                    field("priority", priority),
                    field("related_to", format!("account/{account_id}")),
                    field("assignee", csm.as_str()),
                ],
            )?;
        }
        notify::send(&notify::message(
            Channel::InApp,
            &[csm.as_str()],
            Some("New customer to onboard"),
            &format!(
                "{name} signed ({deal}). {} onboarding tasks are open, the first due in 2 days.",
                steps.len()
            ),
        ))?;
        memory::set_text(&key, &account_id)?;
        Ok(Outcome::success(format!(
            "opened {} onboarding tasks for {name}",
            steps.len()
        )))
    }
}

roster_sdk::export!(CustomerOnboarding);
