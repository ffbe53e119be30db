//! A worker that recurses without bound: it must end with the stack-overflow status.

use roster_sdk::{Event, Outcome, Worker, WorkerError};

struct Deep;

#[inline(never)]
#[allow(unconditional_recursion)]
fn descend(depth: u64, pad: [u64; 8]) -> u64 {
    let next = std::hint::black_box([pad[0] + depth; 8]);
    descend(depth + 1, next) + next[7]
}

impl Worker for Deep {
    fn handle(_event: Event) -> Result<Outcome, WorkerError> {
        let n = descend(0, [1; 8]);
        Ok(Outcome::success(format!("{n}")))
    }
}

roster_sdk::export!(Deep);
