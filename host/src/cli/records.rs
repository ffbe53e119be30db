//! `roster records ...`, `roster workers ...` and `roster models`, through the API (see
//! `client.rs`): the running service's, or the data directory's when none runs.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use super::Paths;
use super::client::{Client, Refused, print_json, query, refused, segment};
use crate::server::stream::{Piece, channel_body};
use crate::store::{ImportSummary, ModelSummary, RecordFormat};

/// `roster records` subcommands.
#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Import records from CSV (header row: id, owner, then field names) or JSON Lines
    /// (one record per line). Every row is checked first: one bad row imports nothing.
    Import {
        /// The file (`.csv`, `.jsonl` or `.ndjson`).
        file: PathBuf,
        /// The object type (required for CSV; for JSON Lines, lines without `object`).
        #[arg(long)]
        object: Option<String>,
    },
    /// Export one object type's records as JSON Lines or CSV.
    Export {
        /// The object type.
        #[arg(long)]
        object: String,
        /// `jsonl` or `csv`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// The output file (standard output when absent).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print one record.
    Get {
        /// The object type.
        object: String,
        /// The record id.
        id: String,
    },
    /// Print the records matching filters.
    Query {
        /// The object type.
        object: String,
        /// `field:op:value` filters joined by `;` (for example `status:equals:open`).
        #[arg(long = "where", default_value = "")]
        filters: String,
        /// The most records printed.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// `roster workers` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// List the installed workers.
    List,
    /// Show one worker: identity, owners, triggers, conditions, limits, recent executions.
    Show {
        /// The worker's name.
        name: String,
    },
    /// The worker inventory: owners, triggers, connected systems, data scope, permitted
    /// actions, escalation path, status, weekly accuracy, last change.
    Inventory {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Only workers this person owns (business or technical).
        #[arg(long)]
        owner: Option<String>,
        /// Only `live`, `paused` or `disabled` workers.
        #[arg(long)]
        status: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Pause a worker of the running service: its triggers are held until it is resumed.
    Pause {
        /// The worker's name.
        name: String,
        /// Why (recorded, and sent to its owners).
        #[arg(long)]
        reason: String,
    },
    /// Resume a paused worker of the running service: its held triggers run.
    Resume {
        /// The worker's name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        /// Restore a grant the kill switch revoked (after reviewing it).
        #[arg(long)]
        restore_grant: bool,
    },
    /// A worker's place on the trust curve: stage, metrics from the audit trail, and
    /// whether the next promotion is ready.
    Trust {
        /// The worker's name.
        name: String,
    },
    /// Move a worker on the trust curve (one stage up when ready, or down); through the
    /// running service, as the `ROSTER_TOKEN` account.
    Stage {
        /// The worker's name.
        name: String,
        /// assistive, supervised, conditional-autonomy or high-trust.
        #[arg(long)]
        to: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Run a worker in dry-run on a staging dataset (JSON: records and events): every
    /// action is checked and shown, none is performed, the live records are not touched.
    DryRun {
        /// The worker's name.
        name: String,
        /// The dataset file.
        #[arg(long)]
        dataset: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// How a worker's shadow version compares with the live one: runs, agreement, and
    /// where their proposed actions differed.
    Shadow {
        /// The worker's name.
        name: String,
    },
    /// The versions a worker ran and the one running now (running service).
    Versions {
        /// The worker's name.
        name: String,
    },
    /// The deployment-readiness checklist (running service).
    Readiness {
        /// The worker's name.
        name: String,
    },
    /// Put a worker in staging live, once its readiness checklist passes (running service).
    Deploy {
        /// The worker's name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Roll a worker back to the version it ran before (running service).
    Rollback {
        /// The worker's name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Report that a person reversed an action the worker performed.
    Reverse {
        /// The worker's name.
        name: String,
        /// The action's id (from the execution log) or the held action's id.
        #[arg(long)]
        action: String,
        /// What was wrong.
        #[arg(long)]
        reason: String,
    },
}

pub(super) fn records(cli: &Paths, command: RecordsCommand) -> anyhow::Result<ExitCode> {
    let client = Client::open(cli)?;
    match command {
        RecordsCommand::Import { file, object } => import(&client, &file, object.as_deref()),
        RecordsCommand::Export {
            object,
            format,
            output,
        } => export(&client, &object, &format, output.as_deref()),
        RecordsCommand::Get { object, id } => {
            let path = format!("/v1/records/{}/{}", segment(&object), segment(&id));
            match client.get(&path) {
                Ok(record) => print_json(&record),
                Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 404) => {
                    bail!("{object}/{id} does not exist")
                }
                Err(e) => Err(e),
            }
        }
        RecordsCommand::Query {
            object,
            filters,
            limit,
        } => {
            let started = std::time::Instant::now();
            let path = format!(
                "/v1/records/{}{}",
                segment(&object),
                query(&[("where", Some(filters.as_str()).filter(|f| !f.is_empty()))])
            );
            let found = client.list(&path, "records", limit.max(1))?;
            for r in &found {
                println!("{}", serde_json::to_string(r)?);
            }
            eprintln!(
                "{} records in {:.2} ms",
                found.len(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A spinner counting what arrived.
fn counter(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_string());
    bar
}

/// Streams the file to the API while a bar shows how much is sent; the service checks
/// every row, then writes them.
fn import(client: &Client, path: &Path, object: Option<&str>) -> anyhow::Result<ExitCode> {
    let format = RecordFormat::of_path(path)?;
    if format == RecordFormat::Csv && object.is_none() {
        bail!("CSV imports need --object");
    }
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata()?.len();
    let progress = bar(size, "sending");
    // The body is complete only when the whole file was read: a read that fails (or a
    // reader that stops) cuts the request, and the service imports nothing.
    let (tx, body) = channel_body(8);
    let shown = progress.clone();
    client.spawn_blocking(move || {
        let mut buffer = vec![0u8; 256 * 1024];
        let last = loop {
            let n = match file.read(&mut buffer) {
                Ok(0) => break Piece::End,
                Ok(n) => n,
                Err(e) => break Piece::Failed(format!("reading the file: {e}")),
            };
            let piece = Piece::Data(hyper::body::Bytes::copy_from_slice(&buffer[..n]));
            if tx.blocking_send(piece).is_err() {
                return;
            }
            shown.inc(n as u64);
        };
        let _ = tx.blocking_send(last);
        shown.set_message("checking and writing");
    });
    let started = std::time::Instant::now();
    let format_name = match format {
        RecordFormat::Csv => "csv",
        RecordFormat::Jsonl => "jsonl",
    };
    let target = format!(
        "/v1/imports/records{}",
        query(&[("format", Some(format_name)), ("object", object)])
    );
    let response = client.send(http::Method::POST, &target, format.media_type(), body);
    progress.finish_and_clear();
    let response = response?;
    let status = response.status().as_u16();
    let answer = client.collect(response.into_body())?;
    if !(200..300).contains(&status) {
        let why = refused(status, &answer).detail;
        // The service names the line; the file's name goes with it.
        match why
            .strip_prefix("line ")
            .and_then(|rest| rest.split_once(": "))
            .filter(|(n, _)| n.parse::<u64>().is_ok())
        {
            Some((n, rest)) => bail!("{}:{n}: {rest}", path.display()),
            None => bail!("{}: {why}", path.display()),
        }
    }
    let summary: ImportSummary = serde_json::from_slice(&answer)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} records ({} new or changed) in {secs:.1} s ({:.0} records/s)",
        summary.rows,
        summary.changed,
        summary.rows as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// Streams an object's records from the API to a file (or standard output) while a
/// counter shows how many arrived.
fn export(
    client: &Client,
    object: &str,
    format: &str,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if format != "jsonl" && format != "csv" {
        bail!("unknown format `{format}` (use jsonl or csv)");
    }
    let target = format!("/v1/exports/records/{}?format={format}", segment(object));
    let out: Box<dyn Write> = match output {
        Some(p) => Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let progress = counter("exporting");
    if output.is_none() {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let lines = client.download(&target, &mut out, &progress)?;
    let count = if format == "csv" {
        lines.saturating_sub(1)
    } else {
        lines
    };
    eprintln!("exported {count} {object} records");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn workers(cli: &Paths, command: WorkersCommand) -> anyhow::Result<ExitCode> {
    let client = Client::open(cli)?;
    let worker = |name: &str, what: &str| format!("/v1/workers/{}/{what}", segment(name));
    match command {
        WorkersCommand::Pause { name, reason } => client.print_post(
            &worker(&name, "pause"),
            &serde_json::json!({ "reason": reason }),
        ),
        WorkersCommand::Resume {
            name,
            reason,
            restore_grant,
        } => client.print_post(
            &worker(&name, "resume"),
            &serde_json::json!({ "reason": reason, "restore_grant": restore_grant }),
        ),
        WorkersCommand::Trust { name } => client.print_get(&worker(&name, "trust")),
        WorkersCommand::DryRun {
            name,
            dataset,
            json,
        } => super::versions::dry_run(&client, &name, &dataset, json),
        WorkersCommand::Versions { name } => client.print_get(&worker(&name, "versions")),
        WorkersCommand::Shadow { name } => client.print_get(&worker(&name, "shadow")),
        WorkersCommand::Readiness { name } => client.print_get(&worker(&name, "readiness")),
        WorkersCommand::Deploy { name, reason } => client.print_post(
            &worker(&name, "deploy"),
            &serde_json::json!({ "reason": reason }),
        ),
        WorkersCommand::Rollback { name, reason } => client.print_post(
            &worker(&name, "rollback"),
            &serde_json::json!({ "reason": reason }),
        ),
        WorkersCommand::Stage { name, to, reason } => client.print_post(
            &worker(&name, "stage"),
            &serde_json::json!({ "to": to, "reason": reason }),
        ),
        WorkersCommand::Reverse {
            name,
            action,
            reason,
        } => client.print_post(
            &worker(&name, "reversals"),
            &serde_json::json!({ "action": action, "reason": reason }),
        ),
        WorkersCommand::Inventory {
            domain,
            owner,
            status,
            json,
        } => {
            let path = format!(
                "/v1/inventory{}",
                query(&[
                    ("domain", domain.as_deref()),
                    ("owner", owner.as_deref()),
                    ("status", status.as_deref()),
                ])
            );
            let entries = client.list(&path, "workers", usize::MAX)?;
            inventory(&entries, json)
        }
        WorkersCommand::List => {
            let workers = client.list("/v1/workers", "workers", usize::MAX)?;
            if workers.is_empty() {
                println!("no workers installed (add them to `workers` in roster.toml)");
            }
            for w in &workers {
                let text = |k: &str| w[k].as_str().unwrap_or_default().to_string();
                println!(
                    "{:<24} {} {} ({}) as {}{} — {}",
                    text("name"),
                    text("plugin"),
                    text("version"),
                    text("domain"),
                    text("principal"),
                    if w["enabled"] == true {
                        ""
                    } else {
                        " [disabled]"
                    },
                    strings(&w["triggers"]).join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        WorkersCommand::Show { name } => {
            let w = client.get(&format!("/v1/workers/{}", segment(&name)))?;
            let text = |k: &str| w[k].as_str().unwrap_or_default().to_string();
            println!("name        {}", text("name"));
            println!("plugin      {} {}", text("plugin"), text("version"));
            println!("domain      {}", text("domain"));
            println!("purpose     {}", text("description"));
            println!(
                "owners      business {}, technical {}",
                w["owners"]["business"].as_str().unwrap_or_default(),
                w["owners"]["technical"].as_str().unwrap_or_default()
            );
            println!("principal   {}", text("principal"));
            println!("enabled     {}", w["enabled"]);
            println!("paused      {}", w["paused"]);
            println!("config      {}", text("config"));
            for t in strings(&w["triggers"]) {
                println!("trigger     {t}");
            }
            println!("conditions  {}", text("conditions"));
            println!("granted     {}", strings(&w["granted"]).join(", "));
            let recent = w["recent"].as_array().cloned().unwrap_or_default();
            println!("latest      {} execution(s), newest first", recent.len());
            for e in &recent {
                println!(
                    "  #{} {} {} {}",
                    e["seq"],
                    e["status"].as_str().unwrap_or_default(),
                    e["record"].as_str().unwrap_or("-"),
                    e["detail"].as_str().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The strings of a JSON array.
fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn inventory(entries: &[serde_json::Value], json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no workers match");
    }
    for e in entries {
        let list = |key: &str| strings(&e[key]).join("; ");
        let weeks: Vec<String> = e["accuracy_history"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|w| format!("{}/{}", w["succeeded"], w["executions"]))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{} — {} {} [{}] {}",
            e["name"].as_str().unwrap_or_default(),
            e["plugin"].as_str().unwrap_or_default(),
            e["version"].as_str().unwrap_or_default(),
            e["domain"].as_str().unwrap_or_default(),
            e["status"].as_str().unwrap_or_default()
        );
        println!(
            "  purpose      {}",
            e["purpose"].as_str().unwrap_or_default()
        );
        println!(
            "  owners       business {}, technical {}",
            e["business_owner"].as_str().unwrap_or_default(),
            e["technical_owner"].as_str().unwrap_or_default()
        );
        println!("  triggers     {}", list("triggers"));
        println!("  connects to  {}", list("connected_systems"));
        println!("  data scope   {}", list("data_scope"));
        println!("  may          {}", list("permitted_actions"));
        println!(
            "  escalation   {}",
            e["escalation_path"].as_str().unwrap_or_default()
        );
        println!("  checkpoints  {}", list("review_checkpoints"));
        println!(
            "  succeeded    {} (per week, oldest first)",
            weeks.join("  ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `roster models`: the offline models, what they learnt from and how reviewers judged
/// their predictions.
pub(super) fn models(cli: &Paths, json: bool) -> anyhow::Result<ExitCode> {
    let answer = Client::open(cli)?.get("/v1/models")?;
    let models: Vec<ModelSummary> = serde_json::from_value(answer["models"].clone())
        .context("the models the service answered")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&models)?);
        return Ok(ExitCode::SUCCESS);
    }
    if models.is_empty() {
        println!("no offline models yet (workers create them when they learn or classify)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<30} {:<18} {:>9} {:>11} {:>9} {:>11}  labels",
        "plugin", "model", "reviewed", "temperature", "predicted", "confirmed"
    );
    for m in &models {
        println!(
            "{:<30} {:<18} {:>9} {:>11.2} {:>9} {:>11}  {}",
            m.plugin,
            m.model,
            m.reviewed,
            m.temperature,
            m.predictions,
            m.confirmed,
            m.labels.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
