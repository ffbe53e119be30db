//! A worker that proposes side effects for review: on an opportunity it moves the stage
//! to `proposal`, emails the owner and emits a signal, then reports a confidence taken from the
//! event's payload (`{"confidence": 0.9}`). Its summary lists the receipts it got and the
//! reviewers' feedback it finds in its memory (`roster/feedback/`), so the tests see what
//! was held and what the worker learned.

use roster_sdk::notify::{Channel, message, send};
use roster_sdk::{
    ActionState, Event, Outcome, Worker, WorkerError, field, memory, records, signals,
};

struct Proposer;

fn state(s: ActionState) -> &'static str {
    match s {
        ActionState::Performed => "performed",
        ActionState::HeldForApproval => "held",
        ActionState::DryRun => "dry-run",
    }
}

impl Worker for Proposer {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let record = event.require_record()?;
        let mut feedback = Vec::new();
        for key in memory::list_keys("roster/feedback/", 100)? {
            let text = memory::get_text(&key)?.unwrap_or_default();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            feedback.push(format!(
                "{}:{}",
                value["verdict"].as_str().unwrap_or("?"),
                value["reason"].as_str().unwrap_or("-")
            ));
        }
        let update = records::update(&record.object, &record.id, &[field("stage", "proposal")])?;
        let email = send(&message(
            Channel::Email,
            &["ann@example.com"],
            Some("Deal update"),
            &format!("{} needs a proposal", record.id),
        ))?;
        let signal = signals::emit(
            "revenue.next-step",
            &format!("{{\"id\":\"{}\"}}", record.id),
        )?;
        let confidence = event
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|v| v["confidence"].as_f64());
        let summary = format!(
            "update={} email={} signal={} feedback=[{}]",
            state(update.state),
            state(email.state),
            state(signal.state),
            feedback.join(",")
        );
        let outcome = Outcome::success(summary);
        Ok(match confidence {
            Some(c) => outcome.with_confidence(c as f32),
            None => outcome,
        })
    }
}

roster_sdk::export!(Proposer);
