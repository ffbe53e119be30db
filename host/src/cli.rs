//! The `roster` command line.
//!
//! This file holds the argument definitions and the dispatch; each group of commands lives
//! in its own file under `cli/`: `run.rs` (run, inspect, build, demo), `up.rs` (the whole
//! product on the embedded defaults), `serve.rs` (the service), `records.rs` (records and workers, on the data directory), `audit.rs` (audit
//! verification and checkpoints), `people.rs` (accounts, roles and tokens), `approvals.rs` (held actions and the trust curve), `versions.rs` (dry runs, versions, readiness, deploy, rollback) and `remote.rs` (commands that talk to a running service:
//! events, queue, pause and resume).

mod approvals;
mod audit;
pub mod client;
pub mod demo;
pub mod fixtures;
mod install;
mod people;
mod plugin;
mod records;
mod remote;
pub mod rules;
mod run;
pub mod scaffold;
mod serve;
mod up;
mod versions;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use run::print_report;

/// Roster: a runtime for governed digital workers.
#[derive(Debug, Parser)]
#[command(name = "roster", version, about)]
pub struct Cli {
    /// The data directory (embedded store and compiled-component cache) for commands that
    /// run without a `roster.toml`.
    #[arg(
        long,
        env = "ROSTER_DATA_DIR",
        default_value = ".roster",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The host configuration file.
    #[arg(
        long,
        env = "ROSTER_CONFIG",
        default_value = "roster.toml",
        global = true
    )]
    pub config: PathBuf,
    /// Send the command to the service at this address (`http://HOST:PORT`) instead of the
    /// one running on the data directory (or the data directory itself).
    #[arg(long, env = "ROSTER_REMOTE", global = true, value_name = "URL")]
    pub remote: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a worker on one event and print its outcome and every action it attempted.
    Run(RunArgs),
    /// Print a component's imports and exports beside its manifest's requested capabilities.
    Inspect(InspectArgs),
    /// Build a guest crate or workspace for wasm32-wasip2 and print the components built.
    Build {
        /// The directory holding the crate's or workspace's Cargo.toml.
        dir: PathBuf,
    },
    /// Build the first-party plugins and the examples, then run the example worker.
    Demo {
        /// The repository root (defaults to the one this binary was built from).
        #[arg(long)]
        repo: Option<PathBuf>,
    },
    /// The whole product on this machine: build and sign the first-party workers, start the
    /// embedded registry, install them through the signed install flow, load the demo
    /// business and run the service with a live console (state in `<data-dir>/up/`).
    Up(up::UpArgs),
    /// Run the service: triggers, the queue, the executors and the HTTP API.
    Serve,
    /// Import, export and look at records (on the data directory; stop the service first).
    Records {
        /// What to do.
        #[command(subcommand)]
        command: records::RecordsCommand,
    },
    /// List and show installed workers.
    Workers {
        /// What to do.
        #[command(subcommand)]
        command: records::WorkersCommand,
    },
    /// The offline inference models: labels, reviewed examples, calibration, and how
    /// reviewers judged their predictions (on the data directory).
    Models {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send events to a running service.
    Events {
        /// What to do.
        #[command(subcommand)]
        command: remote::EventsCommand,
    },
    /// Look at a running service's queue.
    Queue {
        /// What to do.
        #[command(subcommand)]
        command: remote::QueueCommand,
    },
    /// The kill switch: pause one worker, a domain or everything in the running service,
    /// interrupting what runs now.
    Kill {
        /// One worker.
        #[arg(long, conflicts_with_all = ["domain", "all"])]
        worker: Option<String>,
        /// Every worker of a domain (revenue, customer-experience, it-operations, finance,
        /// security, hr).
        #[arg(long, conflicts_with = "all")]
        domain: Option<String>,
        /// Every worker.
        #[arg(long)]
        all: bool,
        /// Why (required; recorded and sent to the owners).
        #[arg(long)]
        reason: String,
        /// Revoke their grants until a person restores them on resume.
        #[arg(long)]
        revoke_grants: bool,
    },
    /// Install or upgrade a worker from a registry (or an OCI image layout): verify its
    /// signature and digests, show the capability review, install under an explicit grant.
    Install(install::InstallArgs),
    /// Publisher tools: keys, scaffolding, publishing.
    Plugin {
        /// What to do.
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// The OCI registry for worker artifacts.
    Registry {
        /// What to do.
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Manage people and service accounts and their roles.
    People {
        /// What to do.
        #[command(subcommand)]
        command: people::PeopleCommand,
    },
    /// The approval queue: list, show, approve, edit or reject held actions.
    Approvals {
        /// What to do.
        #[command(subcommand)]
        command: approvals::ApprovalsCommand,
    },
    /// Issue and revoke API tokens.
    Tokens {
        /// What to do.
        #[command(subcommand)]
        command: people::TokensCommand,
    },
    /// Rules made without code: write one from a preset, check it, try it in dry-run,
    /// deploy it and roll it back.
    Rules {
        /// What to do.
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Search, export and verify the audit trail; sign checkpoints.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

/// Arguments of `roster run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A `.wasm` component, or a plugin source directory (built first).
    pub plugin: PathBuf,
    /// The plugin manifest [default: worker.toml beside the plugin].
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// The admin's grant [default: grant.toml beside the plugin].
    #[arg(long)]
    pub grant: Option<PathBuf>,
    /// The event as JSON; `-` reads standard input [default: event.json beside the plugin].
    #[arg(long)]
    pub event: Option<PathBuf>,
    /// Records to load into the store first (JSON Lines) [default: records.jsonl beside the
    /// plugin, when present].
    #[arg(long)]
    pub records: Option<PathBuf>,
    /// Check and record side effects without performing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the execution report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `roster inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A `.wasm` component, or a plugin source directory (built first).
    pub plugin: PathBuf,
    /// The plugin manifest [default: worker.toml beside the plugin].
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// A grant to check the imports against [default: grant.toml beside the plugin, if any].
    #[arg(long)]
    pub grant: Option<PathBuf>,
}

/// Runs the command line; the process exit code is 0 on success, 1 on an error, 3 when the
/// worker's execution did not succeed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service exports its spans when its configuration says where.
    let configured = match &cli.command {
        Command::Serve => Some(cli.config.clone()),
        Command::Up(_) => Some(cli.data_dir.join("up").join("roster.toml")),
        _ => None,
    };
    let endpoint = configured.as_deref().and_then(otlp_endpoint);
    let _telemetry = match crate::telemetry::Telemetry::init(endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match run_cli(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `[telemetry] otlp-endpoint` of a configuration file, if it has one (the file is read in
/// full, and its errors reported, when the command loads it).
fn otlp_endpoint(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    table
        .get("telemetry")?
        .get("otlp-endpoint")?
        .as_str()
        .map(str::to_string)
}

fn run_cli(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli {
        data_dir,
        config,
        remote,
        command,
    } = cli;
    let paths = Paths {
        config,
        data_dir,
        remote,
    };
    match command {
        Command::Run(args) => run::run(&paths.data_dir, args),
        Command::Inspect(args) => run::inspect(args),
        Command::Build { dir } => {
            for built in run::build(&dir)? {
                println!("{}  {}", built.package, built.path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { repo } => run::demo(&paths.data_dir, repo),
        Command::Up(args) => up::up(&paths.data_dir, args),
        Command::Serve => serve::serve(&paths.config),
        Command::Records { command } => records::records(&paths, command),
        Command::Workers { command } => records::workers(&paths, command),
        Command::Models { json } => records::models(&paths, json),
        Command::Events { command } => remote::events(&paths.config, command),
        Command::Queue { command } => remote::queue(&paths, command),
        Command::Audit { command } => audit::audit(&paths, command),
        Command::Rules { command } => rules::rules(&paths, command),
        Command::People { command } => people::people(&paths, command),
        Command::Plugin { command } => plugin::plugin(&paths, command),
        Command::Install(args) => install::install(&paths, args),
        Command::Registry {
            command:
                RegistryCommand::Serve {
                    dir,
                    listen,
                    token_env,
                    private,
                },
        } => serve::registry(&dir, listen, token_env.as_deref(), private),
        Command::Approvals { command } => approvals::approvals(&paths, command),
        Command::Tokens { command } => people::tokens(&paths, command),
        Command::Kill {
            worker,
            domain,
            all,
            reason,
            revoke_grants,
        } => {
            let scope = match (worker, domain, all) {
                (Some(w), _, _) => serde_json::json!({ "worker": w }),
                (_, Some(d), _) => serde_json::json!({ "domain": d }),
                (_, _, true) => serde_json::json!("all"),
                _ => anyhow::bail!("say what to pause: --worker NAME, --domain NAME or --all"),
            };
            let body = serde_json::json!({
                "scope": scope,
                "reason": reason,
                "revoke_grants": revoke_grants,
            });
            client::Client::open(&paths)?.print_post("/v1/kill", &body)
        }
    }
}

/// `roster registry` subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve the registry (OCI distribution API) from a directory.
    Serve {
        /// Where blobs and manifests are kept.
        #[arg(long, default_value = ".roster/registry")]
        dir: PathBuf,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:5000")]
        listen: std::net::SocketAddr,
        /// The environment variable holding the push token (no pushes without one).
        #[arg(long)]
        token_env: Option<String>,
        /// Pulls need the token too.
        #[arg(long)]
        private: bool,
    },
}

/// The configuration file, data directory and remote service given on the command line.
struct Paths {
    config: PathBuf,
    data_dir: PathBuf,
    remote: Option<String>,
}

/// The host configuration: `roster.toml` when it exists, otherwise the one `roster up`
/// wrote in `<data-dir>/up/` when there is one, otherwise the built-in defaults over
/// `--data-dir`.
fn host_config(paths: &Paths) -> anyhow::Result<crate::config::HostConfig> {
    let up = paths.data_dir.join("up").join("roster.toml");
    if paths.config.is_file() {
        Ok(crate::config::HostConfig::load(&paths.config)?)
    } else if up.is_file() {
        Ok(crate::config::HostConfig::load(&up)?)
    } else {
        let mut config = crate::config::HostConfig::defaults();
        config.data_dir = paths.data_dir.clone();
        config.add_installed()?;
        Ok(config)
    }
}
