//! A worker that never returns: it must end as out-of-fuel, or as timeout when fuel is high.

use roster_sdk::{Event, Outcome, Worker, WorkerError};

struct Spin;

impl Worker for Spin {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let mut n: u64 = event.occurred_at as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
            if n == 42 {
                return Ok(Outcome::success("impossible"));
            }
        }
    }
}

roster_sdk::export!(Spin);
