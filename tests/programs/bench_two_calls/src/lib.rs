//! The benchmark's worker: one handler call that makes two host calls (a record read and a log line).

use roster_sdk::{Event, Outcome, Worker, WorkerError, log, records};

struct Bench;

impl Worker for Bench {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let lead = records::get("lead", "L-1")?;
        log::info(&event.id);
        Ok(Outcome::success(lead.id))
    }
}

roster_sdk::export!(Bench);
