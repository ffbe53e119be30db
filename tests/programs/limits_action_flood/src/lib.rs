//! A worker that creates records without bound: it must end with the action-limit status.

use roster_sdk::{Event, Outcome, Worker, WorkerError, field, records};

struct Actions;

impl Worker for Actions {
    fn handle(_event: Event) -> Result<Outcome, WorkerError> {
        for i in 0..1_000i64 {
            records::create("task", &[field("subject", format!("task {i}"))])?;
        }
        Ok(Outcome::success("a thousand actions went through"))
    }
}

roster_sdk::export!(Actions);
