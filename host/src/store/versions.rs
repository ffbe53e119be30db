//! Each worker's versions (every component it ran, kept for rollback) and its deployment
//! state (staging or live, and the version a rollback pinned).

use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};

use super::log::GovernanceEvent;
use super::{Store, StoreError, append_governance_in, decode};
use super::{TRIGGER_STATE, set_state_in, state_in};

fn versions_key(worker: &str) -> String {
    format!("versions\u{1f}{worker}")
}

fn deployment_key(worker: &str) -> String {
    format!("deploy\u{1f}{worker}")
}

/// One version a worker ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionEntry {
    /// The plugin version.
    pub version: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// The manifest's text, as it was.
    pub manifest: String,
    /// The kept copy of the component (content-addressed, in the data directory).
    pub component: std::path::PathBuf,
    /// When the host first ran it.
    pub first_seen: i64,
}

/// Whether a worker's triggers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployStatus {
    /// Installed, not live: its triggers do not run (dry runs and shadow runs do).
    Staging,
    /// Live.
    Live,
}

/// A worker's deployment state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Staging or live.
    pub status: DeployStatus,
    /// The version a rollback pinned (its digest), run instead of the configured one.
    pub pinned: Option<String>,
    /// Since when.
    pub since: i64,
    /// Who set it.
    pub by: String,
    /// Why.
    pub reason: String,
}

pub(super) fn read<T: for<'de> Deserialize<'de>>(
    store: &Store,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let tx = store.db.begin_read()?;
    let table = tx.open_table(TRIGGER_STATE)?;
    let Some(v) = table.get(key)? else {
        return Ok(None);
    };
    decode(key, v.value()).map(Some)
}

impl Store {
    /// Every version a worker ran, oldest first.
    pub fn versions(&self, worker: &str) -> Result<Vec<VersionEntry>, StoreError> {
        Ok(read(self, &versions_key(worker))?.unwrap_or_default())
    }

    /// Adds a version unless it is the latest already; returns whether it was added.
    pub fn record_version(&self, worker: &str, entry: VersionEntry) -> Result<bool, StoreError> {
        let key = versions_key(worker);
        self.write(move |tx| {
            let mut list: Vec<VersionEntry> = match state_in(tx, &key)? {
                Some(text) => decode(&key, text.as_bytes())?,
                None => Vec::new(),
            };
            if list.iter().any(|v| v.digest == entry.digest) {
                return Ok(false);
            }
            list.push(entry.clone());
            set_state_in(tx, &key, &serde_json::to_string(&list).unwrap_or_default())?;
            Ok(true)
        })
    }

    /// A worker's recorded deployment state.
    pub fn deployment(&self, worker: &str) -> Result<Option<Deployment>, StoreError> {
        read(self, &deployment_key(worker))
    }

    /// Sets a worker's deployment state and records the decision in the audit trail, in
    /// one transaction.
    pub fn set_deployment(
        &self,
        worker: &str,
        deployment: Deployment,
        event: GovernanceEvent,
    ) -> Result<(), StoreError> {
        let (key, store) = (deployment_key(worker), self.clone());
        self.write(move |tx| {
            set_state_in(
                tx,
                &key,
                &serde_json::to_string(&deployment).unwrap_or_default(),
            )?;
            append_governance_in(tx, &store, &event)?;
            Ok(())
        })
    }
}

fn installs_key(worker: &str) -> String {
    format!("installs\u{1f}{worker}")
}

/// One installation of a worker from a registry (first install, upgrade or downgrade),
/// with the grant it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallRecord {
    /// The plugin version.
    pub version: String,
    /// `sha256:<hex>` of the component.
    pub component_digest: String,
    /// The Roster manifest's text.
    pub manifest: String,
    /// The grant's text.
    pub grant: String,
    /// What the component imports (capability names).
    pub imported: Vec<String>,
    /// The reference it was pulled by.
    pub reference: String,
    /// The OCI manifest's digest.
    pub manifest_digest: String,
    /// The publisher key id, or `None` when installed unsigned.
    pub signer: Option<String>,
    /// `install`, `upgrade`, `downgrade` or `regrant`.
    pub change: String,
    /// When.
    pub at: i64,
    /// Who installed it.
    pub by: String,
}

impl Store {
    /// Every installation of a worker, oldest first.
    pub fn installs(&self, worker: &str) -> Result<Vec<InstallRecord>, StoreError> {
        Ok(read(self, &installs_key(worker))?.unwrap_or_default())
    }

    /// Records an installation and its audit entry in one transaction.
    pub fn record_install(
        &self,
        worker: &str,
        record: InstallRecord,
        event: GovernanceEvent,
    ) -> Result<(), StoreError> {
        let (key, store) = (installs_key(worker), self.clone());
        self.write(move |tx| {
            let mut list: Vec<InstallRecord> = match state_in(tx, &key)? {
                Some(text) => decode(&key, text.as_bytes())?,
                None => Vec::new(),
            };
            list.push(record.clone());
            set_state_in(tx, &key, &serde_json::to_string(&list).unwrap_or_default())?;
            append_governance_in(tx, &store, &event)?;
            Ok(())
        })
    }
}
