//! Win/Loss Logger (template): when an opportunity's stage becomes `closed-won` or
//! `closed-lost`, logs a note on it (amount, reason), tells leadership in-app, asks the
//! owner in-app when the reason is missing, and emits `revenue.closed-won` / `revenue.closed-lost` with the deal's
//! account, amount and owner for the workers of other domains (customer onboarding).

use roster_sdk::json::{self, Json};
use roster_sdk::notify::{self, Channel};
use roster_sdk::{Event, Outcome, Worker, WorkerError, field, records, signals};

struct WinLossLogger;

impl Worker for WinLossLogger {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let deal = event.require_record()?;
        let stage = deal.text("stage").unwrap_or_default();
        let (won, reason_field) = match stage {
            "closed-won" => (true, "win_reason"),
            "closed-lost" => (false, "loss_reason"),
            _ => return Ok(Outcome::skipped(format!("stage `{stage}` is not closed"))),
        };
        if !event.changed("stage") && !event.changed("status") {
            return Ok(Outcome::skipped("the stage did not change"));
        }
        let name = deal.text("name").unwrap_or(&deal.id);
        let amount = deal.number("amount").unwrap_or(0.0);
        let reason = deal.text(reason_field).filter(|r| !r.trim().is_empty());
        let verdict = if won { "Won" } else { "Lost" };
        let body = format!(
            "{verdict}: {name}, {amount:.0}. Reason: {}",
            reason.unwrap_or("not given")
        );
        records::create(
            "note",
            &[
                field("body", body.as_str()),
                field("related_to", format!("opportunity/{}", deal.id)),
            ],
        )?;
        if let (None, Some(owner)) = (reason, &deal.owner) {
            notify::send(&notify::message(
                Channel::InApp,
                &[owner.as_str()],
                Some("Why did this deal close?"),
                &format!(
                    "{name} closed {stage}; add the {} so the team can learn from it.",
                    reason_field.replace('_', " ")
                ),
            ))?;
        }
        let leadership = event.setting_text("leadership").unwrap_or_default();
        if !leadership.is_empty() {
            notify::send(&notify::message(
                Channel::InApp,
                &[leadership.as_str()],
                Some(&format!("{verdict}: {name}")),
                &body,
            ))?;
        }
        let topic = if won {
            "revenue.closed-won"
        } else {
            "revenue.closed-lost"
        };
        let payload = json::object(&[
            ("opportunity_id", Json::from(deal.id.as_str())),
            ("account_id", Json::from(deal.text("account_id"))),
            ("name", Json::from(name)),
            ("amount", Json::from(amount)),
            ("owner", Json::from(deal.owner.as_deref())),
        ]);
        signals::emit(topic, &payload)?;
        Ok(Outcome::success(format!("logged: {body}")))
    }
}

roster_sdk::export!(WinLossLogger);
