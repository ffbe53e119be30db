//! A worker that panics, to show that a panic ends in a reported failure with a backtrace.

use roster_sdk::{Event, Outcome, Worker, WorkerError};

struct Panics;

#[inline(never)]
fn check_invariant(id: &str) {
    if !id.is_empty() {
        panic!("invariant broken while handling {id}");
    }
}

impl Worker for Panics {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        check_invariant(&event.id);
        Ok(Outcome::success("unreachable"))
    }
}

roster_sdk::export!(Panics);
