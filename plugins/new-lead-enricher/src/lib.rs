//! New Lead Enricher (template): for each new lead, finds the company's domain (its
//! `domain` field, else its email address unless that is free mail), asks the enrichment
//! provider for the company's size, industry and revenue, rates the lead from the size
//! (`hot-employees`, `warm-employees`) and tells the owner about a hot lead in-app.
//! Without a provider (not configured, not granted, budget spent, rate limited) it rates
//! the lead from what the lead already says and notes that enrichment was not possible.

use roster_sdk::notify::{self, Channel};
use roster_sdk::{
    Event, Field, Outcome, Value, Worker, WorkerError, enrichment, field, log, records,
};

struct NewLeadEnricher;

fn domain_of(lead: &roster_sdk::CrmRecord, free_mail: &[String]) -> Option<String> {
    if let Some(d) = lead.text("domain").filter(|d| !d.is_empty()) {
        return Some(d.trim().to_lowercase());
    }
    let email = lead.text("email")?;
    let domain = email.rsplit_once('@')?.1.trim().to_lowercase();
    (!domain.is_empty() && !free_mail.contains(&domain)).then_some(domain)
}

impl Worker for NewLeadEnricher {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let lead = event.require_record()?;
        if lead.text("rating").is_some_and(|r| !r.is_empty()) {
            return Ok(Outcome::skipped(format!(
                "lead {} is already rated",
                lead.id
            )));
        }
        let Some(domain) = domain_of(lead, &event.setting_list("free-mail-domains")) else {
            return Ok(Outcome::skipped(format!(
                "lead {} has no company domain (none given, free-mail address)",
                lead.id
            )));
        };
        let provider = event.setting_text("provider").unwrap_or_default();
        let mut updates: Vec<Field> = Vec::new();
        if lead.text("domain").is_none_or(str::is_empty) {
            updates.push(field("domain", domain.as_str()));
        }
        let mut note = String::new();
        match enrichment::lookup(&provider, &domain) {
            Ok(found) => {
                log::info(&format!(
                    "{domain}: {} fields from {provider}, {} credits left",
                    found.fields.len(),
                    found.credits_left
                ));
                updates.extend(found.fields.into_iter().filter(|f| {
                    matches!(f.name.as_str(), "employees" | "industry" | "annual_revenue")
                }));
                updates.push(field("enriched_at", Value::Timestamp(event.occurred_at)));
            }
            Err(e) => note = format!(" (not enriched: {})", e.describe()),
        }
        let employees = updates
            .iter()
            .find(|f| f.name == "employees")
            .map(|f| &f.value)
            .or_else(|| lead.get("employees"))
            .and_then(Value::as_f64);
        let rating = match employees {
            Some(n) if n >= event.setting_number("hot-employees").unwrap_or(1000.0) => "hot",
            Some(n) if n >= event.setting_number("warm-employees").unwrap_or(100.0) => "warm",
            Some(_) => "cold",
            None => "unknown",
        };
        updates.push(field("rating", rating));
        records::update("lead", &lead.id, &updates)?;
        let name = lead.text("name").unwrap_or(&lead.id);
        if rating == "hot"
            && let Some(owner) = &lead.owner
        {
            notify::send(&notify::message(
                Channel::InApp,
                &[owner.as_str()],
                Some("Hot lead"),
                &format!(
                    "{name} ({domain}, {} employees) is a hot lead.",
                    employees.unwrap_or_default()
                ),
            ))?;
        }
        Ok(Outcome::success(format!(
            "{name} ({domain}) rated {rating}{note}"
        )))
    }
}

roster_sdk::export!(NewLeadEnricher);
