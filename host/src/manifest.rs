//! The plugin manifest (`worker.toml`): who a worker is and what it asks for.
//!
//! ```toml
//! [plugin]
//! id = "example.lead-triage"
//! name = "Lead Triage"
//! version = "0.1.0"
//! domain = "revenue"
//! description = "Scores new leads and tells their owner about hot ones."
//! optional-capabilities = ["http"]  # linked to a stub returning `denied` when not granted
//!
//! [owners]
//! business = "head-of-sales@example.com"
//! technical = "revops@example.com"
//!
//! [capabilities.records.objects.lead]
//! read = ["*"]
//! write = ["score", "rating"]
//!
//! [limits]
//! timeout-ms = 2000
//!
//! [[triggers]]                        # what an installation starts with
//! on = "record-created"
//! object = "lead"
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config_file;
use crate::error::Error;
use crate::limits::LimitsOverride;
use crate::scope::{CapabilityName, Scopes};

/// A parsed and validated plugin manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Identity.
    pub plugin: PluginInfo,
    /// Owners.
    pub owners: Owners,
    /// Requested capabilities and their scopes.
    #[serde(default)]
    pub capabilities: Scopes,
    /// Default limits, within the host's maximums.
    #[serde(default)]
    pub limits: LimitsOverride,
    /// The triggers an installation starts with (`roster install` writes them into the
    /// worker's file, where an admin may change them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<crate::trigger::TriggerSpec>,
}

/// A plugin's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginInfo {
    /// A stable identifier: lower-case letters, digits, `.`, `-` and `_`, for example
    /// `acme.stale-lead-alerter`.
    pub id: String,
    /// A display name.
    pub name: String,
    /// The plugin's semantic version.
    pub version: String,
    /// The business domain it works in.
    pub domain: Domain,
    /// What it does, for admins and reviewers.
    pub description: String,
    /// Capabilities the plugin can do without: when not granted, their imports are linked to
    /// a stub whose every call returns `denied`.
    #[serde(default)]
    pub optional_capabilities: Vec<CapabilityName>,
}

/// The business domains workers belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Domain {
    /// Revenue (sales, marketing).
    Revenue,
    /// Customer experience (support, success).
    CustomerExperience,
    /// IT operations.
    ItOperations,
    /// Finance.
    Finance,
    /// Security.
    Security,
    /// Human resources.
    Hr,
}

impl Domain {
    /// Its name, as written in manifests and role grants (`customer-experience`).
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Revenue => "revenue",
            Domain::CustomerExperience => "customer-experience",
            Domain::ItOperations => "it-operations",
            Domain::Finance => "finance",
            Domain::Security => "security",
            Domain::Hr => "hr",
        }
    }
}

/// Who answers for a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Owners {
    /// The business owner (accountable for what the worker does).
    pub business: String,
    /// The technical owner (answers for how it does it).
    pub technical: String,
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, Error> {
        Self::parse(path, &config_file::read_text(path)?)
    }

    /// Parses and validates manifest text (from `origin`, used in error messages).
    pub fn parse(origin: &Path, text: &str) -> Result<Manifest, Error> {
        let manifest: Manifest = config_file::parse_toml(origin, text)?;
        manifest.validate().map_err(|problems| Error::Config {
            location: origin.display().to_string(),
            reason: problems.join("; "),
        })?;
        Ok(manifest)
    }

    /// Checks the rules serde cannot express; returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let id = &self.plugin.id;
        if id.is_empty()
            || id.len() > 128
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        {
            problems.push(format!(
                "plugin.id `{id}`: use 1 to 128 lower-case letters, digits, `.`, `-` or `_`"
            ));
        }
        if !is_semver(&self.plugin.version) {
            problems.push(format!(
                "plugin.version `{}`: use a semantic version such as 1.2.3",
                self.plugin.version
            ));
        }
        if self.plugin.name.trim().is_empty() {
            problems.push("plugin.name is empty".into());
        }
        for cap in &self.plugin.optional_capabilities {
            if !self.capabilities.has(*cap) {
                problems.push(format!(
                    "plugin.optional-capabilities names `{cap}`, which is not requested"
                ));
            }
        }
        problems.extend(self.capabilities.validate());
        problems.extend(self.limits.validate());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether the manifest marks a capability optional.
    pub fn is_optional(&self, cap: CapabilityName) -> bool {
        self.plugin.optional_capabilities.contains(&cap)
    }
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[plugin]
id = "acme.triage"
name = "Triage"
version = "1.0.0"
domain = "revenue"
description = "d"
optional-capabilities = ["http"]
[owners]
business = "b@acme.test"
technical = "t@acme.test"
[capabilities.http]
allow = [{ url = "https://api.acme.test" }]
"#;

    #[test]
    fn a_valid_manifest_parses() {
        let m = Manifest::parse(Path::new("worker.toml"), GOOD).unwrap();
        assert!(m.is_optional(CapabilityName::Http));
        assert!(m.capabilities.http.is_some());
    }

    #[test]
    fn invalid_manifests_say_where_and_why() {
        let bad_id = GOOD.replace("acme.triage", "Acme Triage!");
        let err = Manifest::parse(Path::new("w.toml"), &bad_id)
            .unwrap_err()
            .to_string();
        assert!(err.contains("plugin.id"), "{err}");

        let unknown = GOOD.replace("domain = \"revenue\"", "domain = \"sales\"");
        let err = Manifest::parse(Path::new("w.toml"), &unknown)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.toml:6:10"), "{err}");

        let optional = GOOD.replace("[\"http\"]", "[\"notify\"]");
        let err = Manifest::parse(Path::new("w.toml"), &optional)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not requested"), "{err}");

        let origin = GOOD.replace("https://api.acme.test", "https://api.acme.test/v1");
        let err = Manifest::parse(Path::new("w.toml"), &origin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no path"), "{err}");
    }
}
