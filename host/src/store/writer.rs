//! Group commit: one thread owns every write transaction.
//!
//! Writers hand the thread a job (a closure over the write transaction) and wait for its
//! reply. The thread takes every job waiting, runs them all in one transaction and commits
//! once with `Durability::Immediate`, so each caller's write is durable when `write`
//! returns, while one fsync is shared by everyone who arrived during the previous commit.
//! A job that fails is taken out and the rest of the batch is run again without it, so one
//! bad write never takes others down with it.

use std::any::Any;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use redb::{Database, WriteTransaction};

use super::StoreError;
use super::log::{current_request, for_request};

/// The most jobs committed together.
const MAX_BATCH: usize = 512;

type Output = Box<dyn Any + Send>;
type Job = Box<dyn FnMut(&WriteTransaction) -> Result<Output, StoreError> + Send>;

struct Request {
    job: Job,
    reply: SyncSender<Result<Output, StoreError>>,
}

/// The handle writers use; cloning it shares the one writer thread. When the last handle
/// is dropped the thread finishes its batch and is joined, so the database is closed by
/// the time the last `Store` is gone (a restart in the same process can reopen it).
#[derive(Clone)]
pub(crate) struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    tx: std::sync::Mutex<Option<SyncSender<Request>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut thread) = self.thread.lock()
            && let Some(t) = thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            // (Never join from the writer thread itself: it exits once the sender is gone.)
            let _ = t.join();
        }
    }
}

impl Writer {
    /// Starts the writer thread for `db`.
    pub(crate) fn start(db: Arc<Database>) -> Result<Writer, StoreError> {
        let (tx, rx) = sync_channel::<Request>(4 * MAX_BATCH);
        let thread = std::thread::Builder::new()
            .name("roster-store-writer".into())
            .spawn(move || run(&db, &rx))
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        Ok(Writer {
            inner: Arc::new(Inner {
                tx: std::sync::Mutex::new(Some(tx)),
                thread: std::sync::Mutex::new(Some(thread)),
            }),
        })
    }

    /// Runs `job` in a write transaction and returns its result once it is durable.
    pub(crate) fn write<R: Send + 'static>(
        &self,
        mut job: impl FnMut(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = sync_channel(1);
        // The job runs on the writer thread as the work of the caller's request.
        let request = current_request();
        let job: Job = Box::new(move |tx| {
            for_request(request.clone(), || job(tx)).map(|r| Box::new(r) as Output)
        });
        let sender = self
            .inner
            .tx
            .lock()
            .ok()
            .and_then(|tx| tx.clone())
            .ok_or_else(|| StoreError::Writer("the writer thread has stopped".into()))?;
        sender
            .send(Request { job, reply })
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))?;
        let output = answer
            .recv()
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))??;
        output
            .downcast::<R>()
            .map(|b| *b)
            .map_err(|_| StoreError::Writer("a job returned the wrong type".into()))
    }
}

fn run(db: &Database, rx: &Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        commit(db, batch);
    }
}

fn commit(db: &Database, mut batch: Vec<Request>) {
    while !batch.is_empty() {
        let tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                let message = e.to_string();
                for Request { job, reply } in batch {
                    drop(job);
                    let _ = reply.send(Err(StoreError::Writer(message.clone())));
                }
                return;
            }
        };
        let mut outputs = Vec::with_capacity(batch.len());
        let mut failed = None;
        for (i, request) in batch.iter_mut().enumerate() {
            match (request.job)(&tx) {
                Ok(out) => outputs.push(out),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        match failed {
            None => {
                // Jobs are dropped before their callers wake, so a handle a job captured is
                // never the last one released on this thread.
                let replies: Vec<_> = batch.into_iter().map(|r| r.reply).collect();
                let started = std::time::Instant::now();
                let committed = tx.commit();
                crate::metrics::metrics()
                    .commit_seconds
                    .observe(started.elapsed().as_secs_f64());
                match committed {
                    Ok(()) => {
                        for (reply, out) in replies.into_iter().zip(outputs) {
                            let _ = reply.send(Ok(out));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Writer(message.clone())));
                        }
                    }
                }
                return;
            }
            Some((i, error)) => {
                // Undo the whole batch, answer the failed job, run the others again.
                let _ = tx.abort();
                let Request { job, reply } = batch.remove(i);
                drop(job);
                let _ = reply.send(Err(error));
            }
        }
    }
}
