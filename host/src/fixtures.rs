//! Fixture tests for a worker project (`roster plugin test`): each `tests/*.toml` case runs
//! the component on one event against fixture records, in dry-run in a store of its own,
//! and compares what it set out to do with what the case expects.
//!
//! ```toml
//! # tests/hot-lead.toml
//! records = "fixtures/records.jsonl"   # default; JSON Lines, one record per line
//! status = "success"                    # the execution's status
//! actions = [                           # every state change and side effect, in order
//!     "records.update lead/L-1",
//!     "notify.send in-app:ann",
//! ]
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
use crate::event::EventInput;
use crate::gate::{ActionKind, Mode};
use crate::grant::Grant;
use crate::manifest::Manifest;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::Record;

/// One case as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CaseFile {
    #[serde(default)]
    records: Option<PathBuf>,
    status: String,
    #[serde(default)]
    actions: Vec<String>,
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

/// The actions of a report as cases name them: `capability.operation target`, reads left
/// out.
pub fn action_lines(report: &crate::report::ExecutionReport) -> Vec<String> {
    report
        .actions
        .iter()
        .filter(|a| a.kind != ActionKind::Read)
        .map(|a| format!("{}.{} {}", a.capability, a.operation, a.target))
        .collect()
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
        let worker = runtime.load(component, manifest, grant)?;
        let report = worker.execute(&event, Mode::DryRun)?;
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
