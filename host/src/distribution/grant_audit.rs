//! The grant audit (`roster audit grants`, `GET /v1/audit/grants`): per worker, what its
//! manifest requests, what its component actually imports, what it is granted, which grants
//! it never uses, and how its grant changed across installed versions.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{HostConfig, WorkerConfig};
use crate::error::Error;
use crate::sandbox::imports::{self, ImportClass};
use crate::sandbox::manifest::Manifest;
use crate::scope::{CapabilityName, Scopes};
use crate::store::Store;

/// One version change of a worker's installation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct GrantChange {
    /// `install`, `upgrade`, `downgrade` or `regrant`.
    pub change: String,
    /// The version installed.
    pub version: String,
    /// The version before, if any.
    pub from_version: Option<String>,
    /// When (milliseconds since the Unix epoch).
    pub at: i64,
    /// Who.
    pub by: String,
    /// The publisher key id, if signed.
    pub signer: Option<String>,
    /// The component's digest.
    pub component_digest: String,
    /// What the grant gained over the previous one.
    pub granted_added: Vec<String>,
    /// What the grant lost.
    pub granted_removed: Vec<String>,
    /// What the manifest asks for beyond the previous version's request.
    pub requested_added: Vec<String>,
}

/// The audit of one worker's grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WorkerGrants {
    /// The installation.
    pub worker: String,
    /// The plugin id.
    pub plugin: String,
    /// The version configured.
    pub version: String,
    /// The principal it acts as.
    pub principal: String,
    /// Where it was installed from, when from a registry.
    pub source: Option<String>,
    /// Who signed it, when installed from a registry (`None`: unsigned or configured).
    pub signer: Option<String>,
    /// The component's pinned digest, when installed from a registry.
    pub pinned_digest: Option<String>,
    /// Capabilities the manifest requests.
    pub requested: Vec<CapabilityName>,
    /// Capabilities the component imports.
    pub imported: Vec<CapabilityName>,
    /// Capabilities granted.
    pub granted: Vec<CapabilityName>,
    /// Granted, but the component cannot call them (it does not import them).
    pub unused: Vec<CapabilityName>,
    /// Granted and imported, but not called once in the audit trail's window.
    pub idle: Vec<CapabilityName>,
    /// Requested by the manifest, but never imported (the request could shrink).
    pub over_requested: Vec<CapabilityName>,
    /// The requested scopes.
    pub requested_scopes: Scopes,
    /// The granted scopes.
    pub granted_scopes: Scopes,
    /// Calls per capability over the window, from the audit trail.
    pub calls: BTreeMap<String, u64>,
    /// Installations, oldest first.
    pub changes: Vec<GrantChange>,
    /// A problem reading the component (it is then reported with no imports).
    pub problem: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct GrantReport {
    /// The window the call counts cover, in days.
    pub window_days: u32,
    /// Per worker, by name.
    pub workers: Vec<WorkerGrants>,
}

fn caps(scopes: &Scopes) -> Vec<CapabilityName> {
    CapabilityName::ALL
        .into_iter()
        .filter(|c| scopes.has(*c))
        .collect()
}

fn grant_scopes(text: &str) -> Option<Scopes> {
    crate::sandbox::grant::Grant::parse(std::path::Path::new("recorded grant"), text)
        .ok()
        .map(|g| g.capabilities)
}

fn manifest_scopes(text: &str) -> Option<Scopes> {
    Manifest::parse(std::path::Path::new("recorded manifest"), text)
        .ok()
        .map(|m| m.capabilities)
}

fn imported(w: &WorkerConfig) -> Result<Vec<CapabilityName>, Error> {
    let bytes = w.component_bytes()?;
    let info = imports::inspect(&bytes)?;
    let set: BTreeSet<CapabilityName> = info
        .imports
        .iter()
        .filter_map(|name| match imports::classify(name) {
            ImportClass::Capability(c) => Some(c),
            _ => None,
        })
        .collect();
    Ok(set.into_iter().collect())
}

/// Builds the report over the audit trail's last `window_days` days.
pub fn report(config: &HostConfig, store: &Store, window_days: u32) -> Result<GrantReport, Error> {
    let since = store.clock().now_ms() - i64::from(window_days) * 24 * 60 * 60 * 1000;
    let mut calls: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for entry in store.executions_since(since)? {
        let Some(actions) = entry
            .report
            .as_ref()
            .and_then(|r| r.get("actions"))
            .and_then(|a| a.as_array())
        else {
            continue;
        };
        let per = calls.entry(entry.worker.clone()).or_default();
        for action in actions {
            if let Some(cap) = action.get("capability").and_then(|c| c.as_str()) {
                *per.entry(cap.to_string()).or_default() += 1;
            }
        }
    }
    let mut workers = Vec::new();
    for w in &config.workers {
        let (imported, problem) = match imported(w) {
            Ok(list) => (list, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let requested = caps(&w.manifest.capabilities);
        let granted = caps(&w.grant.capabilities);
        let worker_calls = calls.remove(&w.name).unwrap_or_default();
        let unused = granted
            .iter()
            .copied()
            .filter(|c| !imported.contains(c))
            .collect();
        let idle = granted
            .iter()
            .copied()
            .filter(|c| imported.contains(c) && !worker_calls.contains_key(c.as_str()))
            .collect();
        let over_requested = requested
            .iter()
            .copied()
            .filter(|c| !imported.contains(c))
            .collect();
        let mut changes = Vec::new();
        let mut previous: Option<(String, Scopes, Scopes)> = None;
        for record in store.installs(&w.name)? {
            let granted_now = grant_scopes(&record.grant).unwrap_or_default();
            let requested_now = manifest_scopes(&record.manifest).unwrap_or_default();
            let (from_version, granted_added, granted_removed, requested_added) = match &previous {
                None => (
                    None,
                    granted_now.asking_beyond(&Scopes::default()),
                    Vec::new(),
                    Vec::new(),
                ),
                Some((v, before_granted, before_requested)) => (
                    Some(v.clone()),
                    granted_now.asking_beyond(before_granted),
                    before_granted.asking_beyond(&granted_now),
                    requested_now.asking_beyond(before_requested),
                ),
            };
            let tidy = |list: Vec<String>| -> Vec<String> {
                list.into_iter()
                    .map(|p| {
                        p.replace(" is requested but not granted", "")
                            .replace(" is not granted", "")
                    })
                    .collect()
            };
            changes.push(GrantChange {
                change: record.change.clone(),
                version: record.version.clone(),
                from_version,
                at: record.at,
                by: record.by.clone(),
                signer: record.signer.clone(),
                component_digest: record.component_digest.clone(),
                granted_added: tidy(granted_added),
                granted_removed: tidy(granted_removed),
                requested_added: tidy(requested_added),
            });
            previous = Some((record.version.clone(), granted_now, requested_now));
        }
        workers.push(WorkerGrants {
            worker: w.name.clone(),
            plugin: w.manifest.plugin.id.clone(),
            version: w.manifest.plugin.version.clone(),
            principal: w.grant.grant.principal.clone(),
            source: w.source.as_ref().map(|s| s.reference.clone()),
            signer: w.source.as_ref().and_then(|s| s.signer.clone()),
            pinned_digest: w.pinned.clone(),
            requested,
            imported,
            granted,
            unused,
            idle,
            over_requested,
            requested_scopes: w.manifest.capabilities.clone(),
            granted_scopes: w.grant.capabilities.clone(),
            calls: worker_calls,
            changes,
            problem,
        });
    }
    // By name, as the report says, however the workers were configured or installed.
    workers.sort_by(|a, b| a.worker.cmp(&b.worker));
    Ok(GrantReport {
        window_days,
        workers,
    })
}

fn names(list: &[CapabilityName]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl GrantReport {
    /// The report as a table for a person.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<22} {:<10} {:<28} {:<28} {:<28} {:<20} {:<20}\n",
            "worker", "version", "requested", "imported", "granted", "unused", "idle"
        );
        out.push_str(&format!(
            "{:<22} {:<10} {:<28} {:<28} {:<28} {:<20} {:<20}\n",
            "",
            "",
            "",
            "",
            "",
            "(not imported)",
            format!("(no calls, {}d)", self.window_days)
        ));
        for w in &self.workers {
            out.push_str(&format!(
                "{:<22} {:<10} {:<28} {:<28} {:<28} {:<20} {:<20}\n",
                w.worker,
                w.version,
                names(&w.requested),
                names(&w.imported),
                names(&w.granted),
                names(&w.unused),
                names(&w.idle),
            ));
            if let Some(p) = &w.problem {
                out.push_str(&format!("    problem: {p}\n"));
            }
            for c in &w.changes {
                let mut what = Vec::new();
                if !c.granted_added.is_empty() {
                    what.push(format!("granted + {}", c.granted_added.join("; ")));
                }
                if !c.granted_removed.is_empty() {
                    what.push(format!("granted - {}", c.granted_removed.join("; ")));
                }
                if !c.requested_added.is_empty() && c.from_version.is_some() {
                    what.push(format!("requests + {}", c.requested_added.join("; ")));
                }
                out.push_str(&format!(
                    "    {} {}{} by {} ({}){}\n",
                    c.change,
                    c.from_version
                        .as_ref()
                        .map(|v| format!("{v} → "))
                        .unwrap_or_default(),
                    c.version,
                    c.by,
                    c.signer
                        .as_ref()
                        .map_or("unsigned".to_string(), |k| format!("signed by {k}")),
                    if what.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", what.join(" | "))
                    }
                ));
            }
        }
        out
    }
}
