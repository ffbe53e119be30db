//! `roster audit`: search and export the audit trail, verify its hash chain and sign
//! checkpoints to keep elsewhere, through the API (see `client.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::Paths;
use super::client::{Client, query};
use crate::store::{Checkpoint, ExecutionEntry, checkpoint_text, csv_row};

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
    },
    /// Find audit entries (newest last).
    Search {
        /// Which entries.
        #[command(flatten)]
        filter: Filter,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the entries as JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Export audit entries as JSON Lines (each with its hash, for checking the chain
    /// elsewhere) or CSV, streamed with a progress bar.
    Export {
        /// Which entries.
        #[command(flatten)]
        filter: Filter,
        /// `jsonl` or `csv`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// The file to write.
        #[arg(long)]
        output: PathBuf,
    },
    /// Per worker: capabilities requested by the manifest, imported by the component and
    /// granted; grants never imported or never called; changes across installed versions.
    Grants {
        /// Count calls over this many days of the audit trail.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Print JSON (for security tooling) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sign the chain's current head and print the checkpoint (JSON) to keep elsewhere.
    Checkpoint {
        /// Also write it to this file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Filters shared by `search` and `export`.
#[derive(Debug, clap::Args)]
pub struct Filter {
    /// The installed worker's name.
    #[arg(long)]
    worker: Option<String>,
    /// The record, as `object/id`.
    #[arg(long)]
    record: Option<String>,
    /// The principal the worker acted as.
    #[arg(long)]
    principal: Option<String>,
    /// The final status (`success`, `failed`, ...).
    #[arg(long)]
    status: Option<String>,
    /// An action type: `http`, `records.create`, `notify.send`, ...
    #[arg(long)]
    action: Option<String>,
    /// Started at or after (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Started before (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    until: Option<String>,
}

impl Filter {
    /// The filter as a query string of the audit API (times checked here first, so a
    /// mistyped one is named by its flag).
    fn query(&self, extra: &[(&str, Option<&str>)]) -> anyhow::Result<String> {
        for (t, flag) in [(&self.since, "since"), (&self.until, "until")] {
            if let Some(t) = t {
                crate::schema::parse_time(t)
                    .with_context(|| format!("--{flag} `{t}`: use RFC 3339 or YYYY-MM-DD"))?;
            }
        }
        let mut pairs = vec![
            ("worker", self.worker.as_deref()),
            ("record", self.record.as_deref()),
            ("principal", self.principal.as_deref()),
            ("status", self.status.as_deref()),
            ("action", self.action.as_deref()),
            ("since", self.since.as_deref()),
            ("until", self.until.as_deref()),
        ];
        pairs.extend_from_slice(extra);
        Ok(query(&pairs))
    }
}

fn read_checkpoint(path: &PathBuf) -> anyhow::Result<Checkpoint> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a checkpoint", path.display()))
}

pub(super) fn audit(paths: &Paths, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let client = Client::open(paths)?;
    match command {
        AuditCommand::Verify { checkpoints } => {
            let external = checkpoints
                .iter()
                .map(read_checkpoint)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let outcome = client.post(
                "/v1/audit/verify",
                &serde_json::json!({ "checkpoints": external }),
            )?;
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
        AuditCommand::Grants { days, json } => {
            let answer = client.get(&format!("/v1/audit/grants?days={days}"))?;
            let report: crate::distribution::grant_audit::GrantReport =
                serde_json::from_value(answer).context("the grant report")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Search {
            filter,
            limit,
            json,
        } => {
            let path = format!("/v1/audit{}", filter.query(&[])?);
            let found = client.list(&path, "entries", limit.max(1))?;
            for item in &found {
                if json {
                    println!("{}", serde_json::to_string(item)?);
                    continue;
                }
                let e: ExecutionEntry = serde_json::from_value(item["entry"].clone())
                    .context("an audit entry the service answered")?;
                let row = csv_row(&e, item["hash"].as_str().unwrap_or_default());
                println!(
                    "{:>6}  {}  {:<20} {:<10} {:<14} {:<24} {}",
                    e.seq,
                    row[12],
                    e.worker,
                    e.status,
                    e.failure.as_deref().unwrap_or("-"),
                    e.record.as_deref().unwrap_or("-"),
                    e.detail.as_deref().unwrap_or("")
                );
            }
            if !json {
                let n = found.len();
                eprintln!("{n} entr{}", if n == 1 { "y" } else { "ies" });
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export {
            filter,
            format,
            output,
        } => {
            if format != "jsonl" && format != "csv" {
                bail!("--format `{format}`: use jsonl or csv");
            }
            let path = format!(
                "/v1/audit/export{}",
                filter.query(&[("format", Some(format.as_str()))])?
            );
            let file = std::fs::File::create(&output)
                .with_context(|| format!("creating {}", output.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let progress = indicatif::ProgressBar::new_spinner();
            progress.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} exporting {pos} entries ({per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let lines = client
                .download(&path, &mut out, &progress)
                .with_context(|| format!("exporting to {}", output.display()))?;
            let written = if format == "csv" {
                lines.saturating_sub(1)
            } else {
                lines
            };
            eprintln!("exported {written} entries to {}", output.display());
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint { output } => {
            let answer = client.post("/v1/audit/checkpoint", &serde_json::Value::Null)?;
            let checkpoint: Option<Checkpoint> =
                serde_json::from_value(answer["checkpoint"].clone())?;
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
