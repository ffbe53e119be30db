//! What the dashboard and the value page show: activity (how many executions, how they
//! ended, how long they took, what they changed) and value (work done without a person,
//! people's decisions on what was held, minutes saved, cost), per hour or day, per worker
//! and per domain. Both read the hourly rows the store keeps as the log grows, never the
//! log itself; the backlog of held actions reads the actions still held.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Service;
use super::inventory::week_start;
use crate::clock::{DAY_MS, HOUR_MS};
use crate::config::WorkerConfig;
use crate::error::Error;
use crate::store::{ApprovalFilter, ApprovalStatus, GOVERNANCE, StatsRow, Tally};

/// The longest range one question may cover.
pub const MAX_RANGE_DAYS: i64 = 400;
/// The longest range shown hour by hour.
pub const MAX_HOURLY_DAYS: i64 = 31;

/// Which executions to count: a range of whole hours and the filters of the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsFilter {
    /// Executions started at or after (ms since the Unix epoch, a whole hour); seven days
    /// before `to` when absent.
    #[serde(default)]
    pub from: Option<i64>,
    /// Executions started before (a whole hour); the end of the current hour when absent.
    #[serde(default)]
    pub to: Option<i64>,
    /// Only workers of this domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Only this worker.
    #[serde(default)]
    pub worker: Option<String>,
    /// Only workers of this kind: `ai` (granted inference) or `rules`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only executions that ended with this status (`success`, `failed`, ...).
    #[serde(default)]
    pub status: Option<String>,
    /// `hour` or `day`: the steps of the series (by default hours up to two days, else
    /// days).
    #[serde(default)]
    pub bucket: Option<String>,
}

/// The kind of a worker: `ai` when its grant includes inference, else `rules`.
pub fn worker_kind(config: &WorkerConfig) -> &'static str {
    if config.grant.capabilities.inference.is_some() {
        "ai"
    } else {
        "rules"
    }
}

/// A range resolved: whole hours, and the step of its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    from: i64,
    to: i64,
    step: i64,
}

impl StatsFilter {
    fn range(&self, now: i64) -> Result<Range, Error> {
        let bad = |m: String| Error::InvalidRequest(m);
        let to = match self.to {
            Some(t) => t,
            None => now
                .div_euclid(HOUR_MS)
                .checked_add(1)
                .and_then(|h| h.checked_mul(HOUR_MS))
                .ok_or_else(|| bad("the clock is out of range".into()))?,
        };
        let from = match self.from {
            Some(f) => f,
            None => to.saturating_sub(7 * DAY_MS),
        };
        for (name, at) in [("from", from), ("to", to)] {
            if at < 0 || at % HOUR_MS != 0 {
                return Err(bad(format!(
                    "`{name}` must be a whole hour (ms since the Unix epoch, a multiple of {HOUR_MS}), not {at}"
                )));
            }
        }
        if from >= to {
            return Err(bad(format!("`from` ({from}) must be before `to` ({to})")));
        }
        let days = (to - from) / DAY_MS;
        if days > MAX_RANGE_DAYS {
            return Err(bad(format!(
                "the range covers {days} days; at most {MAX_RANGE_DAYS}"
            )));
        }
        let step = match self.bucket.as_deref() {
            Some("hour") if days > MAX_HOURLY_DAYS => {
                return Err(bad(format!(
                    "hourly steps cover at most {MAX_HOURLY_DAYS} days; ask for `bucket=day`"
                )));
            }
            Some("hour") => HOUR_MS,
            Some("day") => DAY_MS,
            Some(other) => return Err(bad(format!("`bucket` is `hour` or `day`, not `{other}`"))),
            None if to - from <= 2 * DAY_MS => HOUR_MS,
            None => DAY_MS,
        };
        if let Some(kind) = &self.kind
            && kind != "ai"
            && kind != "rules"
        {
            return Err(bad(format!("`kind` is `ai` or `rules`, not `{kind}`")));
        }
        Ok(Range { from, to, step })
    }
}

/// How a status counts on the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The worker did its job (its actions may wait for a person).
    Succeeded,
    /// Nothing needed doing (conditions not met, or the worker said so).
    Skipped,
    /// Stopped by a person (the kill switch or a pause); its trigger is held.
    Interrupted,
    /// Anything else: an error, a trap, a limit.
    Failed,
}

fn ended(status: &str) -> Ended {
    match status {
        "success" | "partial" | "awaiting-approval" => Ended::Succeeded,
        "skipped" => Ended::Skipped,
        "interrupted" => Ended::Interrupted,
        _ => Ended::Failed,
    }
}

/// Activity of some executions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Activity {
    /// Executions (each attempt counts).
    pub executions: u64,
    /// Those that succeeded (`success`, `partial`, `awaiting-approval`).
    pub succeeded: u64,
    /// Those skipped (conditions not met, or nothing to do).
    pub skipped: u64,
    /// Those a person stopped (`interrupted`).
    pub interrupted: u64,
    /// Those that failed (any other status).
    pub failed: u64,
    /// Share that did not fail (0 to 1); `null` without executions.
    pub success_rate: Option<f64>,
    /// Share that failed.
    pub error_rate: Option<f64>,
    /// Mean duration (finished − started), ms.
    pub average_duration_ms: Option<f64>,
    /// 95th percentile duration (nearest rank), ms.
    pub p95_duration_ms: Option<u64>,
    /// Side effects on records performed.
    pub records_affected: u64,
    /// Side effects held for a person's approval.
    pub actions_held: u64,
}

/// What is added up before rates are worked out.
#[derive(Debug, Clone, Default)]
struct Sum {
    tally: Tally,
    succeeded: u64,
    skipped: u64,
    interrupted: u64,
    failed: u64,
    /// Executions not failed that held nothing.
    unattended: u64,
}

impl Sum {
    fn add(&mut self, row: &StatsRow) {
        self.tally.add(&row.tally);
        if row.status == GOVERNANCE {
            return;
        }
        let n = row.tally.entries;
        let ended = ended(&row.status);
        match ended {
            Ended::Succeeded => self.succeeded += n,
            Ended::Skipped => self.skipped += n,
            Ended::Interrupted => self.interrupted += n,
            Ended::Failed => self.failed += n,
        }
        if matches!(ended, Ended::Succeeded | Ended::Skipped) {
            self.unattended += n.saturating_sub(row.tally.with_held);
        }
    }

    fn executions(&self) -> u64 {
        self.succeeded + self.skipped + self.interrupted + self.failed
    }

    fn activity(&self) -> Activity {
        let executions = self.executions();
        let share = |n: u64| ratio(n, executions);
        let (mut total_ms, mut count) = (0u128, 0u64);
        for (d, n) in &self.tally.durations {
            total_ms += u128::from(*d) * u128::from(*n);
            count += n;
        }
        Activity {
            executions,
            succeeded: self.succeeded,
            skipped: self.skipped,
            interrupted: self.interrupted,
            failed: self.failed,
            success_rate: share(executions - self.failed),
            error_rate: share(self.failed),
            average_duration_ms: (count > 0).then(|| total_ms as f64 / count as f64),
            p95_duration_ms: percentile(&self.tally.durations, count, 95),
            records_affected: self.tally.records_affected,
            actions_held: self.tally.held,
        }
    }

    fn wall_ms(&self) -> u64 {
        self.tally
            .durations
            .iter()
            .fold(0u64, |t, (d, n)| t.saturating_add(d.saturating_mul(*n)))
    }
}

fn ratio(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// The nearest-rank percentile of `count` durations.
fn percentile(durations: &BTreeMap<u64, u64>, count: u64, p: u64) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let rank = (count * p).div_ceil(100).max(1);
    let mut seen = 0;
    for (d, n) in durations {
        seen += n;
        if seen >= rank {
            return Some(*d);
        }
    }
    durations.keys().last().copied()
}

/// One step of a series.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Step {
    /// The step's start (ms since the Unix epoch).
    pub from: i64,
    /// Its activity.
    pub activity: Activity,
}

/// One worker's activity.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WorkerActivity {
    /// The worker.
    pub worker: String,
    /// Its domain (empty when it is no longer installed).
    pub domain: String,
    /// `ai` or `rules` (empty when it is no longer installed).
    pub kind: String,
    /// Its activity.
    pub activity: Activity,
}

/// The dashboard's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    /// The range's start.
    pub from: i64,
    /// Its end (exclusive).
    pub to: i64,
    /// `hour` or `day`.
    pub bucket: String,
    /// Everything in the range.
    pub totals: Activity,
    /// Step by step, every step of the range.
    pub series: Vec<Step>,
    /// Per worker, busiest first.
    pub workers: Vec<WorkerActivity>,
}

/// What one group of executions was worth and cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Worth {
    /// Executions.
    pub executions: u64,
    /// Those that succeeded or were skipped without holding anything for a person.
    pub without_person: u64,
    /// Their share.
    pub without_person_rate: Option<f64>,
    /// People's decisions on held actions.
    pub decisions: u64,
    /// Shares of the decisions that approved, edited and rejected.
    pub approval_rate: Option<f64>,
    /// See `approval_rate`.
    pub edit_rate: Option<f64>,
    /// See `approval_rate`.
    pub rejection_rate: Option<f64>,
    /// Executions whose final failure was escalated, and their share.
    pub escalations: u64,
    /// See `escalations`.
    pub escalation_rate: Option<f64>,
    /// Performed side effects a person reported reversed, and their share of those
    /// performed.
    pub reversals: u64,
    /// See `reversals`.
    pub reversal_rate: Option<f64>,
    /// Side effects performed.
    pub effects: u64,
    /// Minutes of people's work the performed side effects saved.
    pub minutes_saved: f64,
    /// Fuel consumed.
    pub fuel: u64,
    /// Execution (wall) time, ms.
    pub wall_ms: u64,
    /// What the fuel and time cost at the configured prices.
    pub cost: f64,
    /// Cost per execution.
    pub cost_per_task: Option<f64>,
}

/// Minutes saved in one domain in one week.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WeekSaved {
    /// The week's Monday (ms since the Unix epoch).
    pub week: i64,
    /// The domain.
    pub domain: String,
    /// Minutes saved.
    pub minutes_saved: f64,
}

/// Actions waiting for a person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Backlog {
    /// How many are held now.
    pub held: u64,
    /// The age of the oldest, ms.
    pub oldest_age_ms: Option<i64>,
    /// Per worker: how many, and the oldest's age.
    pub workers: Vec<WorkerBacklog>,
}

/// One worker's held actions.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WorkerBacklog {
    /// The worker.
    pub worker: String,
    /// How many are held.
    pub held: u64,
    /// The oldest's age, ms.
    pub oldest_age_ms: i64,
}

/// One domain's or worker's worth.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupWorth {
    /// The domain or worker.
    pub name: String,
    /// Its domain.
    pub domain: String,
    /// Its worth.
    pub worth: Worth,
}

/// The value page's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ValueReport {
    /// The range's start.
    pub from: i64,
    /// Its end (exclusive).
    pub to: i64,
    /// The currency of the costs.
    pub currency: String,
    /// Everything in the range.
    pub totals: Worth,
    /// Per domain.
    pub domains: Vec<GroupWorth>,
    /// Per worker.
    pub workers: Vec<GroupWorth>,
    /// Minutes saved per domain and week.
    pub weeks: Vec<WeekSaved>,
    /// Held actions now.
    pub backlog: Backlog,
}

/// What is known of a worker that appears in the statistics.
struct Known {
    domain: String,
    kind: &'static str,
    minutes: BTreeMap<String, f64>,
}

impl Service {
    /// The installed workers by name: domain, kind and minutes saved per kind of effect.
    fn known_workers(&self) -> BTreeMap<String, Known> {
        let defaults = &self.config().value.minutes_saved;
        self.workers()
            .iter()
            .map(|(name, w)| {
                let mut minutes = defaults.clone();
                minutes.extend(w.config.minutes_saved.clone());
                let known = Known {
                    domain: w.config.manifest.plugin.domain.as_str().to_string(),
                    kind: worker_kind(&w.config),
                    minutes,
                };
                (name.clone(), known)
            })
            .collect()
    }

    /// The workers a domain, kind and worker filter allow; `None` when they allow any.
    pub fn workers_matching(
        &self,
        domain: Option<&str>,
        kind: Option<&str>,
        worker: Option<&str>,
    ) -> Option<BTreeSet<String>> {
        if domain.is_none() && kind.is_none() {
            return worker.map(|w| BTreeSet::from([w.to_string()]));
        }
        Some(
            self.known_workers()
                .into_iter()
                .filter(|(name, k)| {
                    domain.is_none_or(|d| k.domain == d)
                        && kind.is_none_or(|t| k.kind == t)
                        && worker.is_none_or(|w| w == name)
                })
                .map(|(name, _)| name)
                .collect(),
        )
    }

    /// The rows the filter selects (status aside, which only activity applies).
    fn rows(&self, filter: &StatsFilter, range: Range) -> Result<Vec<StatsRow>, Error> {
        let allowed = self.workers_matching(
            filter.domain.as_deref(),
            filter.kind.as_deref(),
            filter.worker.as_deref(),
        );
        let mut rows = self.store().execution_stats(range.from, range.to - 1)?;
        rows.retain(|r| allowed.as_ref().is_none_or(|a| a.contains(&r.worker)));
        Ok(rows)
    }

    /// The dashboard's numbers for `filter`.
    pub fn dashboard(&self, filter: &StatsFilter) -> Result<Dashboard, Error> {
        let range = filter.range(self.shared.clock.now_ms())?;
        let mut rows = self.rows(filter, range)?;
        rows.retain(|r| {
            r.status != GOVERNANCE && filter.status.as_ref().is_none_or(|s| &r.status == s)
        });
        let known = self.known_workers();
        let mut totals = Sum::default();
        let mut steps: BTreeMap<i64, Sum> = BTreeMap::new();
        let mut workers: BTreeMap<&str, Sum> = BTreeMap::new();
        for row in &rows {
            totals.add(row);
            let step = range.from + (row.hour - range.from).div_euclid(range.step) * range.step;
            steps.entry(step).or_default().add(row);
            workers.entry(&row.worker).or_default().add(row);
        }
        let series = std::iter::successors(Some(range.from), |at| at.checked_add(range.step))
            .take_while(|at| *at < range.to)
            .map(|at| Step {
                from: at,
                activity: steps.get(&at).map(Sum::activity).unwrap_or_default(),
            })
            .collect();
        let mut workers: Vec<WorkerActivity> = workers
            .into_iter()
            .map(|(name, sum)| WorkerActivity {
                worker: name.to_string(),
                domain: known
                    .get(name)
                    .map(|k| k.domain.clone())
                    .unwrap_or_default(),
                kind: known
                    .get(name)
                    .map(|k| k.kind.to_string())
                    .unwrap_or_default(),
                activity: sum.activity(),
            })
            .collect();
        workers.sort_by(|a, b| {
            b.activity
                .executions
                .cmp(&a.activity.executions)
                .then_with(|| a.worker.cmp(&b.worker))
        });
        Ok(Dashboard {
            from: range.from,
            to: range.to,
            bucket: if range.step == HOUR_MS { "hour" } else { "day" }.into(),
            totals: totals.activity(),
            series,
            workers,
        })
    }

    /// The value page's numbers for `filter` (its status and bucket do not apply).
    pub fn value_report(&self, filter: &StatsFilter) -> Result<ValueReport, Error> {
        let now = self.shared.clock.now_ms();
        let range = filter.range(now)?;
        let rows = self.rows(filter, range)?;
        let known = self.known_workers();
        let value = &self.config().value;
        let minutes = |worker: &str, kind: &str| {
            known
                .get(worker)
                .map(|k| &k.minutes)
                .unwrap_or(&value.minutes_saved)
                .get(kind)
                .copied()
                .unwrap_or(0.0)
        };
        let domain_of = |worker: &str| known.get(worker).map(|k| k.domain.clone());
        let mut totals = Sum::default();
        let mut saved = 0.0;
        let mut by_worker: BTreeMap<&str, (Sum, f64)> = BTreeMap::new();
        let mut by_domain: BTreeMap<String, (Sum, f64)> = BTreeMap::new();
        let mut weeks: BTreeMap<(i64, String), f64> = BTreeMap::new();
        for row in &rows {
            let row_saved: f64 = row
                .tally
                .effects
                .iter()
                .map(|(kind, n)| minutes(&row.worker, kind) * *n as f64)
                .sum();
            totals.add(row);
            saved += row_saved;
            let w = by_worker.entry(&row.worker).or_default();
            w.0.add(row);
            w.1 += row_saved;
            let domain = domain_of(&row.worker).unwrap_or_default();
            let d = by_domain.entry(domain.clone()).or_default();
            d.0.add(row);
            d.1 += row_saved;
            if row_saved > 0.0 {
                *weeks.entry((week_start(row.hour), domain)).or_default() += row_saved;
            }
        }
        let worth = |sum: &Sum, saved: f64| worth(sum, saved, value.fuel_price, value.hour_price);
        let backlog = self.backlog(filter, now)?;
        Ok(ValueReport {
            from: range.from,
            to: range.to,
            currency: value.currency.clone(),
            totals: worth(&totals, saved),
            domains: by_domain
                .into_iter()
                .filter(|(d, _)| !d.is_empty())
                .map(|(d, (sum, saved))| GroupWorth {
                    name: d.clone(),
                    domain: d,
                    worth: worth(&sum, saved),
                })
                .collect(),
            workers: by_worker
                .into_iter()
                .filter(|(w, _)| !w.is_empty())
                .map(|(w, (sum, saved))| GroupWorth {
                    name: w.to_string(),
                    domain: domain_of(w).unwrap_or_default(),
                    worth: worth(&sum, saved),
                })
                .collect(),
            weeks: weeks
                .into_iter()
                .map(|((week, domain), minutes_saved)| WeekSaved {
                    week,
                    domain,
                    minutes_saved,
                })
                .collect(),
            backlog,
        })
    }

    /// The actions held now, for the workers the filter allows.
    fn backlog(&self, filter: &StatsFilter, now: i64) -> Result<Backlog, Error> {
        let allowed = self.workers_matching(
            filter.domain.as_deref(),
            filter.kind.as_deref(),
            filter.worker.as_deref(),
        );
        let held = self.store().approvals(&ApprovalFilter {
            status: Some(ApprovalStatus::Pending),
            ..ApprovalFilter::default()
        })?;
        let mut workers: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for a in held {
            if allowed.as_ref().is_some_and(|w| !w.contains(&a.worker)) {
                continue;
            }
            let (n, oldest) = workers.entry(a.worker).or_insert((0, a.created_at));
            *n += 1;
            *oldest = (*oldest).min(a.created_at);
        }
        let age = |at: i64| now.saturating_sub(at).max(0);
        Ok(Backlog {
            held: workers.values().map(|(n, _)| n).sum(),
            oldest_age_ms: workers.values().map(|(_, at)| age(*at)).max(),
            workers: workers
                .into_iter()
                .map(|(worker, (held, oldest))| WorkerBacklog {
                    worker,
                    held,
                    oldest_age_ms: age(oldest),
                })
                .collect(),
        })
    }
}

fn worth(sum: &Sum, saved: f64, fuel_price: f64, hour_price: f64) -> Worth {
    let executions = sum.executions();
    let decisions = &sum.tally.decisions;
    let decided = |a: &str| decisions.get(a).copied().unwrap_or(0);
    let (approved, edited, rejected) = (
        decided("approval.approve"),
        decided("approval.edit"),
        decided("approval.reject"),
    );
    let all = approved + edited + rejected;
    let reversals = decided("action.reverse");
    let effects: u64 = sum.tally.effects.values().sum();
    let wall_ms = sum.wall_ms();
    let cost = sum.tally.fuel as f64 / 1e6 * fuel_price + wall_ms as f64 / 3.6e6 * hour_price;
    Worth {
        executions,
        without_person: sum.unattended,
        without_person_rate: ratio(sum.unattended, executions),
        decisions: all,
        approval_rate: ratio(approved, all),
        edit_rate: ratio(edited, all),
        rejection_rate: ratio(rejected, all),
        escalations: sum.tally.escalated,
        escalation_rate: ratio(sum.tally.escalated, executions),
        reversals,
        reversal_rate: ratio(reversals, effects),
        effects,
        minutes_saved: saved,
        fuel: sum.tally.fuel,
        wall_ms,
        cost,
        cost_per_task: (executions > 0).then(|| cost / executions as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_rank_percentile_counts_repeated_durations() {
        let durations = BTreeMap::from([(1, 90), (5, 9), (40, 1)]);
        assert_eq!(percentile(&durations, 100, 95), Some(5));
        assert_eq!(percentile(&durations, 100, 100), Some(40));
        assert_eq!(percentile(&BTreeMap::new(), 0, 95), None);
        assert_eq!(percentile(&BTreeMap::from([(7, 1)]), 1, 95), Some(7));
    }

    #[test]
    fn a_range_is_whole_hours_in_order_and_bounded() {
        let f = |from, to, bucket: Option<&str>| StatsFilter {
            from: Some(from),
            to: Some(to),
            bucket: bucket.map(str::to_string),
            ..StatsFilter::default()
        };
        assert!(f(HOUR_MS, 2 * HOUR_MS, None).range(0).is_ok());
        assert!(f(HOUR_MS + 1, 2 * HOUR_MS, None).range(0).is_err());
        assert!(f(2 * HOUR_MS, HOUR_MS, None).range(0).is_err());
        assert!(f(-HOUR_MS, HOUR_MS, None).range(0).is_err());
        assert!(f(0, 401 * DAY_MS, None).range(0).is_err());
        assert!(f(0, 40 * DAY_MS, Some("hour")).range(0).is_err());
        assert!(f(0, 40 * DAY_MS, Some("week")).range(0).is_err());
        assert_eq!(
            f(0, 3 * DAY_MS, None).range(0).ok().map(|r| r.step),
            Some(DAY_MS)
        );
        assert_eq!(
            f(0, DAY_MS, None).range(0).ok().map(|r| r.step),
            Some(HOUR_MS)
        );
        let unbounded = StatsFilter::default().range(i64::MAX);
        assert!(unbounded.is_err());
    }
}
