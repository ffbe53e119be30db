//! `roster records ...` and `roster workers ...`: on the data directory directly (the
//! embedded store allows one process at a time, so stop `roster serve` first, or use the
//! HTTP API while it runs).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Paths, open_store};
use crate::clock::SystemClock;
use crate::store::{RecordQuery, StoreError};
use crate::value::{FieldValue, Record};

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
        /// Ask the running service instead of opening the data directory.
        #[arg(long)]
        remote: bool,
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
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
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
        /// Run it in the running service (recorded in its audit trail).
        #[arg(long)]
        remote: bool,
    },
    /// How a worker's shadow version compares with the live one: runs, agreement, and
    /// where their proposed actions differed.
    Shadow {
        /// The worker's name.
        name: String,
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
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
    match command {
        RecordsCommand::Import { file, object } => import(cli, &file, object.as_deref()),
        RecordsCommand::Export {
            object,
            format,
            output,
        } => export(cli, &object, &format, output.as_deref()),
        RecordsCommand::Get { object, id } => {
            let store = open_store(cli)?;
            store.schema().object(&object)?;
            match store.get_record(&object, &id)? {
                Some(r) => {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!("{object}/{id} does not exist"),
            }
        }
        RecordsCommand::Query {
            object,
            filters,
            limit,
        } => {
            let filters = crate::server::parse_where(&filters).map_err(anyhow::Error::msg)?;
            let store = open_store(cli)?;
            let started = std::time::Instant::now();
            let found = store.query(&RecordQuery {
                object,
                filters,
                owners: None,
                limit,
            })?;
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

/// Reads records from a CSV or JSON Lines file, calling `f` with each (line, record).
fn read_records(
    path: &Path,
    object: Option<&str>,
    progress: &ProgressBar,
    mut f: impl FnMut(usize, Record) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    match ext {
        "csv" => {
            let object = object.context("CSV imports need --object")?;
            let mut reader = csv::Reader::from_reader(progress.wrap_read(file));
            let headers = reader.headers()?.clone();
            if headers.iter().all(|h| h != "id") {
                bail!("{}: the header row needs an `id` column", path.display());
            }
            for (i, row) in reader.records().enumerate() {
                let line = i + 2;
                let row = row.with_context(|| format!("{}:{line}", path.display()))?;
                let mut record = Record {
                    object: object.to_string(),
                    id: String::new(),
                    owner: None,
                    fields: BTreeMap::new(),
                };
                for (name, cell) in headers.iter().zip(row.iter()) {
                    match name {
                        "id" => record.id = cell.to_string(),
                        "owner" if !cell.is_empty() => record.owner = Some(cell.to_string()),
                        "owner" => {}
                        _ if cell.is_empty() => {}
                        field => {
                            record
                                .fields
                                .insert(field.to_string(), FieldValue::Text(cell.to_string()));
                        }
                    }
                }
                f(line, record)?;
            }
        }
        "jsonl" | "ndjson" => {
            let reader = BufReader::new(progress.wrap_read(file));
            for (i, line) in reader.lines().enumerate() {
                let line_no = i + 1;
                let line = line.with_context(|| format!("{}:{line_no}", path.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let mut value: serde_json::Value = serde_json::from_str(&line)
                    .with_context(|| format!("{}:{line_no}: not JSON", path.display()))?;
                if let (Some(o), Some(map)) = (object, value.as_object_mut()) {
                    map.entry("object").or_insert_with(|| o.into());
                }
                let record: Record = serde_json::from_value(value)
                    .with_context(|| format!("{}:{line_no}: not a record", path.display()))?;
                f(line_no, record)?;
            }
        }
        other => bail!(
            "{}: unknown format `{other}` (use .csv, .jsonl or .ndjson)",
            path.display()
        ),
    }
    Ok(())
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

fn import(cli: &Paths, path: &Path, object: Option<&str>) -> anyhow::Result<ExitCode> {
    let store = open_store(cli)?;
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();

    // Pass 1: check every row; nothing is written if any row is wrong.
    let check = bar(size, "checking");
    let mut ids = BTreeSet::new();
    let mut rows = 0usize;
    read_records(path, object, &check, |line, record| {
        let key = (record.object.clone(), record.id.clone());
        store
            .check_record(record)
            .with_context(|| format!("{}:{line}", path.display()))?;
        if !ids.insert(key.clone()) {
            bail!(
                "{}:{line}: {}/{} appears twice",
                path.display(),
                key.0,
                key.1
            );
        }
        rows += 1;
        Ok(())
    })?;
    check.finish_and_clear();

    // Pass 2: write in batches, each batch one durable transaction.
    let write = bar(size, "importing");
    let started = std::time::Instant::now();
    let mut batch = Vec::with_capacity(5000);
    let mut changed = 0usize;
    read_records(path, object, &write, |_, record| {
        batch.push(record);
        if batch.len() == 5000 {
            changed += store.import_records(std::mem::take(&mut batch), "import")?;
        }
        Ok(())
    })?;
    changed += store.import_records(batch, "import")?;
    write.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {rows} records ({changed} new or changed) in {secs:.1} s ({:.0} records/s)",
        rows as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

fn export(
    cli: &Paths,
    object: &str,
    format: &str,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let store = open_store(cli)?;
    let def = store.schema().object(object)?.clone();
    let out: Box<dyn Write> = match output {
        Some(p) => Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let mut count = 0usize;
    let mut failure = None;
    match format {
        "jsonl" => {
            store.for_each_record(object, |r| {
                count += 1;
                match serde_json::to_string(&r).map(|line| writeln!(out, "{line}")) {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        failure = Some(anyhow::Error::from(e));
                        false
                    }
                    Err(e) => {
                        failure = Some(e.into());
                        false
                    }
                }
            })?;
        }
        "csv" => {
            let fields: Vec<&String> = def.fields.keys().collect();
            let mut writer = csv::Writer::from_writer(&mut out);
            let mut header = vec!["id".to_string(), "owner".to_string()];
            header.extend(fields.iter().map(|f| f.to_string()));
            writer.write_record(&header)?;
            store.for_each_record(object, |r| {
                count += 1;
                let mut row = vec![r.id.clone(), r.owner.clone().unwrap_or_default()];
                row.extend(fields.iter().map(|f| cell(r.fields.get(*f))));
                match writer.write_record(&row) {
                    Ok(()) => true,
                    Err(e) => {
                        failure = Some(e.into());
                        false
                    }
                }
            })?;
            writer.flush()?;
        }
        other => bail!("unknown format `{other}` (use jsonl or csv)"),
    }
    if let Some(e) = failure {
        return Err(e);
    }
    out.flush()?;
    eprintln!("exported {count} {object} records");
    Ok(ExitCode::SUCCESS)
}

/// A CSV cell for a value (timestamps as RFC 3339, lists joined with `;`).
fn cell(v: Option<&FieldValue>) -> String {
    match v {
        None | Some(FieldValue::Null) => String::new(),
        Some(FieldValue::Text(t)) => t.clone(),
        Some(FieldValue::Integer(n)) => n.to_string(),
        Some(FieldValue::Number(n)) => n.to_string(),
        Some(FieldValue::Boolean(b)) => b.to_string(),
        Some(FieldValue::TextList(l)) => l.join(";"),
        Some(FieldValue::Timestamp { timestamp }) => {
            chrono::DateTime::from_timestamp_millis(*timestamp)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        }
    }
}

pub(super) fn workers(cli: &Paths, command: WorkersCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkersCommand::Pause { name, reason } => {
            let body = serde_json::json!({ "reason": reason });
            return super::remote::control(&cli.config, &format!("/v1/workers/{name}/pause"), body);
        }
        WorkersCommand::Resume {
            name,
            reason,
            restore_grant,
        } => {
            let body = serde_json::json!({ "reason": reason, "restore_grant": restore_grant });
            return super::remote::control(
                &cli.config,
                &format!("/v1/workers/{name}/resume"),
                body,
            );
        }
        WorkersCommand::Trust { name, remote } => {
            return super::approvals::trust(cli, &name, remote);
        }
        WorkersCommand::DryRun {
            name,
            dataset,
            json,
            remote,
        } => return super::versions::dry_run(cli, &name, &dataset, json, remote),
        WorkersCommand::Versions { name } => return super::versions::show(cli, &name, "versions"),
        WorkersCommand::Shadow { name, remote } => {
            return super::versions::shadow(cli, &name, remote);
        }
        WorkersCommand::Readiness { name } => {
            return super::versions::show(cli, &name, "readiness");
        }
        WorkersCommand::Deploy { name, reason } => {
            return super::versions::act(cli, &name, "deploy", &reason);
        }
        WorkersCommand::Rollback { name, reason } => {
            return super::versions::act(cli, &name, "rollback", &reason);
        }
        WorkersCommand::Stage { name, to, reason } => {
            return super::approvals::stage(cli, &name, &to, &reason);
        }
        WorkersCommand::Reverse {
            name,
            action,
            reason,
        } => return super::approvals::reverse(cli, &name, &action, &reason),
        WorkersCommand::Inventory {
            domain,
            owner,
            status,
            json,
            remote,
        } => {
            let filter = crate::service::inventory::InventoryFilter {
                domain,
                owner,
                status,
            };
            return inventory(cli, filter, json, remote);
        }
        _ => {}
    }
    let config = super::host_config(cli)?;
    match command {
        WorkersCommand::Pause { .. }
        | WorkersCommand::Resume { .. }
        | WorkersCommand::Trust { .. }
        | WorkersCommand::DryRun { .. }
        | WorkersCommand::Versions { .. }
        | WorkersCommand::Shadow { .. }
        | WorkersCommand::Readiness { .. }
        | WorkersCommand::Deploy { .. }
        | WorkersCommand::Rollback { .. }
        | WorkersCommand::Stage { .. }
        | WorkersCommand::Reverse { .. }
        | WorkersCommand::Inventory { .. } => {}
        WorkersCommand::List => {
            if config.workers.is_empty() {
                println!("no workers installed (add them to `workers` in roster.toml)");
            }
            for w in &config.workers {
                let m = &w.manifest.plugin;
                let triggers: Vec<&str> = w.triggers.iter().map(|t| t.label.as_str()).collect();
                println!(
                    "{:<24} {} {} ({:?}) as {}{} — {}",
                    w.name,
                    m.id,
                    m.version,
                    m.domain,
                    w.grant.grant.principal,
                    if w.enabled { "" } else { " [disabled]" },
                    triggers.join(", ")
                );
            }
        }
        WorkersCommand::Show { name } => {
            let w = config
                .workers
                .iter()
                .find(|w| w.name == name)
                .with_context(|| format!("no worker named `{name}`"))?;
            let m = &w.manifest;
            println!("name        {}", w.name);
            println!("plugin      {} {}", m.plugin.id, m.plugin.version);
            println!("domain      {:?}", m.plugin.domain);
            println!("purpose     {}", m.plugin.description);
            println!(
                "owners      business {}, technical {}",
                m.owners.business, m.owners.technical
            );
            println!("principal   {}", w.grant.grant.principal);
            println!("enabled     {}", w.enabled);
            println!("config      {}", w.path.display());
            for t in &w.triggers {
                println!("trigger     {}", t.label);
            }
            println!("conditions  {:?}", w.conditions);
            let granted: Vec<&str> = crate::scope::CapabilityName::ALL
                .iter()
                .filter(|c| w.grant.capabilities.has(**c))
                .map(|c| c.as_str())
                .collect();
            println!("granted     {}", granted.join(", "));
            if let Ok(store) = open_store(cli) {
                let recent: Vec<_> = store
                    .executions_after(0, usize::MAX)?
                    .into_iter()
                    .filter(|e| e.worker == name)
                    .collect();
                println!("executions  {} recorded", recent.len());
                for e in recent.iter().rev().take(10) {
                    println!(
                        "  #{} {} {} {}",
                        e.seq,
                        e.status,
                        e.record.as_deref().unwrap_or("-"),
                        e.detail.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn inventory(
    cli: &Paths,
    filter: crate::service::inventory::InventoryFilter,
    json: bool,
    remote: bool,
) -> anyhow::Result<ExitCode> {
    let entries: Vec<serde_json::Value> = if remote {
        let mut query = Vec::new();
        for (key, value) in [
            ("domain", &filter.domain),
            ("owner", &filter.owner),
            ("status", &filter.status),
        ] {
            if let Some(v) = value {
                query.push(format!(
                    "{key}={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                ));
            }
        }
        let path = format!("/v1/inventory?{}", query.join("&"));
        let (status, text) = super::remote::api(&cli.config, http::Method::GET, &path, Vec::new())?;
        if status != 200 {
            anyhow::bail!("the service answered {status}: {text}");
        }
        let value: serde_json::Value = serde_json::from_str(&text)?;
        value["workers"].as_array().cloned().unwrap_or_default()
    } else {
        let config = super::host_config(cli)?;
        let store = open_store(cli)?;
        let now = crate::clock::Clock::now_ms(&SystemClock);
        let since = now - crate::service::inventory::HISTORY_WEEKS * 7 * crate::clock::DAY_MS;
        let recent = store.executions_since(since)?;
        let controls = store.controls()?;
        config
            .workers
            .iter()
            .map(|w| {
                let mine: Vec<_> = recent.iter().filter(|e| e.worker == w.name).collect();
                let deployment = store.deployment(&w.name)?;
                let stage =
                    crate::governance::trust::current_stage(&store, &w.name, w.starting_stage())?;
                Ok(crate::service::inventory::describe(
                    w,
                    controls.get(&w.name),
                    deployment.as_ref(),
                    stage,
                    &mine,
                    now,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?
            .into_iter()
            .filter(|e| filter.matches(e))
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect()
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no workers match");
    }
    for e in &entries {
        let list = |key: &str| {
            e[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
        };
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
    let store = open_store(cli)?;
    let models = store.models()?;
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
