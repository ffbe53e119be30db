//! Pause, resume and the kill switch, as the service offers them.

use super::*;

/// What the kill switch pauses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KillScope {
    /// One installed worker.
    Worker(String),
    /// Every worker of a domain (`revenue`, `finance`, ...).
    Domain(String),
    /// Every worker.
    All,
}

/// What the kill switch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KillReport {
    /// The workers now paused.
    pub paused: Vec<String>,
    /// Queue items that were running and were interrupted (their triggers are held).
    pub interrupted: Vec<u64>,
    /// Other triggers of these workers now held in the queue.
    pub held: u64,
    /// Held actions that waited for a decision and are now cancelled.
    pub cancelled: Vec<String>,
    /// The review tasks opened.
    pub reviews: Vec<String>,
}

impl Service {
    /// Pauses a worker by hand: its triggers are held (still accepted, not run) until it is
    /// resumed, and an execution running now is interrupted at the next epoch tick (its
    /// trigger held too). `by` and `reason` are recorded.
    pub fn pause(&self, worker: &str, by: &str, reason: &str) -> Result<WorkerControl, Error> {
        self.installed(worker)?;
        let report = self.kill(&KillScope::Worker(worker.to_string()), by, reason, false)?;
        self.controls()
            .remove(worker)
            .filter(|_| !report.paused.is_empty())
            .ok_or_else(|| Error::InvalidRequest(format!("worker `{worker}` was not paused")))
    }

    /// The kill switch: pauses one worker, every worker of a domain, or all of them.
    /// Executions running now are interrupted within one epoch tick and their triggers
    /// held with the rest; after it returns no host call of a paused worker succeeds.
    /// With `revoke_grants` the workers resume only when a person restores their grants.
    /// The reason is required and recorded, owners are alerted, and a review task is
    /// opened for each worker's business owner.
    pub fn kill(
        &self,
        scope: &KillScope,
        by: &str,
        reason: &str,
        revoke_grants: bool,
    ) -> Result<KillReport, Error> {
        if reason.trim().is_empty() {
            return Err(Error::InvalidRequest("give a reason for the pause".into()));
        }
        let targets: Vec<Arc<Installed>> = match scope {
            KillScope::Worker(name) => vec![self.installed(name)?],
            KillScope::Domain(domain) => {
                let found: Vec<Arc<Installed>> = self
                    .shared
                    .workers()
                    .values()
                    .filter(|w| w.config.manifest.plugin.domain.as_str() == domain)
                    .cloned()
                    .collect();
                if found.is_empty() {
                    return Err(Error::InvalidRequest(format!(
                        "no installed worker is in domain `{domain}`"
                    )));
                }
                found
            }
            KillScope::All => self.shared.workers().values().cloned().collect(),
        };
        // Stop them first: from here no host call of theirs succeeds.
        for w in &targets {
            w.halt.store(true, Ordering::SeqCst);
        }
        let now = self.shared.clock.now_ms();
        let mut controls = Vec::new();
        let mut alerts = Vec::new();
        let mut records = Vec::new();
        for w in &targets {
            let name = &w.config.name;
            let previous = self.controls().get(name).cloned();
            controls.push((
                name.clone(),
                WorkerControl {
                    paused: true,
                    by: format!("manual:{by}"),
                    reason: reason.to_string(),
                    at: now,
                    resumed_at: previous.as_ref().and_then(|c| c.resumed_at),
                    grant_revoked: revoke_grants
                        || previous.as_ref().is_some_and(|c| c.grant_revoked),
                },
            ));
            alerts.push(owner_alert(
                &self.shared,
                &w.config,
                "paused",
                format!("paused/{name}/{now}"),
                format!("{name} was paused by {by}"),
                format!(
                    "Worker `{name}` was paused by {by}: {reason}. Its triggers are held{}.",
                    if revoke_grants {
                        "; its grant was revoked until a person restores it"
                    } else {
                        ""
                    }
                ),
            ));
            let owner = w.config.owners.first().cloned();
            records.push(crate::value::Record {
                object: "task".into(),
                id: format!("review-pause-{name}-{now}"),
                owner: owner.clone(),
                fields: BTreeMap::from([
                    (
                        "subject".to_string(),
                        FieldValue::Text(format!(
                            "Review the pause of worker `{name}` by {by}: {reason}"
                        )),
                    ),
                    ("status".to_string(), FieldValue::Text("open".into())),
                    ("priority".to_string(), FieldValue::Text("high".into())),
                    (
                        "assignee".to_string(),
                        FieldValue::Text(owner.unwrap_or_else(|| by.to_string())),
                    ),
                ]),
            });
        }
        let names: BTreeSet<String> = targets.iter().map(|w| w.config.name.clone()).collect();
        let interrupted: Vec<u64> = self
            .shared
            .in_flight
            .lock()
            .map(|f| {
                f.iter()
                    .filter(|(_, w)| names.contains(*w))
                    .map(|(seq, _)| *seq)
                    .collect()
            })
            .unwrap_or_default();
        let reviews = records.iter().map(|r| format!("task/{}", r.id)).collect();
        let event = GovernanceEvent {
            action: "kill".into(),
            by: by.to_string(),
            worker: match scope {
                KillScope::Worker(name) => Some(name.clone()),
                _ => None,
            },
            subject: None,
            reason: Some(reason.to_string()),
            data: json!({
                "scope": scope,
                "paused": names,
                "interrupted": interrupted,
                "revoke-grants": revoke_grants,
            }),
        };
        self.shared
            .store
            .set_controls(controls.clone(), alerts, records, Some(event))?;
        if let Ok(mut c) = self.shared.controls.lock() {
            c.extend(controls);
        }
        let cancelled = self.cancel_held(&names, by, reason)?;
        let mut held = 0;
        let mut cursor = 0;
        loop {
            let items = self.shared.store.queued_after(cursor, BATCH)?;
            let Some(last) = items.last().map(|i| i.seq) else {
                break;
            };
            held += items
                .iter()
                .filter(|i| names.contains(&i.worker) && !interrupted.contains(&i.seq))
                .count() as u64;
            cursor = last;
        }
        tracing::warn!(
            "kill switch by {by}: paused {}: {reason}",
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        Ok(KillReport {
            paused: names.into_iter().collect(),
            interrupted,
            held,
            cancelled,
            reviews,
        })
    }

    /// Resumes a paused worker: its held triggers run, oldest first, and the circuit
    /// breaker counts only executions from now on. Resuming is always a person's decision;
    /// a grant revoked by the kill switch must be restored explicitly (`restore_grant`).
    pub fn resume(
        &self,
        worker: &str,
        by: &str,
        reason: &str,
        restore_grant: bool,
    ) -> Result<WorkerControl, Error> {
        let w = self.installed(worker)?;
        let current = self.controls().get(worker).cloned();
        let Some(current) = current.filter(|c| c.paused) else {
            return Err(Error::InvalidRequest(format!(
                "worker `{worker}` is not paused"
            )));
        };
        if current.grant_revoked && !restore_grant {
            return Err(Error::InvalidRequest(format!(
                "worker `{worker}`'s grant was revoked when it was paused: review it, then resume with restore-grant"
            )));
        }
        let now = self.shared.clock.now_ms();
        let control = WorkerControl {
            paused: false,
            by: format!("manual:{by}"),
            reason: reason.to_string(),
            at: now,
            resumed_at: Some(now),
            grant_revoked: false,
        };
        self.shared.store.set_control(
            worker,
            control.clone(),
            None,
            Some(GovernanceEvent {
                action: "resume".into(),
                by: by.to_string(),
                worker: Some(worker.to_string()),
                subject: None,
                reason: Some(reason.to_string()),
                data: json!({ "restore-grant": restore_grant }),
            }),
        )?;
        if let Ok(mut c) = self.shared.controls.lock() {
            c.insert(worker.to_string(), control.clone());
        }
        w.halt.store(false, Ordering::SeqCst);
        tracing::info!("worker `{worker}` resumed by {by}");
        Ok(control)
    }
}
