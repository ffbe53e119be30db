//! `roster:logging/logging`: log lines kept in the execution report, within the log limit.

use crate::sandbox::bindings::roster::logging::logging::{Host, Level};
use crate::sandbox::payload::Payload;
use crate::sandbox::report::LogLine;
use crate::sandbox::state::HostState;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.gate.enter(Payload::default().text(&message))?;
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        tracing::debug!(worker = %self.worker.plugin, level, "{message}");
        let size = message.len() as u64;
        if self.logs.bytes + size > self.worker.limits.log_bytes {
            self.logs.truncated = true;
            return Ok(());
        }
        self.logs.bytes += size;
        self.logs.lines.push(LogLine { level, message });
        Ok(())
    }
}
