//! Events as they arrive at the host (JSON), and their conversion into the WIT event a
//! worker sees, reduced to what the worker's grant lets it read.
//!
//! ```json
//! {"id": "evt-1", "trigger": {"type": "record-created"}, "object": "lead", "record-id": "L-1"}
//! {"trigger": {"type": "record-updated", "changes": [{"field": "status", "old": "new", "new": "open"}]},
//!  "object": "lead", "record-id": "L-1"}
//! {"trigger": {"type": "named", "name": "form-submitted"}, "payload": {"form": "demo"}}
//! ```

use crate::error::Error;
use crate::sandbox::bindings::roster::worker::types::{Event, FieldChange, Trigger};
use crate::sandbox::capability::records::{to_wit, visible};
use crate::sandbox::state::WorkerContext;
use crate::store::Store;
use crate::value::{EventInput, Record, TriggerInput};

impl EventInput {
    /// Parses an event from JSON text (from `what`: a path or `<stdin>`).
    pub fn parse(what: &str, text: &str) -> Result<EventInput, Error> {
        crate::config_file::parse_json(what, text)
    }

    /// The record the event is about, read from the store (`None` when the event names no
    /// record or the record does not exist).
    pub(crate) fn read_record(&self, store: &Store) -> Result<Option<Record>, Error> {
        match (&self.object, &self.record_id) {
            (Some(object), Some(id)) => Ok(store.get_record(object, id)?),
            _ => Ok(None),
        }
    }

    /// The event as `worker` may see it, given the record it names as read by the caller
    /// ([`EventInput::read_record`]). Fails when the event refers to a record that does not
    /// exist (except for deletions) or is malformed.
    pub(crate) fn to_wit(
        &self,
        worker: &WorkerContext,
        id: &str,
        now_ms: i64,
        stored: Option<Record>,
    ) -> Result<Event, Error> {
        let object_scope = self.object.as_deref().and_then(|o| {
            worker
                .grant
                .capabilities
                .records
                .as_ref()
                .and_then(|r| r.object(o))
        });
        let record = match (&self.object, &self.record_id) {
            (None, Some(_)) => {
                return Err(Error::InvalidEvent("`record-id` needs `object`".into()));
            }
            (Some(object), Some(record_id)) => {
                if let Some(r) = &stored
                    && !worker
                        .services
                        .directory
                        .can_see(&worker.grant.grant.principal, r)
                {
                    return Err(Error::InvalidEvent(format!(
                        "record {object}/{record_id} is not visible to `{}`",
                        worker.grant.grant.principal
                    )));
                }
                match (stored, object_scope) {
                    (Some(r), Some(scope)) => Some(visible(&r, scope)),
                    (Some(_), None) => None,
                    (None, _) if self.trigger == TriggerInput::RecordDeleted => None,
                    (None, _) => {
                        return Err(Error::InvalidEvent(format!(
                            "record {object}/{record_id} does not exist"
                        )));
                    }
                }
            }
            _ => None,
        };
        let trigger = match &self.trigger {
            TriggerInput::RecordCreated => Trigger::RecordCreated,
            TriggerInput::RecordUpdated { changes } => Trigger::RecordUpdated(
                changes
                    .iter()
                    .filter(|c| object_scope.is_some_and(|s| s.may_read(&c.field)))
                    .map(|c| FieldChange {
                        field: c.field.clone(),
                        old: to_wit(&c.old),
                        new: to_wit(&c.new),
                    })
                    .collect(),
            ),
            TriggerInput::RecordDeleted => Trigger::RecordDeleted,
            TriggerInput::Schedule { name } => Trigger::Schedule(name.clone()),
            TriggerInput::Named { name } => Trigger::Named(name.clone()),
            TriggerInput::Signal { topic } => Trigger::Signal(topic.clone()),
            TriggerInput::Threshold { name } => Trigger::Threshold(name.clone()),
            TriggerInput::Manual => Trigger::Manual,
        };
        Ok(Event {
            id: id.to_string(),
            trigger,
            record,
            payload: self.payload.as_ref().map(|p| p.to_string()),
            occurred_at: self.occurred_at.unwrap_or(now_ms),
            settings: worker.settings.clone(),
        })
    }
}

/// The bytes an event carries across the boundary.
pub(crate) fn event_size(event: &Event) -> u64 {
    let record = event.record.as_ref().map_or(0, |r| {
        r.fields
            .iter()
            .map(|f| {
                f.name.len() as u64
                    + crate::sandbox::capability::records::to_stored(&f.value).size()
            })
            .sum::<u64>()
    });
    event.payload.as_ref().map_or(0, |p| p.len() as u64)
        + record
        + event.id.len() as u64
        + event.settings.len() as u64
}
