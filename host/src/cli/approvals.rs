//! `roster approvals` (the approval queue and decisions) and the trust-curve commands of
//! `roster workers` (`trust`, `stage`, `reverse`).
//!
//! Decisions, moves and reversals go through the running service with `ROSTER_TOKEN`, so
//! the access policies (separation of duties included) decide and the token's account is
//! recorded. Listing works on the data directory too.

use std::process::ExitCode;

use clap::Subcommand;

use super::Paths;
use super::open_store;
use super::remote::print_api;
use crate::store::{ApprovalFilter, ApprovalStatus};

/// `roster approvals` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List held actions (pending ones by default).
    List {
        /// `pending`, `approved`, `applied`, `rejected`, `cancelled`, `failed`, or `all`.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Only this worker.
        #[arg(long)]
        worker: Option<String>,
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
    },
    /// Show one held action: the trigger, the data used, the proposal, confidence, reasons.
    Show {
        /// The held action's id (`apr-...`).
        id: String,
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
    },
    /// Approve a held action as proposed; it is applied once.
    Approve {
        /// The held action's id.
        id: String,
        /// Why (optional).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Edit a held action, then approve it: `--edited` is the action as JSON, of the same
    /// kind, changing only proposed values.
    Edit {
        /// The held action's id.
        id: String,
        /// The edited action (JSON, as `roster approvals show` prints `proposed`).
        #[arg(long)]
        edited: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a held action.
    Reject {
        /// The held action's id.
        id: String,
        /// Why (required; the worker reads it as feedback).
        #[arg(long)]
        reason: String,
    },
}

fn status(text: &str) -> anyhow::Result<Option<ApprovalStatus>> {
    if text == "all" {
        return Ok(None);
    }
    serde_json::from_value(serde_json::json!(text))
        .map(Some)
        .map_err(|_| anyhow::anyhow!("--status `{text}`: use pending, awaiting-outcome, approved, applied, rejected, cancelled, failed or all"))
}

fn post(paths: &Paths, path: &str, body: serde_json::Value) -> anyhow::Result<ExitCode> {
    print_api(
        &paths.config,
        http::Method::POST,
        path,
        serde_json::to_vec(&body)?,
    )
}

pub(super) fn approvals(paths: &Paths, command: ApprovalsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ApprovalsCommand::List {
            status: wanted,
            worker,
            remote,
        } => {
            let filter = ApprovalFilter {
                status: status(&wanted)?,
                worker,
                domain: None,
            };
            if remote {
                let mut query = Vec::new();
                if wanted != "all" {
                    query.push(format!("status={wanted}"));
                }
                if let Some(w) = &filter.worker {
                    query.push(format!("worker={w}"));
                }
                let path = format!("/v1/approvals?{}", query.join("&"));
                return print_api(&paths.config, http::Method::GET, &path, Vec::new());
            }
            let list = open_store(paths)?.approvals(&filter)?;
            for a in &list {
                println!(
                    "{}  {:<16} {:<14} {:<17} {}",
                    a.id,
                    a.worker,
                    a.proposed.action(),
                    serde_json::to_value(a.status)?.as_str().unwrap_or_default(),
                    a.reasons.join("; ")
                );
            }
            if list.is_empty() {
                println!("no held actions");
            }
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsCommand::Show { id, remote } => {
            if remote {
                let path = format!("/v1/approvals/{id}");
                return print_api(&paths.config, http::Method::GET, &path, Vec::new());
            }
            let approval = open_store(paths)?
                .approval(&id)?
                .ok_or_else(|| anyhow::anyhow!("no held action `{id}`"))?;
            println!("{}", serde_json::to_string_pretty(&approval)?);
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsCommand::Approve { id, reason } => post(
            paths,
            &format!("/v1/approvals/{id}/decide"),
            serde_json::json!({ "verdict": "approve", "reason": reason }),
        ),
        ApprovalsCommand::Edit { id, edited, reason } => {
            let edited: serde_json::Value =
                serde_json::from_str(&edited).map_err(|e| anyhow::anyhow!("--edited: {e}"))?;
            post(
                paths,
                &format!("/v1/approvals/{id}/decide"),
                serde_json::json!({ "verdict": "edit", "edited": edited, "reason": reason }),
            )
        }
        ApprovalsCommand::Reject { id, reason } => post(
            paths,
            &format!("/v1/approvals/{id}/decide"),
            serde_json::json!({ "verdict": "reject", "reason": reason }),
        ),
    }
}

/// `roster workers trust NAME`: the stage, the metrics and the next promotion.
pub(super) fn trust(paths: &Paths, name: &str, remote: bool) -> anyhow::Result<ExitCode> {
    if remote {
        let path = format!("/v1/workers/{name}/trust");
        return print_api(&paths.config, http::Method::GET, &path, Vec::new());
    }
    let config = super::host_config(paths)?;
    let worker = super::worker_config(&config, name)?;
    let store = open_store(paths)?;
    let now = store.clock().now_ms();
    let report = crate::governance::trust::report(
        &store,
        &worker.name,
        worker.starting_stage(),
        &config.trust,
        now,
    )?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// `roster workers stage NAME --to STAGE --reason ...`.
pub(super) fn stage(paths: &Paths, name: &str, to: &str, reason: &str) -> anyhow::Result<ExitCode> {
    post(
        paths,
        &format!("/v1/workers/{name}/stage"),
        serde_json::json!({ "to": to, "reason": reason }),
    )
}

/// `roster workers reverse NAME --action ID --reason ...`.
pub(super) fn reverse(
    paths: &Paths,
    name: &str,
    action: &str,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    post(
        paths,
        &format!("/v1/workers/{name}/reversals"),
        serde_json::json!({ "action": action, "reason": reason }),
    )
}
