//! `roster:records/records`: CRM records, within the granted objects and fields.
//!
//! Reads return only readable fields; filters may only name readable fields (a filter on a
//! hidden field would leak its value); writes may only name writable fields; create and
//! delete need their own flag on the object. Records outside the worker principal's
//! visibility read as not found (the attempt is recorded as a denial) and cannot be
//! written; values must fit the record schema.

use std::collections::BTreeMap;

use serde_json::json;

use super::review::Proposed;
use super::store_error;
use crate::filter::{self, Op};
use crate::governance::review::record_risk;
use crate::sandbox::bindings::roster::records::records::{
    Comparison, Created, Filter, Host, Query,
};
use crate::sandbox::bindings::roster::types::types::{CrmRecord, Error, Field, Receipt, Value};
use crate::sandbox::gate::{ActionKind, Call, EffectIds};
use crate::sandbox::payload::Payload;
use crate::sandbox::state::HostState;
use crate::scope::{OWNER, ObjectScope};
use crate::store::{Effect, RecordQuery, create_record_in, delete_record_in, update_record_in};
use crate::value::{FieldValue, Record};

/// The most records one `find` returns.
const MAX_FIND: usize = 1000;

/// The actor recorded in the change log for a worker's writes.
fn actor(plugin: &str) -> String {
    format!("worker:{plugin}")
}

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

/// Adds a value to a call's payload (a text list is a list crossing the boundary).
fn value_payload(p: Payload, v: &Value) -> Payload {
    match v {
        Value::Text(t) => p.text(t),
        Value::TextList(items) => p.texts(items),
        _ => p.bytes(8),
    }
}

/// Adds fields to a call's payload.
fn fields_payload(p: Payload, fields: &[Field]) -> Payload {
    p.list(fields, |p, f| value_payload(p.text(&f.name), &f.value))
}

/// The comparison operator of a WIT filter.
fn op(c: Comparison) -> Op {
    match c {
        Comparison::Equals => Op::Equals,
        Comparison::NotEquals => Op::NotEquals,
        Comparison::Contains => Op::Contains,
        Comparison::StartsWith => Op::StartsWith,
        Comparison::EndsWith => Op::EndsWith,
        Comparison::IsEmpty => Op::IsEmpty,
        Comparison::IsNotEmpty => Op::IsNotEmpty,
        Comparison::GreaterThan => Op::GreaterThan,
        Comparison::LessThan => Op::LessThan,
    }
}

impl HostState {
    /// The principal the worker acts as.
    pub(crate) fn principal(&self) -> &str {
        &self.worker.grant.grant.principal
    }

    /// Denies a write to a record outside the principal's visibility.
    fn check_visible_for_write(
        &mut self,
        call: Call,
        object: &str,
        id: &str,
    ) -> Result<Call, Error> {
        let record = match self.worker.services.store.get_record(object, id) {
            Ok(r) => r,
            Err(e) => return Err(self.gate.reject(call, store_error(e))),
        };
        match record {
            Some(r) if !self.worker.services.directory.can_see(self.principal(), &r) => {
                let reason = format!(
                    "{object}/{id} is outside the visibility of `{}`",
                    self.principal()
                );
                Err(self.gate.deny(call, reason))
            }
            _ => Ok(call),
        }
    }

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

impl Host for HostState {
    fn get(&mut self, object: String, id: String) -> wasmtime::Result<Result<CrmRecord, Error>> {
        self.gate
            .enter(Payload::default().text(&object).text(&id))?;
        let call = Call::new(
            "records",
            "get",
            ActionKind::Read,
            format!("{object}/{id}"),
            json!({}),
        );
        let (scope, call) = wit_try!(self.object_scope(call, &object));
        let store = self.worker.services.store.clone();
        let record = match store.get_record(&object, &id) {
            Ok(record) => record,
            Err(e) => return Ok(Err(self.gate.reject(call, store_error(e)))),
        };
        if let Some(r) = &record
            && !self.worker.services.directory.can_see(self.principal(), r)
        {
            let reason = format!(
                "{object}/{id} is outside the visibility of `{}`",
                self.principal()
            );
            let error = Error::NotFound(format!("{object}/{id}"));
            return Ok(Err(self.gate.deny_with(call, reason, error)));
        }
        Ok(self.gate.read(call, || {
            let record = record.ok_or_else(|| Error::NotFound(format!("{object}/{id}")))?;
            let seen = visible(&record, &scope);
            let names: Vec<&str> = seen.fields.iter().map(|f| f.name.as_str()).collect();
            let output = json!({ "fields": names });
            Ok((seen, output))
        }))
    }

    fn find(&mut self, q: Query) -> wasmtime::Result<Result<Vec<CrmRecord>, Error>> {
        self.gate.enter(
            Payload::default()
                .text(&q.object)
                .list(&q.filters, |p, f| value_payload(p.text(&f.field), &f.value)),
        )?;
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
        let query = RecordQuery {
            object: q.object.clone(),
            filters: q
                .filters
                .iter()
                .map(
                    |Filter {
                         field,
                         comparison,
                         value,
                     }| filter::Filter {
                        field: field.clone(),
                        op: op(*comparison),
                        value: to_stored(value),
                    },
                )
                .collect(),
            owners: self
                .worker
                .services
                .directory
                .visible_owners(self.principal()),
            limit: (q.limit as usize).clamp(1, MAX_FIND),
        };
        let store = self.worker.services.store.clone();
        Ok(self.gate.read(call, || {
            let found = store.query(&query).map_err(store_error)?;
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
            .enter(fields_payload(Payload::default().text(&object), &fields))?;
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
            owner: Some(self.principal().to_string()),
            fields: fields_map(&fields),
        };
        let store = self.worker.services.store.clone();
        if let Err(e) = store.check_record(record.clone()) {
            return Ok(Err(self.gate.reject(call, store_error(e))));
        }
        let effect = Effect::RecordCreate {
            object: object.clone(),
            id: id.clone(),
            owner: record.owner.clone(),
            fields: record.fields.clone(),
        };
        // The id is new on every run; what is proposed is the rest.
        let mut proposal = serde_json::to_value(&effect).unwrap_or_default();
        if let Some(o) = proposal.as_object_mut() {
            o.remove("id");
        }
        let actor = actor(&self.worker.plugin);
        let write = move |tx: &_, _: EffectIds<'_>| {
            let created = create_record_in(tx, &store, record.clone(), &actor)?;
            Ok(json!({ "id": created.id }))
        };
        let risk = record_risk(&object, "create");
        Ok(
            match self.propose(call.proposing(&proposal), effect, risk, write, |_| None)? {
                Proposed::Held(answer) => answer.map(|receipt| Created { receipt, id }),
                // The id an earlier attempt created, when this one was a retry.
                Proposed::Done(done) => done.map(|(output, receipt)| Created {
                    receipt,
                    id: output
                        .and_then(|o| o["id"].as_str().map(str::to_string))
                        .unwrap_or(id),
                }),
            },
        )
    }

    fn update(
        &mut self,
        object: String,
        id: String,
        fields: Vec<Field>,
    ) -> wasmtime::Result<Result<Receipt, Error>> {
        self.gate.enter(fields_payload(
            Payload::default().text(&object).text(&id),
            &fields,
        ))?;
        let call = Call::new(
            "records",
            "update",
            ActionKind::Effect,
            format!("{object}/{id}"),
            json!({ "fields": field_names(&fields) }),
        );
        let (scope, call) = wit_try!(self.object_scope(call, &object));
        let call = wit_try!(self.check_writable(call, &object, &scope, &fields));
        let call = wit_try!(self.check_visible_for_write(call, &object, &id));
        let store = self.worker.services.store.clone();
        let mut changes = fields_map(&fields);
        // The owner is not a schema field: it must name a principal.
        let owner = changes.remove(OWNER);
        let mut changes = match store.schema().coerce_all(&object, changes) {
            Ok(changes) => changes,
            Err(e) => return Ok(Err(self.gate.reject(call, store_error(e.into())))),
        };
        if let Some(owner) = owner {
            let directory = &self.worker.services.directory;
            match owner {
                FieldValue::Text(p)
                    if !p.is_empty() && (directory.is_open() || directory.knows(&p)) =>
                {
                    changes.insert(OWNER.to_string(), FieldValue::Text(p));
                }
                other => {
                    let reason = format!(
                        "`owner` must name a principal of this host, not {}",
                        serde_json::to_string(&other).unwrap_or_default()
                    );
                    return Ok(Err(self.gate.reject(call, Error::InvalidInput(reason))));
                }
            }
        }
        let effect = Effect::RecordUpdate {
            object: object.clone(),
            id: id.clone(),
            fields: changes.clone(),
        };
        let actor = actor(&self.worker.plugin);
        let target = format!("{object}/{id}");
        let risk = record_risk(&object, "update");
        let call = call.proposing(&effect);
        let write = move |tx: &_, _: EffectIds<'_>| match update_record_in(
            tx, &store, &object, &id, &changes, &actor,
        )? {
            Some(_) => Ok(json!({ "updated": changes.len() })),
            None => Ok(json!({ "missing": true })),
        };
        let missing =
            |output: &serde_json::Value| output.get("missing").map(|_| Error::NotFound(target));
        Ok(self.propose(call, effect, risk, write, missing)?.receipt())
    }

    fn delete(&mut self, object: String, id: String) -> wasmtime::Result<Result<Receipt, Error>> {
        self.gate
            .enter(Payload::default().text(&object).text(&id))?;
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
        let call = wit_try!(self.check_visible_for_write(call, &object, &id));
        let effect = Effect::RecordDelete {
            object: object.clone(),
            id: id.clone(),
        };
        let store = self.worker.services.store.clone();
        let actor = actor(&self.worker.plugin);
        let target = format!("{object}/{id}");
        let risk = record_risk(&object, "delete");
        let call = call.proposing(&effect);
        let write = move |tx: &_, _: EffectIds<'_>| {
            let existed = delete_record_in(tx, &store, &object, &id, &actor)?;
            Ok(json!({ "deleted": existed }))
        };
        let missing = |output: &serde_json::Value| {
            (output["deleted"] == json!(false)).then_some(Error::NotFound(target))
        };
        Ok(self.propose(call, effect, risk, write, missing)?.receipt())
    }
}
