//! Churn Signal (Customer Experience): when an account's health score falls below the
//! threshold (the trigger), counts its open tickets and emits `cx.churn-risk` with the
//! account, its owner, health, open and urgent tickets and renewal date, for Revenue's
//! follow-up (the churn-risk escalation path).

use roster_sdk::json::{self, Json};
use roster_sdk::records::{self, Comparison};
use roster_sdk::{Event, Outcome, Worker, WorkerError, signals};

struct ChurnSignal;

impl Worker for ChurnSignal {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let account = event.require_record()?;
        let Some(health) = account.number("health_score") else {
            return Ok(Outcome::skipped("the account has no health score"));
        };
        let open = records::find(&records::query(
            "ticket",
            vec![
                records::filter("account_id", Comparison::Equals, account.id.as_str()),
                records::filter("status", Comparison::NotEquals, "closed"),
            ],
            200,
        ))?;
        let urgent = open
            .iter()
            .filter(|t| t.text("priority") == Some("high"))
            .count();
        let name = account.text("name").unwrap_or(&account.id);
        let payload = json::object(&[
            ("account_id", Json::from(account.id.as_str())),
            ("account_name", Json::from(name)),
            ("owner", Json::from(account.owner.as_deref())),
            ("health_score", Json::from(health)),
            ("open_tickets", Json::from(open.len() as i64)),
            ("urgent_tickets", Json::from(urgent as i64)),
            (
                "renewal_date",
                Json::from(account.timestamp("renewal_date")),
            ),
        ]);
        signals::emit("cx.churn-risk", &payload)?;
        Ok(Outcome::success(format!(
            "{name}: health {health:.0}, {} open tickets ({urgent} urgent); churn risk signalled",
            open.len()
        )))
    }
}

roster_sdk::export!(ChurnSignal);
