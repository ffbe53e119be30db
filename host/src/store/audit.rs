//! The audit trail: the execution log, append-only and hash-chained, with signed
//! checkpoints.
//!
//! Every entry records the hash of the entry before it (`prev_hash`); an entry's hash is
//! the SHA-256 of its stored bytes, so nothing is re-serialised to check it. The chain's
//! head (last position and hash) is kept beside it, so a cut-off tail is noticed. Every
//! [`CHECKPOINT_EVERY`] entries, and whenever asked, the host signs the head with its
//! ed25519 key (`roster.audit-key` beside the store file). A checkpoint copied elsewhere
//! (a SIEM, a ticket, a printout) lets anyone show later that the history up to it was not
//! rewritten, even by someone who recomputed every hash.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::log::{EXECUTIONS, ExecutionEntry};
use super::{Store, StoreError, decode, encode, next_counter, set_state_in, state_in};

pub(crate) const CHECKPOINTS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("audit_checkpoints");

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// How many entries between automatic checkpoints.
pub const CHECKPOINT_EVERY: u64 = 256;

const HEAD: &str = "audit\u{1f}head";
const BASE: &str = "audit\u{1f}base";

/// A signed statement that the audit chain had `hash` at position `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The position of the last entry covered.
    pub seq: u64,
    /// That entry's hash (hex SHA-256).
    pub hash: String,
    /// When it was signed (ms since the Unix epoch).
    pub at: i64,
    /// The signing key (hex ed25519 public key).
    pub public_key: String,
    /// The signature (hex) over `roster-audit-checkpoint\n{seq}\n{hash}\n{at}`.
    pub signature: String,
}

impl Checkpoint {
    fn message(seq: u64, hash: &str, at: i64) -> String {
        format!("roster-audit-checkpoint\n{seq}\n{hash}\n{at}")
    }

    /// Checks the signature against the checkpoint's own key.
    pub fn check_signature(&self) -> Result<(), String> {
        let key: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the public key is not 32 bytes of hex")?;
        let key = VerifyingKey::from_bytes(&key).map_err(|e| format!("public key: {e}"))?;
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the signature is not 64 bytes of hex")?;
        key.verify(
            Self::message(self.seq, &self.hash, self.at).as_bytes(),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| "the signature does not match".to_string())
    }
}

/// The host's checkpoint signing key.
#[derive(Clone)]
pub(crate) struct AuditKey(SigningKey);

impl AuditKey {
    /// Reads the key at `path`, creating it (readable by the owner only) when missing.
    pub(crate) fn load_or_create(path: &Path) -> Result<AuditKey, StoreError> {
        let io = |e: std::io::Error| StoreError::Writer(format!("{}: {e}", path.display()));
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(io)?;
            let bytes: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| StoreError::Corrupt {
                    key: path.display().to_string(),
                    reason: "not a 32-byte hex ed25519 key".into(),
                })?;
            return Ok(AuditKey(SigningKey::from_bytes(&bytes)));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Writer(format!("randomness: {e}")))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        std::io::Write::write_all(&mut file, hex::encode(bytes).as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(AuditKey(SigningKey::from_bytes(&bytes)))
    }

    /// The public key, hex.
    pub(crate) fn public(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    fn sign(&self, seq: u64, hash: &str, at: i64) -> Checkpoint {
        let signature = self.0.sign(Checkpoint::message(seq, hash, at).as_bytes());
        Checkpoint {
            seq,
            hash: hash.to_string(),
            at,
            public_key: self.public(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// `(seq, hash)` stored as `"{seq} {hash}"`.
fn position_in(tx: &WriteTransaction, key: &str) -> Result<Option<(u64, String)>, StoreError> {
    Ok(state_in(tx, key)?.and_then(|v| parse_position(&v)))
}

fn parse_position(v: &str) -> Option<(u64, String)> {
    let (seq, hash) = v.split_once(' ')?;
    Some((seq.parse().ok()?, hash.to_string()))
}

fn hash_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Appends an entry to the chain inside a transaction; returns its position.
pub(crate) fn append_entry_in(
    tx: &WriteTransaction,
    store: &Store,
    entry: &ExecutionEntry,
) -> Result<u64, StoreError> {
    let prev = match position_in(tx, HEAD)? {
        Some((_, hash)) => hash,
        None => GENESIS.to_string(),
    };
    let seq = next_counter(tx, "executions")? + 1;
    let mut entry = entry.clone();
    entry.seq = seq;
    entry.prev_hash = prev;
    let bytes = encode(&entry);
    let hash = hash_of(&bytes);
    tx.open_table(EXECUTIONS)?.insert(seq, bytes.as_slice())?;
    set_state_in(tx, HEAD, &format!("{seq} {hash}"))?;
    super::stats::count_in(tx, &entry)?;
    if seq % CHECKPOINT_EVERY == 0 {
        checkpoint_in(tx, store, seq, &hash)?;
    }
    Ok(seq)
}

/// Records a person's decision in the chain inside a transaction; returns its position.
pub(crate) fn append_governance_in(
    tx: &WriteTransaction,
    store: &Store,
    event: &super::log::GovernanceEvent,
) -> Result<u64, StoreError> {
    append_entry_in(tx, store, &event.entry(store.clock.now_ms()))
}

impl Store {
    /// Records a person's decision in the audit chain.
    pub fn record_governance(&self, event: super::log::GovernanceEvent) -> Result<u64, StoreError> {
        let store = self.clone();
        self.write(move |tx| append_governance_in(tx, &store, &event))
    }
}

fn checkpoint_in(
    tx: &WriteTransaction,
    store: &Store,
    seq: u64,
    hash: &str,
) -> Result<Checkpoint, StoreError> {
    let checkpoint = store.audit_key.sign(seq, hash, store.clock.now_ms());
    tx.open_table(CHECKPOINTS)?
        .insert(seq, encode(&checkpoint).as_slice())?;
    Ok(checkpoint)
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditSummary {
    /// Entries checked.
    pub entries: u64,
    /// The first position present (after retention pruning).
    pub first: u64,
    /// The last position.
    pub last: u64,
    /// The head's hash.
    pub head: String,
    /// Stored checkpoints whose signature and hash were checked.
    pub checkpoints: usize,
    /// Checkpoints given from elsewhere that were checked.
    pub external: usize,
}

/// The first problem found in the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("audit entry {seq}: {reason}")]
pub struct AuditProblem {
    /// The first bad position.
    pub seq: u64,
    /// What is wrong.
    pub reason: String,
}

fn problem(seq: u64, reason: impl Into<String>) -> AuditProblem {
    AuditProblem {
        seq,
        reason: reason.into(),
    }
}

/// The fields verification reads from an entry.
#[derive(Deserialize)]
struct Links {
    seq: u64,
    #[serde(default)]
    prev_hash: String,
}

impl Store {
    /// Signs the chain's head now (also done every [`CHECKPOINT_EVERY`] entries); returns the
    /// checkpoint to keep elsewhere, or `None` while the log is empty.
    pub fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let store = self.clone();
        self.write(move |tx| match position_in(tx, HEAD)? {
            Some((seq, hash)) => Ok(Some(checkpoint_in(tx, &store, seq, &hash)?)),
            None => Ok(None),
        })
    }

    /// The stored checkpoints, oldest first.
    pub fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.log_after(CHECKPOINTS, 0, usize::MAX)
    }

    /// The key that signs this store's checkpoints (hex ed25519 public key).
    pub fn audit_public_key(&self) -> String {
        self.audit_key.public()
    }

    /// Checks the whole chain: every entry's link to the one before, the head, every stored
    /// checkpoint (signature, key and hash), and `external` checkpoints held elsewhere.
    /// The outer error is a store failure; the inner one names the first bad entry.
    pub fn verify_audit(
        &self,
        external: &[Checkpoint],
    ) -> Result<Result<AuditSummary, AuditProblem>, StoreError> {
        let tx = self.db.begin_read()?;
        let state = tx.open_table(super::TRIGGER_STATE)?;
        let read = |key: &str| -> Result<Option<(u64, String)>, StoreError> {
            Ok(state
                .get(key)?
                .and_then(|v| parse_position(&String::from_utf8_lossy(v.value()))))
        };
        let (base_seq, base_hash) = read(BASE)?.unwrap_or((0, GENESIS.to_string()));
        let head = read(HEAD)?;
        let table = tx.open_table(EXECUTIONS)?;
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        for entry in tx.open_table(CHECKPOINTS)?.iter()? {
            let (k, v) = entry?;
            checkpoints.push(decode(&k.value().to_string(), v.value())?);
        }
        let public = self.audit_key.public();
        for c in &checkpoints {
            if let Err(reason) = c.check_signature() {
                return Ok(Err(problem(c.seq, format!("checkpoint: {reason}"))));
            }
            if c.public_key != public {
                return Ok(Err(problem(
                    c.seq,
                    "checkpoint signed by another key than this host's",
                )));
            }
        }
        for c in external {
            if let Err(reason) = c.check_signature() {
                return Ok(Err(problem(
                    c.seq,
                    format!("the given checkpoint: {reason}"),
                )));
            }
        }
        let mut hashes_at = std::collections::BTreeMap::new();
        let (mut prev, mut expected, mut count) = (base_hash, base_seq + 1, 0u64);
        for entry in table.iter()? {
            let (k, v) = entry?;
            let seq = k.value();
            if seq > expected {
                return Ok(Err(problem(
                    expected,
                    format!(
                        "missing: the log goes from entry {} to entry {seq}",
                        expected - 1
                    ),
                )));
            }
            let links: Links = match serde_json::from_slice(v.value()) {
                Ok(l) => l,
                Err(e) => return Ok(Err(problem(seq, format!("unreadable: {e}")))),
            };
            if links.seq != seq {
                return Ok(Err(problem(
                    seq,
                    format!("holds entry {} — the log was reordered", links.seq),
                )));
            }
            if links.prev_hash != prev {
                return Ok(Err(if seq == base_seq + 1 {
                    problem(
                        seq,
                        "does not follow the start of the log (altered, or entries before it removed)",
                    )
                } else {
                    problem(
                        seq - 1,
                        format!(
                            "altered: its content no longer matches the hash entry {seq} recorded"
                        ),
                    )
                }));
            }
            prev = hash_of(v.value());
            hashes_at.insert(seq, prev.clone());
            expected = seq + 1;
            count += 1;
        }
        let last = expected - 1;
        match &head {
            Some((head_seq, _)) if *head_seq > last => {
                return Ok(Err(problem(
                    last + 1,
                    format!(
                        "missing: the log ends at entry {last} but its head is entry {head_seq} (truncated)"
                    ),
                )));
            }
            Some((head_seq, head_hash)) if *head_seq == last && *head_hash != prev => {
                return Ok(Err(problem(
                    last,
                    "altered: its content no longer matches the recorded head",
                )));
            }
            None if count > 0 => {
                return Ok(Err(problem(
                    base_seq + 1,
                    "the chain's head record is missing",
                )));
            }
            _ => {}
        }
        for c in checkpoints.iter().chain(external) {
            if c.seq <= base_seq {
                continue;
            }
            match hashes_at.get(&c.seq) {
                Some(h) if *h == c.hash => {}
                Some(_) => {
                    return Ok(Err(problem(
                        c.seq,
                        "history rewritten: the log's hash here differs from the signed checkpoint",
                    )));
                }
                None => {
                    return Ok(Err(problem(
                        c.seq,
                        format!(
                            "missing: a checkpoint covers entry {} but the log ends at {last}",
                            c.seq
                        ),
                    )));
                }
            }
        }
        Ok(Ok(AuditSummary {
            entries: count,
            first: base_seq + 1,
            last,
            head: prev,
            checkpoints: checkpoints.len(),
            external: external.len(),
        }))
    }
}

/// The signed head of a store, as written for `roster audit checkpoint`.
pub fn checkpoint_text(c: &Checkpoint) -> String {
    serde_json::to_string_pretty(c).unwrap_or_default()
}

/// Which audit entries to find. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The installed worker's name.
    #[serde(default)]
    pub worker: Option<String>,
    /// The record, as `object/id`.
    #[serde(default)]
    pub record: Option<String>,
    /// The principal the worker acted as.
    #[serde(default)]
    pub principal: Option<String>,
    /// The final status (`success`, `failed`, `timeout`, ...).
    #[serde(default)]
    pub status: Option<String>,
    /// An action type: a capability (`http`) or `capability.operation` (`records.create`).
    #[serde(default)]
    pub action: Option<String>,
    /// Started at or after (ms since the Unix epoch).
    #[serde(default)]
    pub since: Option<i64>,
    /// Started before.
    #[serde(default)]
    pub until: Option<i64>,
    /// Only entries after this position.
    #[serde(default)]
    pub after: Option<u64>,
}

impl AuditQuery {
    /// Whether `e` matches.
    pub fn matches(&self, e: &ExecutionEntry) -> bool {
        let report = e.report.as_ref();
        self.worker.as_ref().is_none_or(|w| *w == e.worker)
            && self
                .record
                .as_ref()
                .is_none_or(|r| e.record.as_ref() == Some(r))
            && self
                .principal
                .as_ref()
                .is_none_or(|p| report.is_some_and(|r| r["principal"].as_str() == Some(p.as_str())))
            && self.status.as_ref().is_none_or(|s| *s == e.status)
            && self.since.is_none_or(|t| e.started_at >= t)
            && self.until.is_none_or(|t| e.started_at < t)
            && self.action.as_ref().is_none_or(|wanted| {
                report
                    .and_then(|r| r["actions"].as_array())
                    .is_some_and(|actions| {
                        actions.iter().any(|a| {
                            let capability = a["capability"].as_str().unwrap_or_default();
                            let operation = a["operation"].as_str().unwrap_or_default();
                            wanted == capability || *wanted == format!("{capability}.{operation}")
                        })
                    })
            })
    }
}

impl Store {
    /// Calls `f` with each matching entry, its stored bytes and its hash, oldest first,
    /// until it returns `false`; reads one snapshot, so it streams without holding the
    /// writer.
    pub fn audit_scan(
        &self,
        query: &AuditQuery,
        mut f: impl FnMut(&ExecutionEntry, &[u8], &str) -> bool,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(EXECUTIONS)?;
        // Nothing comes after the last position there can be.
        let Some(start) = query.after.map_or(Some(0), |a| a.checked_add(1)) else {
            return Ok(());
        };
        for entry in table.range(start..)? {
            let (k, v) = entry?;
            let e: ExecutionEntry = decode(&k.value().to_string(), v.value())?;
            if query.matches(&e) && !f(&e, v.value(), &hash_of(v.value())) {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f` with each matching entry before position `before` (or from the end),
    /// newest first, until it returns `false`.
    pub fn audit_scan_back(
        &self,
        query: &AuditQuery,
        before: Option<u64>,
        mut f: impl FnMut(&ExecutionEntry, &[u8], &str) -> bool,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(EXECUTIONS)?;
        let start = query.after.map_or(0, |a| a.saturating_add(1));
        let range = match before {
            Some(b) => table.range(start..b)?,
            None => table.range(start..)?,
        };
        for entry in range.rev() {
            let (k, v) = entry?;
            let e: ExecutionEntry = decode(&k.value().to_string(), v.value())?;
            if query.matches(&e) && !f(&e, v.value(), &hash_of(v.value())) {
                break;
            }
        }
        Ok(())
    }

    /// The matching entries, oldest first, at most `limit`.
    pub fn audit_search(
        &self,
        query: &AuditQuery,
        limit: usize,
    ) -> Result<Vec<ExecutionEntry>, StoreError> {
        let mut out = Vec::new();
        self.audit_scan(query, |e, _, _| {
            out.push(e.clone());
            out.len() < limit
        })?;
        Ok(out)
    }

    /// How many entries the log holds now (for progress displays).
    pub fn audit_len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(redb::ReadableTableMetadata::len(
            &tx.open_table(EXECUTIONS)?,
        )?)
    }

    /// Removes the oldest entries that finished before `before` — only a run from the
    /// start of the log, so what remains is one unbroken chain — and records where the
    /// remaining chain starts, so it still verifies. Returns how many were removed.
    pub fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let mut table = tx.open_table(EXECUTIONS)?;
            let mut last = None;
            for entry in table.iter()? {
                let (k, v) = entry?;
                let e: ExecutionEntry = decode(&k.value().to_string(), v.value())?;
                if e.finished_at >= before {
                    break;
                }
                last = Some((k.value(), hash_of(v.value())));
            }
            let Some((through, hash)) = last else {
                return Ok(0);
            };
            let removed = table.extract_if(|k, _| k <= through)?.count() as u64;
            drop(table);
            let mut checkpoints = tx.open_table(CHECKPOINTS)?;
            checkpoints.retain(|k, _| k > through)?;
            set_state_in(tx, BASE, &format!("{through} {hash}"))?;
            Ok(removed)
        })
    }
}

/// One audit entry as exported and pushed: its position, its hash and the entry exactly
/// as stored (so a receiver can check the chain itself).
pub fn export_item(seq: u64, raw: &[u8], hash: &str) -> serde_json::Value {
    let entry: serde_json::Value = serde_json::from_slice(raw).unwrap_or_default();
    serde_json::json!({ "seq": seq, "hash": hash, "entry": entry })
}

/// The columns of the CSV export.
pub const CSV_COLUMNS: &[&str] = &[
    "seq",
    "hash",
    "prev_hash",
    "worker",
    "plugin",
    "version",
    "principal",
    "grant_digest",
    "trigger",
    "event_id",
    "record",
    "accepted_at",
    "started_at",
    "finished_at",
    "attempt",
    "status",
    "failure",
    "actions",
    "denials",
    "escalation",
    "detail",
];

/// One CSV row of an entry, in [`CSV_COLUMNS`] order.
pub fn csv_row(e: &ExecutionEntry, hash: &str) -> Vec<String> {
    let report = e.report.as_ref();
    let text = |key: &str| {
        report
            .and_then(|r| r[key].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let actions = report
        .and_then(|r| r["actions"].as_array())
        .cloned()
        .unwrap_or_default();
    let denials = actions.iter().filter(|a| a["result"] == "denied").count();
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    vec![
        e.seq.to_string(),
        hash.to_string(),
        e.prev_hash.clone(),
        e.worker.clone(),
        text("worker"),
        text("version"),
        text("principal"),
        text("grant_digest"),
        e.trigger.clone(),
        e.event_id.clone(),
        e.record.clone().unwrap_or_default(),
        time(e.accepted_at),
        time(e.started_at),
        time(e.finished_at),
        e.attempt.to_string(),
        e.status.clone(),
        e.failure.clone().unwrap_or_default(),
        actions.len().to_string(),
        denials.to_string(),
        e.escalation
            .as_ref()
            .map(|x| x.policy.clone())
            .unwrap_or_default(),
        e.detail.clone().unwrap_or_default(),
    ]
}
