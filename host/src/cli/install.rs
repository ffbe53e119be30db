//! `roster install`: pull a worker, verify it, show the capability review, install it under
//! an explicit grant.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::Paths;
use crate::clock::SystemClock;
use crate::distribution::install::{self, GrantChoice, InstallOptions, Review};
use crate::distribution::oci::{self, Source};
use crate::sandbox::runtime::Runtime;

/// Arguments of `roster install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// `host[:port]/repository[:tag|@digest]`, or `oci:DIR[:TAG]` for an OCI image layout.
    pub reference: String,
    /// The installation's name [default: the plugin id's last part].
    #[arg(long)]
    pub name: Option<String>,
    /// Grant what this file says (a grant file, as in `roster run --grant`).
    #[arg(long, conflicts_with = "grant_requested")]
    pub grant: Option<PathBuf>,
    /// Grant exactly what the manifest requests, as the review shows it.
    #[arg(long)]
    pub grant_requested: bool,
    /// The principal the worker acts as [default: the current one, then the grant's].
    #[arg(long)]
    pub principal: Option<String>,
    /// Install an artifact that carries no publisher signature.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Install an older version than the installed one.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// A setting of the plugin's `[config]` schema, `KEY=VALUE` (repeatable; VALUE is read
    /// as TOML — `21`, `true`, `"text"` — or else as text).
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// A publisher public key file to trust for this install, besides `[registry]
    /// trusted-keys` (repeatable).
    #[arg(long = "trust-key")]
    pub trust_keys: Vec<PathBuf>,
    /// The environment variable holding a registry token [default: `[registry] token-env`].
    #[arg(long)]
    pub token_env: Option<String>,
    /// Print the review as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The capability review as a table.
pub fn print_review(review: &Review) {
    println!(
        "{} {} → worker `{}`{}",
        review.plugin,
        review.version,
        review.worker,
        match &review.current_version {
            Some(v) => format!(" (installed: {v})"),
            None => String::new(),
        }
    );
    println!("  from       {}", review.reference);
    println!("  manifest   {}", review.manifest_digest);
    println!(
        "  component  {} (pinned on install)",
        review.component_digest
    );
    println!(
        "  signed by  {}",
        review
            .signer
            .as_deref()
            .map_or("nobody (unsigned)".to_string(), |k| format!("key {k}"))
    );
    println!();
    println!(
        " {:<10} {:<9} {:<9} {:<9}",
        "capability", "requested", "imported", "granted"
    );
    for line in &review.capabilities {
        println!(
            " {:<10} {:<9} {:<9} {:<9}",
            line.capability.to_string(),
            match (&line.requested, line.optional) {
                (Some(_), true) => "optional",
                (Some(_), false) => "yes",
                (None, _) => "no",
            },
            if line.imported { "yes" } else { "no" },
            if review.proposed_grant.is_none() {
                "?"
            } else if line.granted.is_some() {
                "yes"
            } else {
                "no"
            },
        );
    }
    for line in &review.capabilities {
        if let Some(scope) = &line.requested {
            println!("\n  requested {}:", line.capability);
            for l in scope.lines() {
                println!("    {l}");
            }
        }
    }
    if !review.config.is_empty() {
        println!("\n  settings (its [config] schema):");
        for (name, spec) in &review.config {
            println!(
                "    {name} ({}{}): {}",
                format!("{:?}", spec.kind).to_lowercase(),
                spec.default
                    .as_ref()
                    .map_or(", required".to_string(), |d| format!(", default {d}")),
                spec.description
            );
        }
    }
    if !review.unused.is_empty() {
        let names: Vec<String> = review.unused.iter().map(|c| c.to_string()).collect();
        println!(
            "\n  granted but never imported by the component: {}",
            names.join(", ")
        );
    }
    if !review.beyond_current_grant.is_empty() {
        println!("\n  asks beyond the grant in force:");
        for p in &review.beyond_current_grant {
            println!("    - {p}");
        }
    }
    if let Some(grant) = &review.proposed_grant {
        println!("\n  grant to install with:");
        for l in grant.lines() {
            println!("    {l}");
        }
    }
    println!();
}

/// Pulls an artifact from a registry or an OCI image layout.
pub(super) fn pull(reference: &str, token: Option<String>) -> anyhow::Result<oci::Pulled> {
    Ok(match Source::parse(reference)? {
        Source::Registry(r) => oci::Client::new(token)?.pull(&r)?,
        Source::Layout(dir, tag) => oci::read_layout(&dir, tag.as_deref())?,
    })
}

/// `roster install` through a running service: the review, then the installation, each
/// a request to `POST /v1/installations`; the service loads the worker at once.
fn install_through(
    client: &super::client::Client,
    args: &InstallArgs,
    settings: toml::Table,
) -> anyhow::Result<ExitCode> {
    if args.allow_unsigned || !args.trust_keys.is_empty() || args.token_env.is_some() {
        anyhow::bail!(
            "--allow-unsigned, --trust-key and --token-env apply to installs on the data \
             directory; a running service installs artifacts signed by the keys it trusts, \
             from the registries of its [registry] sources or uploaded from a layout"
        );
    }
    // A layout is read here and uploaded; a registry's artifact the service pulls.
    let (reference, artifact) = match Source::parse(&args.reference)? {
        Source::Layout(dir, tag) => {
            use base64::Engine as _;
            let pulled = oci::read_layout(&dir, tag.as_deref())?;
            let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
            let artifact = serde_json::json!({
                "manifest": b64(&pulled.manifest),
                "config": b64(&pulled.config),
                "layer": b64(&pulled.layer),
            });
            (None, Some(artifact))
        }
        Source::Registry(_) => (Some(args.reference.clone()), None),
    };
    let grant = args
        .grant
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        })
        .transpose()?;
    let mut body = serde_json::json!({
        "reference": reference,
        "artifact": artifact,
        "name": args.name,
        "grant": grant,
        "grant_requested": args.grant_requested,
        "principal": args.principal,
        "settings": settings,
        "allow_downgrade": args.allow_downgrade,
        "apply": false,
    });
    let answer = client.post("/v1/installations", &body)?;
    let review: Review =
        serde_json::from_value(answer["review"].clone()).context("the service's review")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&review)?);
    } else {
        print_review(&review);
    }
    if let Some(reason) = answer["blocker"].as_str() {
        return Err(crate::error::Error::InstallRefused(reason.to_string()).into());
    }
    body["apply"] = serde_json::Value::Bool(true);
    let answer = client.post("/v1/installations", &body)?;
    eprintln!(
        "{} `{}` {}: running in the service now",
        match answer["change"].as_str().unwrap_or_default() {
            "upgrade" => "upgraded",
            "downgrade" => "downgraded",
            "regrant" => "re-granted",
            _ => "installed",
        },
        review.worker,
        review.version
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn install(paths: &Paths, args: InstallArgs) -> anyhow::Result<ExitCode> {
    let mut settings = toml::Table::new();
    for pair in &args.settings {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--setting `{pair}`: use KEY=VALUE"))?;
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        settings.insert(key.trim().to_string(), value);
    }
    if let Some(client) = super::client::Client::running(paths)? {
        return install_through(&client, &args, settings);
    }
    let config = super::host_config(paths)?;
    let token = match &args.token_env {
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("environment variable `{var}` is not set"))?,
        ),
        None => config.registry_token.clone(),
    };
    let mut trusted = install::trusted_keys(&config);
    for path in &args.trust_keys {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        trusted.push(
            roster_registry::artifact::public_key(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        );
    }
    let pulled = pull(&args.reference, token)?;
    let verified = install::verify(&args.reference, &pulled, &trusted, args.allow_unsigned)?;
    let grant = match (&args.grant, args.grant_requested) {
        (Some(path), _) => Some(GrantChoice::File(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        )),
        (None, true) => Some(GrantChoice::Requested),
        (None, false) => None,
    };
    let options = InstallOptions {
        settings,
        name: args.name.clone(),
        grant,
        principal: args.principal.clone(),
        allow_downgrade: args.allow_downgrade,
        by: super::client::local_operator(),
        rule: None,
    };
    let plan = install::plan(&config, verified, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan.review)?);
    } else {
        print_review(&plan.review);
    }
    if let Some(reason) = plan.blocker() {
        return Err(crate::error::Error::InstallRefused(reason).into());
    }
    let runtime = Runtime::open(config.runtime_config(std::sync::Arc::new(SystemClock))).map_err(
        |e| match e {
            crate::error::Error::Store(crate::store::StoreError::Database(
                redb::Error::DatabaseAlreadyOpen,
            )) => anyhow::anyhow!(
                "the data directory {} is in use (is `roster serve` running? stop it first)",
                config.data_dir.display()
            ),
            other => other.into(),
        },
    )?;
    let (worker, version, change) = (
        plan.review.worker.clone(),
        plan.review.version.clone(),
        plan.change,
    );
    let path = plan.apply(&config, &runtime)?;
    eprintln!(
        "{} `{worker}` {version}: {} (component pinned by digest); `roster serve` runs it from its next start",
        match change {
            install::Change::Install => "installed",
            install::Change::Upgrade => "upgraded",
            install::Change::Downgrade => "downgraded",
            install::Change::Regrant => "re-granted",
        },
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
