//! A worker that reports what started it: the trigger, the record and the changed fields,
//! in its outcome summary. The service tests read the execution log to see what fired.

use roster_sdk::{Event, Outcome, Trigger, Worker, WorkerError};

struct Recorder;

impl Worker for Recorder {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let trigger = match &event.trigger {
            Trigger::RecordCreated => "created".to_string(),
            Trigger::RecordUpdated(changes) => {
                let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
                format!("updated[{}]", fields.join(","))
            }
            Trigger::RecordDeleted => "deleted".to_string(),
            Trigger::Schedule(name) => format!("schedule({name})"),
            Trigger::Named(name) => format!("event({name})"),
            Trigger::Signal(topic) => format!("signal({topic})"),
            Trigger::Threshold(name) => format!("threshold({name})"),
            Trigger::Manual => "manual".to_string(),
        };
        let record = event
            .record()
            .map(|r| format!("{}/{}", r.object, r.id))
            .unwrap_or_else(|| "-".into());
        let payload = event.payload.as_deref().unwrap_or("-");
        Ok(Outcome::success(format!("{trigger} {record} {payload}")))
    }
}

roster_sdk::export!(Recorder);
