//! A well-behaved worker: reads the event's lead, marks it reviewed, tells its owner in-app,
//! counts its runs in memory and logs. Tests run it after every failure to show the host is fine.

use roster_sdk::notify::{self, Channel};
use roster_sdk::{Event, Outcome, Worker, WorkerError, field, log, memory, records};

struct WellBehaved;

impl Worker for WellBehaved {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let lead = event.require_record()?;
        let fresh = records::get("lead", &lead.id)?;
        records::update("lead", &fresh.id, &[field("status", "reviewed")])?;
        let owner = fresh.owner.clone().unwrap_or_else(|| "unassigned".into());
        notify::send(&notify::message(
            Channel::InApp,
            &[owner.as_str()],
            Some("Lead reviewed"),
            &format!("{} was reviewed", fresh.text("name").unwrap_or(&fresh.id)),
        ))?;
        let runs = memory::get_text("runs")?
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        memory::set_text("runs", &runs.to_string())?;
        log::info(&format!("reviewed {} (run {runs})", fresh.id));
        Ok(Outcome::success(format!("reviewed {} run {runs}", fresh.id)).with_confidence(0.9))
    }
}

roster_sdk::export!(WellBehaved);
