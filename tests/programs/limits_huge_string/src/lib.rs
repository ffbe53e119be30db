//! A worker that passes a 16 MiB string to a host call: it must end with the payload-limit status.

use roster_sdk::{Event, Outcome, Worker, WorkerError, log};

struct Huge;

impl Worker for Huge {
    fn handle(_event: Event) -> Result<Outcome, WorkerError> {
        let huge = "x".repeat(16 << 20);
        log::info(&huge);
        Ok(Outcome::success("the host accepted a 16 MiB argument"))
    }
}

roster_sdk::export!(Huge);
