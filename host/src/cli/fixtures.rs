//! Fixture tests for a worker project (`roster plugin test`): each `tests/*.toml` case runs
//! the component on one event against fixture records, in a store of its own that is
//! thrown away afterwards, under the review the manifest recommends (`[review]`), and
//! compares what it did with what the case expects. Nothing leaves the scratch store:
//! notifications stay in its outbox, signals in its log.
//!
//! ```toml
//! # tests/hot-lead.toml
//! records = "fixtures/records.jsonl"   # default; JSON Lines, one record per line
//! status = "success"                    # the execution's status
//! actions = [                           # every side effect, in order
//!     "records.update lead/L-1",
//!     "notify.send email:ann@example.com [held]",  # held for a person's approval
//! ]
//! stage = "high-trust"                  # optional: the trust stage instead of the manifest's
//!
//! [settings]                            # optional: the installation's settings
//! min-employees = 500
//!
//! [event]                               # as for `roster run --event`
//! id = "evt-1"
//! trigger = { type = "record-created" }
//! object = "lead"
//! record-id = "L-1"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::sandbox::executor::Run;
use crate::sandbox::gate::{ActionKind, ActionResult, Mode};
use crate::sandbox::grant::Grant;
use crate::sandbox::manifest::Manifest;
use crate::sandbox::runtime::{Runtime, RuntimeConfig};
use crate::value::EventInput;
use crate::value::Record;

/// One case as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CaseFile {
    #[serde(default)]
    records: Option<PathBuf>,
    status: String,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    stage: Option<crate::store::Stage>,
    #[serde(default)]
    settings: toml::Table,
    event: serde_json::Value,
}

/// How one case went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's file name without extension.
    pub name: String,
    /// `None` when it passed, else what differed.
    pub failure: Option<String>,
}

/// The side effects of a report as cases name them: `capability.operation target`, with
/// ` [held]` after one held for a person's approval and ` [denied]` after a denial (reads
/// and the worker's own state — memory, teaching its models — left out).
pub fn action_lines(report: &crate::sandbox::report::ExecutionReport) -> Vec<String> {
    report
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Effect)
        .map(|a| {
            let mark = match &a.result {
                ActionResult::Held { .. } => " [held]",
                ActionResult::Denied { .. } => " [denied]",
                _ => "",
            };
            format!("{}.{} {}{mark}", a.capability, a.operation, a.target)
        })
        .collect()
}

/// The review of one fixture case: the manifest's `[review]` at its stage (or `stage`).
fn review_context(
    manifest: &Manifest,
    stage: Option<crate::store::Stage>,
    event: &EventInput,
    record: Option<&Record>,
) -> Option<crate::sandbox::state::ReviewContext> {
    let settings = manifest.review.as_ref();
    let stage = stage.or(settings.map(|s| s.stage));
    let domain = manifest.plugin.domain.as_str();
    let checkpoints = crate::governance::review::Checkpoints::new(settings, stage, &[], domain);
    if checkpoints.is_empty() {
        return None;
    }
    Some(crate::sandbox::state::ReviewContext {
        checkpoints: std::sync::Arc::new(checkpoints),
        worker: manifest.plugin.id.clone(),
        domain: domain.to_string(),
        owners: vec![manifest.owners.business.clone()],
        reviewers: settings
            .map(|s| s.reviewers.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| vec![manifest.owners.business.clone()]),
        stage,
        trigger: serde_json::to_string(&event.trigger).unwrap_or_default(),
        event_id: event.id.clone().unwrap_or_default(),
        record: record.map(|r| format!("{}/{}", r.object, r.id)),
        fields: record.map(|r| r.fields.clone()).unwrap_or_default(),
        payload: event.payload.clone(),
    })
}

/// Reads records from a JSON Lines file (one record per line; blank lines skipped).
pub fn read_records(path: &Path) -> Result<Vec<Record>, Error> {
    let text = crate::config_file::read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str::<Record>(line).map_err(|e| Error::Config {
                location: format!("{}:{}", path.display(), i + 1),
                reason: format!("not a record: {e}"),
            })
        })
        .collect()
}

/// Runs every `tests/*.toml` case of the project at `project` on `component`, under
/// `grant`, each in a fresh store under `scratch`.
pub fn run_cases(
    project: &Path,
    component: &[u8],
    manifest: &Manifest,
    grant: &Grant,
    scratch: &Path,
) -> Result<Vec<CaseResult>, Error> {
    let dir = project.join("tests");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    if cases.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "no test cases (tests/*.toml) in {}",
            project.display()
        )));
    }
    let mut results = Vec::new();
    for (i, path) in cases.iter().enumerate() {
        let text = crate::config_file::read_text(path)?;
        let case: CaseFile = crate::config_file::parse_toml(path, &text)?;
        let event = EventInput::parse(
            &path.display().to_string(),
            &serde_json::to_string(&case.event).unwrap_or_default(),
        )?;
        let records_path = project.join(
            case.records
                .clone()
                .unwrap_or_else(|| PathBuf::from("fixtures/records.jsonl")),
        );
        let records = if records_path.is_file() {
            read_records(&records_path)?
        } else {
            Vec::new()
        };
        let data = scratch.join(format!("case-{i}"));
        if data.exists() {
            std::fs::remove_dir_all(&data).map_err(|source| Error::Io {
                path: data.clone(),
                source,
            })?;
        }
        let runtime = Runtime::open(RuntimeConfig::new(&data))?;
        runtime.store().put_records(&records)?;
        let settings = manifest
            .settings(&case.settings)
            .map_err(|problems| Error::Config {
                location: path.display().to_string(),
                reason: problems.join("; "),
            })?;
        let worker = runtime
            .load(component, manifest, grant)?
            .with_settings(&settings);
        let event = EventInput {
            id: Some(event.id.clone().unwrap_or_else(|| format!("fixture-{i}"))),
            ..event
        };
        let record = event.read_record(runtime.store())?;
        let review = review_context(manifest, case.stage, &event, record.as_ref());
        let report = worker.execute(
            &event,
            Run {
                record: Some(record),
                review,
                ..Run::from(Mode::Live)
            },
        )?;
        let actions = action_lines(&report);
        let mut problems = Vec::new();
        if report.status.to_string() != case.status {
            problems.push(format!(
                "status {} (expected {}){}",
                report.status,
                case.status,
                report
                    .error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        if actions != case.actions {
            problems.push(format!(
                "actions {:?} (expected {:?})",
                actions, case.actions
            ));
        }
        drop(worker);
        drop(runtime);
        let _ = std::fs::remove_dir_all(&data);
        results.push(CaseResult {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            failure: (!problems.is_empty()).then(|| problems.join("; ")),
        });
    }
    Ok(results)
}
