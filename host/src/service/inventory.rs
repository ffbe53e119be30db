//! The worker inventory: every installed worker as a security team and its business owners
//! see it — identity, owners, triggers, the systems it connects to, the data it may read
//! and write, what it may do, its escalation path, its deployment status, how well it has
//! been doing week by week, and when its configuration last changed.

use serde::{Deserialize, Serialize};

use crate::clock::DAY_MS;
use crate::config::WorkerConfig;
use crate::failure::Escalation;
use crate::store::{ExecutionEntry, WorkerControl};

/// The weeks of accuracy history kept in an entry.
pub const HISTORY_WEEKS: i64 = 4;

/// One week of a worker's executions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WeekStats {
    /// The week's start (ms since the Unix epoch).
    pub from: i64,
    /// Executions that ran a sandbox (attempts included).
    pub executions: u64,
    /// Those that succeeded (success, partial or skipped by the worker).
    pub succeeded: u64,
    /// Those that failed.
    pub failed: u64,
}

/// What the inventory says about one worker.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InventoryEntry {
    /// The installation's name.
    pub name: String,
    /// The plugin id and version.
    pub plugin: String,
    /// The plugin version.
    pub version: String,
    /// The business domain.
    pub domain: String,
    /// What it is for.
    pub purpose: String,
    /// Accountable for what it does.
    pub business_owner: String,
    /// Answers for how it does it.
    pub technical_owner: String,
    /// Who is alerted about it.
    pub alerted: Vec<String>,
    /// The principal it acts as.
    pub principal: String,
    /// Its triggers.
    pub triggers: Vec<String>,
    /// Systems it reaches: the record store's objects, HTTP origins, notification channels.
    pub connected_systems: Vec<String>,
    /// Per object: the fields it may read and write.
    pub data_scope: Vec<String>,
    /// The side effects its grant permits.
    pub permitted_actions: Vec<String>,
    /// Where its failures go.
    pub escalation_path: String,
    /// Retries and circuit breaker, in words.
    pub review_checkpoints: Vec<String>,
    /// `live`, `paused` (with who and why) or `disabled`.
    pub status: String,
    /// Why it is paused, if it is.
    pub paused_reason: Option<String>,
    /// The last weeks, oldest first.
    pub accuracy_history: Vec<WeekStats>,
    /// When its worker file, manifest or grant last changed (ms since the Unix epoch).
    pub last_modified: Option<i64>,
}

/// Which entries to list. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InventoryFilter {
    /// The domain (`revenue`, `finance`, ...).
    #[serde(default)]
    pub domain: Option<String>,
    /// A business or technical owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// `live`, `paused` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
}

impl InventoryFilter {
    /// Whether `e` matches.
    pub fn matches(&self, e: &InventoryEntry) -> bool {
        self.domain.as_ref().is_none_or(|d| *d == e.domain)
            && self
                .owner
                .as_ref()
                .is_none_or(|o| *o == e.business_owner || *o == e.technical_owner)
            && self.status.as_ref().is_none_or(|s| *s == e.status)
    }
}

fn modified(path: &std::path::Path) -> Option<i64> {
    let time = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64)
}

/// The start (Monday, 00:00 UTC) of the week holding `at`.
pub fn week_start(at: i64) -> i64 {
    let day = at.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: three days after a Monday.
    (day - (day + 3).rem_euclid(7)) * DAY_MS
}

/// Where the history of the inventory starts: the Monday [`HISTORY_WEEKS`] - 1 weeks
/// before this week's.
pub fn history_start(now: i64) -> i64 {
    week_start(now) - (HISTORY_WEEKS - 1) * 7 * DAY_MS
}

/// Describes one worker; `recent` holds its executions of the last [`HISTORY_WEEKS`] weeks.
pub fn describe(
    config: &WorkerConfig,
    control: Option<&WorkerControl>,
    deployment: Option<&crate::store::Deployment>,
    stage: Option<crate::store::Stage>,
    recent: &[&ExecutionEntry],
    now: i64,
) -> InventoryEntry {
    let m = &config.manifest;
    let caps = &config.grant.capabilities;
    let mut connected = Vec::new();
    let mut data_scope = Vec::new();
    let mut actions = Vec::new();
    if let Some(records) = &caps.records {
        connected.push("records (system of record)".to_string());
        for (object, scope) in &records.objects {
            data_scope.push(format!(
                "{object}: read [{}], write [{}]",
                scope.read.join(", "),
                scope.write.join(", ")
            ));
            if !scope.write.is_empty() {
                actions.push(format!("records.update {object}"));
            }
            if scope.create {
                actions.push(format!("records.create {object}"));
            }
            if scope.delete {
                actions.push(format!("records.delete {object}"));
            }
        }
    }
    if let Some(notify) = &caps.notify {
        for channel in &notify.channels {
            connected.push(format!("notify: {}", channel.as_str()));
            actions.push(format!(
                "notify.send {} to {}",
                channel.as_str(),
                notify.recipients.join(", ")
            ));
        }
    }
    if let Some(http) = &caps.http {
        for origin in &http.allow {
            connected.push(format!("http: {}", origin.url));
            actions.push(format!("http.send {}", origin.url));
        }
    }
    if let Some(signals) = &caps.signals {
        actions.push(format!("signals.emit {}", signals.topics.join(", ")));
    }
    if let Some(memory) = &caps.memory {
        actions.push(format!("memory ({} bytes)", memory.quota_bytes));
    }
    let escalation_path = match &config.escalation {
        Escalation::Pause => format!("pause and alert {}", config.owners.join(", ")),
        Escalation::CreateTask { assignee } => format!("task for {assignee}"),
        Escalation::LogAndContinue => "log and continue".to_string(),
        Escalation::Fallback { worker, notify } => {
            let mut parts = Vec::new();
            if let Some(w) = worker {
                parts.push(format!("fallback worker {w}"));
            }
            if let Some(n) = notify {
                parts.push(format!("{} to {}", n.channel, n.to.join(", ")));
            }
            format!("fallback: {}", parts.join("; "))
        }
    };
    let retry = &config.retry;
    let mut review_checkpoints = vec![format!(
        "retries: {} on {}",
        retry.max_retries,
        retry
            .retry_on
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    if let Some(stage) = stage {
        review_checkpoints.push(format!("trust stage: {}", stage.as_str()));
    }
    for rule in config.review.iter().flat_map(|r| &r.rules) {
        review_checkpoints.push(format!(
            "held for review: {}",
            rule.reason
                .clone()
                .unwrap_or_else(|| serde_json::to_string(rule).unwrap_or_default())
        ));
    }
    let b = &config.breaker;
    if b.enabled {
        review_checkpoints.push(format!(
            "circuit breaker: pause above {:.0}% failures over {} (at least {} executions)",
            b.error_rate * 100.0,
            crate::clock::format_duration(b.window_ms),
            b.min_executions
        ));
    }
    let paused = control.filter(|c| c.paused);
    let staged =
        deployment.map_or(config.deployment, |d| d.status) == crate::store::DeployStatus::Staging;
    let status = if !config.enabled {
        "disabled"
    } else if paused.is_some() {
        "paused"
    } else if staged {
        "staging"
    } else {
        "live"
    };
    let week = 7 * DAY_MS;
    let this_week = week_start(now);
    let mut history: Vec<WeekStats> = (0..HISTORY_WEEKS)
        .map(|i| WeekStats {
            from: this_week - (HISTORY_WEEKS - 1 - i) * week,
            ..WeekStats::default()
        })
        .collect();
    for e in recent {
        if e.report.is_none() && e.failure.is_none() {
            continue;
        }
        // Calendar weeks: the last one is this week, so far.
        let back = (this_week - week_start(e.started_at)).div_euclid(week);
        let index = HISTORY_WEEKS - 1 - back;
        if let Some(w) = usize::try_from(index).ok().and_then(|i| history.get_mut(i)) {
            w.executions += 1;
            if e.failure.is_some() {
                w.failed += 1;
            } else {
                w.succeeded += 1;
            }
        }
    }
    let last_modified = [
        modified(&config.path),
        modified(&config.component),
        modified(&config.manifest_path),
        modified(&config.grant_path),
    ]
    .into_iter()
    .flatten()
    .max();
    InventoryEntry {
        name: config.name.clone(),
        plugin: m.plugin.id.clone(),
        version: m.plugin.version.clone(),
        domain: serde_json::to_value(m.plugin.domain)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        purpose: m.plugin.description.clone(),
        business_owner: m.owners.business.clone(),
        technical_owner: m.owners.technical.clone(),
        alerted: config.owners.clone(),
        principal: config.grant.grant.principal.clone(),
        triggers: config.triggers.iter().map(|t| t.label.clone()).collect(),
        connected_systems: connected,
        data_scope,
        permitted_actions: actions,
        escalation_path,
        review_checkpoints,
        status: status.to_string(),
        paused_reason: paused.map(|c| format!("{} ({})", c.reason, c.by)),
        accuracy_history: history,
        last_modified,
    }
}
