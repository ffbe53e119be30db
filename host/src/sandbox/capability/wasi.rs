//! The WASI every worker gets: no files, environment, arguments or network, and every
//! wait bounded by the execution.
//!
//! WASI is linked synchronously ([ADR 0006](../../../docs/adr/0006-bounded-waits.md)), so
//! a guest that waits — `std::thread::sleep`, a `poll` on a clock, a blocking read or
//! write — blocks its host thread inside a host call, where the epoch deadline cannot
//! fire. Every such wait goes through `wasi:io/poll` (`poll`, `pollable.block`) or a
//! `blocking-*` method of `wasi:io/streams`; this module links its own versions of those
//! two interfaces over the same resources, which race the wait against the execution's
//! deadline and its worker's halt flag. The first to come ends the host call with the
//! same trap the epoch check raises: [`Trap::Interrupt`] (the execution ends as
//! `timeout`) or [`Halted`] (it ends as `interrupted`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::Trap;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::io::poll as async_poll;
use wasmtime_wasi::p2::bindings::io::streams::{
    HostInputStream as AsyncInput, HostOutputStream as AsyncOutput,
};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};
use wasmtime_wasi::runtime::in_tokio;

use crate::sandbox::gate::Halted;
use crate::sandbox::state::HostState;

/// How often a wait looks at the halt flag: the kill switch reaches a waiting worker
/// within this time.
const HALT_CHECK: Duration = Duration::from_millis(5);

/// Links sandboxed WASI, with `wasi:io/poll` and `wasi:io/streams` replaced by versions
/// whose waits end at the execution's deadline and at the kill switch.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let linked = poll::add_to_linker::<HostState, Bounded>(linker, bounded)
        .and_then(|()| streams::add_to_linker::<HostState, Bounded>(linker, bounded));
    linker.allow_shadowing(false);
    linked
}

fn bounded(state: &mut HostState) -> BoundedIo<'_> {
    BoundedIo {
        table: &mut state.table,
        limit: WaitLimit {
            deadline: state.deadline,
            halt: &state.worker.halt,
        },
    }
}

/// When every wait of one execution must end.
#[derive(Clone, Copy)]
pub(crate) struct WaitLimit<'a> {
    /// The execution's wall-clock deadline.
    pub deadline: Instant,
    /// Set when the worker is paused or killed.
    pub halt: &'a Arc<AtomicBool>,
}

impl WaitLimit<'_> {
    /// The trap that ends the wait once the deadline passes or the halt flag is set.
    async fn reached(self) -> wasmtime::Error {
        loop {
            if self.halt.load(Ordering::SeqCst) {
                return wasmtime::Error::new(Halted);
            }
            let now = Instant::now();
            if now >= self.deadline {
                return wasmtime::Error::new(Trap::Interrupt);
            }
            tokio::time::sleep((self.deadline - now).min(HALT_CHECK)).await;
        }
    }

    /// Runs `wait` until it finishes or the limit is reached, whichever comes first; the
    /// `Err` is the trap that ends the execution.
    pub fn bound<F: Future>(self, wait: F) -> wasmtime::Result<F::Output> {
        in_tokio(async move {
            tokio::select! {
                biased;
                done = wait => Ok(done),
                stop = self.reached() => Err(stop),
            }
        })
    }

    /// [`WaitLimit::bound`] for a stream operation, whose traps travel in its error.
    fn bound_stream<T>(self, wait: impl Future<Output = StreamResult<T>>) -> StreamResult<T> {
        self.bound(wait)
            .unwrap_or_else(|stop| Err(StreamError::Trap(stop)))
    }
}

/// The resources of one execution with its wait limit.
pub(crate) struct BoundedIo<'a> {
    table: &'a mut ResourceTable,
    limit: WaitLimit<'a>,
}

struct Bounded;

impl HasData for Bounded {
    type Data<'a> = BoundedIo<'a>;
}

impl poll::Host for BoundedIo<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        self.limit
            .bound(async_poll::Host::poll(self.table, pollables))?
    }
}

impl poll::HostPollable for BoundedIo<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        self.limit
            .bound(async_poll::HostPollable::block(self.table, pollable))?
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

impl streams::Host for BoundedIo<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostInputStream for BoundedIo<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        streams::HostInputStream::drop(self.table, stream)
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        self.limit
            .bound_stream(AsyncInput::blocking_read(self.table, stream, len))
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        self.limit
            .bound_stream(AsyncInput::blocking_skip(self.table, stream, len))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}

impl streams::HostOutputStream for BoundedIo<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        streams::HostOutputStream::drop(self.table, stream)
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        self.limit
            .bound_stream(AsyncOutput::blocking_write_and_flush(
                self.table, stream, bytes,
            ))
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        self.limit
            .bound_stream(AsyncOutput::blocking_write_zeroes_and_flush(
                self.table, stream, len,
            ))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        let borrowed = Resource::new_borrow(stream.rep());
        self.limit
            .bound_stream(AsyncOutput::blocking_flush(self.table, borrowed))
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        self.limit
            .bound_stream(AsyncOutput::blocking_splice(self.table, dst, src, len))
    }
}
