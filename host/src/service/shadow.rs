//! Shadow runs: a new version of a worker runs in dry-run beside the live one, on the same
//! triggers and the same record, and the host reports where their proposed actions differ.
//!
//! The shadow runs first, so both see the record as it was before the live run acted. Two
//! actions agree when they are the same operation on the same target with the same
//! proposed values (compared by the digest the gate records) and neither or both were
//! denied.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::sandbox::gate::{ActionKind, ActionRecord, ActionResult};
use crate::sandbox::report::ExecutionReport;
use crate::store::{ProposedAction, ShadowRun};

fn proposed(a: &ActionRecord) -> ProposedAction {
    let result = match &a.result {
        ActionResult::Performed { .. } => "performed",
        ActionResult::DryRun => "dry-run",
        ActionResult::Held { .. } => "held",
        ActionResult::Denied { .. } => "denied",
        ActionResult::Failed { .. } => "failed",
    };
    ProposedAction {
        action: format!("{}.{}", a.capability, a.operation),
        target: a.target.clone(),
        result: result.to_string(),
        digest: a
            .proposal_digest
            .clone()
            .unwrap_or_else(|| hex::encode(Sha256::digest(a.input.to_string().as_bytes()))),
        proposal: a.proposal.clone(),
    }
}

fn effects(report: &ExecutionReport) -> Vec<ProposedAction> {
    report
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Effect)
        .map(proposed)
        .collect()
}

fn describe(a: &ProposedAction) -> String {
    format!("{} {}", a.action, a.target)
}

/// Where two lists of side effects differ, position by position.
pub fn differences(live: &[ProposedAction], shadow: &[ProposedAction]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..live.len().max(shadow.len()) {
        match (live.get(i), shadow.get(i)) {
            (Some(l), Some(s)) => {
                if l.action != s.action || l.target != s.target {
                    out.push(format!(
                        "action {}: live {} / shadow {}",
                        i + 1,
                        describe(l),
                        describe(s)
                    ));
                } else if (l.result == "denied") != (s.result == "denied") {
                    out.push(format!(
                        "action {}: {} denied in {} only",
                        i + 1,
                        describe(l),
                        if l.result == "denied" {
                            "live"
                        } else {
                            "shadow"
                        }
                    ));
                } else if l.digest != s.digest {
                    out.push(format!(
                        "action {}: {} with other values",
                        i + 1,
                        describe(l)
                    ));
                }
            }
            (Some(l), None) => out.push(format!("action {}: only live {}", i + 1, describe(l))),
            (None, Some(s)) => out.push(format!("action {}: only shadow {}", i + 1, describe(s))),
            (None, None) => {}
        }
    }
    out
}

/// Compares a live run and its shadow on one trigger.
pub fn compare(
    worker: &str,
    record: Option<String>,
    at: i64,
    live: &ExecutionReport,
    shadow: &ExecutionReport,
) -> ShadowRun {
    let (l, s) = (effects(live), effects(shadow));
    let mut differences = differences(&l, &s);
    if live.status.is_ok() != shadow.status.is_ok() {
        differences.insert(
            0,
            format!("live ended {}, shadow ended {}", live.status, shadow.status),
        );
    }
    ShadowRun {
        seq: 0,
        worker: worker.to_string(),
        event_id: live.event_id.clone(),
        record,
        at,
        live_version: live.version.clone(),
        shadow_version: shadow.version.clone(),
        live_status: live.status.to_string(),
        shadow_status: shadow.status.to_string(),
        live: l,
        shadow: s,
        differences,
    }
}

/// A worker's shadow runs summed up.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    /// The worker.
    pub worker: String,
    /// Runs compared.
    pub runs: usize,
    /// Runs where the versions agreed.
    pub agreed: usize,
    /// Runs where they differed.
    pub differed: usize,
    /// The share of runs that agreed.
    pub agreement_rate: f64,
    /// The latest runs that differed (at most 50), newest first.
    pub differing: Vec<ShadowRun>,
}

/// Sums up a worker's shadow runs.
pub fn report(worker: &str, runs: Vec<ShadowRun>) -> ShadowReport {
    let total = runs.len();
    let mut differing: Vec<ShadowRun> = runs
        .into_iter()
        .filter(|r| !r.differences.is_empty())
        .collect();
    let differed = differing.len();
    differing.reverse();
    differing.truncate(50);
    ShadowReport {
        worker: worker.to_string(),
        runs: total,
        agreed: total - differed,
        differed,
        agreement_rate: if total == 0 {
            0.0
        } else {
            (total - differed) as f64 / total as f64
        },
        differing,
    }
}
