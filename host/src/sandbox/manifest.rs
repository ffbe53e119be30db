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

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config_file;
use crate::error::Error;
use crate::sandbox::limits::LimitsOverride;
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
    /// The settings an installation may give (`[settings]` in the worker file), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, SettingSpec>,
    /// The review the plugin recommends: its starting stage on the trust curve, its
    /// confidence threshold and rules. An installation without a `[review]` of its own
    /// starts with this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::governance::review::ReviewSettings>,
}

/// The type of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
}

/// One setting of the manifest's `[config]` schema.
///
/// ```toml
/// [config.min-employees]
/// type = "integer"
/// description = "Companies this size or larger are a priority."
/// default = 100
/// min = 1
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SettingSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: SettingType,
    /// What it means, for admins.
    pub description: String,
    /// The value when the installation gives none; without one the setting is required.
    #[serde(default)]
    pub default: Option<toml::Value>,
    /// The smallest number allowed.
    #[serde(default)]
    pub min: Option<f64>,
    /// The largest number allowed.
    #[serde(default)]
    pub max: Option<f64>,
    /// The only texts allowed.
    #[serde(default)]
    pub choices: Option<Vec<String>>,
}

impl SettingSpec {
    /// Checks one value against the setting; returns it as JSON.
    pub fn check(&self, name: &str, value: &toml::Value) -> Result<serde_json::Value, String> {
        let kind = match self.kind {
            SettingType::String => "a string",
            SettingType::Integer => "an integer",
            SettingType::Number => "a number",
            SettingType::Boolean => "true or false",
        };
        let json = match (self.kind, value) {
            (SettingType::String, toml::Value::String(s)) => {
                if let Some(choices) = &self.choices
                    && !choices.contains(s)
                {
                    return Err(format!(
                        "setting `{name}`: `{s}` is not one of {}",
                        choices.join(", ")
                    ));
                }
                serde_json::Value::String(s.clone())
            }
            (SettingType::Integer, toml::Value::Integer(i)) => serde_json::Value::from(*i),
            (SettingType::Number, toml::Value::Integer(i)) => serde_json::Value::from(*i),
            (SettingType::Number, toml::Value::Float(f)) if f.is_finite() => {
                serde_json::Value::from(*f)
            }
            (SettingType::Boolean, toml::Value::Boolean(b)) => serde_json::Value::Bool(*b),
            _ => return Err(format!("setting `{name}`: expected {kind}, got `{value}`")),
        };
        if let Some(n) = json.as_f64()
            && (self.min.is_some_and(|min| n < min) || self.max.is_some_and(|max| n > max))
        {
            return Err(format!(
                "setting `{name}`: {n} is outside {}..={}",
                self.min.map_or("".into(), |m| m.to_string()),
                self.max.map_or("".into(), |m| m.to_string())
            ));
        }
        Ok(json)
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
        if let Some(review) = &self.review {
            problems.extend(
                review
                    .validate()
                    .into_iter()
                    .map(|p| format!("review: {p}")),
            );
        }
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
        for (name, spec) in &self.config {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c))
            {
                problems.push(format!(
                    "config.{name}: name settings with lower-case letters, digits, `-` or `_`"
                ));
            }
            if spec.choices.is_some() && spec.kind != SettingType::String {
                problems.push(format!("config.{name}: choices are for string settings"));
            }
            if let Some(default) = &spec.default
                && let Err(e) = spec.check(name, default)
            {
                problems.push(format!("config.{name}.default: {e}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The defaults of the `[config]` schema, as a JSON object.
    pub fn default_settings(&self) -> serde_json::Map<String, serde_json::Value> {
        self.config
            .iter()
            .filter_map(|(name, spec)| {
                let value = spec.check(name, spec.default.as_ref()?).ok()?;
                Some((name.clone(), value))
            })
            .collect()
    }

    /// An installation's settings: `given` checked against the `[config]` schema, over
    /// the defaults. Every problem is named (unknown settings, wrong types, values out of
    /// range, required settings missing).
    pub fn settings(
        &self,
        given: &toml::Table,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Vec<String>> {
        let mut problems = Vec::new();
        let mut out = self.default_settings();
        for (name, value) in given {
            match self.config.get(name) {
                None => problems.push(format!(
                    "setting `{name}` is not in the plugin's [config] schema{}",
                    if self.config.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({})",
                            self.config.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    }
                )),
                Some(spec) => match spec.check(name, value) {
                    Ok(v) => {
                        out.insert(name.clone(), v);
                    }
                    Err(e) => problems.push(e),
                },
            }
        }
        for (name, spec) in &self.config {
            if spec.default.is_none() && !given.contains_key(name) {
                problems.push(format!(
                    "setting `{name}` is required ({}): set it under [settings]",
                    spec.description
                ));
            }
        }
        if problems.is_empty() {
            Ok(out)
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
