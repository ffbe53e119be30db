//! A worker that allocates without bound: it must end with the memory-limit status.

use roster_sdk::{Event, Outcome, Worker, WorkerError};

struct Bomb;

impl Worker for Bomb {
    fn handle(_event: Event) -> Result<Outcome, WorkerError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; 1 << 20];
            chunk[0] = hoard.len() as u8;
            hoard.push(std::hint::black_box(chunk));
        }
    }
}

roster_sdk::export!(Bomb);
