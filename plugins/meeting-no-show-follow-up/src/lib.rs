//! Meeting No-Show Follow-Up (template): when a meeting's status becomes `no-show`, emails
//! the external attendees a short follow-up offering a new time, and gives the organiser a
//! task to follow up. The email is drafted by the `follow-up-writer` model when the admin
//! granted a generative provider, else written from a template; either way a person
//! approves it before it leaves (outbound email is held at the supervised stage).

use roster_sdk::notify::{self, Channel};
use roster_sdk::time::{DAY_MS, date};
use roster_sdk::{Event, Outcome, Value, Worker, WorkerError, field, inference, log, records};

struct NoShowFollowUp;

fn template(subject: &str, when: &str, link: &str) -> String {
    format!(
        "Hello,\n\nWe missed you at \"{subject}\" on {when}. No problem, plans change. \
         If it is still useful, pick a time that suits you: {link}\n\nBest regards"
    )
}

impl Worker for NoShowFollowUp {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let meeting = event.require_record()?;
        if meeting.text("status") != Some("no-show") || !event.changed("status") {
            return Ok(Outcome::skipped("the meeting was not just marked no-show"));
        }
        let attendees: Vec<&str> = match meeting.get("attendees") {
            Some(Value::TextList(list)) => list
                .iter()
                .map(String::as_str)
                .filter(|a| a.contains('@'))
                .collect(),
            _ => Vec::new(),
        };
        if attendees.is_empty() {
            return Ok(Outcome::skipped("no attendee to follow up with"));
        }
        let subject = meeting.text("subject").unwrap_or("our meeting");
        let when = meeting.timestamp("starts_at").map(date).unwrap_or_default();
        let link = event.setting_text("booking-link").unwrap_or_default();
        let prompt = format!(
            "Write a short, friendly follow-up email to people who missed the meeting \"{subject}\" on {when}. \
             Offer to reschedule at {link}. No subject line."
        );
        let body = match inference::draft("follow-up-writer", &prompt, 120) {
            Ok(text) if !text.trim().is_empty() => text,
            Ok(_) => template(subject, &when, &link),
            Err(e) => {
                log::info(&format!("writing from the template ({})", e.describe()));
                template(subject, &when, &link)
            }
        };
        notify::send(&notify::message(
            Channel::Email,
            &attendees,
            Some(&format!("Sorry we missed you: {subject}")),
            &body,
        ))?;
        if let Some(owner) = &meeting.owner {
            records::create(
                "task",
                &[
                    field("subject", format!("Follow up after no-show: {subject}")),
                    field("status", "open"),
                    field("due_date", Value::Timestamp(event.occurred_at + DAY_MS)),
                    field("priority", "normal"),
                    field("related_to", meeting.text("related_to").unwrap_or_default()),
                    field("assignee", owner.as_str()),
                ],
            )?;
        }
        Ok(Outcome::success(format!(
            "follow-up to {} attendee(s) of \"{subject}\"",
            attendees.len()
        )))
    }
}

roster_sdk::export!(NoShowFollowUp);
