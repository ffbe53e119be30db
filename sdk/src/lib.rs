//! `roster-sdk`: write a Roster digital worker in Rust.
//!
//! A worker is a WebAssembly component that exports one function, `handle(event)`, and
//! imports only the capabilities it uses. Write a struct, implement [`Worker`] for it and
//! call [`export!`]:
//!
//! ```ignore
//! use roster_sdk::{Event, Outcome, Worker, WorkerError};
//!
//! struct Hello;
//!
//! impl Worker for Hello {
//!     fn handle(event: Event) -> Result<Outcome, WorkerError> {
//!         roster_sdk::log::info(&format!("got event {}", event.id));
//!         Ok(Outcome::success("said hello"))
//!     }
//! }
//!
//! roster_sdk::export!(Hello);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate type `cdylib`).
//!
//! Layout: [`bindings`] is the code generated from `wit/worker`; the modules beside it
//! ([`records`], [`notify`], [`http`], [`memory`], [`signals`], [`inference`],
//! [`enrichment`], [`log`]) re-export each
//! capability with typed helpers, and this file adds helpers on events, records, values
//! and outcomes.

/// Bindings generated from the `roster:worker` WIT world.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/worker",
        world: "roster:worker/worker",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "roster_sdk::bindings",
        generate_all,
    });
}

pub use bindings::export;
pub use bindings::exports::roster::worker::handler::Guest as Worker;
pub use bindings::roster::types::types::{
    ActionState, CrmRecord, Error as WorkerError, Field, Receipt, Value,
};
pub use bindings::roster::worker::types::{Event, FieldChange, Outcome, OutcomeStatus, Trigger};

pub mod enrichment;
pub mod http;
pub mod inference;
pub mod json;
pub mod log;
pub mod memory;
pub mod notify;
pub mod records;
pub mod settings;
pub mod signals;
pub mod time;

/// Builds a [`Field`] from a name and anything convertible into a [`Value`].
pub fn field(name: impl Into<String>, value: impl Into<Value>) -> Field {
    Field {
        name: name.into(),
        value: value.into(),
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Integer(n)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl Value {
    /// The text, if this is a text value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The number, if this is an integer or a decimal number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(n) => Some(*n as f64),
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The timestamp in milliseconds since the Unix epoch, if this is a timestamp.
    pub fn as_timestamp(&self) -> Option<i64> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    /// Whether the value is null, empty text or an empty list.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Text(t) => t.is_empty(),
            Value::TextList(l) => l.is_empty(),
            _ => false,
        }
    }
}

impl CrmRecord {
    /// The value of a field, if the record has it (and the worker may read it).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    }

    /// The text of a field, if it is a text field.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_text)
    }

    /// The numeric value of a field, if it is a number.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Value::as_f64)
    }

    /// The timestamp of a field, if it is a timestamp.
    pub fn timestamp(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_timestamp)
    }
}

impl Event {
    /// The record the event is about, if any.
    pub fn record(&self) -> Option<&CrmRecord> {
        self.record.as_ref()
    }

    /// The record the event is about, or an `invalid-input` error naming what was expected.
    pub fn require_record(&self) -> Result<&CrmRecord, WorkerError> {
        self.record
            .as_ref()
            .ok_or_else(|| WorkerError::InvalidInput("the event carries no record".into()))
    }

    /// The changes of a record-updated event (empty for other triggers).
    pub fn changes(&self) -> &[FieldChange] {
        match &self.trigger {
            Trigger::RecordUpdated(changes) => changes,
            _ => &[],
        }
    }

    /// Whether a record-updated event changed `field`.
    pub fn changed(&self, field: &str) -> bool {
        self.changes().iter().any(|c| c.field == field)
    }

    /// A setting of this installation (from the manifest's `[config]` schema and the
    /// worker file's `[settings]`), if set.
    pub fn setting(&self, key: &str) -> Option<settings::Setting> {
        settings::get(&self.settings, key)
    }

    /// A text setting.
    pub fn setting_text(&self, key: &str) -> Option<String> {
        match self.setting(key)? {
            settings::Setting::Text(t) => Some(t),
            _ => None,
        }
    }

    /// A numeric setting (integer or number).
    pub fn setting_number(&self, key: &str) -> Option<f64> {
        match self.setting(key)? {
            settings::Setting::Number(n) => Some(n),
            _ => None,
        }
    }

    /// A text member of the event's payload (a flat JSON object, as signals carry).
    pub fn payload_text(&self, key: &str) -> Option<String> {
        json::text(self.payload.as_deref()?, key)
    }

    /// A numeric member of the event's payload.
    pub fn payload_number(&self, key: &str) -> Option<f64> {
        json::number(self.payload.as_deref()?, key)
    }

    /// A list setting: a text setting split at commas, each item trimmed, empty items
    /// dropped (`"billing, technical"` → `["billing", "technical"]`).
    pub fn setting_list(&self, key: &str) -> Vec<String> {
        self.setting_text(key)
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A boolean setting.
    pub fn setting_bool(&self, key: &str) -> Option<bool> {
        match self.setting(key)? {
            settings::Setting::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl Outcome {
    /// Everything was done.
    pub fn success(summary: impl Into<String>) -> Self {
        Self::new(OutcomeStatus::Success, summary)
    }

    /// Part of the work was done.
    pub fn partial(summary: impl Into<String>) -> Self {
        Self::new(OutcomeStatus::Partial, summary)
    }

    /// Nothing needed doing.
    pub fn skipped(summary: impl Into<String>) -> Self {
        Self::new(OutcomeStatus::Skipped, summary)
    }

    /// Attaches a confidence score (clamped to 0.0..=1.0), as AI workers report.
    pub fn with_confidence(mut self, confidence: f32) -> Self {
        self.confidence = Some(confidence.clamp(0.0, 1.0));
        self
    }

    fn new(status: OutcomeStatus, summary: impl Into<String>) -> Self {
        Outcome {
            status,
            summary: summary.into(),
            confidence: None,
        }
    }
}

impl WorkerError {
    /// The error's case as named in the contract: `denied`, `not-found`, `invalid-input`,
    /// `unavailable`, `budget-exceeded` or `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            WorkerError::Denied(_) => "denied",
            WorkerError::NotFound(_) => "not-found",
            WorkerError::InvalidInput(_) => "invalid-input",
            WorkerError::Unavailable(_) => "unavailable",
            WorkerError::BudgetExceeded(_) => "budget-exceeded",
            WorkerError::Other(_) => "other",
        }
    }

    /// The reason the host (or the worker) gave.
    pub fn reason(&self) -> &str {
        match self {
            WorkerError::Denied(r)
            | WorkerError::NotFound(r)
            | WorkerError::InvalidInput(r)
            | WorkerError::Unavailable(r)
            | WorkerError::BudgetExceeded(r)
            | WorkerError::Other(r) => r,
        }
    }

    /// `kind: reason`, for log lines and summaries.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.kind(), self.reason())
    }
}
