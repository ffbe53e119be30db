//! `roster:records/records`: CRM records, within the granted objects and fields.
//!
//! Reads return only readable fields; filters may only name readable fields (a filter on a
//! hidden field would leak its value); writes may only name writable fields; create and
//! delete need their own flag on the object.

use std::collections::BTreeMap;

use serde_json::json;

use crate::bindings::roster::records::records::{Comparison, Created, Filter, Host, Query};
use crate::bindings::roster::types::types::{CrmRecord, Error, Field, Receipt, Value};
use crate::gate::{ActionKind, Call};
use crate::scope::ObjectScope;
use crate::state::HostState;
use crate::store::{FieldValue, Record};

/// The most records one `find` returns.
const MAX_FIND: usize = 1000;

/// Converts a WIT value to a stored value.
pub(crate) fn to_stored(v: &Value) -> FieldValue {
    match v {
        Value::Null => FieldValue::Null,
        Value::Text(t) => FieldValue::Text(t.clone()),
        Value::Integer(n) => FieldValue::Integer(*n),
        Value::Number(n) => FieldValue::Number(*n),
        Value::Boolean(b) => FieldValue::Boolean(*b),
        Value::Timestamp(t) => FieldValue::Timestamp { timestamp: *t },
        Value::TextList(l) => FieldValue::TextList(l.clone()),
    }
}

/// Converts a stored value to a WIT value.
pub(crate) fn to_wit(v: &FieldValue) -> Value {
    match v {
        FieldValue::Null => Value::Null,
        FieldValue::Text(t) => Value::Text(t.clone()),
        FieldValue::Integer(n) => Value::Integer(*n),
        FieldValue::Number(n) => Value::Number(*n),
        FieldValue::Boolean(b) => Value::Boolean(*b),
        FieldValue::Timestamp { timestamp } => Value::Timestamp(*timestamp),
        FieldValue::TextList(l) => Value::TextList(l.clone()),
    }
}

/// The record as the worker may see it: only readable fields.
pub(crate) fn visible(record: &Record, scope: &ObjectScope) -> CrmRecord {
    CrmRecord {
        id: record.id.clone(),
        object: record.object.clone(),
        owner: record.owner.clone(),
        fields: record
            .fields
            .iter()
            .filter(|(name, _)| scope.may_read(name))
            .map(|(name, value)| Field {
                name: name.clone(),
                value: to_wit(value),
            })
            .collect(),
    }
}

fn value_size(v: &Value) -> u64 {
    to_stored(v).size()
}

fn fields_size(fields: &[Field]) -> u64 {
    fields
        .iter()
        .map(|f| f.name.len() as u64 + value_size(&f.value))
        .sum()
}

/// Whether a stored value satisfies a filter.
pub(crate) fn matches(
    value: Option<&FieldValue>,
    comparison: Comparison,
    target: &FieldValue,
) -> bool {
    let empty = value.is_none_or(FieldValue::is_empty);
    match comparison {
        Comparison::IsEmpty => empty,
        Comparison::IsNotEmpty => !empty,
        Comparison::Equals => value.is_some_and(|v| equal(v, target)),
        Comparison::NotEquals => !value.is_some_and(|v| equal(v, target)),
        Comparison::Contains => match (value, target) {
            (Some(FieldValue::Text(t)), FieldValue::Text(s)) => {
                t.to_lowercase().contains(&s.to_lowercase())
            }
            (Some(FieldValue::TextList(l)), FieldValue::Text(s)) => {
                l.iter().any(|i| i.eq_ignore_ascii_case(s))
            }
            _ => false,
        },
        Comparison::StartsWith => match (value, target) {
            (Some(FieldValue::Text(t)), FieldValue::Text(s)) => {
                t.to_lowercase().starts_with(&s.to_lowercase())
            }
            _ => false,
        },
        Comparison::EndsWith => match (value, target) {
            (Some(FieldValue::Text(t)), FieldValue::Text(s)) => {
                t.to_lowercase().ends_with(&s.to_lowercase())
            }
            _ => false,
        },
        Comparison::GreaterThan => order(value, target) == Some(std::cmp::Ordering::Greater),
        Comparison::LessThan => order(value, target) == Some(std::cmp::Ordering::Less),
    }
}

fn equal(a: &FieldValue, b: &FieldValue) -> bool {
    match (a, b) {
        (FieldValue::Text(x), FieldValue::Text(y)) => x.eq_ignore_ascii_case(y),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn order(a: Option<&FieldValue>, b: &FieldValue) -> Option<std::cmp::Ordering> {
    match (a?, b) {
        (FieldValue::Text(x), FieldValue::Text(y)) => Some(x.cmp(y)),
        (x, y) => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

impl HostState {
    /// The object's scope, or the denial already recorded.
    fn object_scope(&mut self, call: Call, object: &str) -> Result<(ObjectScope, Call), Error> {
        let Some(records) = &self.worker.grant.capabilities.records else {
            return Err(self.gate.deny(call, "capability `records` is not granted"));
        };
        match records.object(object) {
            Some(scope) => Ok((scope.clone(), call)),
            None => {
                let reason = format!("object `{object}` is not granted");
                Err(self.gate.deny(call, reason))
            }
        }
    }

    /// Denies a write naming fields outside the writable set.
    fn check_writable(
        &mut self,
        call: Call,
        object: &str,
        scope: &ObjectScope,
        fields: &[Field],
    ) -> Result<Call, Error> {
        let refused: Vec<&str> = fields
            .iter()
            .filter(|f| !scope.may_write(&f.name))
            .map(|f| f.name.as_str())
            .collect();
        if refused.is_empty() {
            Ok(call)
        } else {
            let reason = format!("fields not writable on `{object}`: {}", refused.join(", "));
            Err(self.gate.deny(call, reason))
        }
    }
}

fn field_names(fields: &[Field]) -> serde_json::Value {
    json!(fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>())
}

fn fields_map(fields: &[Field]) -> BTreeMap<String, FieldValue> {
    fields
        .iter()
        .map(|f| (f.name.clone(), to_stored(&f.value)))
        .collect()
}

fn unavailable(e: crate::store::StoreError) -> Error {
    Error::Unavailable(e.to_string())
}

impl Host for HostState {
    fn get(&mut self, object: String, id: String) -> wasmtime::Result<Result<CrmRecord, Error>> {
        self.gate.enter(super::len(&object) + super::len(&id))?;
        let call = Call::new(
            "records",
            "get",
            ActionKind::Read,
            format!("{object}/{id}"),
            json!({}),
        );
        let (scope, call) = wit_try!(self.object_scope(call, &object));
        let store = self.worker.services.store.clone();
        Ok(self.gate.read(call, || {
            let record = store
                .get_record(&object, &id)
                .map_err(unavailable)?
                .ok_or_else(|| Error::NotFound(format!("{object}/{id}")))?;
            let seen = visible(&record, &scope);
            let names: Vec<&str> = seen.fields.iter().map(|f| f.name.as_str()).collect();
            let output = json!({ "fields": names });
            Ok((seen, output))
        }))
    }

    fn find(&mut self, q: Query) -> wasmtime::Result<Result<Vec<CrmRecord>, Error>> {
        let size = super::len(&q.object)
            + q.filters
                .iter()
                .map(|f| f.field.len() as u64 + value_size(&f.value))
                .sum::<u64>();
        self.gate.enter(size)?;
        let call = Call::new(
            "records",
            "find",
            ActionKind::Read,
            q.object.clone(),
            json!({ "filters": q.filters.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), "limit": q.limit }),
        );
        let (scope, call) = wit_try!(self.object_scope(call, &q.object));
        let hidden: Vec<&str> = q
            .filters
            .iter()
            .filter(|f| !scope.may_read(&f.field))
            .map(|f| f.field.as_str())
            .collect();
        if !hidden.is_empty() {
            let reason = format!(
                "filters name fields not readable on `{}`: {}",
                q.object,
                hidden.join(", ")
            );
            return Ok(Err(self.gate.deny(call, reason)));
        }
        let store = self.worker.services.store.clone();
        let filters: Vec<(String, Comparison, FieldValue)> = q
            .filters
            .iter()
            .map(
                |Filter {
                     field,
                     comparison,
                     value,
                 }| (field.clone(), *comparison, to_stored(value)),
            )
            .collect();
        let limit = (q.limit as usize).clamp(1, MAX_FIND);
        Ok(self.gate.read(call, || {
            let found = store
                .scan_records(&q.object, limit, |r| {
                    filters
                        .iter()
                        .all(|(f, c, v)| matches(r.fields.get(f), *c, v))
                })
                .map_err(unavailable)?;
            let seen: Vec<CrmRecord> = found.iter().map(|r| visible(r, &scope)).collect();
            let output = json!({ "count": seen.len() });
            Ok((seen, output))
        }))
    }

    fn create(
        &mut self,
        object: String,
        fields: Vec<Field>,
    ) -> wasmtime::Result<Result<Created, Error>> {
        self.gate
            .enter(super::len(&object) + fields_size(&fields))?;
        let call = Call::new(
            "records",
            "create",
            ActionKind::Effect,
            object.clone(),
            json!({ "fields": field_names(&fields) }),
        );
        let (scope, call) = wit_try!(self.object_scope(call, &object));
        if !scope.create {
            let reason = format!("creating `{object}` records is not granted");
            return Ok(Err(self.gate.deny(call, reason)));
        }
        let call = wit_try!(self.check_writable(call, &object, &scope, &fields));
        let id = uuid::Uuid::now_v7().to_string();
        let record = Record {
            object: object.clone(),
            id: id.clone(),
            owner: Some(self.worker.grant.grant.principal.clone()),
            fields: fields_map(&fields),
        };
        let store = self.worker.services.store.clone();
        let result = self.gate.act(call, |_| {
            store
                .put_records(std::slice::from_ref(&record))
                .map_err(unavailable)?;
            Ok(((), json!({ "id": record.id })))
        })?;
        Ok(result.map(|(_, receipt)| Created { receipt, id }))
    }

    fn update(
        &mut self,
        object: String,
        id: String,
        fields: Vec<Field>,
    ) -> wasmtime::Result<Result<Receipt, Error>> {
        self.gate
            .enter(super::len(&object) + super::len(&id) + fields_size(&fields))?;
        let call = Call::new(
            "records",
            "update",
            ActionKind::Effect,
            format!("{object}/{id}"),
            json!({ "fields": field_names(&fields) }),
        );
        let (scope, call) = wit_try!(self.object_scope(call, &object));
        let call = wit_try!(self.check_writable(call, &object, &scope, &fields));
        let store = self.worker.services.store.clone();
        let changes = fields_map(&fields);
        let result = self.gate.act(call, |_| {
            store
                .update_record(&object, &id, &changes)
                .map_err(unavailable)?
                .ok_or_else(|| Error::NotFound(format!("{object}/{id}")))?;
            Ok(((), json!({ "updated": changes.len() })))
        })?;
        Ok(result.map(|(_, receipt)| receipt))
    }

    fn delete(&mut self, object: String, id: String) -> wasmtime::Result<Result<Receipt, Error>> {
        self.gate.enter(super::len(&object) + super::len(&id))?;
        let call = Call::new(
            "records",
            "delete",
            ActionKind::Effect,
            format!("{object}/{id}"),
            json!({}),
        );
        let (scope, call) = wit_try!(self.object_scope(call, &object));
        if !scope.delete {
            let reason = format!("deleting `{object}` records is not granted");
            return Ok(Err(self.gate.deny(call, reason)));
        }
        let store = self.worker.services.store.clone();
        let result = self.gate.act(call, |_| {
            if store.delete_record(&object, &id).map_err(unavailable)? {
                Ok(((), json!("deleted")))
            } else {
                Err(Error::NotFound(format!("{object}/{id}")))
            }
        })?;
        Ok(result.map(|(_, receipt)| receipt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_the_documented_rules() {
        let t = |s: &str| FieldValue::Text(s.into());
        assert!(matches(
            Some(&t("Acme Corp")),
            Comparison::Contains,
            &t("acme")
        ));
        assert!(matches(Some(&t("Acme")), Comparison::Equals, &t("ACME")));
        assert!(matches(None, Comparison::IsEmpty, &FieldValue::Null));
        assert!(matches(
            Some(&t("")),
            Comparison::IsEmpty,
            &FieldValue::Null
        ));
        assert!(matches(None, Comparison::NotEquals, &t("x")));
        assert!(matches(
            Some(&FieldValue::Integer(5)),
            Comparison::GreaterThan,
            &FieldValue::Number(4.5)
        ));
        assert!(!matches(
            Some(&t("5")),
            Comparison::GreaterThan,
            &FieldValue::Integer(4)
        ));
        let list = FieldValue::TextList(vec!["vip".into()]);
        assert!(matches(Some(&list), Comparison::Contains, &t("VIP")));
        assert!(matches(
            Some(&t("lead@x.test")),
            Comparison::EndsWith,
            &t("@X.TEST")
        ));
    }
}
