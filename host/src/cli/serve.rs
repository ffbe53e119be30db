//! `roster serve`: the service and its HTTP API until Ctrl-C (or SIGTERM).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

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
    let service = Arc::new(Service::start(config, Arc::new(SystemClock))?);
    let c = service.config();
    println!(
        "roster serving on http://{listen} (plan {}, {} executors, data in {})",
        c.plan_name,
        c.executors,
        c.data_dir.display()
    );
    for (name, w) in service.workers() {
        let triggers: Vec<&str> = w.config.triggers.iter().map(|t| t.label.as_str()).collect();
        println!(
            "  worker {name}: {} {} as {} on {}",
            w.config.manifest.plugin.id,
            w.config.manifest.plugin.version,
            w.config.grant.grant.principal,
            triggers.join(", ")
        );
    }
    let app = crate::server::router(service.clone());
    let result = runtime.block_on(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop_signal())
            .await
    });
    println!("stopping: letting running executions finish; queued triggers stay queued");
    service.stop();
    result.context("serving the API")?;
    Ok(ExitCode::SUCCESS)
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
