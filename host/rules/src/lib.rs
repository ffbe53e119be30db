//! The rule language of Roster's rules worker, shared by the host, which checks a rule set
//! when it is saved, and by the rules worker, which runs it: the same parser on both sides,
//! so what the host accepted is what the worker runs.
//!
//! - [`template`] — merge-field templates (`Call {{lead.name}} at {{lead.company}}`).
//! - [`rule`] — the steps of a rule (create, update, notify, assign, log an activity,
//!   put in or take out of a sequence, request approval, emit a signal) and the chain the rules worker runs.

pub mod rule;
pub mod template;

pub use rule::{Chain, ENROLLMENT, Open, Relative, SequenceOp, Step, StepValue, Strategy};
pub use template::{Format, Template, TemplateError};
