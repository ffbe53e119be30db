//! Staging and versions, as the service offers them: dry runs against a staging dataset,
//! the versions each worker ran (kept for rollback), the deployment-readiness checklist,
//! going live, and rolling back to the previous version.

use std::sync::atomic::AtomicBool;

use sha2::{Digest, Sha256};

use super::*;
use crate::distribution::install::keep_component;
use crate::failure::Escalation;
use crate::sandbox::loader::LoadedWorker;
use crate::store::{DeployStatus, Deployment, VersionEntry};
use staging::{Dataset, StagingReport};

/// One item of the deployment-readiness checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadinessItem {
    /// `owners`, `trigger`, `scope`, `grants`, `review-rules`, `escalation`, `monitoring`,
    /// `staging` or `rollback`.
    pub item: &'static str,
    /// Whether it passes.
    pub ok: bool,
    /// What was found, or what is missing.
    pub detail: String,
}

/// The deployment-readiness checklist of one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// The worker.
    pub worker: String,
    /// The version checked.
    pub version: String,
    /// Its component's digest.
    pub digest: String,
    /// Whether every item passes.
    pub ready: bool,
    /// Each item.
    pub items: Vec<ReadinessItem>,
}

/// Loads an installed worker at start: records its version (keeping the component), and
/// runs the version a rollback pinned when there is one, else the configured one.
pub(super) fn load_worker(
    runtime: &Runtime,
    config: &HostConfig,
    w: &WorkerConfig,
    bytes: &[u8],
    halt: Arc<AtomicBool>,
) -> Result<LoadedWorker, Error> {
    let problem = |e: Error| Error::Config {
        location: w.path.display().to_string(),
        reason: format!("worker `{}`: {e}", w.name),
    };
    let store = runtime.store();
    let (digest, kept) = keep_component(config, bytes)?;
    let manifest_text = crate::config_file::read_text(&w.manifest_path)?;
    store.record_version(
        &w.name,
        VersionEntry {
            version: w.manifest.plugin.version.clone(),
            digest: digest.clone(),
            manifest: manifest_text,
            component: kept,
            first_seen: store.clock().now_ms(),
        },
    )?;
    let pinned = store.deployment(&w.name)?.and_then(|d| d.pinned);
    match pinned.filter(|p| *p != digest) {
        Some(pinned) => {
            let entry = store
                .versions(&w.name)?
                .into_iter()
                .find(|v| v.digest == pinned)
                .ok_or_else(|| {
                    problem(Error::InvalidRequest(format!(
                        "it is rolled back to {pinned}, which is not among its versions"
                    )))
                })?;
            tracing::warn!(
                "worker `{}` runs {} ({}), the version it was rolled back to; deploy it to run the configured {}",
                w.name,
                entry.version,
                entry.digest,
                w.manifest.plugin.version
            );
            load_version(runtime, w, &entry, halt).map_err(problem)
        }
        None => {
            let mut grant = w.grant.clone();
            grant.limits = grant.limits.overlay(&w.limits);
            runtime
                .load_with_halt(bytes, &w.manifest, &grant, halt)
                .map(|loaded| loaded.with_settings(&w.settings))
                .map_err(problem)
        }
    }
}

/// Loads the new version a worker's `[shadow]` section names, under the live grant.
pub(super) fn load_shadow(
    runtime: &Runtime,
    w: &WorkerConfig,
    halt: Arc<AtomicBool>,
) -> Result<Option<LoadedWorker>, Error> {
    let Some(shadow) = &w.shadow else {
        return Ok(None);
    };
    let bytes = std::fs::read(&shadow.component).map_err(|source| Error::Io {
        path: shadow.component.clone(),
        source,
    })?;
    let mut grant = w.grant.clone();
    grant.limits = grant.limits.overlay(&w.limits);
    let settings = w.settings_for(&shadow.manifest)?;
    runtime
        .load_with_halt(&bytes, &shadow.manifest, &grant, halt)
        .map(|loaded| Some(loaded.with_settings(&settings)))
        .map_err(|e| Error::Config {
            location: w.path.display().to_string(),
            reason: format!("worker `{}`, shadow version: {e}", w.name),
        })
}

/// Loads a recorded version of a worker, under the worker's current grant.
fn load_version(
    runtime: &Runtime,
    w: &WorkerConfig,
    entry: &VersionEntry,
    halt: Arc<AtomicBool>,
) -> Result<LoadedWorker, Error> {
    let bytes = std::fs::read(&entry.component).map_err(|source| Error::Io {
        path: entry.component.clone(),
        source,
    })?;
    let found = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if found != entry.digest {
        return Err(Error::InvalidRequest(format!(
            "the kept component {} does not match its digest {}",
            entry.component.display(),
            entry.digest
        )));
    }
    let manifest = crate::sandbox::manifest::Manifest::parse(&w.manifest_path, &entry.manifest)?;
    let mut grant = w.grant.clone();
    grant.limits = grant.limits.overlay(&w.limits);
    let settings = w.settings_for(&manifest)?;
    runtime
        .load_with_halt(&bytes, &manifest, &grant, halt)
        .map(|loaded| loaded.with_settings(&settings))
}

impl Shared {
    /// Whether a worker's triggers run (it is live, not in staging).
    pub(crate) fn is_live(&self, config: &WorkerConfig) -> bool {
        self.standing(config).live
    }
}

impl Service {
    /// Runs an installed worker in dry-run against a staging dataset, in a store of its
    /// own: every action is recorded in the report, none is performed, and the live
    /// records are not touched. The run and its totals are an audit entry.
    pub fn dry_run(
        &self,
        worker: &str,
        dataset: &Dataset,
        by: &str,
    ) -> Result<StagingReport, Error> {
        let w = self.installed(worker)?;
        let scratch = self
            .shared
            .config
            .data_dir
            .join("staging")
            .join(uuid::Uuid::now_v7().to_string());
        let report = staging::dry_run(
            &self.shared.runtime,
            &self.shared.config,
            &w.config,
            dataset,
            &scratch,
        )?;
        self.shared.store.record_governance(GovernanceEvent {
            action: "staging.dry-run".into(),
            by: by.to_string(),
            worker: Some(worker.to_string()),
            subject: None,
            reason: None,
            data: json!({
                "version": report.version,
                "component-digest": report.component_digest,
                "summary": report.summary,
            }),
        })?;
        Ok(report)
    }

    /// Where a worker's shadow version proposed other actions than the live one.
    pub fn shadow_report(&self, worker: &str) -> Result<shadow::ShadowReport, Error> {
        self.installed(worker)?;
        let runs = self.shared.store.shadow_runs(worker)?;
        Ok(shadow::report(worker, runs))
    }

    /// The versions a worker ran, oldest first, and the one running now.
    pub fn versions(&self, worker: &str) -> Result<(Vec<VersionEntry>, String), Error> {
        let w = self.installed(worker)?;
        let running = w.loaded().component_digest().to_string();
        Ok((self.shared.store.versions(worker)?, running))
    }

    /// The deployment-readiness checklist: owners, trigger, scope, grants, review rules,
    /// escalation path, monitoring, a clean staging run of this version, and a rollback
    /// path. Every item must pass before the worker goes live.
    pub fn readiness(&self, worker: &str) -> Result<Readiness, Error> {
        let w = self.installed(worker)?;
        let c = &w.config;
        let m = &c.manifest;
        let digest = w.loaded().component_digest().to_string();
        let mut items = Vec::new();
        let mut item = |item, ok, detail: String| items.push(ReadinessItem { item, ok, detail });

        let named = !m.owners.business.trim().is_empty() && !m.owners.technical.trim().is_empty();
        item(
            "owners",
            named && !c.owners.is_empty(),
            format!(
                "business {}, technical {}, alerted {}",
                m.owners.business,
                m.owners.technical,
                c.owners.join(", ")
            ),
        );
        item(
            "trigger",
            !c.triggers.is_empty(),
            if c.triggers.is_empty() {
                "no trigger: it would never run".into()
            } else {
                c.triggers
                    .iter()
                    .map(|t| t.label.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
        let principal = &c.grant.grant.principal;
        let known = self.shared.runtime.directory().knows(principal);
        item(
            "scope",
            known,
            if known {
                format!("acts as `{principal}` and sees what that principal sees")
            } else {
                format!("acts as `{principal}`, who is not in the directory")
            },
        );
        let revoked = self.controls().get(worker).is_some_and(|c| c.grant_revoked);
        item(
            "grants",
            !revoked,
            if revoked {
                "the kill switch revoked its grant; a person must restore it".into()
            } else {
                format!(
                    "grant {} within the manifest's requests",
                    c.grant_path.display()
                )
            },
        );
        let stage = self.shared.stage(c);
        let checkpoints = crate::governance::review::Checkpoints::new(
            c.review.as_ref(),
            stage,
            &self.shared.config.review_rules,
            m.plugin.domain.as_str(),
        );
        item(
            "review-rules",
            !checkpoints.is_empty(),
            match stage {
                Some(s) => format!("stage {}", s.as_str()),
                None if checkpoints.is_empty() => {
                    "no [review] section and no host review rule: nothing would ever wait for a person".into()
                }
                None => "host review rules apply".into(),
            },
        );
        let escalation = match &c.escalation {
            Escalation::LogAndContinue => None,
            Escalation::Pause => Some("pause and alert the owners".to_string()),
            Escalation::CreateTask { assignee } => Some(format!("task for {assignee}")),
            Escalation::Fallback { worker, .. } => Some(format!(
                "fallback {}",
                worker.as_deref().unwrap_or("notification")
            )),
        };
        item(
            "escalation",
            escalation.is_some(),
            escalation
                .unwrap_or_else(|| "log-and-continue: a final failure would reach nobody".into()),
        );
        let alerts = &self.shared.config.alerts;
        let routed =
            (alerts.email && self.shared.config.smtp.is_some()) || alerts.webhook_url.is_some();
        item(
            "monitoring",
            routed && c.breaker.enabled,
            format!(
                "alerts by {}; circuit breaker {}",
                if routed {
                    "email or webhook"
                } else {
                    "in-app only"
                },
                if c.breaker.enabled { "armed" } else { "off" }
            ),
        );
        let staged = self.staged(worker, &digest)?;
        item(
            "staging",
            staged.is_some_and(|failed| failed == 0),
            match staged {
                Some(0) => "a dry run of this version on a staging dataset succeeded".into(),
                Some(n) => format!("the last dry run of this version had {n} failed runs"),
                None => "no dry run of this version on a staging dataset".into(),
            },
        );
        let versions = self.shared.store.versions(worker)?;
        let previous = versions.iter().rev().find(|v| v.digest != digest);
        item(
            "rollback",
            true,
            match previous {
                Some(v) => format!("rolls back to {} ({})", v.version, v.digest),
                None => "first version: rolling back means pausing it (the kill switch)".into(),
            },
        );
        let ready = items.iter().all(|i| i.ok);
        Ok(Readiness {
            worker: worker.to_string(),
            version: m.plugin.version.clone(),
            digest,
            ready,
            items,
        })
    }

    /// The failed runs of the latest dry run of `digest`, if there was one.
    fn staged(&self, worker: &str, digest: &str) -> Result<Option<u64>, Error> {
        let query = crate::store::AuditQuery {
            worker: Some(worker.to_string()),
            status: Some(crate::store::GOVERNANCE.into()),
            ..Default::default()
        };
        let mut found = None;
        self.shared.store.audit_scan(&query, |e, _, _| {
            let data = e.report.as_ref().map(|r| &r["governance"]["data"]);
            if e.trigger == "governance:staging.dry-run"
                && data.is_some_and(|d| d["component-digest"] == digest)
            {
                found = data.and_then(|d| d["summary"]["failed"].as_u64());
            }
            true
        })?;
        Ok(found)
    }

    /// Puts a worker live, after its readiness checklist passes; a version pinned by a
    /// rollback is replaced by the configured one. The decision is an audit entry.
    pub fn deploy(&self, worker: &str, by: &str, reason: &str) -> Result<Readiness, Error> {
        if reason.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "give a reason for the deployment".into(),
            ));
        }
        let w = self.installed(worker)?;
        let pinned = self.shared.store.deployment(worker)?.and_then(|d| d.pinned);
        if pinned.is_some() {
            // Readiness is about the configured version: run it again first.
            let bytes = w.config.component_bytes()?;
            let mut grant = w.config.grant.clone();
            grant.limits = grant.limits.overlay(&w.config.limits);
            let loaded = self
                .shared
                .runtime
                .load_with_halt(&bytes, &w.config.manifest, &grant, w.halt.clone())?
                .with_settings(&w.config.settings);
            w.replace(loaded);
        }
        let readiness = self.readiness(worker)?;
        if !readiness.ready {
            let failing: Vec<String> = readiness
                .items
                .iter()
                .filter(|i| !i.ok)
                .map(|i| format!("{}: {}", i.item, i.detail))
                .collect();
            return Err(Error::InvalidRequest(format!(
                "`{worker}` is not ready to go live — {}",
                failing.join("; ")
            )));
        }
        let now = self.shared.clock.now_ms();
        self.shared.store.set_deployment(
            worker,
            Deployment {
                status: DeployStatus::Live,
                pinned: None,
                since: now,
                by: by.to_string(),
                reason: reason.to_string(),
            },
            GovernanceEvent {
                action: "deploy".into(),
                by: by.to_string(),
                worker: Some(worker.to_string()),
                subject: Some(readiness.digest.clone()),
                reason: Some(reason.to_string()),
                data: json!({ "version": readiness.version, "readiness": readiness.items }),
            },
        )?;
        self.shared.forget_standing(worker);
        Ok(readiness)
    }

    /// Rolls a worker back to the version it ran before the current one: loads the kept
    /// component under the current grant, runs it from the next execution on, and pins it
    /// across restarts until the worker is deployed again. An audit entry records it.
    pub fn rollback(&self, worker: &str, by: &str, reason: &str) -> Result<VersionEntry, Error> {
        if reason.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "give a reason for the rollback".into(),
            ));
        }
        let w = self.installed(worker)?;
        let current = w.loaded().component_digest().to_string();
        let versions = self.shared.store.versions(worker)?;
        let at = versions.iter().position(|v| v.digest == current);
        let previous = at
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| versions.get(i))
            .cloned()
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "`{worker}` has no earlier version to roll back to (pause it instead)"
                ))
            })?;
        let loaded = load_version(&self.shared.runtime, &w.config, &previous, w.halt.clone())?;
        let status = if self.shared.is_live(&w.config) {
            DeployStatus::Live
        } else {
            DeployStatus::Staging
        };
        self.shared.store.set_deployment(
            worker,
            Deployment {
                status,
                pinned: Some(previous.digest.clone()),
                since: self.shared.clock.now_ms(),
                by: by.to_string(),
                reason: reason.to_string(),
            },
            GovernanceEvent {
                action: "rollback".into(),
                by: by.to_string(),
                worker: Some(worker.to_string()),
                subject: Some(previous.digest.clone()),
                reason: Some(reason.to_string()),
                data: json!({ "from": current, "to": previous.digest, "version": previous.version }),
            },
        )?;
        self.shared.forget_standing(worker);
        w.replace(loaded);
        tracing::warn!(
            "worker `{worker}` rolled back to {} by {by}: {reason}",
            previous.version
        );
        Ok(previous)
    }
}
