//! Staging: run a worker in dry-run against a staging dataset.
//!
//! A dataset is a JSON file of records and events:
//!
//! ```json
//! {"records": [{"object": "opportunity", "id": "O-1", "owner": "svc", "fields": {"amount": 5000}}],
//!  "events": [{"id": "e1", "trigger": {"type": "record-created"}, "object": "opportunity", "record-id": "O-1"}]}
//! ```
//!
//! Without `events`, every record of an object the worker's triggers watch gets a
//! `record-created` event. The records go into a store of their own (in a temporary
//! directory, removed afterwards), never into the live one; each event passes the worker's
//! conditions as it would live, and the worker runs in dry-run mode: every action is
//! checked against the grant and recorded, none is performed.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{HostConfig, WorkerConfig};
use crate::error::Error;
use crate::sandbox::executor::Run;
use crate::sandbox::gate::{ActionKind, ActionResult, Mode};
use crate::sandbox::report::ExecutionReport;
use crate::sandbox::runtime::Runtime;
use crate::store::ConditionResult;
use crate::store::Store;
use crate::trigger::condition::{Context, Subject};
use crate::value::Record;
use crate::value::{ChangeInput, EventInput, FieldValue, TriggerInput};

/// A staging dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The records the worker can see.
    #[serde(default)]
    pub records: Vec<Record>,
    /// The events to run it on.
    #[serde(default)]
    pub events: Vec<EventInput>,
}

impl Dataset {
    /// Reads a dataset file.
    pub fn load(path: &Path) -> Result<Dataset, Error> {
        let text = crate::config_file::read_text(path)?;
        Dataset::parse(&path.display().to_string(), &text)
    }

    /// Parses a dataset (from `origin`, for messages).
    pub fn parse(origin: &str, text: &str) -> Result<Dataset, Error> {
        serde_json::from_str(text).map_err(|e| Error::Config {
            location: format!("{origin}:{}:{}", e.line(), e.column()),
            reason: format!("not a staging dataset: {e}"),
        })
    }
}

/// What one event did in staging.
#[derive(Debug, Clone, Serialize)]
pub struct StagedRun {
    /// The event.
    pub event: EventInput,
    /// Each condition and whether it passed (record events).
    pub conditions: Vec<ConditionResult>,
    /// Why the worker did not run (conditions not met, the record is missing).
    pub skipped: Option<String>,
    /// The dry run's report: every action recorded, none performed.
    pub report: Option<ExecutionReport>,
}

/// A staging run's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StagingSummary {
    /// Events in the dataset.
    pub events: usize,
    /// Events the worker ran on.
    pub ran: usize,
    /// Events its conditions (or a missing record) skipped.
    pub skipped: usize,
    /// Runs that did not succeed.
    pub failed: usize,
    /// Side effects it proposed (recorded, not performed).
    pub proposed: usize,
    /// Calls its grant refused.
    pub denied: usize,
}

/// A staging run.
#[derive(Debug, Clone, Serialize)]
pub struct StagingReport {
    /// The installed worker.
    pub worker: String,
    /// Its plugin version.
    pub version: String,
    /// Its component's digest.
    pub component_digest: String,
    /// Totals.
    pub summary: StagingSummary,
    /// Each event.
    pub runs: Vec<StagedRun>,
}

/// Runs `worker` in dry-run on `dataset`, in a store of its own under `scratch` (a
/// directory that is created and removed), with the engine and limits of `runtime`.
pub fn dry_run(
    runtime: &Runtime,
    host: &HostConfig,
    worker: &WorkerConfig,
    dataset: &Dataset,
    scratch: &Path,
) -> Result<StagingReport, Error> {
    let objects: Vec<&str> = worker
        .triggers
        .iter()
        .filter_map(|t| t.kind.object())
        .collect();
    let mut events = dataset.events.clone();
    if events.is_empty() {
        // One event per record: an update of the watched fields (from nothing to the
        // record's values) when the worker has a record-updated trigger, else a creation.
        let watched = worker.triggers.iter().find_map(|t| match &t.kind {
            crate::trigger::TriggerKind::RecordUpdated { fields, .. } => Some(fields.clone()),
            _ => None,
        });
        events = dataset
            .records
            .iter()
            .filter(|r| objects.contains(&r.object.as_str()))
            .map(|r| EventInput {
                id: Some(format!("staging/{}/{}", r.object, r.id)),
                trigger: match &watched {
                    None => TriggerInput::RecordCreated,
                    Some(fields) => TriggerInput::RecordUpdated {
                        changes: fields
                            .iter()
                            .map(|f| ChangeInput {
                                field: f.clone(),
                                old: FieldValue::Null,
                                new: r.fields.get(f).cloned().unwrap_or(FieldValue::Null),
                            })
                            .collect(),
                    },
                },
                object: Some(r.object.clone()),
                record_id: Some(r.id.clone()),
                payload: None,
                occurred_at: None,
            })
            .collect();
    }
    std::fs::create_dir_all(scratch).map_err(|source| Error::Io {
        path: scratch.to_path_buf(),
        source,
    })?;
    let result = (|| {
        let store = Store::open_with(
            &scratch.join("staging.redb"),
            host.schema.clone(),
            runtime.store().clock().clone(),
        )?;
        store.put_records(&dataset.records)?;
        let staging = runtime.sharing_engine(store.clone());
        let bytes = worker.component_bytes()?;
        let mut grant = worker.grant.clone();
        grant.limits = grant.limits.overlay(&worker.limits);
        let loaded = staging
            .load(&bytes, &worker.manifest, &grant)?
            .with_settings(&worker.settings);
        let mut runs = Vec::new();
        let mut summary = StagingSummary {
            events: events.len(),
            ..StagingSummary::default()
        };
        for event in events {
            let record = event.read_record(&store)?;
            let mut conditions = Vec::new();
            let ctx = Context {
                directory: runtime.directory(),
                now: store.clock().now_ms(),
                schema: store.schema(),
            };
            let subject = Subject {
                record: record.as_ref(),
                payload: event.payload.as_ref(),
            };
            let skipped = match (&event.object, &record) {
                (Some(o), None) if event.trigger != TriggerInput::RecordDeleted => Some(format!(
                    "{o}/{} is not in the dataset",
                    event.record_id.as_deref().unwrap_or_default()
                )),
                (_, record) if record.is_some() || !worker.conditions.needs_record() => {
                    (!worker.conditions.evaluate(subject, &ctx, &mut conditions))
                        .then(|| "conditions not met".to_string())
                }
                _ if worker.conditions.is_empty() => None,
                _ => Some("conditions need a record and the event has none".to_string()),
            };
            let report = match skipped {
                Some(_) => {
                    summary.skipped += 1;
                    None
                }
                None => {
                    let settings = worker.step_settings(subject, &ctx, &mut conditions);
                    let report = loaded.execute(
                        &event,
                        Run {
                            record: Some(record),
                            settings,
                            ..Run::from(Mode::DryRun)
                        },
                    )?;
                    summary.ran += 1;
                    summary.failed += usize::from(!report.status.is_ok());
                    summary.proposed += report
                        .actions
                        .iter()
                        .filter(|a| {
                            a.kind == ActionKind::Effect && a.result == ActionResult::DryRun
                        })
                        .count();
                    summary.denied += report.denials().count();
                    Some(report)
                }
            };
            runs.push(StagedRun {
                event,
                conditions,
                skipped,
                report,
            });
        }
        Ok(StagingReport {
            worker: worker.name.clone(),
            version: worker.manifest.plugin.version.clone(),
            component_digest: loaded.component_digest().to_string(),
            summary,
            runs,
        })
    })();
    let _ = std::fs::remove_dir_all(scratch);
    result
}
