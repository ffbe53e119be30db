//! `roster audit`: search and export the audit trail, verify its hash chain and sign
//! checkpoints to keep elsewhere. Works on the data directory (service stopped), or with `--remote` through a
//! running service's API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::Paths;
use crate::store::{AuditQuery, CSV_COLUMNS, Checkpoint, checkpoint_text, csv_row, export_item};

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
    fn query(self) -> anyhow::Result<AuditQuery> {
        let time = |t: Option<String>, flag: &str| -> anyhow::Result<Option<i64>> {
            t.map(|t| {
                crate::schema::parse_time(&t)
                    .with_context(|| format!("--{flag} `{t}`: use RFC 3339 or YYYY-MM-DD"))
            })
            .transpose()
        };
        Ok(AuditQuery {
            since: time(self.since, "since")?,
            until: time(self.until, "until")?,
            worker: self.worker,
            record: self.record,
            principal: self.principal,
            status: self.status,
            action: self.action,
            after: None,
        })
    }
}

/// Where exported entries go: CSV rows or JSON Lines.
enum Sink<'a, W: std::io::Write> {
    Csv(Box<csv::Writer<&'a mut W>>),
    Jsonl(&'a mut W),
}

impl<W: std::io::Write> Sink<'_, W> {
    fn write(
        &mut self,
        e: &crate::store::ExecutionEntry,
        raw: &[u8],
        hash: &str,
    ) -> anyhow::Result<()> {
        match self {
            Sink::Csv(w) => w.write_record(csv_row(e, hash))?,
            Sink::Jsonl(out) => writeln!(out, "{}", export_item(e.seq, raw, hash))?,
        }
        Ok(())
    }

    /// Flushes everything written to the file.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Csv(mut w) => w.flush(),
            Sink::Jsonl(out) => out.flush(),
        }
    }
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
                let store = super::open_store(paths)?;
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
        AuditCommand::Grants { days, json, remote } => {
            let report: crate::distribution::grant_audit::GrantReport = if remote {
                let (status, text) = super::remote::api(
                    &paths.config,
                    http::Method::GET,
                    &format!("/v1/audit/grants?days={days}"),
                    Vec::new(),
                )?;
                if status != 200 {
                    anyhow::bail!("the service answered {status}: {text}");
                }
                serde_json::from_str(&text).context("the service's grant report")?
            } else {
                let config = super::host_config(paths)?;
                let store = super::open_store(paths)?;
                crate::distribution::grant_audit::report(&config, &store, days)?
            };
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
            let query = filter.query()?;
            let store = super::open_store(paths)?;
            let mut found = 0;
            store.audit_scan(&query, |e, raw, hash| {
                found += 1;
                if json {
                    println!("{}", export_item(e.seq, raw, hash));
                } else {
                    let row = csv_row(e, hash);
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
                found < limit
            })?;
            if !json {
                eprintln!("{found} entr{}", if found == 1 { "y" } else { "ies" });
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
            let query = filter.query()?;
            let store = super::open_store(paths)?;
            let file = std::fs::File::create(&output)
                .with_context(|| format!("creating {}", output.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let progress = indicatif::ProgressBar::new(store.audit_len()?);
            progress.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>10} [{bar:40}] {pos}/{len} entries ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            progress.set_message("exporting");
            let mut sink = if format == "csv" {
                let mut w = csv::Writer::from_writer(&mut out);
                w.write_record(CSV_COLUMNS)?;
                Sink::Csv(Box::new(w))
            } else {
                Sink::Jsonl(&mut out)
            };
            let (mut written, mut failure) = (0u64, None);
            store.audit_scan(&query, |e, raw, hash| {
                progress.set_position(e.seq);
                match sink.write(e, raw, hash) {
                    Ok(()) => {
                        written += 1;
                        true
                    }
                    Err(err) => {
                        failure = Some(err);
                        false
                    }
                }
            })?;
            sink.finish()?;
            progress.finish_and_clear();
            if let Some(err) = failure {
                return Err(err.context(format!("writing {}", output.display())));
            }
            eprintln!("exported {written} entries to {}", output.display());
            Ok(ExitCode::SUCCESS)
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
                super::open_store(paths)?.audit_checkpoint()?
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
