//! Builds a guest Cargo workspace (plugins, test programs, examples) for `wasm32-wasip2`.
//!
//! Used by the `tests/artifacts` build script and by the `roster` command. It makes sure the
//! `wasm32-wasip2` target is installed (rustup only adds the targets listed in
//! `rust-toolchain.toml` when it installs the toolchain itself), runs one `cargo build` over
//! a crate or a whole workspace, and returns the component file of every `cdylib` member.
//!
//! Its only dependency is a TOML parser, so that build scripts stay cheap to compile.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target guests are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// One component produced by a guest build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The package name as written in its `Cargo.toml` (for example `stale-lead-alerter`).
    pub package: String,
    /// The path of the `.wasm` component.
    pub path: PathBuf,
}

/// Why a guest build failed.
#[derive(Debug)]
pub enum Error {
    /// A command could not be started at all.
    Spawn {
        /// The command line.
        command: String,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// `rustup target add wasm32-wasip2` failed.
    TargetInstall {
        /// What rustup printed.
        output: String,
    },
    /// `cargo build` failed; its diagnostics went to standard error.
    Cargo {
        /// The workspace that failed to build.
        workspace: PathBuf,
    },
    /// A workspace manifest could not be read.
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The build succeeded but a member's component is missing.
    MissingOutput {
        /// The path that should exist.
        path: PathBuf,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spawn { command, source } => write!(f, "could not run `{command}`: {source}"),
            Error::TargetInstall { output } => {
                write!(f, "could not install the {TARGET} target: {output}")
            }
            Error::Cargo { workspace } => {
                write!(
                    f,
                    "building the guest workspace {} failed",
                    workspace.display()
                )
            }
            Error::Manifest { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::MissingOutput { path } => {
                write!(f, "the build did not produce {}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Installs the `wasm32-wasip2` target through rustup when the active toolchain lacks it.
///
/// Does nothing when rustup is not on the `PATH` (a toolchain without rustup must provide
/// the target itself; the build then reports a clear error from cargo).
pub fn ensure_target(dir: &Path) -> Result<(), Error> {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output();
    let Ok(listed) = listed else {
        return Ok(());
    };
    if String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l.trim() == TARGET)
    {
        return Ok(());
    }
    let out = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(dir)
        .output()
        .map_err(|source| Error::Spawn {
            command: format!("rustup target add {TARGET}"),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::TargetInstall {
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Builds the guest crate or workspace at `dir` in release mode into `target_dir`, returning
/// the component of every package built: the members listed in a workspace's `members`
/// key, or the one package of a crate directory.
pub fn build(dir: &Path, target_dir: &Path) -> Result<Vec<Built>, Error> {
    // Cargo runs in the workspace, so every path it gets must not depend on where we are.
    let workspace = &std::fs::canonicalize(dir).map_err(|e| Error::Manifest {
        path: dir.join("Cargo.toml"),
        reason: e.to_string(),
    })?;
    let target_dir = &std::path::absolute(target_dir).map_err(|e| Error::Manifest {
        path: target_dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    ensure_target(workspace)?;
    let manifest = workspace.join("Cargo.toml");
    let packages = member_packages(workspace)?;

    let mut cmd = Command::new(cargo());
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace);
    // A build script's environment describes the *outer* build; none of it applies here.
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("CARGO_PROFILE_")
            || key_str.starts_with("CARGO_BUILD_")
            || key_str.starts_with("CARGO_TARGET_")
            || key_str.starts_with("CARGO_ENCODED_")
            || key_str == "RUSTFLAGS"
            || key_str == "CARGO_TARGET_DIR"
            || key_str == "CARGO_LLVM_COV"
        {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.status().map_err(|source| Error::Spawn {
        command: format!("cargo build --manifest-path {}", manifest.display()),
        source,
    })?;
    if !status.success() {
        return Err(Error::Cargo {
            workspace: workspace.to_path_buf(),
        });
    }

    let out_dir = target_dir.join(TARGET).join("release");
    packages
        .into_iter()
        .map(|package| {
            let path = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
            if path.is_file() {
                Ok(Built { package, path })
            } else {
                Err(Error::MissingOutput { path })
            }
        })
        .collect()
}

/// The package names built from `dir`: a workspace's members (listed explicitly, no
/// globs), or the package of a crate directory (which may be a workspace of its own, with
/// an empty `[workspace]` table).
pub fn member_packages(workspace: &Path) -> Result<Vec<String>, Error> {
    let manifest = workspace.join("Cargo.toml");
    let table = read(&manifest)?;
    if table
        .get("workspace")
        .is_none_or(|w| w.get("members").is_none())
        && let Some(name) = table
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
    {
        return Ok(vec![name.to_string()]);
    }
    let members = table
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .ok_or_else(|| Error::Manifest {
            path: manifest.clone(),
            reason: "neither a [package] nor a [workspace] with `members = [...]`".into(),
        })?;
    members
        .iter()
        .map(|member| {
            let member = member.as_str().ok_or_else(|| Error::Manifest {
                path: manifest.clone(),
                reason: "`members` holds a value that is not a string".into(),
            })?;
            let path = workspace.join(member).join("Cargo.toml");
            let table = read(&path)?;
            table
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .map(str::to_string)
                .ok_or_else(|| Error::Manifest {
                    path,
                    reason: "no `name` in [package]".into(),
                })
        })
        .collect()
}

fn read(path: &Path) -> Result<toml::Table, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    text.parse::<toml::Table>().map_err(|e| Error::Manifest {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The `cargo` that runs this build (the one cargo sets in `CARGO`), or `cargo` from the PATH.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_member_package_names() {
        let dir = std::env::temp_dir().join(format!("guest-build-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("one")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = [\"one\"]\n").unwrap();
        std::fs::write(
            dir.join("one/Cargo.toml"),
            "[package]\nname = \"first-one\"\n",
        )
        .unwrap();
        assert_eq!(
            member_packages(&dir).unwrap(),
            vec!["first-one".to_string()]
        );
        assert_eq!(
            member_packages(&dir.join("one")).unwrap(),
            vec!["first-one".to_string()]
        );
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\n").unwrap();
        assert!(matches!(member_packages(&dir), Err(Error::Manifest { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
