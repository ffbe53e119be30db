//! Lead Triage: scores a newly created lead from its CRM fields, writes the score and a
//! rating back, and for hot leads creates a follow-up task and tells the owner in-app.
//!
//! Run with: `cargo run --bin roster -- run examples/lead-triage`
//!
//! It asks for HTTP enrichment as an *optional* capability: when an admin does not grant it,
//! the call is denied (and recorded) and the worker scores from CRM data alone.

use roster_sdk::notify::{self, Channel};
use roster_sdk::{
    CrmRecord, Event, Outcome, Worker, WorkerError, field, http, log, memory, records,
};

struct LeadTriage;

const FREE_MAIL: &[&str] = &["gmail.com", "yahoo.com", "hotmail.com", "outlook.com"];
const SENIOR: &[&str] = &["chief", "vp", "vice president", "head", "director"];

/// A score from 0 to 100 and the reasons behind it.
fn score(lead: &CrmRecord) -> (i64, Vec<String>) {
    let mut score = 20;
    let mut why = Vec::new();
    let employees = lead.number("employees").unwrap_or(0.0);
    let size = match employees {
        n if n >= 1000.0 => 35,
        n if n >= 200.0 => 25,
        n if n >= 50.0 => 10,
        _ => 0,
    };
    if size > 0 {
        score += size;
        why.push(format!("{employees} employees (+{size})"));
    }
    match lead.text("source") {
        Some("demo-request") => {
            score += 25;
            why.push("asked for a demo (+25)".into());
        }
        Some("referral") => {
            score += 20;
            why.push("referral (+20)".into());
        }
        _ => {}
    }
    let title = lead.text("title").unwrap_or_default().to_lowercase();
    if SENIOR.iter().any(|s| title.contains(s)) {
        score += 15;
        why.push("senior title (+15)".into());
    }
    let domain = lead
        .text("email")
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_lowercase());
    if domain.as_deref().is_some_and(|d| FREE_MAIL.contains(&d)) {
        score -= 20;
        why.push("free email domain (-20)".into());
    }
    (score.clamp(0, 100), why)
}

fn rating(score: i64) -> &'static str {
    match score {
        70.. => "hot",
        40.. => "warm",
        _ => "cold",
    }
}

impl Worker for LeadTriage {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let lead = event.require_record()?;
        if lead.object != "lead" {
            return Ok(Outcome::skipped(format!("not a lead: {}", lead.object)));
        }

        // Optional enrichment: denied unless the admin granted the origin.
        if let Some(domain) = lead
            .text("email")
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d)
        {
            match http::get(&format!("https://enrich.example.com/v1/companies/{domain}")) {
                Ok(r) => log::info(&format!("enrichment answered {}", r.status)),
                Err(e) => log::warn(&format!(
                    "no enrichment ({}); scoring from CRM data",
                    e.describe()
                )),
            }
        }

        let (score, why) = score(lead);
        let rating = rating(score);
        records::update(
            "lead",
            &lead.id,
            &[field("score", score), field("rating", rating)],
        )?;

        let name = lead.text("name").unwrap_or(&lead.id).to_string();
        if rating == "hot" {
            records::create(
                "task",
                &[
                    field("subject", format!("Call {name} today (lead score {score})")),
                    field("related_to", lead.id.clone()),
                ],
            )?;
            if let Some(owner) = &lead.owner {
                notify::send(&notify::message(
                    Channel::InApp,
                    &[owner.as_str()],
                    Some("Hot lead"),
                    &format!("{name} scored {score}: {}", why.join(", ")),
                ))?;
            }
        }

        let triaged = memory::get_text("triaged")?
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        memory::set_text("triaged", &triaged.to_string())?;

        // Confidence grows with the evidence behind the score.
        let confidence = 0.5 + 0.1 * why.len().min(5) as f32;
        Ok(Outcome::success(format!(
            "{name}: {rating} ({score}/100; {}); lead #{triaged} triaged",
            if why.is_empty() {
                "no signals".to_string()
            } else {
                why.join(", ")
            }
        ))
        .with_confidence(confidence))
    }
}

roster_sdk::export!(LeadTriage);
