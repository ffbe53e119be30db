//! The inference capability: classify and score text with a granted model, teach it
//! examples, draft text.
//!
//! ```ignore
//! use roster_sdk::inference;
//!
//! let p = inference::classify("ticket-category", &ticket_text, &["billing", "technical"])?;
//! if p.confidence < threshold {
//!     // escalate to a person instead of acting
//! }
//! ```
//!
//! Report the confidence you acted on with [`crate::Outcome::with_confidence`]: review rules
//! that hold actions below a confidence threshold use it.

pub use crate::bindings::roster::inference::inference::{LabelScore, Prediction, draft, learn};

use crate::WorkerError;

/// Classifies `text` into one of `labels` with `model`.
pub fn classify(model: &str, text: &str, labels: &[&str]) -> Result<Prediction, WorkerError> {
    let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    crate::bindings::roster::inference::inference::classify(model, text, &labels)
}

/// Scores `text` with `model` as the probability (0.0 to 1.0) that it is `positive` rather
/// than `negative` (for example a lead that converts rather than one that does not),
/// with the prediction behind it.
pub fn score(
    model: &str,
    text: &str,
    positive: &str,
    negative: &str,
) -> Result<(f32, Prediction), WorkerError> {
    let p = classify(model, text, &[positive, negative])?;
    let score = p.score_of(positive);
    Ok((score, p))
}

impl Prediction {
    /// The probability of `label` (0.0 when it was not among the labels).
    pub fn score_of(&self, label: &str) -> f32 {
        self.scores
            .iter()
            .find(|s| s.label == label)
            .map_or(0.0, |s| s.score)
    }
}
