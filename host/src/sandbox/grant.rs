//! An admin's grant (`grant.toml`): the subset of a plugin's request that it may use.
//!
//! ```toml
//! [grant]
//! plugin = "example.lead-triage"
//! principal = "svc-revops"          # who the worker acts as
//!
//! [capabilities.records.objects.lead]
//! read = ["name", "email", "company", "employees", "status"]
//! write = ["score", "rating"]
//!
//! [capabilities.notify]
//! channels = ["in-app"]
//! recipients = ["*"]
//!
//! [limits]
//! actions = 5
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config_file;
use crate::error::Error;
use crate::sandbox::limits::LimitsOverride;
use crate::sandbox::manifest::Manifest;
use crate::scope::Scopes;

/// A parsed grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Grant {
    /// Whom and what the grant is for.
    pub grant: GrantInfo,
    /// The granted capabilities and scopes; a capability left out is not granted.
    #[serde(default)]
    pub capabilities: Scopes,
    /// Limits set by the admin (capped by the host's maximums).
    #[serde(default)]
    pub limits: LimitsOverride,
}

/// The plugin and principal a grant applies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GrantInfo {
    /// The plugin id from its manifest.
    pub plugin: String,
    /// The principal the worker acts as (its creator or a service account).
    #[serde(default = "default_principal")]
    pub principal: String,
}

fn default_principal() -> String {
    "system".into()
}

impl Grant {
    /// A grant of exactly what `manifest` requests, acting as `principal`.
    pub fn requested(manifest: &Manifest, principal: &str) -> Grant {
        Grant {
            grant: GrantInfo {
                plugin: manifest.plugin.id.clone(),
                principal: principal.to_string(),
            },
            capabilities: manifest.capabilities.clone(),
            limits: Default::default(),
        }
    }

    /// Reads and validates a grant file.
    pub fn load(path: &Path) -> Result<Grant, Error> {
        Self::parse(path, &config_file::read_text(path)?)
    }

    /// Parses and validates grant text (from `origin`, used in error messages).
    pub fn parse(origin: &Path, text: &str) -> Result<Grant, Error> {
        let grant: Grant = config_file::parse_toml(origin, text)?;
        grant.validate(origin)?;
        Ok(grant)
    }

    fn validate(&self, origin: &Path) -> Result<(), Error> {
        let mut problems = self.capabilities.validate();
        problems.extend(self.limits.validate());
        if self.grant.principal.trim().is_empty() {
            problems.push("grant.principal is empty".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                location: origin.display().to_string(),
                reason: problems.join("; "),
            })
        }
    }

    /// Checks that this grant is for `manifest`'s plugin and grants nothing it did not request.
    pub fn check_against(&self, manifest: &Manifest) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.grant.plugin != manifest.plugin.id {
            problems.push(format!(
                "it is for plugin `{}`, not `{}`",
                self.grant.plugin, manifest.plugin.id
            ));
        }
        problems.extend(self.capabilities.exceeding(&manifest.capabilities));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::GrantMismatch { problems })
        }
    }

    /// A digest of the grant's content, recorded with every execution so that an audit can
    /// tell exactly which grant was in force.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
    }
}
