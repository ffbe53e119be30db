//! Stale Lead Alerter (template): on a schedule, finds open leads with no activity for N
//! days, flags them and tells each owner in-app, once per lead until it sees activity again.
//!
//! Configuration comes from the installation's settings (`days`, `limit`; see
//! `worker.toml`'s `[config]`), which a schedule's payload may override for one run:
//! `{"days": 14, "limit": 200}`.

use roster_sdk::notify::{self, Channel};
use roster_sdk::records::{self, Comparison};
use roster_sdk::{Event, Outcome, Value, Worker, WorkerError, field, log, memory};

struct StaleLeadAlerter;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The most leads alerted in one run: two side effects each, within the manifest's
/// `[limits] actions = 25`, so a run never stops between flagging a lead and telling its
/// owner (the rest are alerted by the next run).
const PER_RUN: usize = 12;

fn setting(event: &Event, key: &str, default: i64) -> i64 {
    payload_setting(event.payload.as_deref(), key)
        .or_else(|| event.setting_number(key).map(|n| n as i64))
        .unwrap_or(default)
}

fn payload_setting(payload: Option<&str>, key: &str) -> Option<i64> {
    // The payload is a flat JSON object, read like the settings.
    match roster_sdk::settings::get(payload?, key)? {
        roster_sdk::settings::Setting::Number(n) => Some(n as i64),
        _ => None,
    }
}

impl Worker for StaleLeadAlerter {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let days = setting(&event, "days", 7).clamp(1, 365);
        let limit = setting(&event, "limit", 200).clamp(1, 1000) as u32;
        let cutoff = event.occurred_at - days * DAY_MS;

        let stale = records::find(&records::query(
            "lead",
            vec![
                records::filter("status", Comparison::Equals, "open"),
                records::filter(
                    "last_activity_at",
                    Comparison::LessThan,
                    Value::Timestamp(cutoff),
                ),
            ],
            limit,
        ))?;

        let mut alerted = 0;
        let mut already = 0;
        let mut left = 0;
        for lead in &stale {
            if alerted == PER_RUN {
                left += 1;
                continue;
            }
            let key = format!("alerted/{}", lead.id);
            let last_activity = lead.timestamp("last_activity_at").unwrap_or_default();
            if memory::get_text(&key)?.is_some_and(|seen| seen == last_activity.to_string()) {
                already += 1;
                continue;
            }
            let idle_days = (event.occurred_at - last_activity) / DAY_MS;
            let name = lead.text("name").unwrap_or(&lead.id);
            records::update("lead", &lead.id, &[field("stale", true)])?;
            if let Some(owner) = &lead.owner {
                notify::send(&notify::message(
                    Channel::InApp,
                    &[owner.as_str()],
                    Some("Stale lead"),
                    &format!("{name} has had no activity for {idle_days} days"),
                ))?;
            }
            memory::set_text(&key, &last_activity.to_string())?;
            alerted += 1;
        }
        log::info(&format!(
            "{} stale leads, {alerted} alerted, {already} already alerted, {left} left for the next run",
            stale.len()
        ));
        if alerted == 0 {
            return Ok(Outcome::skipped(format!(
                "no new stale leads (idle > {days} days)"
            )));
        }
        Ok(Outcome::success(format!(
            "alerted owners of {alerted} stale leads (idle > {days} days)"
        )))
    }
}

roster_sdk::export!(StaleLeadAlerter);
