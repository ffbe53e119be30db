//! Ticket Triage (Customer Experience): classifies each new ticket with the offline model
//! `ticket-category`, sets its category and queue, and makes urgent categories high
//! priority. It reports the prediction's confidence, so the review's confidence threshold
//! holds low-confidence triage for a person, whose approval or correction teaches the model.
//!
//! The model starts from the seed examples below (taught once) and, on its nightly
//! schedule, from closed tickets people already categorised.

use roster_sdk::records::{self, Comparison};
use roster_sdk::{Event, Outcome, Trigger, Worker, WorkerError, field, inference, log, memory};

const MODEL: &str = "ticket-category";
const SEED_KEY: &str = "seeded/v1";

/// A few examples per default category, so that the first predictions are not guesses.
const SEED: &[(&str, &str)] = &[
    ("I was charged twice on my invoice this month", "billing"),
    ("Refund the duplicate payment on our card", "billing"),
    ("The invoice total is wrong, tax is missing", "billing"),
    ("The app crashes when I open the dashboard", "technical"),
    ("Error 500 when saving a report", "technical"),
    ("Sync with the CRM stopped working", "technical"),
    ("Please change the email address on my account", "account"),
    ("Add a new user to our workspace", "account"),
    ("Reset the password for my colleague", "account"),
    ("We want to cancel our subscription", "cancellation"),
    ("Please do not renew our contract", "cancellation"),
    ("We are moving to another vendor", "cancellation"),
];

struct TicketTriage;

fn ticket_text(t: &roster_sdk::CrmRecord) -> String {
    format!(
        "{} {}",
        t.text("subject").unwrap_or_default(),
        t.text("description").unwrap_or_default()
    )
}

fn seed(categories: &[String]) -> Result<u32, WorkerError> {
    if memory::get_text(SEED_KEY)?.is_some() {
        return Ok(0);
    }
    let mut taught = 0;
    for (text, label) in SEED {
        if categories.iter().any(|c| c == label) {
            match inference::learn(MODEL, text, label) {
                Ok(()) => taught += 1,
                // A provider that does not learn examples (a hosted model) needs no seed.
                Err(WorkerError::Unavailable(why)) => {
                    log::info(&format!("no seed taught: {why}"));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    memory::set_text(SEED_KEY, "done")?;
    Ok(taught)
}

/// Teaches the model the closed tickets people categorised, each once.
fn learn_from_history(categories: &[String]) -> Result<Outcome, WorkerError> {
    let closed = records::find(&records::query(
        "ticket",
        vec![
            records::filter("status", Comparison::Equals, "closed"),
            records::filter("category", Comparison::IsNotEmpty, ""),
        ],
        500,
    ))?;
    let mut learnt = 0;
    for t in &closed {
        let key = format!("learnt/{}", t.id);
        let category = t.text("category").unwrap_or_default();
        if !categories.iter().any(|c| c == category) || memory::get_text(&key)?.is_some() {
            continue;
        }
        if let Err(e) = inference::learn(MODEL, &ticket_text(t), category) {
            return match e {
                WorkerError::Unavailable(why) => Ok(Outcome::skipped(format!(
                    "the model does not learn examples here: {why}"
                ))),
                other => Err(other),
            };
        }
        memory::set_text(&key, category)?;
        learnt += 1;
    }
    if learnt == 0 {
        return Ok(Outcome::skipped("no newly closed tickets to learn from"));
    }
    Ok(Outcome::success(format!(
        "learnt from {learnt} closed tickets"
    )))
}

impl Worker for TicketTriage {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let categories = event.setting_list("categories");
        if categories.len() < 2 {
            return Err(WorkerError::InvalidInput(
                "the `categories` setting needs at least two categories".into(),
            ));
        }
        seed(&categories)?;
        if let Trigger::Schedule(_) = event.trigger {
            return learn_from_history(&categories);
        }
        let ticket = event.require_record()?;
        if ticket.text("category").is_some_and(|c| !c.is_empty()) {
            return Ok(Outcome::skipped(format!(
                "ticket {} is already categorised",
                ticket.id
            )));
        }
        let text = ticket_text(ticket);
        let labels: Vec<&str> = categories.iter().map(String::as_str).collect();
        let p = inference::classify(MODEL, &text, &labels)?;
        log::info(&format!(
            "ticket {}: {} ({:.2}, prediction {})",
            ticket.id, p.label, p.confidence, p.id
        ));
        let mut fields = vec![
            field("category", p.label.as_str()),
            field("queue", p.label.as_str()),
        ];
        if event.setting_list("urgent-categories").contains(&p.label) {
            fields.push(field("priority", "high"));
        }
        records::update("ticket", &ticket.id, &fields)?;
        Ok(Outcome::success(format!(
            "ticket {} is {} ({:.0}% confident)",
            ticket.id,
            p.label,
            p.confidence * 100.0
        ))
        .with_confidence(p.confidence))
    }
}

roster_sdk::export!(TicketTriage);
