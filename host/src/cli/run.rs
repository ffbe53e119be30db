//! `roster run`, `inspect`, `build` and `demo`: one worker, one event, no service.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::InspectArgs;
use super::RunArgs;
use crate::sandbox::gate::{ActionResult, Mode};
use crate::sandbox::imports;
use crate::sandbox::report::ExecutionReport;
use crate::{EventInput, Grant, Manifest, Runtime, RuntimeConfig};

/// The directory beside which default files are looked up.
fn plugin_home(plugin: &Path) -> PathBuf {
    if plugin.is_dir() {
        plugin.to_path_buf()
    } else {
        plugin.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// The component bytes: the file itself, or the result of building a source directory.
pub(super) fn component_bytes(plugin: &Path) -> anyhow::Result<Vec<u8>> {
    let path = if plugin.is_dir() {
        let built = build(plugin)?;
        match built.as_slice() {
            [one] => one.path.clone(),
            [] => bail!("{} builds no component", plugin.display()),
            _ => bail!(
                "{} builds several components; pass one .wasm file",
                plugin.display()
            ),
        }
    } else {
        plugin.to_path_buf()
    };
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

pub(super) fn build(dir: &Path) -> anyhow::Result<Vec<roster_guest_build::Built>> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("guests");
    let target_dir = std::path::absolute(&target_dir).context("resolving the target directory")?;
    eprintln!(
        "building {} for {} ...",
        dir.display(),
        roster_guest_build::TARGET
    );
    roster_guest_build::build(dir, &target_dir).map_err(anyhow::Error::from)
}

pub(super) fn run(data_dir: &Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    let home = plugin_home(&args.plugin);
    let manifest = Manifest::load(&args.manifest.unwrap_or_else(|| home.join("worker.toml")))?;
    let grant = Grant::load(&args.grant.unwrap_or_else(|| home.join("grant.toml")))?;
    let event_path = args.event.unwrap_or_else(|| home.join("event.json"));
    let event = if event_path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the event from standard input")?;
        EventInput::parse("<stdin>", &text)?
    } else {
        let text = crate::config_file::read_text(&event_path)?;
        EventInput::parse(&event_path.display().to_string(), &text)?
    };
    let records = match args.records {
        Some(path) => Some(crate::cli::fixtures::read_records(&path)?),
        None => {
            let default = home.join("records.jsonl");
            default
                .is_file()
                .then(|| crate::cli::fixtures::read_records(&default))
                .transpose()?
        }
    };
    // Check everything the command was given before anything is changed.
    let bytes = component_bytes(&args.plugin)?;
    let info = imports::inspect(&bytes)?;
    crate::sandbox::loader::plan(&info, &manifest, &grant)?;
    grant.check_against(&manifest)?;
    let runtime = Runtime::open(RuntimeConfig::new(data_dir))?;
    let worker = runtime.load(&bytes, &manifest, &grant)?;
    if let Some(records) = records {
        runtime.store().put_records(&records)?;
    }
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Live
    };
    let report = worker.execute(&event, mode)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.status.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// Prints a report for a person.
pub fn print_report(r: &ExecutionReport) {
    println!("worker    {} {} (as {})", r.worker, r.version, r.principal);
    println!("event     {}", r.event_id);
    println!("status    {}", r.status);
    if let Some(o) = &r.outcome {
        let confidence = o
            .confidence
            .map(|c| format!(" (confidence {c:.2})"))
            .unwrap_or_default();
        println!("outcome   {}{confidence}", o.summary);
    }
    if let Some(e) = &r.error {
        println!("error     {e}");
    }
    println!("actions   {}", r.actions.len());
    for a in &r.actions {
        let result = match &a.result {
            ActionResult::Performed { output } => format!("performed {output}"),
            ActionResult::DryRun => "dry-run (not performed)".into(),
            ActionResult::Held { approval, reasons } => {
                format!("HELD for approval as {approval}: {}", reasons.join("; "))
            }
            ActionResult::Denied { reason } => format!("DENIED: {reason}"),
            ActionResult::Failed { error } => format!("failed: {error}"),
        };
        println!(
            "  {:<3} {}.{} {}  {result}",
            a.id.rsplit('/').next().unwrap_or(""),
            a.capability,
            a.operation,
            a.target
        );
    }
    if !r.logs.is_empty() {
        println!("logs");
        for l in &r.logs {
            println!("  {:<5} {}", l.level, l.message);
        }
    }
    if !r.output.is_empty() {
        println!("output");
        for line in r.output.lines() {
            println!("  {line}");
        }
    }
    if let Some(bt) = &r.backtrace {
        println!("backtrace");
        for line in bt.lines() {
            println!("  {line}");
        }
    }
    println!(
        "fuel {}  host calls {}  duration {:.2} ms",
        r.fuel_consumed,
        r.host_calls,
        r.duration_us as f64 / 1000.0
    );
}

pub(super) fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let home = plugin_home(&args.plugin);
    let manifest = Manifest::load(&args.manifest.unwrap_or_else(|| home.join("worker.toml")))?;
    let grant_path = args.grant.unwrap_or_else(|| home.join("grant.toml"));
    let grant = grant_path
        .is_file()
        .then(|| Grant::load(&grant_path))
        .transpose()?;
    let bytes = component_bytes(&args.plugin)?;
    let info = imports::inspect(&bytes)?;

    println!(
        "plugin    {} {} ({:?} domain)",
        manifest.plugin.id, manifest.plugin.version, manifest.plugin.domain
    );
    println!("exports");
    for e in &info.exports {
        println!("  {e}");
    }
    println!("imports   (class / requested by manifest / granted)");
    for name in &info.imports {
        let class = imports::classify(name);
        let (requested, granted) = match &class {
            imports::ImportClass::Capability(cap) => (
                if manifest.capabilities.has(*cap) {
                    if manifest.is_optional(*cap) {
                        "requested (optional)"
                    } else {
                        "requested"
                    }
                } else {
                    "NOT REQUESTED"
                },
                match &grant {
                    Some(g) if g.capabilities.has(*cap) => "granted",
                    Some(_) => "NOT GRANTED",
                    None => "-",
                },
            ),
            _ => ("-", "-"),
        };
        println!("  {name}\n      {class} / {requested} / {granted}");
    }
    let requested_unused: Vec<&str> = crate::scope::CapabilityName::ALL
        .iter()
        .filter(|c| manifest.capabilities.has(**c))
        .filter(|c| {
            !info
                .imports
                .iter()
                .any(|i| imports::split_version(i).0 == c.interface())
        })
        .map(|c| c.as_str())
        .collect();
    if !requested_unused.is_empty() {
        println!(
            "requested but not imported: {}",
            requested_unused.join(", ")
        );
    }
    if let Some(grant) = &grant {
        match crate::sandbox::loader::plan(&info, &manifest, grant) {
            Ok(_) => println!("verdict   loads under {}", grant_path.display()),
            Err(e) => println!("verdict   {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn demo(data_dir: &Path, repo: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let repo = repo.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let repo = std::fs::canonicalize(&repo).with_context(|| format!("{}", repo.display()))?;
    let plugins = build(&repo.join("plugins"))?;
    println!("built {} first-party plugin(s):", plugins.len());
    for p in &plugins {
        println!("  {}", p.package);
    }
    let example = repo.join("examples/lead-triage");
    println!(
        "\nrunning {} on {}\n",
        example.display(),
        example.join("event.json").display()
    );
    run(
        data_dir,
        RunArgs {
            plugin: example,
            manifest: None,
            grant: None,
            event: None,
            records: None,
            dry_run: false,
            json: false,
        },
    )
}
