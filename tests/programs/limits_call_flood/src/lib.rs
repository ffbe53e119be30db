//! A worker that calls the host in a tight loop: it must end with the host-call-limit status.

use roster_sdk::{Event, Outcome, Worker, WorkerError, memory};

struct Flood;

impl Worker for Flood {
    fn handle(_event: Event) -> Result<Outcome, WorkerError> {
        for i in 0..10_000_000u64 {
            let _ = memory::get(&format!("k{}", i % 16));
        }
        Ok(Outcome::success("ten million host calls went through"))
    }
}

roster_sdk::export!(Flood);
