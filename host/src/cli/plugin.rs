//! `roster plugin`: publisher keys, project scaffolding, fixture tests and publishing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::Paths;

/// `roster plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Make a publisher key pair: `NAME.key` (secret, mode 0600) and `NAME.pub` (give it to
    /// the admins who install your workers).
    Keygen {
        /// The files' path without extension.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a worker project (manifest, source, fixture data and tests) that builds and
    /// passes its own tests as generated.
    New {
        /// The project directory to create; its last part names the worker.
        dir: PathBuf,
        /// The plugin id [default: example.NAME].
        #[arg(long)]
        id: Option<String>,
        /// The business domain (revenue, customer-experience, it-operations, finance,
        /// security, hr).
        #[arg(long, default_value = "revenue")]
        domain: String,
        /// The `roster-sdk` crate [default: the one this binary was built with].
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a worker project and run its fixture cases (`tests/*.toml`).
    Test {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Build a worker, check its imports against its manifest, sign both, and push them to
    /// a registry (or write them into an OCI image layout).
    Publish {
        /// The project directory (built first), or a `.wasm` component.
        dir: PathBuf,
        /// Where to: `host[:port]/repository[:tag]` (the tag defaults to the manifest's
        /// version), or `oci:DIR[:TAG]`.
        #[arg(long)]
        to: String,
        /// The publisher's secret key (`roster plugin keygen`).
        #[arg(long, required_unless_present = "unsigned")]
        key: Option<PathBuf>,
        /// Publish without a signature (installs then need --allow-unsigned).
        #[arg(long, conflicts_with = "key")]
        unsigned: bool,
        /// The manifest [default: worker.toml in the project].
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// The environment variable holding the registry's push token.
        #[arg(long, default_value = "ROSTER_REGISTRY_TOKEN")]
        token_env: String,
    },
}

pub(super) fn plugin(paths: &Paths, command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Keygen { out } => keygen(&out),
        PluginCommand::New {
            dir,
            id,
            domain,
            sdk,
        } => new(&dir, id, &domain, sdk),
        PluginCommand::Test { dir } => test(paths, &dir),
        PluginCommand::Publish {
            dir,
            to,
            key,
            unsigned: _,
            manifest,
            token_env,
        } => publish(&dir, &to, key.as_deref(), manifest, &token_env),
    }
}

fn repo_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

fn new(
    dir: &Path,
    id: Option<String>,
    domain: &str,
    sdk: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let sdk = sdk.unwrap_or_else(repo_sdk);
    let sdk = std::fs::canonicalize(&sdk)
        .with_context(|| format!("the roster-sdk crate at {}", sdk.display()))?;
    let mut scaffold = crate::cli::scaffold::Scaffold::new(dir, &sdk)?;
    if let Some(id) = id {
        scaffold.id = id;
    }
    scaffold.domain = serde_json::from_value(serde_json::Value::String(domain.into()))
        .map_err(|_| anyhow::anyhow!("unknown domain `{domain}`"))?;
    for path in scaffold.write()? {
        println!("created {}", path.display());
    }
    eprintln!(
        "next: roster plugin test {0}   (then `roster plugin publish {0} --key ... --to ...`)",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The project's component, manifest and the grant its tests run under (its
/// `grant.toml`, or exactly what the manifest requests).
fn project(dir: &Path) -> anyhow::Result<(Vec<u8>, crate::Manifest, crate::Grant)> {
    let manifest = crate::Manifest::load(&dir.join("worker.toml"))?;
    let grant_path = dir.join("grant.toml");
    let grant = if grant_path.is_file() {
        crate::Grant::load(&grant_path)?
    } else {
        crate::Grant::requested(&manifest, "fixture-tests")
    };
    let bytes = super::run::component_bytes(dir)?;
    Ok((bytes, manifest, grant))
}

fn test(paths: &Paths, dir: &Path) -> anyhow::Result<ExitCode> {
    let (bytes, manifest, grant) = project(dir)?;
    let scratch = paths.data_dir.join("plugin-tests");
    let results = crate::cli::fixtures::run_cases(dir, &bytes, &manifest, &grant, &scratch)?;
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    for r in &results {
        match &r.failure {
            None => println!("test {} ... ok", r.name),
            Some(why) => println!("test {} ... FAILED: {why}", r.name),
        }
    }
    println!(
        "\n{} passed, {failed} failed ({} {})",
        results.len() - failed,
        manifest.plugin.id,
        manifest.plugin.version
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn publish(
    dir: &Path,
    to: &str,
    key: Option<&Path>,
    manifest_path: Option<PathBuf>,
    token_env: &str,
) -> anyhow::Result<ExitCode> {
    use roster_registry::artifact;

    let home = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        dir.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let manifest_path = manifest_path.unwrap_or_else(|| home.join("worker.toml"));
    let manifest_text = crate::config_file::read_text(&manifest_path)?;
    let manifest = crate::Manifest::parse(&manifest_path, &manifest_text)?;
    let key = key
        .map(crate::distribution::publish::read_key)
        .transpose()?;
    // The tag defaults to the manifest's version.
    let to = {
        let last = to.rsplit('/').next().unwrap_or(to);
        if to.starts_with("oci:") || last.contains(':') || last.contains('@') {
            to.to_string()
        } else {
            format!("{to}:{}", manifest.plugin.version)
        }
    };
    crate::distribution::oci::Source::parse(&to)?;

    let steps = indicatif::ProgressBar::new(4);
    steps.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    steps.enable_steady_tick(std::time::Duration::from_millis(120));
    steps.set_message(format!("building {}", home.display()));
    let component = steps.suspend(|| super::run::component_bytes(dir))?;
    steps.inc(1);

    steps.set_message(match &key {
        Some(k) => format!(
            "signing with key {} and checking as install will",
            artifact::key_id(&k.verifying_key())
        ),
        None => "checking, unsigned, as install will".to_string(),
    });
    let now = chrono::DateTime::from_timestamp_millis(crate::clock::Clock::now_ms(
        &crate::clock::SystemClock,
    ))
    .unwrap_or_default()
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let prepared = match crate::distribution::publish::prepare(
        &manifest_path,
        &manifest_text,
        component,
        key.as_ref(),
        &to,
        &now,
    ) {
        Ok(p) => p,
        Err(crate::error::Error::InvalidRequest(reason)) => bail!("{reason}"),
        Err(e) => return Err(e.into()),
    };
    steps.inc(1);

    steps.set_message(format!("pushing to {to}"));
    let digest = prepared.push(&to, std::env::var(token_env).ok())?;
    steps.inc(1);
    steps.set_message("done");
    steps.inc(1);
    steps.finish_and_clear();
    let (built, signature) = (&prepared.built, &prepared.signature);
    println!(
        "published {} {} to {to}\n  manifest  {digest}\n  component {}\n  signed    {}",
        manifest.plugin.id,
        manifest.plugin.version,
        roster_registry::digest_of(&built.layer),
        signature
            .as_ref()
            .and_then(|s| artifact::public_key(&s.key).ok())
            .map_or("no (unsigned)".to_string(), |k| format!(
                "key {}",
                artifact::key_id(&k)
            ))
    );
    Ok(ExitCode::SUCCESS)
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let (key, secret, public) = crate::distribution::publish::keygen(out)?;
    let verifying = key.verifying_key();
    println!(
        "publisher key {} written: {} (secret) and {} (public)",
        roster_registry::artifact::key_id(&verifying),
        secret.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}
