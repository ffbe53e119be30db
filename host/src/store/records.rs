//! The system of record: records, their secondary indexes and the change log.
//!
//! Every write checks the schema, stamps `created_at` / `updated_at`, updates the index
//! entries of changed indexed fields (and the owner index) and appends one [`Change`] to the
//! change log, all in one transaction. A write that changes nothing appends nothing.
//!
//! Queries are `query.rs`.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::index::{self, OWNER};
use super::{
    CHANGES, FieldValue, INDEX, RECORDS, Record, Store, StoreError, decode, encode, key,
    next_counter, prefix_end,
};

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The record was created.
    Created,
    /// Some fields (or the owner) changed.
    Updated,
    /// The record was deleted.
    Deleted,
}

/// One field's change (the owner appears as field `owner`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field.
    pub field: String,
    /// The value before.
    pub old: FieldValue,
    /// The value after.
    pub new: FieldValue,
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the log (from 1, without gaps).
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at: i64,
    /// The object type.
    pub object: String,
    /// The record id.
    pub id: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The fields that changed (all set fields for a creation; empty for a deletion).
    pub changes: Vec<FieldChange>,
    /// The record after the change (before it, for a deletion).
    pub record: Record,
    /// Who made the change (a principal, a worker, `import`).
    pub actor: String,
}

fn record_key(object: &str, id: &str) -> Result<String, StoreError> {
    if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        return Err(StoreError::BadKey(id.to_string()));
    }
    key(object, id)
}

/// Updates the index entries of `object/id` from `old` to `new` (either may be absent).
fn reindex(
    tx: &WriteTransaction,
    store: &Store,
    object: &str,
    id: &str,
    old: Option<&Record>,
    new: Option<&Record>,
) -> Result<(), StoreError> {
    let mut table = tx.open_table(INDEX)?;
    let def = store.schema.object(object)?;
    let value_of = |r: Option<&Record>, f: &str| r.and_then(|r| r.fields.get(f)).cloned();
    for (field, fd) in &def.fields {
        if !fd.indexed {
            continue;
        }
        let (before, after) = (value_of(old, field), value_of(new, field));
        if before == after {
            continue;
        }
        if let Some(v) = before {
            for k in index::keys(object, field, &v, id) {
                table.remove(k.as_slice())?;
            }
        }
        if let Some(v) = after {
            for k in index::keys(object, field, &v, id) {
                table.insert(k.as_slice(), ())?;
            }
        }
    }
    let owner = |r: Option<&Record>| r.and_then(|r| r.owner.clone());
    let (before, after) = (owner(old), owner(new));
    if before != after {
        if let Some(o) = before {
            for k in index::keys(object, OWNER, &FieldValue::Text(o), id) {
                table.remove(k.as_slice())?;
            }
        }
        if let Some(o) = after {
            for k in index::keys(object, OWNER, &FieldValue::Text(o), id) {
                table.insert(k.as_slice(), ())?;
            }
        }
    }
    Ok(())
}

fn owner_value(owner: &Option<String>) -> FieldValue {
    owner.clone().map_or(FieldValue::Null, FieldValue::Text)
}

/// The field changes from `old` to `new`.
fn diff(old: Option<&Record>, new: &Record) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let old_owner = old.map_or(FieldValue::Null, |r| owner_value(&r.owner));
    if old_owner != owner_value(&new.owner) {
        out.push(FieldChange {
            field: "owner".into(),
            old: old_owner,
            new: owner_value(&new.owner),
        });
    }
    for (field, value) in &new.fields {
        if field == "updated_at" {
            continue;
        }
        let before = old
            .and_then(|r| r.fields.get(field))
            .cloned()
            .unwrap_or(FieldValue::Null);
        if &before != value {
            out.push(FieldChange {
                field: field.clone(),
                old: before,
                new: value.clone(),
            });
        }
    }
    out
}

fn append_change(tx: &WriteTransaction, mut change: Change) -> Result<u64, StoreError> {
    let seq = next_counter(tx, "changes")? + 1;
    change.seq = seq;
    tx.open_table(CHANGES)?
        .insert(seq, encode(&change).as_slice())?;
    Ok(seq)
}

/// Writes `new` over whatever is stored at its key, maintaining indexes and the change log.
/// Returns the stored record, or `None` when nothing changed.
fn upsert_in(
    tx: &WriteTransaction,
    store: &Store,
    mut new: Record,
    merge: bool,
    actor: &str,
    now: i64,
) -> Result<Option<Record>, StoreError> {
    let k = record_key(&new.object, &new.id)?;
    let mut table = tx.open_table(RECORDS)?;
    let old: Option<Record> = match table.get(k.as_str())? {
        Some(v) => Some(decode(&k, v.value())?),
        None => None,
    };
    if merge && let Some(old) = &old {
        let mut fields = old.fields.clone();
        fields.extend(new.fields);
        new.fields = fields;
        if new.owner.is_none() {
            new.owner = old.owner.clone();
        }
    }
    // Setting a field to null clears it.
    new.fields.retain(|_, v| *v != FieldValue::Null);
    let created_at = old
        .as_ref()
        .and_then(|o| o.fields.get("created_at").cloned())
        .or_else(|| new.fields.get("created_at").cloned())
        .unwrap_or(FieldValue::Timestamp { timestamp: now });
    new.fields.insert("created_at".into(), created_at);
    let changes = diff(old.as_ref(), &new);
    if old.is_some() && changes.is_empty() {
        return Ok(None);
    }
    new.fields.insert(
        "updated_at".into(),
        FieldValue::Timestamp { timestamp: now },
    );
    table.insert(k.as_str(), encode(&new).as_slice())?;
    drop(table);
    reindex(tx, store, &new.object, &new.id, old.as_ref(), Some(&new))?;
    append_change(
        tx,
        Change {
            seq: 0,
            at: now,
            object: new.object.clone(),
            id: new.id.clone(),
            kind: if old.is_some() {
                ChangeKind::Updated
            } else {
                ChangeKind::Created
            },
            changes,
            record: new.clone(),
            actor: actor.to_string(),
        },
    )?;
    if old.is_none() {
        touch_related(tx, store, &new, actor, now)?;
    }
    Ok(Some(new))
}

/// Objects whose creation counts as activity on the record they are `related_to`.
const ACTIVITY_OBJECTS: &[&str] = &["activity", "note", "meeting", "task"];

/// Sets `last_activity_at` on the record a new activity, note, meeting or task is related to
/// (`related_to = "object/id"`), in the same transaction.
fn touch_related(
    tx: &WriteTransaction,
    store: &Store,
    new: &Record,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    if !ACTIVITY_OBJECTS.contains(&new.object.as_str()) {
        return Ok(());
    }
    let Some(FieldValue::Text(target)) = new.fields.get("related_to") else {
        return Ok(());
    };
    let Some((object, id)) = target.split_once('/') else {
        return Ok(());
    };
    if store.schema.object(object).is_err() || ACTIVITY_OBJECTS.contains(&object) {
        return Ok(());
    }
    let exists = tx
        .open_table(RECORDS)?
        .get(record_key(object, id)?.as_str())?
        .is_some();
    if exists {
        let touch = Record {
            object: object.to_string(),
            id: id.to_string(),
            owner: None,
            fields: [(
                "last_activity_at".to_string(),
                FieldValue::Timestamp { timestamp: now },
            )]
            .into(),
        };
        upsert_in(tx, store, touch, true, actor, now)?;
    }
    Ok(())
}

/// Creates a checked record inside a transaction; fails if it exists.
pub(crate) fn create_record_in(
    tx: &WriteTransaction,
    store: &Store,
    record: Record,
    actor: &str,
) -> Result<Record, StoreError> {
    let k = record_key(&record.object, &record.id)?;
    if tx.open_table(RECORDS)?.get(k.as_str())?.is_some() {
        return Err(StoreError::Exists {
            object: record.object.clone(),
            id: record.id.clone(),
        });
    }
    let now = store.clock.now_ms();
    upsert_in(tx, store, record, false, actor, now)?
        .ok_or_else(|| StoreError::Writer("a new record must change something".into()))
}

/// Sets some (already coerced) fields of a record inside a transaction; returns the record
/// after the update, or `None` when it does not exist.
pub(crate) fn update_record_in(
    tx: &WriteTransaction,
    store: &Store,
    object: &str,
    id: &str,
    fields: &BTreeMap<String, FieldValue>,
    actor: &str,
) -> Result<Option<Record>, StoreError> {
    let k = record_key(object, id)?;
    let current: Option<Record> = match tx.open_table(RECORDS)?.get(k.as_str())? {
        Some(v) => Some(decode(&k, v.value())?),
        None => None,
    };
    let Some(current) = current else {
        return Ok(None);
    };
    // `owner` hands the record to another principal (see `scope::OWNER`).
    let mut fields = fields.clone();
    let owner = match fields.remove(crate::scope::OWNER) {
        None => None,
        Some(FieldValue::Text(owner)) if !owner.is_empty() => Some(owner),
        Some(_) => {
            return Err(StoreError::Invalid("`owner` must name a principal".into()));
        }
    };
    let update = Record {
        fields,
        owner,
        ..current.clone()
    };
    let now = store.clock.now_ms();
    Ok(Some(
        upsert_in(tx, store, update, true, actor, now)?.unwrap_or(current),
    ))
}

/// Deletes a record inside a transaction; returns whether it existed.
pub(crate) fn delete_record_in(
    tx: &WriteTransaction,
    store: &Store,
    object: &str,
    id: &str,
    actor: &str,
) -> Result<bool, StoreError> {
    let k = record_key(object, id)?;
    let old: Option<Record> = match tx.open_table(RECORDS)?.remove(k.as_str())? {
        Some(v) => Some(decode(&k, v.value())?),
        None => None,
    };
    let Some(old) = old else {
        return Ok(false);
    };
    reindex(tx, store, object, &old.id, Some(&old), None)?;
    append_change(
        tx,
        Change {
            seq: 0,
            at: store.clock.now_ms(),
            object: object.to_string(),
            id: old.id.clone(),
            kind: ChangeKind::Deleted,
            changes: Vec::new(),
            record: old,
            actor: actor.to_string(),
        },
    )?;
    Ok(true)
}

impl Store {
    /// Checks a record against the schema, converting values where the intent is clear.
    pub fn check_record(&self, mut record: Record) -> Result<Record, StoreError> {
        record_key(&record.object, &record.id)?;
        record.fields = self.schema.coerce_all(&record.object, record.fields)?;
        Ok(record)
    }

    /// Reads one record.
    pub fn get_record(&self, object: &str, id: &str) -> Result<Option<Record>, StoreError> {
        let k = key(object, id)?;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        match table.get(k.as_str())? {
            Some(v) => Ok(Some(decode(&k, v.value())?)),
            None => Ok(None),
        }
    }

    /// Creates a record; fails if it exists. The id is generated when `None`.
    pub fn create_record(
        &self,
        object: &str,
        id: Option<String>,
        owner: Option<String>,
        fields: BTreeMap<String, FieldValue>,
        actor: &str,
    ) -> Result<Record, StoreError> {
        let record = self.check_record(Record {
            object: object.to_string(),
            id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            owner,
            fields,
        })?;
        let (store, actor) = (self.clone(), actor.to_string());
        self.write(move |tx| create_record_in(tx, &store, record.clone(), &actor))
    }

    /// Inserts or merges records in one transaction (all checked first: one bad record
    /// writes nothing). Fields given replace stored ones; fields not given are kept.
    /// Returns how many records changed.
    pub fn import_records(&self, records: Vec<Record>, actor: &str) -> Result<usize, StoreError> {
        let records = records
            .into_iter()
            .map(|r| self.check_record(r))
            .collect::<Result<Vec<_>, _>>()?;
        let (store, actor, now) = (self.clone(), actor.to_string(), self.clock.now_ms());
        self.write(move |tx| {
            let mut changed = 0;
            for r in &records {
                if upsert_in(tx, &store, r.clone(), true, &actor, now)?.is_some() {
                    changed += 1;
                }
            }
            Ok(changed)
        })
    }

    /// Inserts or merges records as the `system` actor (see [`Store::import_records`]).
    pub fn put_records(&self, records: &[Record]) -> Result<(), StoreError> {
        self.import_records(records.to_vec(), "system").map(|_| ())
    }

    /// Sets some fields of an existing record; returns the record after the update, or
    /// `None` when it does not exist.
    pub fn update_record(
        &self,
        object: &str,
        id: &str,
        fields: &BTreeMap<String, FieldValue>,
        actor: &str,
    ) -> Result<Option<Record>, StoreError> {
        let fields = self.schema.coerce_all(object, fields.clone())?;
        let (store, actor) = (self.clone(), actor.to_string());
        let (object, id) = (object.to_string(), id.to_string());
        self.write(move |tx| update_record_in(tx, &store, &object, &id, &fields, &actor))
    }

    /// Deletes a record; returns whether it existed.
    pub fn delete_record(&self, object: &str, id: &str, actor: &str) -> Result<bool, StoreError> {
        let (store, actor) = (self.clone(), actor.to_string());
        let (object, id) = (object.to_string(), id.to_string());
        self.write(move |tx| delete_record_in(tx, &store, &object, &id, &actor))
    }

    /// Calls `f` on every record of `object`, in id order, until it returns `false`.
    pub fn for_each_record(
        &self,
        object: &str,
        mut f: impl FnMut(Record) -> bool,
    ) -> Result<(), StoreError> {
        self.schema.object(object)?;
        let start = key(object, "")?;
        let end = prefix_end(&start);
        let tx = self.db.begin_read()?;
        let records = tx.open_table(RECORDS)?;
        for entry in records.range(start.as_str()..end.as_str())? {
            let (k, v) = entry?;
            if !f(decode(k.value(), v.value())?) {
                break;
            }
        }
        Ok(())
    }

    /// The changes after position `after`, oldest first, at most `limit`.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.log_after(CHANGES, after, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::filter::{Filter, Op};
    use crate::schema::Schema;
    use crate::store::RecordQuery;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, Store, ManualClock) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        let store = Store::open_with(
            &dir.path().join("db.redb"),
            Schema::standard(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        (dir, store, clock)
    }

    fn fields(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn text(s: &str) -> FieldValue {
        FieldValue::Text(s.into())
    }

    fn q(object: &str, filters: Vec<Filter>) -> RecordQuery {
        RecordQuery {
            object: object.into(),
            filters,
            owners: None,
            limit: 100,
        }
    }

    fn f(field: &str, op: Op, value: FieldValue) -> Filter {
        Filter {
            field: field.into(),
            op,
            value,
        }
    }

    fn ids(records: Vec<Record>) -> Vec<String> {
        let mut ids: Vec<String> = records.into_iter().map(|r| r.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn writes_are_checked_stamped_and_logged() {
        let (_d, s, clock) = store();
        let err = s
            .create_record(
                "lead",
                Some("1".into()),
                None,
                fields(&[("ssn", text("x"))]),
                "t",
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown field `ssn` on `lead`");
        assert!(
            s.changes_after(0, 10).unwrap().is_empty(),
            "a rejected write logs nothing"
        );

        let r = s
            .create_record(
                "lead",
                Some("1".into()),
                Some("ann".into()),
                fields(&[("status", text("new"))]),
                "t",
            )
            .unwrap();
        assert_eq!(
            r.fields["created_at"],
            FieldValue::Timestamp { timestamp: 1_000 }
        );
        assert!(matches!(
            s.create_record("lead", Some("1".into()), None, BTreeMap::new(), "t"),
            Err(StoreError::Exists { .. })
        ));
        clock.advance(500);
        let updated = s
            .update_record(
                "lead",
                "1",
                &fields(&[("status", text("open"))]),
                "worker:x",
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            updated.fields["updated_at"],
            FieldValue::Timestamp { timestamp: 1_500 }
        );
        assert_eq!(
            updated.fields["created_at"],
            FieldValue::Timestamp { timestamp: 1_000 }
        );
        // An update that changes nothing logs nothing.
        s.update_record("lead", "1", &fields(&[("status", text("open"))]), "t")
            .unwrap();
        assert!(s.delete_record("lead", "1", "t").unwrap());

        let log = s.changes_after(0, 10).unwrap();
        let kinds: Vec<ChangeKind> = log.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::Created,
                ChangeKind::Updated,
                ChangeKind::Deleted
            ]
        );
        assert_eq!(log.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(
            log[1].changes,
            vec![FieldChange {
                field: "status".into(),
                old: text("new"),
                new: text("open")
            }]
        );
        assert_eq!(log[1].actor, "worker:x");
        assert_eq!(s.changes_after(2, 10).unwrap().len(), 1);
    }

    #[test]
    fn queries_use_indexes_and_agree_with_scans() {
        let (_d, s, _clock) = store();
        let mut batch = Vec::new();
        for i in 0..200i64 {
            batch.push(Record {
                object: "opportunity".into(),
                id: format!("o{i:03}"),
                owner: Some(if i % 2 == 0 { "ann" } else { "bob" }.into()),
                fields: fields(&[
                    (
                        "stage",
                        text(if i % 3 == 0 { "Proposal" } else { "Discovery" }),
                    ),
                    ("amount", FieldValue::Number(i as f64 * 100.0)),
                    (
                        "close_date",
                        FieldValue::Timestamp {
                            timestamp: i * 1000,
                        },
                    ),
                    ("name", text(&format!("Deal {i}"))),
                ]),
            });
        }
        assert_eq!(s.import_records(batch, "import").unwrap(), 200);

        let eq = s
            .query(&q(
                "opportunity",
                vec![f("stage", Op::Equals, text("proposal"))],
            ))
            .unwrap();
        assert_eq!(eq.len(), 67);
        let range = s
            .query(&q(
                "opportunity",
                vec![
                    f(
                        "close_date",
                        Op::GreaterThan,
                        FieldValue::Timestamp { timestamp: 10_000 },
                    ),
                    f(
                        "close_date",
                        Op::LessThan,
                        FieldValue::Timestamp { timestamp: 15_000 },
                    ),
                ],
            ))
            .unwrap();
        assert_eq!(ids(range), ["o011", "o012", "o013", "o014"]);
        let amount = s
            .query(&q(
                "opportunity",
                vec![f("amount", Op::GreaterThan, FieldValue::Integer(19_500))],
            ))
            .unwrap();
        assert_eq!(ids(amount), ["o196", "o197", "o198", "o199"]);
        let mut owned = q(
            "opportunity",
            vec![f("stage", Op::Equals, text("Discovery"))],
        );
        owned.owners = Some(vec!["ann".into()]);
        let owned = s.query(&owned).unwrap();
        assert!(owned.iter().all(|r| r.owner.as_deref() == Some("ann")));
        assert_eq!(owned.len(), 66);
        let mut by_owner = q("opportunity", vec![]);
        by_owner.owners = Some(vec!["bob".into()]);
        assert_eq!(s.query(&by_owner).unwrap().len(), 100);
        // A non-indexed filter scans and gives the same answer.
        let scanned = s
            .query(&q("opportunity", vec![f("name", Op::EndsWith, text(" 7"))]))
            .unwrap();
        assert_eq!(ids(scanned), ["o007"]);
        // Moving a record out of a range updates the index.
        s.update_record(
            "opportunity",
            "o012",
            &fields(&[(
                "close_date",
                FieldValue::Timestamp {
                    timestamp: 99_000_000,
                },
            )]),
            "t",
        )
        .unwrap();
        let range = s
            .query(&q(
                "opportunity",
                vec![
                    f(
                        "close_date",
                        Op::GreaterThan,
                        FieldValue::Timestamp { timestamp: 10_000 },
                    ),
                    f(
                        "close_date",
                        Op::LessThan,
                        FieldValue::Timestamp { timestamp: 15_000 },
                    ),
                ],
            ))
            .unwrap();
        assert_eq!(ids(range), ["o011", "o013", "o014"]);
        let err = s
            .query(&q("opportunity", vec![f("nope", Op::Equals, text("x"))]))
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown field `nope` on `opportunity`");
    }

    #[test]
    fn new_activity_stamps_the_related_record() {
        let (_d, s, clock) = store();
        s.create_record("lead", Some("L".into()), None, BTreeMap::new(), "t")
            .unwrap();
        clock.advance(5_000);
        s.create_record(
            "activity",
            None,
            None,
            fields(&[("type", text("call")), ("related_to", text("lead/L"))]),
            "t",
        )
        .unwrap();
        let lead = s.get_record("lead", "L").unwrap().unwrap();
        assert_eq!(
            lead.fields["last_activity_at"],
            FieldValue::Timestamp { timestamp: 6_000 }
        );
        let log = s.changes_after(0, 10).unwrap();
        assert_eq!(log.len(), 3, "the lead's change is logged too");
        assert_eq!(log[2].changes[0].field, "last_activity_at");
    }

    #[test]
    fn one_bad_record_in_an_import_writes_nothing() {
        let (_d, s, _clock) = store();
        let good = Record {
            object: "lead".into(),
            id: "g".into(),
            owner: None,
            fields: fields(&[("status", text("new"))]),
        };
        let bad = Record {
            id: "b".into(),
            fields: fields(&[("employees", text("lots"))]),
            ..good.clone()
        };
        assert!(s.import_records(vec![good, bad], "import").is_err());
        assert!(s.get_record("lead", "g").unwrap().is_none());
        assert!(s.changes_after(0, 10).unwrap().is_empty());
    }
}
