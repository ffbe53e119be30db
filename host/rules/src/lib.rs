//! The rule language of Roster's rules worker, shared by the host, which checks a rule set
//! when it is saved, and by the rules worker, which runs it: the same parser on both sides,
//! so what the host accepted is what the worker runs.
//!
//! - [`template`] — merge-field templates (`Call {{lead.name}} at {{lead.company}}`).

pub mod template;

pub use template::{Format, Template, TemplateError};
