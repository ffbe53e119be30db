//! Queries over the system of record.
//!
//! A query picks one index when a filter allows it — equality, starts-with, a range on one
//! field (both bounds merged, e.g. "a date within 30 days"), list membership, or the owner
//! set of a visibility rule — and checks every other filter on the records found. Without a
//! usable index it scans the object's records in key order.

use std::ops::Bound;

use redb::ReadableDatabase;

use super::index::{self, OWNER};
use super::{FieldValue, INDEX, RECORDS, Record, Store, StoreError, decode, key, prefix_end};
use crate::filter::{Filter, Op, matches};

/// The most records one query from a worker, the API or a sweep returns (the store itself
/// takes any limit; aggregates read whole groups).
pub const MAX_QUERY: usize = 10_000;

/// A query over one object type.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordQuery {
    /// The object type.
    pub object: String,
    /// Every filter must hold.
    pub filters: Vec<Filter>,
    /// When set, only records owned by one of these principals (a visibility rule).
    pub owners: Option<Vec<String>>,
    /// The most records returned.
    pub limit: usize,
}

impl Store {
    /// Runs a query (see the module documentation for how an index is chosen).
    pub fn query(&self, q: &RecordQuery) -> Result<Vec<Record>, StoreError> {
        Ok(self.query_page(q, None)?.records)
    }

    /// Runs a query from a position: the records after `after` (the `next` of an earlier
    /// page of the same query), at most `q.limit`, and where the next page starts when
    /// more records match.
    pub fn query_page(
        &self,
        q: &RecordQuery,
        after: Option<&[u8]>,
    ) -> Result<RecordPage, StoreError> {
        self.schema.object(&q.object)?;
        for f in &q.filters {
            self.schema.field(&q.object, &f.field)?;
        }
        let filters: Vec<Filter> = q
            .filters
            .iter()
            .map(|f| {
                let value = if f.op.is_unary() {
                    FieldValue::Null
                } else {
                    self.schema
                        .coerce_operand(&q.object, &f.field, f.op, f.value.clone())?
                };
                Ok(Filter {
                    field: f.field.clone(),
                    op: f.op,
                    value,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let limit = q.limit.max(1);
        let accept = |r: &Record| {
            q.owners
                .as_ref()
                .is_none_or(|o| r.owner.as_ref().is_some_and(|owner| o.contains(owner)))
                && filters
                    .iter()
                    .all(|f| matches(r.fields.get(&f.field), f.op, &f.value))
        };

        let tx = self.db.begin_read()?;
        let records = tx.open_table(RECORDS)?;
        // One more than asked for, to know whether another page follows.
        let mut found: Vec<(Vec<u8>, Record)> = Vec::new();
        let full = |found: &Vec<(Vec<u8>, Record)>| found.len() > limit;

        match self.plan(&q.object, &filters, q.owners.as_deref()) {
            Plan::Ranges(mut ranges) => {
                // In key order, so that a position in one range orders against the others.
                ranges.sort_by(|a, b| a.start.cmp(&b.start));
                ranges.dedup_by(|a, b| a.start == b.start);
                let index = tx.open_table(INDEX)?;
                let mut seen = std::collections::HashSet::new();
                'ranges: for range in &ranges {
                    let start = match after {
                        Some(a) if a >= range.end.as_slice() => continue,
                        Some(a) if a >= range.start.as_slice() => Bound::Excluded(a),
                        _ => Bound::Included(range.start.as_slice()),
                    };
                    for entry in
                        index.range::<&[u8]>((start, Bound::Excluded(range.end.as_slice())))?
                    {
                        let (k, ()) = entry.map(|(k, v)| (k, v.value()))?;
                        let Some(id) = index::id_of(k.value(), range.value_start) else {
                            continue;
                        };
                        if !seen.insert(id.to_string()) {
                            continue;
                        }
                        let rk = key(&q.object, id)?;
                        if let Some(v) = records.get(rk.as_str())? {
                            let record: Record = decode(&rk, v.value())?;
                            if accept(&record) {
                                found.push((k.value().to_vec(), record));
                                if full(&found) {
                                    break 'ranges;
                                }
                            }
                        }
                    }
                }
            }
            Plan::Scan => {
                let first = key(&q.object, "")?;
                let end = prefix_end(&first);
                let from = after.and_then(|a| std::str::from_utf8(a).ok());
                let start = match from {
                    Some(a) if a >= first.as_str() => Bound::Excluded(a),
                    _ => Bound::Included(first.as_str()),
                };
                for entry in records.range::<&str>((start, Bound::Excluded(end.as_str())))? {
                    let (k, v) = entry?;
                    let record: Record = decode(k.value(), v.value())?;
                    if accept(&record) {
                        found.push((k.value().as_bytes().to_vec(), record));
                        if full(&found) {
                            break;
                        }
                    }
                }
            }
        }
        let more = found.len() > limit;
        found.truncate(limit);
        let next = if more {
            found.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok(RecordPage {
            records: found.into_iter().map(|(_, r)| r).collect(),
            next,
        })
    }

    /// Chooses how to run a query.
    fn plan(&self, object: &str, filters: &[Filter], owners: Option<&[String]>) -> Plan {
        let indexed = |f: &Filter| self.schema.is_indexed(object, &f.field);
        // 1. Equality (or list membership) on an indexed field.
        for f in filters.iter().filter(|f| indexed(f)) {
            let list = matches!(
                self.schema.field(object, &f.field).map(|d| d.ty),
                Ok(crate::schema::FieldType::TextList)
            );
            if f.op == Op::Equals || (f.op == Op::Contains && list) {
                let base = index::prefix(object, &f.field);
                let mut start = base.clone();
                if index::encode(&f.value, &mut start) {
                    let end = index::prefix_end(&start);
                    return Plan::Ranges(vec![Range {
                        start,
                        end,
                        value_start: base.len(),
                    }]);
                }
            }
        }
        // 2. Starts-with on an indexed text field.
        for f in filters
            .iter()
            .filter(|f| indexed(f) && f.op == Op::StartsWith)
        {
            if let FieldValue::Text(t) = &f.value {
                let base = index::prefix(object, &f.field);
                let mut start = base.clone();
                index::encode_text(t, false, &mut start);
                let end = index::prefix_end(&start);
                return Plan::Ranges(vec![Range {
                    start,
                    end,
                    value_start: base.len(),
                }]);
            }
        }
        // 3. A range on one indexed field, with every bound on that field merged.
        if let Some(f) = filters
            .iter()
            .find(|f| indexed(f) && matches!(f.op, Op::GreaterThan | Op::LessThan))
        {
            let base = index::prefix(object, &f.field);
            let mut lower: Option<Vec<u8>> = None;
            let mut upper: Option<Vec<u8>> = None;
            for g in filters.iter().filter(|g| g.field == f.field) {
                let mut enc = base.clone();
                if !index::encode(&g.value, &mut enc) {
                    continue;
                }
                match g.op {
                    Op::GreaterThan => {
                        let bound = index::prefix_end(&enc);
                        if lower.as_ref().is_none_or(|l| &bound > l) {
                            lower = Some(bound);
                        }
                    }
                    Op::LessThan if upper.as_ref().is_none_or(|u| &enc < u) => {
                        upper = Some(enc);
                    }
                    _ => {}
                }
            }
            // The tag byte keeps a range inside one value type.
            let mut type_start = base.clone();
            index::encode(&f.value, &mut type_start);
            type_start.truncate(base.len() + 1);
            let type_end = index::prefix_end(&type_start);
            let start = lower.unwrap_or(type_start);
            let end = upper.unwrap_or(type_end);
            return Plan::Ranges(if start < end {
                vec![Range {
                    start,
                    end,
                    value_start: base.len(),
                }]
            } else {
                Vec::new()
            });
        }
        // 4. The owners of a visibility rule.
        if let Some(owners) = owners
            && owners.len() <= 64
        {
            let base = index::prefix(object, OWNER);
            let ranges = owners
                .iter()
                .filter_map(|o| {
                    let mut start = base.clone();
                    index::encode(&FieldValue::Text(o.clone()), &mut start).then(|| {
                        let end = index::prefix_end(&start);
                        Range {
                            start,
                            end,
                            value_start: base.len(),
                        }
                    })
                })
                .collect();
            return Plan::Ranges(ranges);
        }
        Plan::Scan
    }
}

/// A page of a query's records.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// The records, in the order the query reads them.
    pub records: Vec<Record>,
    /// Where the next page starts, when more records match.
    pub next: Option<Vec<u8>>,
}

/// How a query reads records.
enum Plan {
    /// Index key ranges; every id found is looked up and checked.
    Ranges(Vec<Range>),
    /// A scan of every record of the object.
    Scan,
}

struct Range {
    start: Vec<u8>,
    end: Vec<u8>,
    value_start: usize,
}
