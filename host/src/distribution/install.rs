//! Installing workers from a registry: verify what was pulled, show the capability review,
//! install only under an explicit grant, and pin the component's digest.
//!
//! The checks run in this order, and the first one that fails refuses the installation
//! before anything is written:
//!
//! 1. the artifact's layout (one `application/wasm` layer, the Wasm config, a Roster
//!    manifest annotation) and every blob against its descriptor's digest;
//! 2. the publisher's signature over plugin, version, component digest and manifest
//!    digest, by one of the trusted keys (unless unsigned artifacts are explicitly allowed);
//! 3. the component's actual imports against its manifest: importing a capability the
//!    manifest does not request is refused;
//! 4. the version against the installed one: a downgrade needs an explicit flag, a
//!    republished version with other content is refused;
//! 5. the grant: given as a file, or the manifest's request accepted as shown; on an
//!    upgrade the current grant carries over only when the new version asks for nothing
//!    beyond it;
//! 6. the worker file written from all of this must load, and the component must link
//!    under the grant.
//!
//! Each installed worker lives in `<data-dir>/installed/<name>/` (worker file, manifest,
//! grant); its component is kept by digest under `<data-dir>/components/`, and the worker
//! file pins that digest, so a changed file is refused at every load.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use roster_registry::artifact::{self, ArtifactError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{HostConfig, InstallSource, WorkerConfig};
use crate::distribution::oci::Pulled;
use crate::error::Error;
use crate::sandbox::grant::Grant;
use crate::sandbox::imports::{self, ComponentInfo, ImportClass};
use crate::sandbox::manifest::Manifest;
use crate::sandbox::runtime::Runtime;
use crate::scope::CapabilityName;
use crate::store::{GovernanceEvent, InstallRecord};

mod semver;
pub use semver::compare_versions;

fn refused(reason: impl Into<String>) -> Error {
    Error::InstallRefused(reason.into())
}

fn artifact_refused(e: ArtifactError) -> Error {
    refused(e.to_string())
}

/// A pulled artifact that passed the layout, digest, signature and import checks.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The reference it was pulled by.
    pub reference: String,
    /// The OCI manifest's digest.
    pub manifest_digest: String,
    /// The component.
    pub component: Vec<u8>,
    /// `sha256:<hex>` of the component.
    pub component_digest: String,
    /// The Roster manifest's text, exactly as signed.
    pub manifest_text: String,
    /// The Roster manifest.
    pub manifest: Manifest,
    /// The id of the key that signed it; `None` when unsigned and allowed.
    pub signer: Option<String>,
    /// The publisher's signature, kept so that every load can check it again.
    pub signature: Option<artifact::Signature>,
    /// What the component imports and exports.
    pub info: ComponentInfo,
    /// The capabilities it imports.
    pub imported: BTreeSet<CapabilityName>,
}

/// Checks a pulled artifact: layout, blob digests, the publisher's signature (by one of
/// `trusted`, unless `allow_unsigned` and there is none), and the component's imports
/// against its manifest.
pub fn verify(
    reference: &str,
    pulled: &Pulled,
    trusted: &[VerifyingKey],
    allow_unsigned: bool,
) -> Result<Verified, Error> {
    let described = artifact::describe(&pulled.manifest).map_err(artifact_refused)?;
    artifact::check_blob("config", &described.manifest.config, &pulled.config)
        .map_err(artifact_refused)?;
    artifact::check_blob("component layer", &described.layer, &pulled.layer)
        .map_err(artifact_refused)?;
    let manifest = Manifest::parse(
        Path::new("the artifact's Roster manifest"),
        &described.roster_manifest,
    )
    .map_err(|e| refused(e.to_string()))?;
    let component_digest = described.layer.digest.clone();
    let signer = match &described.signature {
        None if allow_unsigned => None,
        None => return Err(artifact_refused(ArtifactError::Unsigned)),
        Some(signature) => {
            let message = artifact::signed_message(
                &manifest.plugin.id,
                &manifest.plugin.version,
                &component_digest,
                &roster_registry::storage::digest_of(described.roster_manifest.as_bytes()),
            );
            artifact::verify(signature, &message, trusted).map_err(artifact_refused)?;
            let key = artifact::public_key(&signature.key).map_err(refused)?;
            Some(artifact::key_id(&key))
        }
    };
    let info = imports::inspect(&pulled.layer)?;
    let mut imported = BTreeSet::new();
    let mut beyond = Vec::new();
    let mut unknown = Vec::new();
    for name in &info.imports {
        match imports::classify(name) {
            ImportClass::Baseline => {}
            ImportClass::Capability(cap) => {
                if !manifest.capabilities.has(cap) {
                    beyond.push(format!("`{cap}` ({name})"));
                }
                imported.insert(cap);
            }
            ImportClass::Unknown(reason) => unknown.push(format!("`{name}` ({reason})")),
        }
    }
    if !beyond.is_empty() {
        return Err(refused(format!(
            "the component imports {}, which its manifest does not request",
            beyond.join(" and ")
        )));
    }
    if !unknown.is_empty() {
        return Err(refused(format!(
            "the component imports {}, which this host does not provide",
            unknown.join(", ")
        )));
    }
    if !info.exports_handler() {
        return Err(refused(format!(
            "the component does not export `{}`",
            imports::HANDLER_EXPORT
        )));
    }
    Ok(Verified {
        reference: reference.to_string(),
        manifest_digest: pulled.digest.clone(),
        component: pulled.layer.clone(),
        component_digest,
        manifest_text: described.roster_manifest,
        manifest,
        signer,
        signature: described.signature,
        info,
        imported,
    })
}

/// Every publisher key trusted on this host: `[registry] trusted-keys`, and the keys an
/// admin trusted on an earlier install (`<data-dir>/trusted-keys/<id>.pub`).
pub fn trusted_keys(config: &HostConfig) -> Vec<VerifyingKey> {
    let mut keys = config.trusted_keys.clone();
    for key in crate::config::remembered_keys(&config.data_dir) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Keeps a key an admin trusted for an install, so that loads (which check the signature
/// again) and later upgrades trust it too; removing the file revokes it.
fn remember_key(config: &HostConfig, key: &VerifyingKey) -> Result<(), Error> {
    if config.trusted_keys.contains(key) {
        return Ok(());
    }
    let dir = config.data_dir.join("trusted-keys");
    let path = dir.join(format!("{}.pub", artifact::key_id(key)));
    if path.is_file() {
        return Ok(());
    }
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::write(&path, format!("{}\n", hex::encode(key.as_bytes()))).map_err(io)
}

/// Where the grant of an installation comes from.
#[derive(Debug, Clone)]
pub enum GrantChoice {
    /// A grant file's text, written by the admin.
    File(String),
    /// Exactly what the manifest requests, accepted after reading the review.
    Requested,
}

/// What the admin asked for.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// The installation's name (defaults to the last part of the plugin id).
    pub name: Option<String>,
    /// The grant; `None` keeps the current one on an upgrade that asks for nothing more.
    pub grant: Option<GrantChoice>,
    /// The principal the worker acts as (defaults to the current one, then the grant
    /// file's).
    pub principal: Option<String>,
    /// Allow installing an older version than the installed one.
    pub allow_downgrade: bool,
    /// Settings to write into the worker file's `[settings]` (checked against the
    /// manifest's `[config]` schema when the file is loaded).
    pub settings: toml::Table,
    /// Who installs it (recorded).
    pub by: String,
    /// Worker-file sections that replace the installation's own (`triggers`,
    /// `conditions`, `review`) and its domain: a rule's deployment of the rules worker.
    pub rule: Option<RuleSections>,
}

/// What a rule's deployment writes into the worker file, replacing what was there.
#[derive(Debug, Clone, Default)]
pub struct RuleSections {
    /// `[[triggers]]`, `[conditions]`, `[step-conditions]` and `[review]` (each
    /// replaced, or removed when absent).
    pub sections: toml::Table,
    /// The domain the installation works in.
    pub domain: String,
}

/// How an installation changes what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Not installed before.
    Install,
    /// A newer version.
    Upgrade,
    /// An older version (with `allow_downgrade`).
    Downgrade,
    /// The same version and component, with another grant.
    Regrant,
}

impl Change {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Install => "install",
            Change::Upgrade => "upgrade",
            Change::Downgrade => "downgrade",
            Change::Regrant => "regrant",
        }
    }
}

/// One capability in the review.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ReviewLine {
    /// The capability.
    pub capability: CapabilityName,
    /// The manifest's requested scope (TOML), if requested.
    pub requested: Option<String>,
    /// Whether the manifest marks it optional.
    pub optional: bool,
    /// Whether the component imports it.
    pub imported: bool,
    /// The proposed grant's scope (TOML), if granted.
    pub granted: Option<String>,
}

/// The capability review an admin reads before granting.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Review {
    /// The installation's name.
    pub worker: String,
    /// The plugin id.
    pub plugin: String,
    /// The version offered.
    pub version: String,
    /// The plugin's business domain.
    pub domain: String,
    /// The reference and the OCI manifest digest.
    pub reference: String,
    /// The OCI manifest's digest.
    pub manifest_digest: String,
    /// The component's digest (pinned on install).
    pub component_digest: String,
    /// The publisher key id, or `None` for an unsigned artifact.
    pub signer: Option<String>,
    /// The version installed now, if any.
    pub current_version: Option<String>,
    /// Per capability: requested, imported, proposed grant.
    pub capabilities: Vec<ReviewLine>,
    /// What the offered version asks for beyond the grant in force (upgrades).
    pub beyond_current_grant: Vec<String>,
    /// Capabilities granted that the component never imports.
    pub unused: Vec<CapabilityName>,
    /// The proposed grant, as a grant file (`None` until one is chosen).
    pub proposed_grant: Option<String>,
    /// The settings the plugin accepts (its `[config]` schema).
    pub config: std::collections::BTreeMap<String, crate::sandbox::manifest::SettingSpec>,
}

/// An installation that passed every check, ready to be written.
#[derive(Debug)]
pub struct Plan {
    /// The review shown to the admin.
    pub review: Review,
    /// What it changes.
    pub change: Change,
    verified: Verified,
    grant: Option<(Grant, String)>,
    principal: Option<String>,
    existing: Option<WorkerConfig>,
    by: String,
    settings: toml::Table,
    rule: Option<RuleSections>,
}

fn scope_toml(scopes: &crate::scope::Scopes, cap: CapabilityName) -> Option<String> {
    let value = match cap {
        CapabilityName::Records => toml::Value::try_from(scopes.records.as_ref()?),
        CapabilityName::Notify => toml::Value::try_from(scopes.notify.as_ref()?),
        CapabilityName::Http => toml::Value::try_from(scopes.http.as_ref()?),
        CapabilityName::Memory => toml::Value::try_from(scopes.memory.as_ref()?),
        CapabilityName::Signals => toml::Value::try_from(scopes.signals.as_ref()?),
        CapabilityName::Inference => toml::Value::try_from(scopes.inference.as_ref()?),
        CapabilityName::Enrichment => toml::Value::try_from(scopes.enrichment.as_ref()?),
    }
    .ok()?;
    Some(match value {
        toml::Value::Table(t) => toml::to_string(&t).unwrap_or_default().trim().to_string(),
        other => other.to_string(),
    })
}

/// The default installation name: the plugin id's last `.`-separated part.
pub fn default_name(plugin: &str) -> String {
    plugin.rsplit('.').next().unwrap_or(plugin).to_string()
}

/// Plans an installation: the version rules, the grant, and the review. Nothing is
/// written; the plan's `proposed_grant` is `None` when no grant was given (the review is
/// all there is to show).
pub fn plan(
    config: &HostConfig,
    verified: Verified,
    options: &InstallOptions,
) -> Result<Plan, Error> {
    let manifest = &verified.manifest;
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| default_name(&manifest.plugin.id));
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        || name.starts_with('.')
    {
        return Err(refused(format!(
            "name `{name}`: use lower-case letters, digits, `-`, `_` or `.`"
        )));
    }
    let installed_dir = config.installed_dir();
    let existing = config.workers.iter().find(|w| w.name == name).cloned();
    if let Some(w) = &existing {
        if !w.path.starts_with(&installed_dir) {
            return Err(refused(format!(
                "worker `{name}` is configured in {}, not installed from a registry; choose another --name",
                w.path.display()
            )));
        }
        if w.manifest.plugin.id != manifest.plugin.id {
            return Err(refused(format!(
                "worker `{name}` is plugin `{}`, not `{}`; choose another --name",
                w.manifest.plugin.id, manifest.plugin.id
            )));
        }
    }
    let change = match &existing {
        None => Change::Install,
        Some(w) => {
            let current = &w.manifest.plugin.version;
            match compare_versions(&manifest.plugin.version, current) {
                std::cmp::Ordering::Greater => Change::Upgrade,
                std::cmp::Ordering::Less if options.allow_downgrade => Change::Downgrade,
                std::cmp::Ordering::Less => {
                    return Err(refused(format!(
                        "version {} is older than the installed {current}; a downgrade needs --allow-downgrade",
                        manifest.plugin.version
                    )));
                }
                std::cmp::Ordering::Equal => {
                    if w.pinned.as_deref() != Some(verified.component_digest.as_str()) {
                        return Err(refused(format!(
                            "version {current} is installed with component {}, and this artifact carries another one ({}) under the same version; a published version must not change",
                            w.pinned.as_deref().unwrap_or("-"),
                            verified.component_digest
                        )));
                    }
                    if options.grant.is_none() {
                        return Err(refused(format!(
                            "version {current} is already installed with this component; give a grant to change its grant"
                        )));
                    }
                    Change::Regrant
                }
            }
        }
    };

    // Who the worker acts as: --principal, else a grant file's, else the current one.
    let current_principal = existing.as_ref().map(|w| w.grant.grant.principal.clone());
    let principal = options.principal.clone().or(current_principal);
    let grant: Option<Grant> = match &options.grant {
        Some(GrantChoice::File(text)) => {
            let mut grant = Grant::parse(Path::new("the grant"), text)?;
            if let Some(p) = &options.principal {
                grant.grant.principal = p.clone();
            }
            Some(grant)
        }
        Some(GrantChoice::Requested) => Some(Grant::requested(
            manifest,
            principal.as_deref().ok_or_else(|| {
                refused("granting the request needs --principal (who the worker acts as)")
            })?,
        )),
        None => existing.as_ref().map(|w| {
            let mut grant = Grant::load(&w.grant_path).unwrap_or_else(|_| w.grant.clone());
            grant.grant.principal = w.grant.grant.principal.clone();
            grant
        }),
    };

    // An upgrade keeps the grant in force only when it asks for nothing beyond it. An
    // optional capability the admin left out stays out: not a new ask.
    let mut beyond = Vec::new();
    if let (Some(w), None) = (&existing, &options.grant) {
        let granted = &w.grant.capabilities;
        let left_out: Vec<String> = CapabilityName::ALL
            .into_iter()
            .filter(|cap| manifest.is_optional(*cap) && !granted.has(*cap))
            .flat_map(|cap| [format!("capability `{cap}`"), format!("{cap}:")])
            .collect();
        beyond = manifest
            .capabilities
            .asking_beyond(granted)
            .into_iter()
            .filter(|problem| !left_out.iter().any(|p| problem.starts_with(p.as_str())))
            .collect();
    }

    let proposed_scopes = grant
        .as_ref()
        .map(|g| g.capabilities.clone())
        .unwrap_or_else(|| manifest.capabilities.clone());
    let capabilities = CapabilityName::ALL
        .into_iter()
        .filter(|c| {
            manifest.capabilities.has(*c)
                || verified.imported.contains(c)
                || proposed_scopes.has(*c)
        })
        .map(|cap| ReviewLine {
            capability: cap,
            requested: scope_toml(&manifest.capabilities, cap),
            optional: manifest.is_optional(cap),
            imported: verified.imported.contains(&cap),
            granted: scope_toml(&proposed_scopes, cap),
        })
        .collect();
    let unused = CapabilityName::ALL
        .into_iter()
        .filter(|c| proposed_scopes.has(*c) && !verified.imported.contains(c))
        .collect();
    let grant_text = grant.as_ref().map(|g| match &options.grant {
        Some(GrantChoice::File(text)) if options.principal.is_none() => text.clone(),
        _ => toml::to_string(g).unwrap_or_default(),
    });
    let principal = grant
        .as_ref()
        .map(|g| g.grant.principal.clone())
        .or(principal);
    let review = Review {
        worker: name,
        plugin: manifest.plugin.id.clone(),
        version: manifest.plugin.version.clone(),
        domain: manifest.plugin.domain.as_str().to_string(),
        reference: verified.reference.clone(),
        manifest_digest: verified.manifest_digest.clone(),
        component_digest: verified.component_digest.clone(),
        signer: verified.signer.clone(),
        current_version: existing.as_ref().map(|w| w.manifest.plugin.version.clone()),
        capabilities,
        beyond_current_grant: beyond,
        unused,
        config: manifest.config.clone(),
        proposed_grant: if options.grant.is_some() || existing.is_some() {
            grant_text.clone()
        } else {
            None
        },
    };
    let grant = match (grant, grant_text) {
        (Some(g), Some(t)) if options.grant.is_some() || existing.is_some() => Some((g, t)),
        _ => None,
    };
    Ok(Plan {
        review,
        change,
        verified,
        grant,
        principal,
        existing,
        by: options.by.clone(),
        settings: options.settings.clone(),
        rule: options.rule.clone(),
    })
}

impl Plan {
    /// Why the plan cannot be carried out as it stands, if it cannot: no grant chosen, or
    /// an upgrade asking for more than the grant in force.
    pub fn blocker(&self) -> Option<String> {
        if !self.review.beyond_current_grant.is_empty() {
            return Some(format!(
                "version {} asks for more than the grant in force ({}); review it and give a new grant (--grant FILE or --grant-requested)",
                self.review.version,
                self.review.beyond_current_grant.join("; ")
            ));
        }
        if self.grant.is_none() {
            return Some(
                "no grant given: read the review above, then pass --grant FILE or --grant-requested"
                    .into(),
            );
        }
        None
    }

    /// Writes the installation: the component kept by digest, the worker's directory
    /// (worker file pinning the digest, manifest, grant) swapped in whole, after the worker
    /// file loads and the component links under the grant; then the installation and its
    /// audit entry in one transaction. Returns the worker file's path.
    pub fn apply(self, config: &HostConfig, runtime: &Runtime) -> Result<PathBuf, Error> {
        if let Some(reason) = self.blocker() {
            return Err(refused(reason));
        }
        let Some((grant, grant_text)) = &self.grant else {
            return Err(refused("no grant given"));
        };
        let verified = &self.verified;
        let manifest = &verified.manifest;
        grant.check_against(manifest).map_err(|e| {
            refused(format!(
                "the grant does not fit version {}: {e}",
                manifest.plugin.version
            ))
        })?;
        crate::sandbox::loader::plan(&verified.info, manifest, grant)
            .map_err(|e| refused(e.to_string()))?;

        let name = &self.review.worker;
        let now = runtime.store().clock().now_ms();
        if let Some(signature) = &verified.signature {
            let key = artifact::public_key(&signature.key).map_err(refused)?;
            remember_key(config, &key)?;
        }
        let (digest, kept) = keep_component(config, &verified.component)?;
        let installed = config.installed_dir();
        let target = installed.join(name);
        let partial = installed.join(format!(".{name}.partial"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
        }
        std::fs::create_dir_all(&partial).map_err(io(&partial))?;
        let result = (|| {
            std::fs::write(partial.join("manifest.toml"), &verified.manifest_text)
                .map_err(io(&partial))?;
            std::fs::write(partial.join("grant.toml"), grant_text).map_err(io(&partial))?;
            let worker_file = self.worker_file(config, &digest, &kept, now)?;
            let worker_path = partial.join("worker.toml");
            std::fs::write(&worker_path, worker_file).map_err(io(&worker_path))?;
            let candidate =
                crate::config::load_worker(&worker_path, &config.schema, &config.directory)
                    .map_err(|e| refused(format!("the worker file it makes does not load: {e}")))?;
            let bytes = candidate.component_bytes()?;
            let mut grant = candidate.grant.clone();
            grant.limits = grant.limits.overlay(&candidate.limits);
            runtime
                .load(&bytes, &candidate.manifest, &grant)
                .map_err(|e| refused(e.to_string()))?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        let old = installed.join(format!(".{name}.old"));
        if target.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io(&old))?;
            }
            std::fs::rename(&target, &old).map_err(io(&target))?;
        }
        std::fs::rename(&partial, &target).map_err(io(&target))?;
        let record = InstallRecord {
            version: manifest.plugin.version.clone(),
            component_digest: digest.clone(),
            manifest: verified.manifest_text.clone(),
            grant: grant_text.clone(),
            imported: verified.imported.iter().map(|c| c.to_string()).collect(),
            reference: verified.reference.clone(),
            manifest_digest: verified.manifest_digest.clone(),
            signer: verified.signer.clone(),
            change: self.change.as_str().to_string(),
            at: now,
            by: self.by.clone(),
        };
        let event = GovernanceEvent {
            action: format!("worker.{}", self.change.as_str()),
            by: record.by.clone(),
            worker: Some(name.clone()),
            subject: Some(verified.reference.clone()),
            reason: None,
            data: serde_json::json!({
                "plugin": manifest.plugin.id,
                "version": manifest.plugin.version,
                "previous-version": self.review.current_version,
                "component-digest": digest,
                "manifest-digest": verified.manifest_digest,
                "signer": verified.signer,
                "imported": record.imported,
                "grant-digest": grant.digest(),
            }),
        };
        if let Err(e) = runtime.store().record_install(name, record, event) {
            // Put back what was there.
            let _ = std::fs::remove_dir_all(&target);
            if old.exists() {
                let _ = std::fs::rename(&old, &target);
            }
            return Err(e.into());
        }
        if old.exists() {
            let _ = std::fs::remove_dir_all(&old);
        }
        Ok(target.join("worker.toml"))
    }

    /// The worker file: an upgrade keeps the admin's sections (triggers, conditions,
    /// review rules, retries) and replaces the component, its pin and the source.
    fn worker_file(
        &self,
        config: &HostConfig,
        digest: &str,
        kept: &Path,
        now: i64,
    ) -> Result<String, Error> {
        let verified = &self.verified;
        let mut table = match &self.existing {
            Some(w) => {
                let text = crate::config_file::read_text(&w.path)?;
                toml::from_str::<toml::Table>(&text).map_err(|e| Error::Config {
                    location: w.path.display().to_string(),
                    reason: e.to_string(),
                })?
            }
            None if self.rule.is_some() => toml::Table::new(),
            None => {
                if verified.manifest.triggers.is_empty() {
                    return Err(refused(
                        "the manifest declares no [[triggers]], so the worker would never run; the publisher should add them",
                    ));
                }
                let mut t = toml::Table::new();
                t.insert(
                    "triggers".into(),
                    toml::Value::try_from(&verified.manifest.triggers)
                        .map_err(|e| refused(format!("the manifest's triggers: {e}")))?,
                );
                t
            }
        };
        let component =
            Path::new("../..").join(kept.strip_prefix(&config.data_dir).unwrap_or(kept));
        let mut worker = table
            .get("worker")
            .and_then(|w| w.as_table())
            .cloned()
            .unwrap_or_default();
        worker.insert("name".into(), self.review.worker.clone().into());
        worker.insert(
            "component".into(),
            component.to_string_lossy().into_owned().into(),
        );
        worker.insert("manifest".into(), "manifest.toml".into());
        worker.insert("grant".into(), "grant.toml".into());
        worker.insert("pinned-digest".into(), digest.into());
        if let Some(rule) = &self.rule {
            worker.insert("domain".into(), rule.domain.clone().into());
            for key in ["triggers", "conditions", "review", "step-conditions"] {
                table.remove(key);
            }
            table.extend(rule.sections.clone());
        }
        if let Some(p) = &self.principal {
            worker.insert("principal".into(), p.clone().into());
        } else if let Some((g, _)) = &self.grant {
            worker.insert("principal".into(), g.grant.principal.clone().into());
        }
        table.insert("worker".into(), toml::Value::Table(worker));
        if !self.settings.is_empty() {
            let mut settings = table
                .get("settings")
                .and_then(|s| s.as_table())
                .cloned()
                .unwrap_or_default();
            settings.extend(self.settings.clone());
            table.insert("settings".into(), toml::Value::Table(settings));
        }
        let source = InstallSource {
            reference: verified.reference.clone(),
            manifest_digest: verified.manifest_digest.clone(),
            signer: verified.signer.clone(),
            signature: verified.signature.clone(),
            installed_at: now,
            installed_by: self.by.clone(),
        };
        let source = toml::Value::try_from(&source).map_err(|e| refused(e.to_string()))?;
        table.insert("source".into(), source);
        let mut text = format!(
            "# Installed by `roster install {}` (version {}).\n# The component is pinned by digest; the admin's sections below are kept across upgrades.\n",
            verified.reference, verified.manifest.plugin.version
        );
        // `[worker]` first, then the rest in the table's order.
        let worker = table.remove("worker");
        let mut head = toml::Table::new();
        if let Some(w) = worker {
            head.insert("worker".into(), w);
        }
        text.push_str(&toml::to_string(&head).unwrap_or_default());
        text.push('\n');
        text.push_str(&toml::to_string(&table).map_err(|e| refused(e.to_string()))?);
        Ok(text)
    }
}

/// Keeps a copy of a component under the data directory, named by its digest, so a
/// rollback can load it after the file it came from was replaced.
pub(crate) fn keep_component(
    config: &HostConfig,
    bytes: &[u8],
) -> Result<(String, PathBuf), Error> {
    let hex = hex::encode(Sha256::digest(bytes));
    let dir = config.data_dir.join("components");
    let path = dir.join(format!("{hex}.wasm"));
    if !path.is_file() {
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let partial = dir.join(format!("{hex}.partial"));
        std::fs::write(&partial, bytes).map_err(io)?;
        std::fs::rename(&partial, &path).map_err(io)?;
    }
    Ok((format!("sha256:{hex}"), path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn versions_compare_as_semantic_versions() {
        assert_eq!(compare_versions("1.10.0", "1.9.3"), Greater);
        assert_eq!(compare_versions("1.2.0", "1.2.0+build.7"), Equal);
        assert_eq!(compare_versions("1.2.0-rc.1", "1.2.0"), Less);
        assert_eq!(compare_versions("2.0.0", "10.0.0"), Less);
        assert_eq!(
            default_name("acme.stale-lead-alerter"),
            "stale-lead-alerter"
        );
        assert_eq!(default_name("single"), "single");
    }
}
