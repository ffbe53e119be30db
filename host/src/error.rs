//! The host library's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a worker (other than the worker's
/// own failures, which are execution statuses in a [`crate::sandbox::report::ExecutionReport`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest, grant, event or host configuration file is invalid.
    #[error("{location}: {reason}")]
    Config {
        /// `path:line:column` (or a description of the input).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid component: {reason}")]
    InvalidComponent {
        /// What the parser or compiler reported.
        reason: String,
    },
    /// The component imports capabilities that its grant does not include.
    #[error("component refused: it imports {}, not granted", missing.join(" and "))]
    NotGranted {
        /// One entry per missing grant, naming the capability and the interface.
        missing: Vec<String>,
    },
    /// The component imports interfaces that no Roster host provides.
    #[error("component refused: unknown imports {}", names.join(", "))]
    UnknownImports {
        /// The import names.
        names: Vec<String>,
    },
    /// The component does not export the worker handler.
    #[error("component refused: it does not export `{expected}` (exports: {found})")]
    NotAWorker {
        /// The export the host looks for.
        expected: String,
        /// What it exports instead.
        found: String,
    },
    /// The grant does not match the manifest (another plugin, or more than requested).
    #[error("grant refused: {}", problems.join("; "))]
    GrantMismatch {
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The embedded store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The WebAssembly engine failed (compilation, linking, instantiation set-up).
    #[error("engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The event to run is invalid.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// An installation was refused (signature, digest, imports, grant, version); the
    /// message says why.
    #[error("install refused: {0}; nothing was installed")]
    InstallRefused(String),
    /// A rule file was refused; every problem names where it is.
    #[error("rule refused: {}; nothing was saved or deployed", .0.join("; "))]
    RuleRefused(Vec<String>),
    /// An operator's request is invalid (a missing reason, resuming a running worker).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No installed worker has this name.
    #[error("no installed worker is named `{0}`")]
    UnknownWorker(String),
    /// A thing the request names does not exist.
    #[error("{0}")]
    NotFound(String),
}

impl From<wasmtime::Error> for Error {
    fn from(e: wasmtime::Error) -> Self {
        Error::Engine(e)
    }
}
