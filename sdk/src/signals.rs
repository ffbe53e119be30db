//! The signals capability: emit signals that trigger other workers.

pub use crate::bindings::roster::signals::signals::emit;
