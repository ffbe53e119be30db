//! `roster approvals`: the approval queue and decisions, through the API (see
//! `client.rs`), so the access policies — separation of duties included — decide, and
//! the deciding account is recorded.

use std::process::ExitCode;

use clap::Subcommand;

use anyhow::bail;

use super::Paths;
use super::client::{Client, print_json, query, segment};
use crate::store::{Approval, ApprovalStatus};

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
    },
    /// Show one held action: the trigger, the data used, the proposal, confidence, reasons.
    Show {
        /// The held action's id (`apr-...`).
        id: String,
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

pub(super) fn approvals(paths: &Paths, command: ApprovalsCommand) -> anyhow::Result<ExitCode> {
    let client = Client::open(paths)?;
    let decide = |id: &str, body: serde_json::Value| {
        client.print_post(&format!("/v1/approvals/{}/decide", segment(id)), &body)
    };
    match command {
        ApprovalsCommand::List {
            status: wanted,
            worker,
        } => {
            status(&wanted)?;
            let path = format!(
                "/v1/approvals{}",
                query(&[
                    ("status", Some(wanted.as_str()).filter(|s| *s != "all")),
                    ("worker", worker.as_deref()),
                ])
            );
            let list = client.list(&path, "approvals", usize::MAX)?;
            let mut listed = false;
            for a in list {
                let a: Approval = serde_json::from_value(a)?;
                println!(
                    "{}  {:<16} {:<14} {:<17} {}",
                    a.id,
                    a.worker,
                    a.proposed.action(),
                    serde_json::to_value(a.status)?.as_str().unwrap_or_default(),
                    a.reasons.join("; ")
                );
                listed = true;
            }
            if !listed {
                println!("no held actions");
            }
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsCommand::Show { id } => {
            let answer = client.get(&format!("/v1/approvals/{}", segment(&id)))?;
            if answer["approval"].is_null() {
                bail!("no held action `{id}`");
            }
            print_json(&answer["approval"])
        }
        ApprovalsCommand::Approve { id, reason } => decide(
            &id,
            serde_json::json!({ "verdict": "approve", "reason": reason }),
        ),
        ApprovalsCommand::Edit { id, edited, reason } => {
            let edited: serde_json::Value =
                serde_json::from_str(&edited).map_err(|e| anyhow::anyhow!("--edited: {e}"))?;
            decide(
                &id,
                serde_json::json!({ "verdict": "edit", "edited": edited, "reason": reason }),
            )
        }
        ApprovalsCommand::Reject { id, reason } => decide(
            &id,
            serde_json::json!({ "verdict": "reject", "reason": reason }),
        ),
    }
}
