//! `roster rules`: rules made without code — write one from a preset, check it, save it
//! as a version, try it in dry-run, deploy it and roll it back. Through the API (see
//! `client.rs`), so they print the same on the data directory and against a service.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::Paths;
use super::client::{Client, print_json, segment};
use crate::service::staging::Dataset;

use crate::rules::PRESETS;

/// `roster rules` subcommands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Write a new rule file from a preset (`--list` shows them).
    New {
        /// The rule's name (also the file's name unless --out).
        name: Option<String>,
        /// The preset to start from.
        #[arg(long, default_value = "enterprise-lead-routing")]
        from: String,
        /// Where to write it [default: NAME.toml].
        #[arg(long)]
        out: Option<PathBuf>,
        /// List the presets.
        #[arg(long)]
        list: bool,
    },
    /// Check a rule file: every problem, naming its step; the grant it would get.
    Validate {
        /// The rule file.
        file: PathBuf,
        /// Print the API's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Save a rule file as the rule's next version (nothing is deployed).
    Save {
        /// The rule file.
        file: PathBuf,
    },
    /// Run a rule in dry-run (saving the file first when given one): every action shown,
    /// none performed.
    Test {
        /// A rule file, or a saved rule's name.
        rule: String,
        /// A staging dataset (records and events, JSON).
        #[arg(long, conflicts_with = "sample")]
        dataset: Option<PathBuf>,
        /// Live records to try it on, `object/id` (repeatable).
        #[arg(long)]
        sample: Vec<String>,
        /// The version [default: the newest].
        #[arg(long)]
        version: Option<u32>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deploy a rule (saving the file first when given one) once its version is ready:
    /// valid, and tried in dry-run without failures.
    Deploy {
        /// A rule file, or a saved rule's name.
        rule: String,
        /// The version [default: the newest].
        #[arg(long)]
        version: Option<u32>,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Deploy the version that ran before the one deployed now.
    Rollback {
        /// The rule's name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Print the JSON Schema of rule files (for editors: completion and checks as you type).
    Schema,
    /// List the saved rules.
    List,
    /// Show a saved rule: its versions, what is deployed and its readiness.
    Show {
        /// The rule's name.
        name: String,
    },
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

/// Saves the file when `rule` is one; the rule's name either way.
fn saved(client: &Client, rule: &str) -> anyhow::Result<String> {
    let path = Path::new(rule);
    if !(path.is_file() || rule.ends_with(".toml")) {
        return Ok(rule.to_string());
    }
    let answer = client.post("/v1/rules", &serde_json::json!({ "text": read(path)? }))?;
    let name = answer["rule"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let version = answer["rule"]["versions"]
        .as_array()
        .and_then(|v| v.last())
        .map(|v| v["version"].clone())
        .unwrap_or_default();
    eprintln!("saved rule {name} version {version}");
    Ok(name)
}

pub(super) fn rules(paths: &Paths, command: RulesCommand) -> anyhow::Result<ExitCode> {
    if let RulesCommand::New {
        name,
        from,
        out,
        list,
    } = &command
    {
        return new(name.as_deref(), from, out.as_deref(), *list);
    }
    if let RulesCommand::Schema = &command {
        return print_json(&crate::rules::schema());
    }
    let client = Client::open(paths)?;
    match command {
        RulesCommand::New { .. } | RulesCommand::Schema => unreachable!("handled above"),
        RulesCommand::Validate { file, json } => {
            let answer = client.post(
                "/v1/rules/check",
                &serde_json::json!({ "text": read(&file)? }),
            )?;
            if json {
                print_json(&answer)?;
            } else {
                print_check(&file, &answer);
            }
            Ok(if answer["valid"] == true {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        RulesCommand::Save { file } => {
            client.print_post("/v1/rules", &serde_json::json!({ "text": read(&file)? }))
        }
        RulesCommand::Test {
            rule,
            dataset,
            sample,
            version,
            json,
        } => {
            let name = saved(&client, &rule)?;
            let mut body = serde_json::json!({ "version": version, "sample": sample });
            if let Some(d) = dataset {
                body["dataset"] = serde_json::to_value(Dataset::load(&d)?)?;
            } else if sample.is_empty() {
                bail!("give --dataset FILE or --sample OBJECT/ID to try the rule on");
            }
            let answer = client.post(&format!("/v1/rules/{}/test", segment(&name)), &body)?;
            let report = &answer["staging"];
            if json {
                print_json(report)?;
            } else {
                super::versions::print_staging(report);
            }
            Ok(if report["summary"]["failed"] == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        RulesCommand::Deploy {
            rule,
            version,
            reason,
        } => {
            let name = saved(&client, &rule)?;
            client.print_post(
                &format!("/v1/rules/{}/deploy", segment(&name)),
                &serde_json::json!({ "version": version, "reason": reason }),
            )
        }
        RulesCommand::Rollback { name, reason } => client.print_post(
            &format!("/v1/rules/{}/rollback", segment(&name)),
            &serde_json::json!({ "reason": reason }),
        ),
        RulesCommand::List => client.print_get("/v1/rules"),
        RulesCommand::Show { name } => client.print_get(&format!("/v1/rules/{}", segment(&name))),
    }
}

fn print_check(file: &Path, answer: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    if answer["valid"] == true {
        println!(
            "{}: rule {} ({}) is valid; it acts as {}",
            file.display(),
            text(&answer["name"]),
            text(&answer["domain"]),
            text(&answer["principal"])
        );
        for line in answer["touches"].as_array().into_iter().flatten() {
            println!("  {}", text(line));
        }
        println!("\nthe grant it gets:\n{}", text(&answer["grant"]));
    } else {
        println!("{}: the rule is refused", file.display());
        for p in answer["problems"].as_array().into_iter().flatten() {
            println!("  {}", text(p));
        }
    }
}

fn new(name: Option<&str>, from: &str, out: Option<&Path>, list: bool) -> anyhow::Result<ExitCode> {
    if list {
        for (preset, text) in PRESETS {
            let about = toml::from_str::<toml::Table>(text)
                .ok()
                .and_then(|t| {
                    t.get("rule")?
                        .get("description")?
                        .as_str()
                        .map(str::to_string)
                })
                .unwrap_or_default();
            println!("{preset:28} {about}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(name) = name else {
        bail!("name the rule: `roster rules new NAME [--from PRESET]`");
    };
    if !crate::rules::is_name(name) {
        bail!("rule name `{name}`: use 1 to 64 lower-case letters, digits, `-` or `_`");
    }
    let Some((_, text)) = PRESETS.iter().find(|(p, _)| *p == from) else {
        bail!(
            "no preset `{from}` (presets: {})",
            PRESETS
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let table: toml::Table = toml::from_str(text).context("the preset")?;
    let original = table
        .get("rule")
        .and_then(|r| r.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_string();
    // Keep the preset's comments: only the name line changes.
    let written = text.replacen(
        &format!("name = \"{original}\""),
        &format!("name = \"{name}\""),
        1,
    );
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("{name}.toml")));
    if out.exists() {
        bail!("{} exists; choose another --out", out.display());
    }
    std::fs::write(&out, written).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} from preset {from}; check it with `roster rules validate {}`",
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
