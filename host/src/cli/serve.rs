//! `roster serve`: the service and its HTTP API until Ctrl-C (or SIGTERM).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::client::Discovery;
use crate::clock::SystemClock;
use crate::config::HostConfig;
use crate::service::Service;

pub(super) fn serve(config_path: &Path) -> anyhow::Result<ExitCode> {
    if !config_path.is_file() {
        bail!(
            "{} does not exist: `roster serve` needs a roster.toml (see docs/operations.md)",
            config_path.display()
        );
    }
    let config = HostConfig::load(config_path)?;
    run(config, None, |_| Vec::new())
}

/// Runs the service and its API until Ctrl-C or SIGTERM. `companions` starts threads that
/// run beside it (given the service and a flag set when it stops) and returns them to be
/// joined before the service stops. While it runs, the discovery file in the data
/// directory tells commands where it listens and where a token is (`token_file`, or the
/// bootstrap token's variable).
pub(super) fn run(
    config: HostConfig,
    token_file: Option<std::path::PathBuf>,
    companions: impl FnOnce(&Companion) -> Vec<std::thread::JoinHandle<()>>,
) -> anyhow::Result<ExitCode> {
    let listen = config.listen;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("roster-api")
        .build()
        .context("starting the API runtime")?;
    // Bind first: a busy port fails before any worker is loaded or anything is written.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr().context("the API's address")?;
    let data_dir = config.data_dir.clone();
    let discovery = Discovery {
        address: address.to_string(),
        pid: std::process::id(),
        started_at: chrono::DateTime::from_timestamp_millis(crate::clock::Clock::now_ms(
            &SystemClock,
        ))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        version: env!("CARGO_PKG_VERSION").to_string(),
        token_file,
        token_env: config.api_token_env.clone(),
    };
    let service = Arc::new(Service::start(config, Arc::new(SystemClock))?);
    let discovered = discovery.write(&data_dir)?;
    let c = service.config();
    println!(
        "roster serving on http://{listen} (plan {}, {} executors, data in {})",
        c.plan_name,
        c.executors,
        c.data_dir.display()
    );
    println!(
        "  commands on this machine find it through {}",
        discovered.display()
    );
    for (name, w) in service.workers().iter() {
        let triggers: Vec<&str> = w.config.triggers.iter().map(|t| t.label.as_str()).collect();
        println!(
            "  worker {name}: {} {} as {} on {}",
            w.config.manifest.plugin.id,
            w.config.manifest.plugin.version,
            w.config.grant.grant.principal,
            triggers.join(", ")
        );
    }
    let companion = Companion {
        service: service.clone(),
        stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let threads = companions(&companion);
    let app = crate::console::app(service.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = runtime.block_on(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop_signal())
            .await
    });
    println!("stopping: letting running executions finish; queued triggers stay queued");
    Discovery::remove(&data_dir);
    companion
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    service.stop();
    result.context("serving the API")?;
    Ok(ExitCode::SUCCESS)
}

/// What a thread running beside the service gets.
#[derive(Clone)]
pub(super) struct Companion {
    /// The running service.
    pub service: Arc<Service>,
    /// Set when the service is stopping.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `roster registry serve`: the OCI registry for worker artifacts until Ctrl-C.
pub(super) fn registry(
    dir: &Path,
    listen: std::net::SocketAddr,
    token_env: Option<&str>,
    private: bool,
) -> anyhow::Result<ExitCode> {
    let tokens: Vec<String> = match token_env {
        Some(var) => {
            let token = std::env::var(var)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .with_context(|| format!("--token-env {var}: the variable is not set"))?;
            vec![token]
        }
        None => Vec::new(),
    };
    if private && tokens.is_empty() {
        bail!("a private registry needs a token (--token-env)");
    }
    let storage = roster_registry::Storage::open(dir)
        .with_context(|| format!("opening the registry storage in {}", dir.display()))?;
    let config = roster_registry::RegistryConfig::with_tokens(&tokens, private);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("roster-registry")
        .build()
        .context("starting the registry runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("listening on {listen}"))?;
    println!(
        "roster registry serving on http://{listen} (blobs in {}; pushes {}; pulls {})",
        dir.display(),
        if tokens.is_empty() {
            "closed"
        } else {
            "with the token"
        },
        if private {
            "with the token"
        } else {
            "anonymous"
        },
    );
    let app = roster_registry::router(storage, config);
    runtime
        .block_on(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop_signal())
                .await
        })
        .context("serving the registry")?;
    Ok(ExitCode::SUCCESS)
}
