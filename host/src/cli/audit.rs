//! `roster audit`: verify the hash-chained audit trail and sign checkpoints to keep
//! elsewhere. Works on the data directory (service stopped), or with `--remote` through a
//! running service's API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::Paths;
use crate::store::{Checkpoint, checkpoint_text};

/// `roster audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every entry's link to the one before, the head, and every signed checkpoint;
    /// exit 1 naming the first bad entry.
    Verify {
        /// Checkpoints kept elsewhere (JSON files written by `roster audit checkpoint`): a
        /// rewritten history that no longer matches one of them is caught.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        /// Ask the running service instead of opening the data directory.
        #[arg(long)]
        remote: bool,
    },
    /// Sign the chain's current head and print the checkpoint (JSON) to keep elsewhere.
    Checkpoint {
        /// Also write it to this file.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Ask the running service instead of opening the data directory.
        #[arg(long)]
        remote: bool,
    },
}

fn read_checkpoint(path: &PathBuf) -> anyhow::Result<Checkpoint> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a checkpoint", path.display()))
}

pub(super) fn audit(paths: &Paths, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            checkpoints,
            remote,
        } => {
            let external = checkpoints
                .iter()
                .map(read_checkpoint)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let outcome = if remote {
                let body = serde_json::to_vec(&serde_json::json!({ "checkpoints": external }))?;
                let (status, text) = super::remote::api(
                    &paths.config,
                    http::Method::POST,
                    "/v1/audit/verify",
                    body,
                )?;
                if status != 200 {
                    bail!("the service answered {status}: {text}");
                }
                serde_json::from_str::<serde_json::Value>(&text)?
            } else {
                let store = super::records::open_store(paths)?;
                match store.verify_audit(&external)? {
                    Ok(summary) => serde_json::json!({ "ok": true, "summary": summary }),
                    Err(problem) => serde_json::json!({
                        "ok": false,
                        "problem": problem,
                        "message": problem.to_string(),
                    }),
                }
            };
            if outcome["ok"] == true {
                let s = &outcome["summary"];
                println!(
                    "audit chain intact: entries {}..{} ({} checked), {} stored checkpoint(s) and {} given checkpoint(s) match; head {}",
                    s["first"],
                    s["last"],
                    s["entries"],
                    s["checkpoints"],
                    s["external"],
                    s["head"].as_str().unwrap_or_default()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "audit chain BROKEN: {}",
                    outcome["message"].as_str().unwrap_or("unknown problem")
                );
                Ok(ExitCode::from(1))
            }
        }
        AuditCommand::Checkpoint { output, remote } => {
            let checkpoint: Option<Checkpoint> = if remote {
                let (status, text) = super::remote::api(
                    &paths.config,
                    http::Method::POST,
                    "/v1/audit/checkpoint",
                    Vec::new(),
                )?;
                if status != 200 {
                    bail!("the service answered {status}: {text}");
                }
                let value: serde_json::Value = serde_json::from_str(&text)?;
                serde_json::from_value(value["checkpoint"].clone())?
            } else {
                super::records::open_store(paths)?.audit_checkpoint()?
            };
            let Some(checkpoint) = checkpoint else {
                bail!("the audit log is empty: nothing to sign yet");
            };
            let text = checkpoint_text(&checkpoint);
            if let Some(path) = output {
                std::fs::write(&path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
