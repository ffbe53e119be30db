//! The trust curve: each worker's stage (assistive → supervised → conditional autonomy →
//! high trust), the metrics that justify moving it, and the proposal to promote it.
//!
//! The metrics are computed from the audit trail over a window (30 days by default):
//! executions and how many failed or escalated, people's decisions on its held actions
//! (approved, edited, rejected) and reversals people reported of actions it performed. A
//! promotion is proposed — and owners are alerted — when every threshold of `[trust]` is
//! met; only a person whose role the policies allow (`trust.promote`) moves the worker,
//! one stage up at a time, and the move is an audit entry. Moving down needs only a reason.

use serde::{Deserialize, Serialize};

use crate::store::Stage;
use crate::store::{AuditQuery, ExecutionEntry, Store, StoreError};

/// `[trust]` in `roster.toml`: when a promotion is proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct TrustSettings {
    /// The window the metrics cover, in days.
    pub window_days: u32,
    /// Executions needed in the window.
    pub min_executions: u64,
    /// People's decisions on held actions needed in the window.
    pub min_decisions: u64,
    /// The lowest approval rate (approved as proposed / decided).
    pub min_approval_rate: f64,
    /// The highest edit rate.
    pub max_edit_rate: f64,
    /// The highest rejection rate.
    pub max_rejection_rate: f64,
    /// The highest error rate (failed executions / executions).
    pub max_error_rate: f64,
    /// The highest escalation rate.
    pub max_escalation_rate: f64,
    /// The highest reversal rate (reversed actions / actions performed).
    pub max_reversal_rate: f64,
}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings {
            window_days: 30,
            min_executions: 20,
            min_decisions: 20,
            min_approval_rate: 0.9,
            max_edit_rate: 0.1,
            max_rejection_rate: 0.05,
            max_error_rate: 0.05,
            max_escalation_rate: 0.05,
            max_reversal_rate: 0.02,
        }
    }
}

impl TrustSettings {
    /// Problems with the settings, for the configuration error.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.window_days == 0 {
            problems.push("trust.window-days: at least 1".to_string());
        }
        for (name, v) in [
            ("min-approval-rate", self.min_approval_rate),
            ("max-edit-rate", self.max_edit_rate),
            ("max-rejection-rate", self.max_rejection_rate),
            ("max-error-rate", self.max_error_rate),
            ("max-escalation-rate", self.max_escalation_rate),
            ("max-reversal-rate", self.max_reversal_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                problems.push(format!("trust.{name}: use 0.0 to 1.0"));
            }
        }
        problems
    }
}

/// What the audit trail says about a worker over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TrustMetrics {
    /// The window's start (ms since the epoch).
    pub since: i64,
    /// Executions.
    pub executions: u64,
    /// Executions that failed (an interruption by a pause is not the worker's failure).
    pub errors: u64,
    /// Executions whose final failure ran an escalation.
    pub escalations: u64,
    /// Side effects performed or held.
    pub actions: u64,
    /// Held actions approved as proposed.
    pub approved: u64,
    /// Held actions edited then approved.
    pub edited: u64,
    /// Held actions rejected.
    pub rejected: u64,
    /// Actions people reported reversed.
    pub reversals: u64,
    /// approved / decided.
    pub approval_rate: f64,
    /// edited / decided.
    pub edit_rate: f64,
    /// rejected / decided.
    pub rejection_rate: f64,
    /// errors / executions.
    pub error_rate: f64,
    /// escalations / executions.
    pub escalation_rate: f64,
    /// reversals / actions.
    pub reversal_rate: f64,
}

impl TrustMetrics {
    /// People's decisions.
    pub fn decisions(&self) -> u64 {
        self.approved + self.edited + self.rejected
    }
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Computes a worker's metrics from the audit trail since `since`.
pub fn metrics(store: &Store, worker: &str, since: i64) -> Result<TrustMetrics, StoreError> {
    let query = AuditQuery {
        worker: Some(worker.to_string()),
        since: Some(since),
        ..AuditQuery::default()
    };
    let mut m = TrustMetrics {
        since,
        ..TrustMetrics::default()
    };
    store.audit_scan(&query, |e, _, _| {
        count(&mut m, e);
        true
    })?;
    let decided = m.decisions();
    m.approval_rate = rate(m.approved, decided);
    m.edit_rate = rate(m.edited, decided);
    m.rejection_rate = rate(m.rejected, decided);
    m.error_rate = rate(m.errors, m.executions);
    m.escalation_rate = rate(m.escalations, m.executions);
    m.reversal_rate = rate(m.reversals, m.actions);
    Ok(m)
}

fn count(m: &mut TrustMetrics, e: &ExecutionEntry) {
    if e.is_governance() {
        match e.trigger.strip_prefix("governance:") {
            Some("approval.approve") => m.approved += 1,
            Some("approval.edit") => m.edited += 1,
            Some("approval.reject") => m.rejected += 1,
            Some("action.reverse") => m.reversals += 1,
            _ => {}
        }
        return;
    }
    m.executions += 1;
    if e.failure.as_deref().is_some_and(|f| f != "interrupted") {
        m.errors += 1;
    }
    if e.escalation.is_some() {
        m.escalations += 1;
    }
    if let Some(actions) = e.report.as_ref().and_then(|r| r["actions"].as_array()) {
        m.actions += actions
            .iter()
            .filter(|a| {
                a["kind"] == "effect" && matches!(a["result"].as_str(), Some("performed" | "held"))
            })
            .count() as u64;
    }
}

/// One threshold of a promotion.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// The metric.
    pub metric: &'static str,
    /// Its value.
    pub value: f64,
    /// The threshold (`>=` for minimums, `<=` for maximums).
    pub threshold: f64,
    /// Whether it is a minimum.
    pub minimum: bool,
    /// Whether it is met.
    pub ok: bool,
}

/// The proposal to move a worker one stage up.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Promotion {
    /// The stage it is at.
    pub from: Stage,
    /// The next stage.
    pub to: Stage,
    /// Whether every threshold is met.
    pub ready: bool,
    /// Each threshold.
    pub checks: Vec<Check>,
}

/// The promotion from `stage`, if there is a stage above it.
pub fn promotion(stage: Stage, m: &TrustMetrics, s: &TrustSettings) -> Option<Promotion> {
    let to = stage.next()?;
    let min = |metric, value: f64, threshold: f64| Check {
        metric,
        value,
        threshold,
        minimum: true,
        ok: value >= threshold,
    };
    let max = |metric, value: f64, threshold: f64| Check {
        metric,
        value,
        threshold,
        minimum: false,
        ok: value <= threshold,
    };
    let checks = vec![
        min("executions", m.executions as f64, s.min_executions as f64),
        min("decisions", m.decisions() as f64, s.min_decisions as f64),
        min("approval-rate", m.approval_rate, s.min_approval_rate),
        max("edit-rate", m.edit_rate, s.max_edit_rate),
        max("rejection-rate", m.rejection_rate, s.max_rejection_rate),
        max("error-rate", m.error_rate, s.max_error_rate),
        max("escalation-rate", m.escalation_rate, s.max_escalation_rate),
        max("reversal-rate", m.reversal_rate, s.max_reversal_rate),
    ];
    Some(Promotion {
        from: stage,
        to,
        ready: checks.iter().all(|c| c.ok),
        checks,
    })
}

/// A worker's place on the trust curve.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TrustReport {
    /// The worker.
    pub worker: String,
    /// Its stage (`None` without a `[review]` section: nothing is held by stage).
    pub stage: Option<Stage>,
    /// Who moved it there and when, if a person did.
    pub moved: Option<crate::store::TrustState>,
    /// The metrics over the window.
    pub metrics: TrustMetrics,
    /// The next promotion and whether it is ready.
    pub promotion: Option<Promotion>,
}

/// A worker's stage: where a person last moved it, else where its `[review]` section
/// starts it (`starting`); `None` without review settings.
pub fn current_stage(
    store: &Store,
    worker: &str,
    starting: Option<Stage>,
) -> Result<Option<Stage>, StoreError> {
    Ok(store.trust(worker)?.map(|t| t.stage).or(starting))
}

/// A worker's trust report at `now` (`starting`: the stage its `[review]` section starts it at).
pub fn report(
    store: &Store,
    worker: &str,
    starting: Option<Stage>,
    settings: &TrustSettings,
    now: i64,
) -> Result<TrustReport, StoreError> {
    let moved = store.trust(worker)?;
    let stage = current_stage(store, worker, starting)?;
    // The window is whole days (UTC) and today so far, so a report reads the same all day.
    let day = crate::clock::DAY_MS;
    let since = (now.div_euclid(day) - i64::from(settings.window_days)) * day;
    let metrics = metrics(store, worker, since)?;
    let promotion = stage.and_then(|s| promotion(s, &metrics, settings));
    Ok(TrustReport {
        worker: worker.to_string(),
        stage,
        moved,
        metrics,
        promotion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promotion_needs_every_threshold() {
        let mut m = TrustMetrics {
            executions: 30,
            approved: 19,
            edited: 1,
            ..TrustMetrics::default()
        };
        m.approval_rate = rate(m.approved, m.decisions());
        m.edit_rate = rate(m.edited, m.decisions());
        let s = TrustSettings::default();
        let p = promotion(Stage::Assistive, &m, &s).unwrap();
        assert_eq!(p.to, Stage::Supervised);
        assert!(p.ready, "{p:?}");
        m.errors = 3;
        m.error_rate = rate(m.errors, m.executions);
        let p = promotion(Stage::Assistive, &m, &s).unwrap();
        assert!(!p.ready);
        assert_eq!(
            p.checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.metric)
                .collect::<Vec<_>>(),
            ["error-rate"]
        );
        assert!(promotion(Stage::HighTrust, &m, &s).is_none());
    }
}
