//! `roster up`: the whole product on one machine, on the embedded defaults.
//!
//! 1. builds the first-party plugins for wasm32-wasip2;
//! 2. signs each with the demo publisher key and publishes it to the embedded registry
//!    (started on 127.0.0.1 for the run);
//! 3. installs each through the normal signed install flow — pull, verify digests and
//!    signature, capability review, the grant it requests, digest pinned — as the service
//!    account of its domain;
//! 4. loads the demo business (its history triggers nothing) on the first run;
//! 5. runs the service and its API, with the day's business activity arriving every few
//!    seconds and a console showing executions, held approvals, alerts and audit entries
//!    as they accumulate.
//!
//! Everything lives in `<data-dir>/up/`: `roster.toml` (written on the first run: the
//! people, the escalation paths), the store, the registry's storage, the publisher key and
//! an API token for the demo admin. Ctrl-C stops it cleanly; running it again resumes
//! (already installed workers are kept, the dataset is not loaded again, the activity goes
//! on where it stopped, queued triggers run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::serve::Companion;
use crate::clock::{Clock, SystemClock};
use crate::config::HostConfig;
use crate::distribution::install::{self, GrantChoice, InstallOptions};
use crate::store::{ApprovalFilter, ApprovalStatus};

/// `roster up`'s options.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The repository root (defaults to the one this binary was built from).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Where the API listens.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: String,
    /// Milliseconds between two steps of the demo business's activity.
    #[arg(long, default_value_t = 3000)]
    pub pace_ms: u64,
    /// Run without the demo activity (only what arrives through the API and schedules).
    #[arg(long)]
    pub no_activity: bool,
    /// Seconds between two console summaries.
    #[arg(long, default_value_t = 10)]
    pub summary_s: u64,
}

/// The seed of the demo business.
const SEED: u64 = 7;

/// The demo's people and its escalation paths; written once, then the admin's to change.
fn roster_toml(listen: &str) -> String {
    format!(
        r#"# Written by `roster up` on its first run; edit freely (it is not overwritten).
data-dir = "."
listen = "{listen}"
executors = 2

[registry]
trusted-keys = ["publisher/roster-demo.pub"]

# What the console's value page counts: minutes of a person's work one performed action
# saves, and the price of the sandbox's fuel and time.
[value]
currency = "USD"
fuel-price = 0.02
hour-price = 1.50

[value.minutes-saved]
"records.create" = 4
"records.update" = 2
"notify.send" = 3
"signals.emit" = 1

# People: account executives, a reviewer, and one service account per domain that the
# workers of that domain act as.
[[principals]]
id = "ann"
teams = ["emea"]
roles = ["ae"]
email = "ann@roster-demo.example"

[[principals]]
id = "bob"
teams = ["emea"]
roles = ["ae"]
email = "bob@roster-demo.example"

[[principals]]
id = "cat"
teams = ["na"]
roles = ["ae"]
email = "cat@roster-demo.example"

[[principals]]
id = "dan"
teams = ["na"]
roles = ["ae"]
email = "dan@roster-demo.example"

[[principals]]
id = "rita"
roles = ["reviewer"]
email = "rita@roster-demo.example"

{services}
# Cross-domain escalation paths: which signal starts which worker of another domain, with
# what context, doing what, reviewed how.
[[escalation-paths]]
name = "closed-won-onboarding"
signal = "revenue.closed-won"
from = ["win-loss-logger"]
to = "customer-onboarding"
context = ["account_id", "opportunity_id"]
actions = ["records.create", "notify.send"]
review = "worker"

[[escalation-paths]]
name = "churn-risk-follow-up"
signal = "cx.churn-risk"
from = ["churn-signal"]
to = "revenue-execution"
context = ["account_id", "owner"]
actions = ["records.create", "notify.send"]
review = "worker"

[[escalation-paths]]
name = "overdue-invoice-near-renewal"
signal = "finance.overdue-near-renewal"
from = ["invoice-review"]
to = "revenue-execution"
context = ["account_id", "owner", "invoice"]
actions = ["records.create", "notify.send"]
review = "worker"

[[escalation-paths]]
name = "new-hire-access"
signal = "hr.new-hire"
from = ["candidate-review"]
to = "access-request"
context = ["employee_id", "name"]
actions = ["records.create"]
review = "hold"
"#,
        services = [
            "revenue",
            "customer-experience",
            "it-operations",
            "finance",
            "security",
            "hr"
        ]
        .iter()
        .map(|d| format!(
            "[[principals]]\nid = \"{}\"\nkind = \"service\"\nsees = \"all\"\n\n",
            service_account(d)
        ))
        .collect::<String>()
    )
}

/// The service account a domain's workers act as.
fn service_account(domain: &str) -> String {
    let short = match domain {
        "customer-experience" => "cx",
        "it-operations" => "it",
        other => other,
    };
    format!("svc-{short}")
}

fn now_rfc3339() -> String {
    chrono::DateTime::from_timestamp_millis(SystemClock.now_ms())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The demo publisher key, created on the first run.
fn publisher_key(home: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let base = home.join("publisher").join("roster-demo");
    let secret = base.with_extension("key");
    if secret.is_file() {
        return Ok(crate::distribution::publish::read_key(&secret)?);
    }
    let (key, _, _) = crate::distribution::publish::keygen(&base)?;
    Ok(key)
}

pub(super) fn up(data_dir: &Path, args: UpArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let repo = args
        .repo
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let repo = std::fs::canonicalize(&repo).with_context(|| format!("{}", repo.display()))?;
    let home = data_dir.join("up");
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let home = std::fs::canonicalize(&home)?;
    let config_path = home.join("roster.toml");
    let first_run = !config_path.is_file();
    let key = publisher_key(&home)?;
    if first_run {
        std::fs::write(&config_path, roster_toml(&args.listen))
            .with_context(|| format!("writing {}", config_path.display()))?;
    }
    println!(
        "roster up: {} in {}",
        if first_run { "setting up" } else { "resuming" },
        home.display()
    );

    // 1. Build.
    let built = super::run::build(&repo.join("plugins"))?;
    println!("[1/5] built {} first-party plugins", built.len());

    // 2. The embedded registry.
    let mut token = [0u8; 24];
    getrandom::fill(&mut token).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let token = hex::encode(token);
    let storage = roster_registry::Storage::open(&home.join("registry"))
        .map_err(|e| anyhow::anyhow!("the registry's storage: {e}"))?;
    let registry = roster_registry::spawn_on_loopback(
        storage,
        roster_registry::RegistryConfig::with_tokens(std::slice::from_ref(&token), false),
    )
    .context("starting the embedded registry")?;
    println!(
        "[2/5] registry on http://{registry} (signing key {})",
        roster_registry::artifact::key_id(&key.verifying_key())
    );

    // 3. Publish and install what is not installed at this version yet.
    let mut config = HostConfig::load(&config_path)?;
    let trusted = install::trusted_keys(&config);
    let runtime =
        crate::sandbox::runtime::Runtime::open(config.runtime_config(Arc::new(SystemClock)))?;
    let mut installed = 0;
    for b in &built {
        let dir = repo.join("plugins").join(&b.package);
        let manifest_path = dir.join("worker.toml");
        let manifest_text = crate::config_file::read_text(&manifest_path)?;
        let manifest = crate::Manifest::parse(&manifest_path, &manifest_text)?;
        let name = install::default_name(&manifest.plugin.id);
        // A plugin without triggers of its own (the rules worker) is published only: it
        // is installed once per rule, by `roster rules deploy`.
        let per_rule = manifest.triggers.is_empty();
        if !per_rule
            && config
                .workers
                .iter()
                .any(|w| w.name == name && w.manifest.plugin.version == manifest.plugin.version)
        {
            continue;
        }
        let reference = format!(
            "{registry}/roster/{}:{}",
            b.package, manifest.plugin.version
        );
        let component = std::fs::read(&b.path).with_context(|| format!("{}", b.path.display()))?;
        let prepared = crate::distribution::publish::prepare(
            &manifest_path,
            &manifest_text,
            component,
            Some(&key),
            &reference,
            &now_rfc3339(),
        )?;
        prepared.push(&reference, Some(token.clone()))?;
        if per_rule {
            println!(
                "      published {} {} for rules ({reference})",
                manifest.plugin.id, manifest.plugin.version
            );
            continue;
        }
        let parsed = crate::distribution::oci::Reference::parse(&reference)?;
        let pulled = crate::distribution::oci::Client::new(None)?.pull(&parsed)?;
        let verified = install::verify(&reference, &pulled, &trusted, false)?;
        let options = InstallOptions {
            name: Some(name.clone()),
            grant: Some(GrantChoice::Requested),
            principal: Some(service_account(manifest.plugin.domain.as_str())),
            allow_downgrade: false,
            settings: toml::Table::new(),
            by: "roster up".into(),
            rule: None,
        };
        let plan = install::plan(&config, verified, &options)?;
        plan.apply(&config, &runtime)?;
        println!(
            "      installed {name} {} ({}) as {}, signed and pinned",
            manifest.plugin.version,
            manifest.plugin.domain.as_str(),
            service_account(manifest.plugin.domain.as_str())
        );
        installed += 1;
    }
    config = HostConfig::load(&config_path)?;
    println!(
        "[3/5] {} workers installed through the signed install flow ({installed} new this run)",
        config.workers.len()
    );

    // 4. The demo business, once; its history triggers nothing.
    let store = runtime.store();
    if store.counter("demo-loaded")? == 0 {
        let now = SystemClock.now_ms();
        let history = crate::cli::demo::history(SEED, now);
        let count = history.len();
        for chunk in history.chunks(500) {
            store.import_records(chunk.to_vec(), "demo-history")?;
        }
        store.set_counter("trigger-cursor", store.counter("changes")?)?;
        store.set_counter("demo-loaded", 1)?;
        println!("[4/5] loaded the demo business: {count} records with their history");
        let admin = crate::store::Account {
            id: "demo-admin".into(),
            kind: crate::store::AccountKind::User,
            name: "Demo admin".into(),
            roles: vec!["admin".into()],
            disabled: false,
            created_at: 0,
            updated_at: 0,
        };
        store.create_account(admin, "roster up")?;
        let (_, secret) = store.issue_token("demo-admin", "roster up", None, "roster up")?;
        write_private(&home.join("api-token"), &secret)?;
    } else {
        println!("[4/5] the demo business is loaded (resuming)");
    }
    // A one-time sign-in link to the console for the demo admin, fresh every run.
    let (code, _) =
        store.issue_login_code("demo-admin", 24 * crate::clock::HOUR_MS, "roster up")?;
    drop(runtime);
    println!(
        "      API token of the demo admin: {} (use it as `Authorization: Bearer ...`)",
        home.join("api-token").display()
    );

    // 5. Run, installing from the embedded registry through the API too.
    config.registry_sources.push(registry.to_string());
    config.listen = args
        .listen
        .parse()
        .with_context(|| format!("--listen `{}`", args.listen))?;
    println!(
        "[5/5] starting the service ({:.0} s after `roster up`); Ctrl-C stops it, `roster up` again resumes",
        started.elapsed().as_secs_f64()
    );
    println!("      console: http://{}/", config.listen);
    println!(
        "      sign in as the demo admin (once, within 24 h): http://{}/login?code={code}\n",
        config.listen
    );
    let pace = Duration::from_millis(args.pace_ms.max(100));
    let summary = Duration::from_secs(args.summary_s.max(1));
    let activity = !args.no_activity;
    super::serve::run(config, Some(home.join("api-token")), move |companion| {
        let mut threads = vec![console(companion.clone(), summary)];
        if activity {
            threads.push(business(companion.clone(), pace));
        }
        threads
    })
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{text}")?;
    Ok(())
}

/// Sleeps up to `d`, waking early when the service stops; `false` once it stops.
fn pause(companion: &Companion, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if companion.stopping.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !companion.stopping.load(Ordering::SeqCst)
}

/// The day's business activity: one step every `pace`, numbered in the store so a resumed
/// demo goes on where it stopped.
fn business(companion: Companion, pace: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let store = companion.service.store().clone();
        while pause(&companion, pace) {
            let result = (|| -> Result<String, crate::store::StoreError> {
                let n = store.counter("demo-activity")?;
                let step =
                    crate::cli::demo::activity(SEED, n, SystemClock.now_ms()).resolve(&store)?;
                let actor = format!("demo:{}", crate::cli::demo::SELLERS[(n % 4) as usize]);
                let applied = match &step {
                    Some(step) => step.apply(&store, &actor)?,
                    None => false,
                };
                store.set_counter("demo-activity", n + 1)?;
                let Some(step) = step else {
                    return Ok(String::new());
                };
                Ok(if applied {
                    step.describe()
                } else {
                    String::new()
                })
            })();
            match result {
                Ok(line) if !line.is_empty() => println!("  ▸ {line}"),
                Ok(_) => {}
                Err(e) => eprintln!("  ! demo activity: {e}"),
            }
        }
    })
}

/// Prints each execution as it is logged, and a summary every `every`.
fn console(companion: Companion, every: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let store = companion.service.store().clone();
        // Only what happens from now on; the summary counts everything.
        let mut seen = store
            .executions_after(0, usize::MAX)
            .ok()
            .and_then(|e| e.last().map(|e| e.seq))
            .unwrap_or(0);
        let mut last_summary = Instant::now() - every;
        while pause(&companion, Duration::from_millis(500)) {
            if let Ok(entries) = store.executions_after(seen, 50) {
                for e in &entries {
                    seen = seen.max(e.seq);
                    let summary = e
                        .report
                        .as_ref()
                        .and_then(|r| r["outcome"]["summary"].as_str().map(str::to_string))
                        .or_else(|| e.detail.clone())
                        .unwrap_or_default();
                    let via = e
                        .cause
                        .as_ref()
                        .and_then(|c| c.path.as_ref())
                        .map(|p| format!(" [escalation path {p}]"))
                        .unwrap_or_default();
                    println!("  ✓ {:<24} {:<18} {summary}{via}", e.worker, e.status);
                }
            }
            if last_summary.elapsed() >= every {
                last_summary = Instant::now();
                let executions = store
                    .executions_after(0, usize::MAX)
                    .map(|e| e.len())
                    .unwrap_or(0);
                let held = store
                    .approvals(&ApprovalFilter {
                        status: Some(ApprovalStatus::Pending),
                        ..ApprovalFilter::default()
                    })
                    .map(|a| a.len())
                    .unwrap_or(0);
                let alerts = store.alerts().map(|a| a.len()).unwrap_or(0);
                let audit = store.audit_len().unwrap_or(0);
                let outbox = store.outbox().map(|o| o.len()).unwrap_or(0);
                println!(
                    "── {executions} executions · {held} actions held for approval · {alerts} alerts · {audit} audit entries · {outbox} notifications ── http://{}/v1/executions",
                    companion.service.config().listen
                );
            }
        }
    })
}
