//! The staging and version commands of `roster workers`: `dry-run` (on the data directory's
//! configuration, or through the service), and `versions`, `readiness`, `deploy`,
//! `rollback` (through the running service, as the `ROSTER_TOKEN` account).

use std::path::Path;
use std::process::ExitCode;

use super::Paths;
use super::remote::print_api;
use crate::service::staging::{Dataset, StagingReport};

/// `roster workers dry-run NAME --dataset FILE`.
pub(super) fn dry_run(
    paths: &Paths,
    name: &str,
    dataset: &Path,
    json: bool,
    remote: bool,
) -> anyhow::Result<ExitCode> {
    let data = Dataset::load(dataset)?;
    if remote {
        let body = serde_json::to_vec(&data)?;
        let path = format!("/v1/workers/{name}/dry-run");
        return print_api(&paths.config, http::Method::POST, &path, body);
    }
    let config = super::host_config(paths)?;
    let worker = super::worker_config(&config, name)?;
    // A runtime of its own: the live store is neither opened nor touched.
    let scratch = tempfile_dir(&config.data_dir)?;
    let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
    let base = crate::store::Store::open_with(
        &scratch.join("base.redb"),
        config.schema.clone(),
        clock.clone(),
    )?;
    let runtime = crate::sandbox::runtime::Runtime::with_store(config.runtime_config(clock), base)?;
    let report =
        crate::service::staging::dry_run(&runtime, &config, worker, &data, &scratch.join("run"));
    drop(runtime);
    let _ = std::fs::remove_dir_all(&scratch);
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_staging(&report);
    }
    Ok(if report.summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn tempfile_dir(data_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = data_dir
        .join("staging")
        .join(uuid::Uuid::now_v7().to_string());
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn print_staging(r: &StagingReport) {
    let s = &r.summary;
    println!(
        "worker {} {} ({}) — dry run: {} events, {} ran, {} skipped, {} failed, {} actions proposed, {} denied",
        r.worker,
        r.version,
        r.component_digest,
        s.events,
        s.ran,
        s.skipped,
        s.failed,
        s.proposed,
        s.denied
    );
    for run in &r.runs {
        let id = run.event.id.as_deref().unwrap_or("-");
        match (&run.skipped, &run.report) {
            (Some(why), _) => println!("  {id}: skipped — {why}"),
            (None, Some(report)) => {
                println!("  {id}: {}", report.status);
                for a in &report.actions {
                    let shown = a
                        .proposal
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| a.input.to_string());
                    println!("    {}.{} {} {shown}", a.capability, a.operation, a.target);
                }
            }
            (None, None) => {}
        }
    }
}

/// `roster workers versions|readiness NAME`.
pub(super) fn show(paths: &Paths, name: &str, what: &str) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/workers/{name}/{what}");
    print_api(&paths.config, http::Method::GET, &path, Vec::new())
}

/// `roster workers deploy|rollback NAME --reason ...`.
pub(super) fn act(paths: &Paths, name: &str, what: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/workers/{name}/{what}");
    let body = serde_json::to_vec(&serde_json::json!({ "reason": reason }))?;
    print_api(&paths.config, http::Method::POST, &path, body)
}

/// `roster workers shadow NAME`: where the shadow version proposed other actions.
pub(super) fn shadow(paths: &Paths, name: &str, remote: bool) -> anyhow::Result<ExitCode> {
    if remote {
        return show(paths, name, "shadow");
    }
    let config = super::host_config(paths)?;
    super::worker_config(&config, name)?;
    let store = super::open_store(paths)?;
    let report = crate::service::shadow::report(name, store.shadow_runs(name)?);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
