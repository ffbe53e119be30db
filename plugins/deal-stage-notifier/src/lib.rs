//! Deal Stage Notifier (template): when an opportunity's stage changes to one of the watched
//! stages (negotiation, by default), alerts the sales manager and the deal's owner in-app
//! and, for opportunities worth at least `min-amount`, posts the move to the Slack channel.

use roster_sdk::notify::{self, Channel};
use roster_sdk::{Event, Outcome, Value, Worker, WorkerError};

struct DealStageNotifier;

impl Worker for DealStageNotifier {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let deal = event.require_record()?;
        let Some(change) = event.changes().iter().find(|c| c.field == "stage") else {
            return Ok(Outcome::skipped("the stage did not change"));
        };
        let from = change.old.as_text().unwrap_or("(none)").to_string();
        let Value::Text(to) = &change.new else {
            return Ok(Outcome::skipped("the stage was cleared"));
        };
        if !event.setting_list("stages").iter().any(|s| s == to) {
            return Ok(Outcome::skipped(format!("stage `{to}` is not watched")));
        }
        let name = deal.text("name").unwrap_or(&deal.id);
        let amount = deal.number("amount").unwrap_or(0.0);
        let text = format!("{name} moved from {from} to {to} ({amount:.0})");
        let mut told = Vec::new();
        let manager = event.setting_text("manager").unwrap_or_default();
        let people: Vec<&str> = deal
            .owner
            .as_deref()
            .into_iter()
            .chain((!manager.is_empty()).then_some(manager.as_str()))
            .collect();
        for person in people {
            notify::send(&notify::message(
                Channel::InApp,
                &[person],
                Some("Deal stage changed"),
                &text,
            ))?;
            told.push(person.to_string());
        }
        let channel = event.setting_text("slack-channel").unwrap_or_default();
        if !channel.is_empty() && amount >= event.setting_number("min-amount").unwrap_or(0.0) {
            notify::send(&notify::message(
                Channel::Slack,
                &[channel.as_str()],
                None,
                &text,
            ))?;
            told.push(channel);
        }
        if told.is_empty() {
            return Ok(Outcome::skipped("nobody to tell: no owner and no channel"));
        }
        Ok(Outcome::success(format!(
            "{text}; told {}",
            told.join(", ")
        )))
    }
}

roster_sdk::export!(DealStageNotifier);
