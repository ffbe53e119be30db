//! Reading what a component actually imports and exports, from the binary itself.
//!
//! The host trusts neither the manifest nor the plugin author: the import section of the
//! component decides which capabilities must be granted.

use std::fmt;

use serde::Serialize;
use wasmparser::{Encoding, Parser, Payload};

use crate::error::Error;
use crate::scope::CapabilityName;

/// The WIT package version of the contract this host implements.
pub const CONTRACT_VERSION: &str = "0.1";

/// The export every worker must have.
pub const HANDLER_EXPORT: &str = "roster:worker/handler";

/// WASI interfaces every worker may import. They are sandboxed: no preopened directories,
/// no environment, no arguments, and sockets refuse every address.
const BASELINE_WASI: &[&str] = &[
    "wasi:io/",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Roster interfaces every worker may import.
const BASELINE_ROSTER: &[&str] = &[
    "roster:types/types",
    "roster:worker/types",
    "roster:logging/logging",
];

/// What a component imports and exports (top-level names only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentInfo {
    /// Import names, for example `roster:records/records@0.1.0`.
    pub imports: Vec<String>,
    /// Export names, for example `roster:worker/handler@0.1.0`.
    pub exports: Vec<String>,
}

/// How the host treats one import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "class", content = "detail")]
pub enum ImportClass {
    /// Linked for every worker (sandboxed WASI, shared types, logging).
    Baseline,
    /// A capability that needs a grant.
    Capability(CapabilityName),
    /// Not provided by this host; the reason says why.
    Unknown(String),
}

impl fmt::Display for ImportClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportClass::Baseline => f.write_str("baseline"),
            ImportClass::Capability(c) => write!(f, "capability `{c}`"),
            ImportClass::Unknown(reason) => write!(f, "unknown ({reason})"),
        }
    }
}

/// Splits `ns:pkg/iface@1.2.3` into `ns:pkg/iface` and `Some("1.2.3")`.
pub fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    }
}

fn contract_compatible(version: Option<&str>) -> bool {
    version.is_some_and(|v| {
        v == CONTRACT_VERSION
            || v.strip_prefix(CONTRACT_VERSION)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Classifies one import name.
pub fn classify(name: &str) -> ImportClass {
    let (base, version) = split_version(name);
    if base.starts_with("wasi:") {
        if BASELINE_WASI.iter().any(|p| base.starts_with(p)) {
            return ImportClass::Baseline;
        }
        if base.starts_with("wasi:http/") {
            return ImportClass::Unknown(
                "wasi:http is not provided; use roster:http/outbound".into(),
            );
        }
        return ImportClass::Unknown("this WASI interface is not provided".into());
    }
    if base.starts_with("roster:") && !contract_compatible(version) {
        return ImportClass::Unknown(format!(
            "this host implements version {CONTRACT_VERSION}.x of the Roster contract"
        ));
    }
    if BASELINE_ROSTER.contains(&base) {
        return ImportClass::Baseline;
    }
    if let Some(cap) = CapabilityName::ALL
        .into_iter()
        .find(|c| c.interface() == base)
    {
        return ImportClass::Capability(cap);
    }
    ImportClass::Unknown("not part of the Roster contract".into())
}

/// Reads the top-level imports and exports of a component.
pub fn inspect(bytes: &[u8]) -> Result<ComponentInfo, Error> {
    let invalid = |reason: String| Error::InvalidComponent { reason };
    let mut info = ComponentInfo {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| invalid(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(invalid(
                        "this is a core module, not a component (build for wasm32-wasip2)".into(),
                    ));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|e| invalid(e.to_string()))?;
                    info.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    let export = export.map_err(|e| invalid(e.to_string()))?;
                    info.exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    if info.imports.is_empty() && info.exports.is_empty() && bytes.len() < 8 {
        return Err(invalid("the file is empty or truncated".into()));
    }
    Ok(info)
}

impl ComponentInfo {
    /// Whether the component exports a handler this host can call.
    pub fn exports_handler(&self) -> bool {
        self.exports.iter().any(|e| {
            let (base, version) = split_version(e);
            base == HANDLER_EXPORT && contract_compatible(version)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_classified() {
        assert_eq!(classify("wasi:io/streams@0.2.6"), ImportClass::Baseline);
        assert_eq!(classify("wasi:cli/stderr@0.2.0"), ImportClass::Baseline);
        assert_eq!(
            classify("roster:logging/logging@0.1.0"),
            ImportClass::Baseline
        );
        assert_eq!(
            classify("roster:http/outbound@0.1.0"),
            ImportClass::Capability(CapabilityName::Http)
        );
        assert!(
            matches!(classify("wasi:http/outgoing-handler@0.2.0"), ImportClass::Unknown(r) if r.contains("roster:http"))
        );
        assert!(matches!(
            classify("roster:records/records@0.2.0"),
            ImportClass::Unknown(_)
        ));
        assert!(matches!(
            classify("roster:records/records@0.10.0"),
            ImportClass::Unknown(_)
        ));
        assert!(matches!(
            classify("acme:evil/thing"),
            ImportClass::Unknown(_)
        ));
    }

    #[test]
    fn garbage_and_core_modules_are_not_components() {
        assert!(inspect(b"not wasm at all").is_err());
        assert!(inspect(b"").is_err());
        let core_module = b"\0asm\x01\0\0\0";
        let err = inspect(core_module).unwrap_err().to_string();
        assert!(err.contains("core module"), "{err}");
    }
}
