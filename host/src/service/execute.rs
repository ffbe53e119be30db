//! The executors: conditions on the current record, then the worker in a fresh sandbox,
//! then the execution settled — recorded, and retried, escalated or removed from the queue
//! — in one transaction.

use super::*;
use crate::failure::{Escalation, FailureClass, classify, retry_after_ms};
use crate::governance::review::Checkpoints;
use crate::sandbox::executor::Run;
use crate::sandbox::state::ReviewContext;
use crate::store::{ApprovalStatus, Decision, EscalationRecord, Finish, Verdict, WorkerControl};
use crate::trigger::condition::{Context, Subject};
use crate::value::Record;

pub(super) fn executor(shared: &Shared, work: &Mutex<Receiver<QueueItem>>, done: &Sender<Done>) {
    loop {
        let next = match work.lock() {
            Ok(rx) => rx.recv_timeout(Duration::from_millis(50)),
            Err(_) => return,
        };
        let item = match next {
            Ok(item) => item,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let lane = item.lane();
        let seq = item.seq;
        if shared
            .workers()
            .get(&item.worker)
            .is_some_and(|w| !shared.is_live(&w.config))
        {
            // In staging: its triggers do not run (dry runs and shadow runs show what it
            // would do); the item is settled without an execution.
            tracing::debug!(
                "worker `{}` is in staging; trigger {seq} dropped",
                item.worker
            );
            if let Err(e) = shared.store.finish(Finish {
                queue_seq: seq,
                ..Finish::default()
            }) {
                tracing::error!("settling queue item {seq}: {e}");
            }
            let _ = done.send(Done {
                seq,
                lane,
                worker: item.worker.clone(),
                counted: false,
                failed: false,
                requeued: None,
            });
            continue;
        }
        if let Ok(mut f) = shared.in_flight.lock() {
            f.insert(seq, item.worker.clone());
        }
        let span = tracing::info_span!(
            "roster.execution",
            worker = %item.worker,
            queue_seq = seq,
            attempt = item.attempt + 1,
            version = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        let _execution = span.enter();
        let (mut entry, class) = run_item(shared, &item);
        entry.trace_id = crate::telemetry::trace_id(&span);
        if let Some(version) = entry.report.as_ref().and_then(|r| r["version"].as_str()) {
            span.record("version", version);
        }
        span.record("status", entry.status.as_str());
        if let Ok(mut f) = shared.in_flight.lock() {
            f.remove(&seq);
        }
        let interrupted = class == Some(FailureClass::Interrupted);
        let counted = (entry.report.is_some() || class.is_some()) && !interrupted;
        let failed = class.is_some();
        let finish = settle(shared, &item, entry, class);
        let requeued = finish.requeue.clone();
        let pause = finish.pause.clone();
        match shared.store.finish(finish) {
            Ok(_) => {
                if let Some((worker, control)) = pause {
                    tracing::warn!("worker `{worker}` paused: {}", control.reason);
                    if let Some(w) = shared.workers().get(&worker).cloned() {
                        w.halt.store(true, Ordering::SeqCst);
                    }
                    if let Ok(mut controls) = shared.controls.lock() {
                        controls.insert(worker, control);
                    }
                }
            }
            // The item stays queued as it was and runs again after a restart.
            Err(e) => tracing::error!("recording execution of queue item {seq}: {e}"),
        }
        // The dispatcher counts the execution as finished once it has taken in what
        // follows from it (lanes, the circuit breaker), so an idle service has done both.
        let _ = done.send(Done {
            seq,
            lane,
            worker: item.worker.clone(),
            counted,
            failed,
            requeued,
        });
    }
}

/// Checks conditions and runs one item; always returns an entry for the execution log,
/// with the failure's class when it failed.
fn run_item(shared: &Shared, item: &QueueItem) -> (ExecutionEntry, Option<FailureClass>) {
    let started_at = shared.clock.now_ms();
    let record_ref = match (&item.event.object, &item.event.record_id) {
        (Some(o), Some(id)) => Some(format!("{o}/{id}")),
        _ => None,
    };
    let mut entry = ExecutionEntry {
        seq: 0,
        worker: item.worker.clone(),
        trigger: String::new(),
        queue_seq: item.seq,
        event_id: item.event.id.clone().unwrap_or_default(),
        record: record_ref,
        accepted_at: item.accepted_at,
        started_at,
        finished_at: started_at,
        status: "skipped".into(),
        conditions: Vec::new(),
        detail: None,
        report: None,
        attempt: item.attempt + 1,
        failure: None,
        retry_at: None,
        escalation: None,
        cause: item.cause.clone(),
        request_id: None,
        trace_id: None,
        prev_hash: String::new(),
    };
    let Some(w) = shared.workers().get(&item.worker).cloned() else {
        entry.status = "failed".into();
        entry.detail = Some(format!("worker `{}` is not installed", item.worker));
        return (entry, Some(FailureClass::Validation));
    };
    entry.trigger = match &item.fallback_for {
        Some(failed) => format!("fallback for {failed}"),
        None => w
            .config
            .triggers
            .get(item.trigger)
            .map(|t| t.label.clone())
            .unwrap_or_default(),
    };

    // Conditions, on the record as it is now; the same read becomes the worker's event.
    let record = match item.event.read_record(&shared.store) {
        Ok(r) => r,
        Err(e) => {
            entry.status = "failed".into();
            entry.detail = Some(e.to_string());
            let class = match e {
                Error::InvalidEvent(_) => FailureClass::Validation,
                _ => FailureClass::Unavailable,
            };
            return (entry, Some(class));
        }
    };
    let ctx = Context {
        directory: shared.runtime.directory(),
        now: started_at,
        schema: shared.store.schema(),
    };
    let conditions = &w.config.conditions;
    let payload = item.event.payload.as_ref();
    // Whether the conditions hold for the subject; when not, the entry says so.
    let held = |subject: Subject<'_>, entry: &mut ExecutionEntry| {
        let mut results: Vec<ConditionResult> = Vec::new();
        let pass = conditions.evaluate(subject, &ctx, &mut results);
        entry.conditions = results;
        if !pass {
            entry.detail = Some("conditions not met".into());
            entry.finished_at = shared.clock.now_ms();
        }
        pass
    };
    if let (Some(object), Some(id)) = (&item.event.object, &item.event.record_id) {
        match &record {
            Some(record) if item.fallback_for.is_none() => {
                let subject = Subject {
                    record: Some(record),
                    payload,
                };
                if !held(subject, &mut entry) {
                    return (entry, None);
                }
            }
            Some(_) => {}
            None if item.event.trigger != TriggerInput::RecordDeleted => {
                entry.detail = Some(format!("{object}/{id} no longer exists"));
                return (entry, None);
            }
            None => {}
        }
    } else if item.fallback_for.is_none() && !conditions.is_empty() {
        if conditions.needs_record() {
            // Record conditions; an event without one cannot meet them.
            entry.detail = Some("conditions need a record and the event has none".into());
            return (entry, None);
        }
        let subject = Subject {
            record: None,
            payload,
        };
        if !held(subject, &mut entry) {
            return (entry, None);
        }
    }

    // Every attempt at this item derives the same idempotency keys.
    let attempt_of = format!("{}/{}/{}", item.worker, item.trigger, entry.event_id);
    // A shadow version runs first, in dry-run, on the record as the live run finds it.
    let shadow = w.shadow.as_ref().map(|s| {
        s.execute(
            &item.event,
            Run {
                mode: Mode::DryRun,
                record: Some(record.clone()),
                attempt_of: Some(&attempt_of),
                ..Run::default()
            },
        )
    });
    let escalated = crate::governance::escalation::Escalated {
        chain: item
            .cause
            .as_ref()
            .map(|c| c.chain.clone())
            .unwrap_or_default(),
        path: item
            .cause
            .as_ref()
            .and_then(|c| c.path.as_ref())
            .and_then(|name| {
                shared
                    .config
                    .escalation_paths
                    .iter()
                    .find(|p| &p.name == name)
                    .cloned()
            }),
    };
    // A rule's steps' own conditions, on the same record and payload.
    let step_settings = {
        let subject = Subject {
            record: record.as_ref(),
            payload,
        };
        let mut results = Vec::new();
        let settings = w.config.step_settings(subject, &ctx, &mut results);
        entry.conditions.extend(results);
        settings
    };
    let review = review_context(
        shared,
        &w,
        &entry,
        record.as_ref(),
        &item.event,
        escalated.path.as_ref(),
    );
    let class = match w.loaded().execute(
        &item.event,
        Run {
            mode: Mode::Live,
            record: Some(record),
            attempt_of: Some(&attempt_of),
            review,
            escalated,
            settings: step_settings,
        },
    ) {
        Ok(report) => {
            let waiting = settle_held(shared, &report);
            if let Some(shadow) = shadow {
                record_shadow(shared, &entry, &report, shadow);
            }
            entry.status = if waiting > 0 && report.status.is_ok() {
                // It did its part; some of what it proposed waits for a person.
                AWAITING_APPROVAL.to_string()
            } else {
                report.status.as_str().to_string()
            };
            entry.detail = report.error.clone();
            crate::metrics::metrics().executed(
                &entry.worker,
                &entry.status,
                report.duration_us as f64 / 1e6,
                report.fuel_consumed,
                report
                    .actions
                    .iter()
                    .map(|a| (a.capability, a.result.name())),
            );
            let class = classify(report.status, report.error.as_deref(), &report.actions);
            let retry_after = retry_after_ms(&report.actions);
            entry.report = serde_json::to_value(&report).ok();
            if let (Some(ms), Some(report)) = (retry_after, entry.report.as_mut()) {
                report["retry_after_ms"] = serde_json::json!(ms);
            }
            class
        }
        Err(e) => {
            entry.status = "failed".into();
            entry.detail = Some(e.to_string());
            Some(FailureClass::Validation)
        }
    };
    entry.failure = class.map(|c| c.as_str().to_string());
    entry.finished_at = shared.clock.now_ms();
    (entry, class)
}

/// Records how a shadow version's run compares with the live one.
fn record_shadow(
    shared: &Shared,
    entry: &ExecutionEntry,
    live: &crate::sandbox::report::ExecutionReport,
    shadow: Result<crate::sandbox::report::ExecutionReport, Error>,
) {
    let result = shadow.map_err(|e| e.to_string()).and_then(|shadow| {
        let run = shadow::compare(
            &entry.worker,
            entry.record.clone(),
            shared.clock.now_ms(),
            live,
            &shadow,
        );
        shared.store.record_shadow(run).map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        tracing::error!("shadow run of {}: {e}", entry.worker);
    }
}

/// The review rules of one execution, or `None` when the worker has none.
fn review_context(
    shared: &Shared,
    w: &Installed,
    entry: &ExecutionEntry,
    record: Option<&Record>,
    event: &EventInput,
    path: Option<&crate::governance::escalation::EscalationPath>,
) -> Option<ReviewContext> {
    let domain = w.config.manifest.plugin.domain.as_str();
    let stage = shared.stage(&w.config);
    let mut host_rules = shared.config.review_rules.clone();
    if let Some(p) = path.filter(|p| p.review == crate::governance::escalation::PathReview::Hold) {
        host_rules.push(crate::governance::review::Rule {
            reason: Some(format!(
                "escalation path `{}`: every action is reviewed",
                p.name
            )),
            ..crate::governance::review::Rule::default()
        });
    }
    let checkpoints = Checkpoints::new(w.config.review.as_ref(), stage, &host_rules, domain);
    if checkpoints.is_empty() {
        return None;
    }
    let m = &w.config.manifest;
    Some(ReviewContext {
        checkpoints: Arc::new(checkpoints),
        worker: w.config.name.clone(),
        domain: domain.to_string(),
        owners: w.config.accountable(),
        reviewers: match w.config.review.as_ref().map(|r| &r.reviewers) {
            Some(r) if !r.is_empty() => r.clone(),
            _ => vec![m.owners.business.clone()],
        },
        stage,
        trigger: entry.trigger.clone(),
        event_id: entry.event_id.clone(),
        record: entry.record.clone(),
        fields: record.map(|r| r.fields.clone()).unwrap_or_default(),
        payload: event.payload.clone(),
    })
}

/// The final status of an execution whose held actions wait for a person.
const AWAITING_APPROVAL: &str = "awaiting-approval";

/// Settles the actions an execution held until its outcome: released and applied when
/// the worker reported the confidence their rule asks for, otherwise left to a person.
/// Returns how many of its held actions wait for a person.
fn settle_held(shared: &Shared, report: &crate::sandbox::report::ExecutionReport) -> usize {
    let mut waiting = 0;
    let confidence = report.outcome.as_ref().and_then(|o| o.confidence);
    let succeeded = report.outcome.is_some();
    for action in &report.actions {
        let crate::sandbox::gate::ActionResult::Held { approval, .. } = &action.result else {
            continue;
        };
        let result = (|| -> Result<(), StoreError> {
            let Some(held) = shared.store.approval(approval)? else {
                return Ok(());
            };
            if held.status == ApprovalStatus::Pending {
                waiting += 1;
            }
            if held.status != ApprovalStatus::AwaitingOutcome {
                return Ok(());
            }
            let confident = succeeded
                && confidence
                    .zip(held.release_at_confidence)
                    .is_some_and(|(c, needed)| c >= needed);
            if confident {
                let decision = Decision {
                    verdict: Verdict::Release,
                    by: "policy:confidence".into(),
                    at: shared.clock.now_ms(),
                    reason: Some(format!(
                        "confidence {:.2} meets {:.2}",
                        confidence.unwrap_or_default(),
                        held.release_at_confidence.unwrap_or_default()
                    )),
                    edited: None,
                };
                shared.store.decide(approval, decision, confidence)?;
                shared.store.apply_approved(approval)?;
            } else {
                shared.store.await_person(approval, confidence)?;
                waiting += 1;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!("settling held action {approval}: {e}");
        }
    }
    waiting
}

/// A stable seed for the jitter of one item's retry.
fn seed(item: &QueueItem, retry: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (item.seq, &item.event.id, retry).hash(&mut h);
    h.finish()
}

/// Decides what follows an execution: nothing (done), a retry, or the escalation policy.
fn settle(
    shared: &Shared,
    item: &QueueItem,
    mut entry: ExecutionEntry,
    class: Option<FailureClass>,
) -> Finish {
    let mut finish = Finish {
        queue_seq: item.seq,
        ..Finish::default()
    };
    let (Some(class), Some(w)) = (class, shared.workers().get(&item.worker).cloned()) else {
        finish.entry = Some(entry);
        return finish;
    };
    let now = shared.clock.now_ms();
    let config = &w.config;
    if class == FailureClass::Interrupted {
        // Paused mid-run: the trigger is held with the worker's others, as it was.
        finish.requeue = Some(QueueItem {
            due_at: now,
            ..item.clone()
        });
        finish.entry = Some(entry);
        return finish;
    }
    if config.retry.retries(class, item.attempt) {
        let retry = item.attempt + 1;
        let retry_after = entry
            .report
            .as_ref()
            .and_then(|r| r["retry_after_ms"].as_i64());
        let due = now + config.retry.delay_ms(retry, seed(item, retry), retry_after);
        entry.retry_at = Some(due);
        finish.requeue = Some(QueueItem {
            attempt: retry,
            due_at: due,
            ..item.clone()
        });
        finish.entry = Some(entry);
        return finish;
    }

    let context = failure_context(item, &entry, class);
    let detail = match &config.escalation {
        Escalation::LogAndContinue => "logged; going on with the next trigger".to_string(),
        Escalation::Pause => {
            let reason = format!("escalation after a final failure: {context}");
            let (alert, notifications) = owner_alert(
                shared,
                config,
                "escalation",
                format!("escalation/{}/{}/{now}", item.worker, item.seq),
                format!("{} paused after a failure", item.worker),
                format!(
                    "Worker `{}` was paused; its triggers are held until a person resumes it. {context}",
                    item.worker
                ),
            );
            finish.alert = Some(alert);
            finish.notifications = notifications;
            finish.pause = Some((
                item.worker.clone(),
                WorkerControl {
                    paused: true,
                    by: "escalation".into(),
                    reason,
                    at: now,
                    resumed_at: None,
                    grant_revoked: false,
                },
            ));
            // The failed trigger is held with the others and runs again on resume.
            finish.requeue = Some(QueueItem {
                attempt: 0,
                due_at: now,
                ..item.clone()
            });
            "worker paused, owners alerted, the trigger held for a retry on resume".to_string()
        }
        Escalation::CreateTask { assignee } => {
            let task_id = format!("escalation-{}-{}", item.worker, item.seq);
            let (owner, team) = match assignee.strip_prefix("team:") {
                Some(_) => (None, assignee.clone()),
                None => (Some(assignee.clone()), assignee.clone()),
            };
            let mut fields = BTreeMap::from([
                (
                    "subject".to_string(),
                    FieldValue::Text(format!(
                        "Worker `{}` failed: {}",
                        item.worker,
                        entry.detail.as_deref().unwrap_or(class.as_str())
                    )),
                ),
                ("status".to_string(), FieldValue::Text("open".into())),
                ("priority".to_string(), FieldValue::Text("high".into())),
                ("assignee".to_string(), FieldValue::Text(team)),
            ]);
            if let Some(r) = &entry.record {
                fields.insert("related_to".into(), FieldValue::Text(r.clone()));
            }
            finish.records.push(Record {
                object: "task".into(),
                id: task_id.clone(),
                owner,
                fields,
            });
            finish.records.push(Record {
                object: "note".into(),
                id: format!("{task_id}-context"),
                owner: None,
                fields: BTreeMap::from([
                    ("body".to_string(), FieldValue::Text(context.clone())),
                    (
                        "related_to".to_string(),
                        FieldValue::Text(format!("task/{task_id}")),
                    ),
                ]),
            });
            format!("task/{task_id} created for {assignee}")
        }
        Escalation::Fallback { worker, notify } => {
            let mut done = Vec::new();
            if let Some(fallback) = worker {
                let payload = serde_json::json!({
                    "failed-worker": item.worker,
                    "failure": class.as_str(),
                    "status": entry.status,
                    "error": entry.detail,
                    "attempts": entry.attempt,
                    "event-id": entry.event_id,
                    "payload": item.event.payload,
                });
                finish.enqueue.push(QueueItem {
                    seq: 0,
                    worker: fallback.clone(),
                    trigger: item.trigger,
                    event: EventInput {
                        id: Some(format!("fallback/{}/{}", item.worker, entry.event_id)),
                        payload: Some(payload),
                        ..item.event.clone()
                    },
                    due_at: now,
                    accepted_at: now,
                    cause: None,
                    attempt: 0,
                    fallback_for: Some(format!("`{}`", item.worker)),
                });
                done.push(format!("fallback worker `{fallback}` queued"));
            }
            if let Some(n) = notify {
                finish.notifications.push(OutboxEntry {
                    id: format!("fallback/{}/{}", item.worker, item.seq),
                    worker: item.worker.clone(),
                    channel: n.channel.clone(),
                    recipients: n.to.clone(),
                    subject: Some(format!("Worker `{}` failed", item.worker)),
                    body: context.clone(),
                });
                done.push(format!("{} notification to {}", n.channel, n.to.join(", ")));
            }
            done.join("; ")
        }
    };
    entry.escalation = Some(EscalationRecord {
        policy: config.escalation.name().to_string(),
        detail,
    });
    finish.entry = Some(entry);
    finish
}

/// What a person needs to know about a final failure.
fn failure_context(item: &QueueItem, entry: &ExecutionEntry, class: FailureClass) -> String {
    format!(
        "Event `{}` ({}){} failed with status `{}` ({} failure) after {} attempt(s): {}",
        entry.event_id,
        entry.trigger,
        entry
            .record
            .as_ref()
            .map(|r| format!(" on {r}"))
            .unwrap_or_default(),
        entry.status,
        class.as_str(),
        item.attempt + 1,
        entry.detail.as_deref().unwrap_or("no detail"),
    )
}
