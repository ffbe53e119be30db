//! `roster plugin`: publisher keys (and, to come, publishing and scaffolding).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

/// `roster plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Make a publisher key pair: `NAME.key` (secret, mode 0600) and `NAME.pub` (give it to
    /// the admins who install your workers).
    Keygen {
        /// The files' path without extension.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

pub(super) fn plugin(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Keygen { out } => keygen(&out),
    }
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    for path in [&secret, &public] {
        if path.exists() {
            bail!(
                "{} exists; remove it or choose another --out",
                path.display()
            );
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    if let Some(dir) = secret.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options
            .open(&secret)
            .with_context(|| format!("writing {}", secret.display()))?;
        writeln!(f, "{}", hex::encode(key.to_bytes()))?;
    }
    let verifying = key.verifying_key();
    std::fs::write(&public, format!("{}\n", hex::encode(verifying.as_bytes())))
        .with_context(|| format!("writing {}", public.display()))?;
    println!(
        "publisher key {} written: {} (secret) and {} (public)",
        roster_registry::artifact::key_id(&verifying),
        secret.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}
