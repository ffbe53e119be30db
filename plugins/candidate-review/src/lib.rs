//! Candidate Review (HR): scores a new candidate from 0 to 100 — 70 points for the share of
//! the role's required skills they have, 30 for experience up to `min-years` — and proposes
//! a recommendation (advance from 70, consider from 45, else decline). Every score is held
//! for a person (the review rule); nothing is decided about a candidate without one.
//! When a candidate's stage becomes `hired`, it signals `hr.new-hire` for IT's access
//! requests (an escalation path).

use roster_sdk::json::{self, Json};
use roster_sdk::time::DAY_MS;
use roster_sdk::{Event, Outcome, Trigger, Value, Worker, WorkerError, field, records, signals};

struct CandidateReview;

fn hired(event: &Event) -> Result<Outcome, WorkerError> {
    let c = event.require_record()?;
    if c.text("stage") != Some("hired") {
        return Ok(Outcome::skipped(format!(
            "stage `{}` needs nothing",
            c.text("stage").unwrap_or_default()
        )));
    }
    let name = c.text("name").unwrap_or(&c.id);
    let start =
        event.occurred_at + event.setting_number("start-in-days").unwrap_or(14.0) as i64 * DAY_MS;
    let payload = json::object(&[
        ("employee_id", Json::from(format!("cand-{}", c.id))),
        ("name", Json::from(name)),
        ("email", Json::from(c.text("email"))),
        ("position", Json::from(c.text("position"))),
        ("start_date", Json::from(start)),
    ]);
    signals::emit("hr.new-hire", &payload)?;
    Ok(Outcome::success(format!("{name} hired; IT told")))
}

impl Worker for CandidateReview {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        if let Trigger::RecordUpdated(_) = event.trigger {
            return hired(&event);
        }
        let c = event.require_record()?;
        if c.number("score").is_some() {
            return Ok(Outcome::skipped(format!("{} is already scored", c.id)));
        }
        let required = event.setting_list("required-skills");
        let have: Vec<String> = match c.get("skills") {
            Some(Value::TextList(s)) => s.iter().map(|s| s.trim().to_lowercase()).collect(),
            _ => Vec::new(),
        };
        let matched: Vec<&String> = required
            .iter()
            .filter(|r| have.contains(&r.to_lowercase()))
            .collect();
        let skill_share = if required.is_empty() {
            1.0
        } else {
            matched.len() as f64 / required.len() as f64
        };
        let min_years = event.setting_number("min-years").unwrap_or(2.0);
        let years = c.number("years_experience").unwrap_or_default();
        let experience = if min_years <= 0.0 {
            1.0
        } else {
            (years / min_years).min(1.0)
        };
        let score = (skill_share * 70.0 + experience * 30.0).round();
        let verdict = if score >= 70.0 {
            "advance"
        } else if score >= 45.0 {
            "consider"
        } else {
            "decline"
        };
        let missing: Vec<&String> = required
            .iter()
            .filter(|r| !have.contains(&r.to_lowercase()))
            .collect();
        let recommendation = format!(
            "{verdict}: {} of {} required skills{}, {years} years (asks {min_years})",
            matched.len(),
            required.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(
                    " (missing {})",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        records::update(
            "candidate",
            &c.id,
            &[
                field("score", score),
                field("recommendation", recommendation.as_str()),
            ],
        )?;
        Ok(Outcome::success(format!(
            "{}: {score} — {recommendation}",
            c.text("name").unwrap_or(&c.id)
        )))
    }
}

roster_sdk::export!(CandidateReview);
