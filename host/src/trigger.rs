//! Triggers: what starts a worker.
//!
//! ```toml
//! [[triggers]]
//! on = "record-created"            # record-created, record-updated, record-deleted
//! object = "lead"
//!
//! [[triggers]]
//! on = "record-updated"
//! object = "opportunity"
//! fields = ["stage"]               # only when one of these changed (any field when absent)
//! delay = "2h"                     # run 2 hours after the change (survives restarts)
//!
//! [[triggers]]
//! on = "schedule"
//! every = "15m"                    # or: cron = "0 9 * * MON-FRI", timezone = "Europe/London"
//! object = "lead"                  # optional: a batch scan, one execution per matching record
//!
//! [[triggers]]
//! on = "event"
//! name = "form-submitted"          # from the authenticated webhook endpoint
//!
//! [[triggers]]
//! on = "signal"
//! topic = "revenue.*"              # signals emitted by other workers
//!
//! [[triggers]]
//! on = "threshold"
//! object = "opportunity"
//! field = "amount"
//! above = 100000                   # or below = ...; fires once per crossing
//!
//! [[triggers]]
//! on = "threshold"                 # an aggregate: sum, count or average over records
//! object = "opportunity"
//! aggregate = "sum"
//! field = "amount"
//! group-by = "owner"               # or a field; one group of all records when absent
//! where = [{ field = "status", op = "equals", value = "won" }]
//! above = 100000                   # fires once per group per crossing
//!
//! [[triggers]]
//! on = "date-within"
//! object = "account"
//! field = "renewal_date"
//! within = "30d"                   # fires once per date value
//! ```

pub mod condition;

use std::str::FromStr;

use chrono::TimeZone;
use serde::{Deserialize, Serialize};

use crate::clock::{Millis, parse_duration};
use crate::schema::{FieldType, Schema};
use crate::value::FieldValue;

/// A trigger as written in a worker's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TriggerSpec {
    /// What starts the worker.
    pub on: String,
    /// The object type (record, threshold, date-within and scan triggers).
    pub object: Option<String>,
    /// Fields whose change fires a record-updated trigger.
    pub fields: Option<Vec<String>>,
    /// A fixed interval for a schedule (`15m`, `1h`, `1d`, `1w`).
    pub every: Option<String>,
    /// A cron expression for a schedule (5 fields, or 6 with seconds).
    pub cron: Option<String>,
    /// The time zone a cron expression is read in (IANA name; UTC by default).
    pub timezone: Option<String>,
    /// The most records one scan enqueues.
    pub scan_limit: Option<usize>,
    /// The event name.
    pub name: Option<String>,
    /// The signal topic pattern.
    pub topic: Option<String>,
    /// The field of a threshold or date trigger.
    pub field: Option<String>,
    /// Fires when the field rises above this.
    pub above: Option<f64>,
    /// Fires when the field falls below this.
    pub below: Option<f64>,
    /// Fires when the date field comes within this span (`30d`).
    pub within: Option<String>,
    /// For a threshold on an aggregate: `sum`, `count` or `average` of `field` over the
    /// records matching `where`.
    pub aggregate: Option<Aggregation>,
    /// For an aggregate: `owner` or a field whose values form the groups (one crossing per
    /// group); one group of all records when absent.
    pub group_by: Option<String>,
    /// For an aggregate: which records count.
    #[serde(rename = "where")]
    pub filters: Option<Vec<crate::filter::Filter>>,
    /// Runs this long after the triggering event (`2h`, `3d`).
    pub delay: Option<String>,
}

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every so many milliseconds.
    Every(Millis),
    /// On a cron pattern in a time zone.
    Cron(Box<croner::Cron>, chrono_tz::Tz),
}

impl Schedule {
    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        match self {
            Schedule::Every(ms) => Some(after + ms),
            Schedule::Cron(cron, tz) => {
                let start = tz.timestamp_millis_opt(after).single()?;
                cron.find_next_occurrence(&start, false)
                    .ok()
                    .map(|t| t.timestamp_millis())
            }
        }
    }
}

/// What a trigger reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerKind {
    /// A record of `object` was created.
    RecordCreated {
        /// The object type.
        object: String,
    },
    /// A record of `object` was updated (one of `fields`, when not empty).
    RecordUpdated {
        /// The object type.
        object: String,
        /// The fields whose change counts; empty means any.
        fields: Vec<String>,
    },
    /// A record of `object` was deleted.
    RecordDeleted {
        /// The object type.
        object: String,
    },
    /// A schedule; with `scan`, one execution per matching record of that object.
    Schedule {
        /// When it fires.
        schedule: Schedule,
        /// The object scanned, if it is a batch scan.
        scan: Option<String>,
        /// The most records one scan enqueues.
        scan_limit: usize,
    },
    /// A named business event from the webhook endpoint.
    Event {
        /// The event name.
        name: String,
    },
    /// A signal from another worker.
    Signal {
        /// The topic pattern.
        topic: String,
    },
    /// A numeric field, or an aggregate over records, crossing into a region.
    Threshold {
        /// The object type.
        object: String,
        /// The field (empty for a count).
        field: String,
        /// The region's lower end (exclusive).
        above: Option<f64>,
        /// The region's upper end (exclusive).
        below: Option<f64>,
        /// When set, the value compared is this aggregate rather than one record's field.
        aggregate: Option<Aggregate>,
    },
    /// A date field coming within a span of now.
    DateWithin {
        /// The object type.
        object: String,
        /// The date field.
        field: String,
        /// The span in milliseconds.
        within: Millis,
    },
}

/// How records are combined into one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregation {
    /// The sum of the field.
    Sum,
    /// The number of records.
    Count,
    /// The mean of the field (over records that have it).
    Average,
}

/// An aggregate a threshold watches.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// How records are combined.
    pub kind: Aggregation,
    /// `owner`, a field, or nothing (one group).
    pub group_by: Option<String>,
    /// Which records count.
    pub filters: Vec<crate::filter::Filter>,
}

impl Aggregate {
    /// Combines the values of `field` over `records`.
    pub fn value(&self, field: &str, records: &[crate::value::Record]) -> f64 {
        let values = records
            .iter()
            .filter_map(|r| r.fields.get(field).and_then(FieldValue::as_f64));
        match self.kind {
            Aggregation::Count => records.len() as f64,
            Aggregation::Sum => values.sum(),
            Aggregation::Average => {
                let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
                if n == 0 { 0.0 } else { sum / n as f64 }
            }
        }
    }
}

/// A checked trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// What it reacts to.
    pub kind: TriggerKind,
    /// How long after the event the execution runs.
    pub delay: Millis,
    /// A short description for logs (`record-updated opportunity [stage]`).
    pub label: String,
}

impl TriggerKind {
    /// The object type the trigger is about, if one.
    pub fn object(&self) -> Option<&str> {
        match self {
            TriggerKind::RecordCreated { object }
            | TriggerKind::RecordUpdated { object, .. }
            | TriggerKind::RecordDeleted { object }
            | TriggerKind::Threshold { object, .. }
            | TriggerKind::DateWithin { object, .. } => Some(object),
            TriggerKind::Schedule { scan, .. } => scan.as_deref(),
            TriggerKind::Event { .. } | TriggerKind::Signal { .. } => None,
        }
    }
}

/// Whether `value` lies in a threshold's region (above `above` and below `below`).
pub fn inside_threshold(
    above: Option<f64>,
    below: Option<f64>,
    value: Option<&FieldValue>,
) -> bool {
    let Some(v) = value.and_then(FieldValue::as_f64) else {
        return false;
    };
    above.is_none_or(|a| v > a) && below.is_none_or(|b| v < b)
}

impl TriggerSpec {
    /// Checks the trigger; errors name the problem.
    pub fn compile(&self, schema: &Schema) -> Result<Trigger, String> {
        let allowed: &[&str] = match self.on.as_str() {
            "record-created" | "record-deleted" => &["object", "delay"],
            "record-updated" => &["object", "fields", "delay"],
            "schedule" => &["every", "cron", "timezone", "object", "scan-limit"],
            "event" => &["name", "delay"],
            "signal" => &["topic", "delay"],
            "threshold" => &[
                "object",
                "field",
                "above",
                "below",
                "delay",
                "aggregate",
                "group-by",
                "where",
            ],
            "date-within" => &["object", "field", "within"],
            other => {
                return Err(format!(
                    "unknown trigger `{other}` (use record-created, record-updated, record-deleted, schedule, event, signal, threshold or date-within)"
                ));
            }
        };
        let set = [
            ("object", self.object.is_some()),
            ("fields", self.fields.is_some()),
            ("every", self.every.is_some()),
            ("cron", self.cron.is_some()),
            ("timezone", self.timezone.is_some()),
            ("scan-limit", self.scan_limit.is_some()),
            ("name", self.name.is_some()),
            ("topic", self.topic.is_some()),
            ("field", self.field.is_some()),
            ("above", self.above.is_some()),
            ("below", self.below.is_some()),
            ("within", self.within.is_some()),
            ("delay", self.delay.is_some()),
            ("aggregate", self.aggregate.is_some()),
            ("group-by", self.group_by.is_some()),
            ("where", self.filters.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|(k, on)| *on && !allowed.contains(k)) {
            return Err(format!("`{key}` does not apply to a `{}` trigger", self.on));
        }
        let need = |v: &Option<String>, key: &str| {
            v.clone()
                .ok_or_else(|| format!("a `{}` trigger needs `{key}`", self.on))
        };
        let object = |schema: &Schema| -> Result<String, String> {
            let o = need(&self.object, "object")?;
            schema.object(&o).map_err(|e| e.to_string())?;
            Ok(o)
        };
        let delay = self
            .delay
            .as_deref()
            .map(parse_duration)
            .transpose()?
            .unwrap_or(0);
        let kind = match self.on.as_str() {
            "record-created" => TriggerKind::RecordCreated {
                object: object(schema)?,
            },
            "record-deleted" => TriggerKind::RecordDeleted {
                object: object(schema)?,
            },
            "record-updated" => {
                let object = object(schema)?;
                let fields = self.fields.clone().unwrap_or_default();
                for f in &fields {
                    if f != "owner" {
                        schema.field(&object, f).map_err(|e| e.to_string())?;
                    }
                }
                TriggerKind::RecordUpdated { object, fields }
            }
            "schedule" => {
                let schedule = match (&self.every, &self.cron) {
                    (Some(every), None) => {
                        if self.timezone.is_some() {
                            return Err("`timezone` applies to `cron` schedules".into());
                        }
                        Schedule::Every(parse_duration(every)?)
                    }
                    (None, Some(expr)) => {
                        let cron = croner::Cron::from_str(expr)
                            .map_err(|e| format!("cron `{expr}`: {e}"))?;
                        let tz: chrono_tz::Tz = self
                            .timezone
                            .as_deref()
                            .unwrap_or("UTC")
                            .parse()
                            .map_err(|_| {
                            format!(
                                "unknown time zone `{}` (use an IANA name such as Europe/London)",
                                self.timezone.as_deref().unwrap_or_default()
                            )
                        })?;
                        Schedule::Cron(Box::new(cron), tz)
                    }
                    _ => {
                        return Err(
                            "a `schedule` trigger needs exactly one of `every` or `cron`".into(),
                        );
                    }
                };
                let scan = match &self.object {
                    Some(_) => Some(object(schema)?),
                    None => None,
                };
                TriggerKind::Schedule {
                    schedule,
                    scan,
                    scan_limit: self.scan_limit.unwrap_or(1000).clamp(1, 10_000),
                }
            }
            "event" => {
                let name = need(&self.name, "name")?;
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(format!(
                        "event name `{name}`: use letters, digits, `-`, `_` or `.`"
                    ));
                }
                TriggerKind::Event { name }
            }
            "signal" => TriggerKind::Signal {
                topic: need(&self.topic, "topic")?,
            },
            "threshold" => {
                let object = object(schema)?;
                if self.above.is_none() && self.below.is_none() {
                    return Err("a `threshold` trigger needs `above`, `below` or both".into());
                }
                let numeric = |field: &str| -> Result<(), String> {
                    let def = schema.field(&object, field).map_err(|e| e.to_string())?;
                    if matches!(
                        def.ty,
                        FieldType::Integer | FieldType::Number | FieldType::Timestamp
                    ) {
                        Ok(())
                    } else {
                        Err(format!(
                            "`{object}.{field}` is not a number; thresholds need one"
                        ))
                    }
                };
                let aggregate = match self.aggregate {
                    None => {
                        if self.group_by.is_some() || self.filters.is_some() {
                            return Err(
                                "`group-by` and `where` apply to aggregate thresholds".into()
                            );
                        }
                        numeric(
                            self.field
                                .as_deref()
                                .ok_or("a `threshold` trigger needs `field`")?,
                        )?;
                        None
                    }
                    Some(kind) => {
                        if kind != Aggregation::Count {
                            numeric(
                                self.field
                                    .as_deref()
                                    .ok_or("a sum or average needs `field`")?,
                            )?;
                        }
                        if let Some(g) = &self.group_by
                            && g != "owner"
                        {
                            schema.field(&object, g).map_err(|e| e.to_string())?;
                        }
                        let filters = self.filters.clone().unwrap_or_default();
                        for f in &filters {
                            schema.field(&object, &f.field).map_err(|e| e.to_string())?;
                        }
                        Some(Aggregate {
                            kind,
                            group_by: self.group_by.clone(),
                            filters,
                        })
                    }
                };
                TriggerKind::Threshold {
                    object,
                    field: self.field.clone().unwrap_or_default(),
                    above: self.above,
                    below: self.below,
                    aggregate,
                }
            }
            "date-within" => {
                let object = object(schema)?;
                let field = need(&self.field, "field")?;
                let def = schema.field(&object, &field).map_err(|e| e.to_string())?;
                if def.ty != FieldType::Timestamp {
                    return Err(format!("`{object}.{field}` is not a date"));
                }
                TriggerKind::DateWithin {
                    object,
                    field,
                    within: parse_duration(&need(&self.within, "within")?)?,
                }
            }
            other => return Err(format!("unknown trigger `{other}`")),
        };
        let mut label = self.on.clone();
        if let Some(o) = kind.object() {
            label.push(' ');
            label.push_str(o);
        }
        Ok(Trigger { kind, delay, label })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{DAY_MS, HOUR_MS, MINUTE_MS};

    fn compile(text: &str) -> Result<Trigger, String> {
        toml::from_str::<TriggerSpec>(text)
            .unwrap()
            .compile(&Schema::standard())
    }

    #[test]
    fn cron_schedules_follow_their_time_zone() {
        let t = compile("on = \"schedule\"\ncron = \"0 9 * * *\"\ntimezone = \"America/New_York\"")
            .unwrap();
        let TriggerKind::Schedule { schedule, .. } = t.kind else {
            panic!()
        };
        // 2026-01-01T00:00:00Z; 09:00 in New York (UTC-5) is 14:00 UTC.
        let start = 1_767_225_600_000;
        assert_eq!(schedule.next_after(start), Some(start + 14 * HOUR_MS));
        let every = compile("on = \"schedule\"\nevery = \"15m\"").unwrap();
        let TriggerKind::Schedule { schedule, .. } = every.kind else {
            panic!()
        };
        assert_eq!(schedule.next_after(0), Some(15 * MINUTE_MS));
    }

    #[test]
    fn triggers_are_checked_against_the_schema() {
        assert!(compile("on = \"threshold\"\nobject = \"opportunity\"\naggregate = \"sum\"\nfield = \"amount\"\ngroup-by = \"owner\"\nwhere = [{ field = \"status\", op = \"equals\", value = \"won\" }]\nabove = 100").is_ok());
        assert!(
            compile("on = \"threshold\"\nobject = \"opportunity\"\naggregate = \"sum\"\nabove = 1")
                .unwrap_err()
                .contains("needs `field`")
        );
        assert!(compile("on = \"threshold\"\nobject = \"opportunity\"\nfield = \"amount\"\ngroup-by = \"owner\"\nabove = 1").unwrap_err().contains("aggregate thresholds"));
        assert!(
            compile("on = \"record-created\"\nobject = \"lead\"\ndelay = \"2d\"")
                .is_ok_and(|t| t.delay == 2 * DAY_MS)
        );
        let err = |t: &str| compile(t).unwrap_err();
        assert!(err("on = \"record-created\"\nobject = \"widget\"").contains("unknown object"));
        assert!(
            err("on = \"record-updated\"\nobject = \"lead\"\nfields = [\"nope\"]")
                .contains("unknown field")
        );
        assert!(err("on = \"record-created\"").contains("needs `object`"));
        assert!(
            err("on = \"schedule\"\nevery = \"1h\"\ncron = \"* * * * *\"").contains("exactly one")
        );
        assert!(err("on = \"schedule\"\ncron = \"61 * * * *\"").contains("cron"));
        assert!(
            err("on = \"schedule\"\ncron = \"0 9 * * *\"\ntimezone = \"Mars/Olympus\"")
                .contains("time zone")
        );
        assert!(
            err("on = \"threshold\"\nobject = \"lead\"\nfield = \"status\"\nabove = 1")
                .contains("not a number")
        );
        assert!(err("on = \"date-within\"\nobject = \"account\"\nfield = \"renewal_date\"\nwithin = \"30d\"\ndelay = \"1h\"").contains("does not apply"));
        assert!(err("on = \"whenever\"").contains("unknown trigger"));
    }

    #[test]
    fn thresholds_have_an_inside() {
        assert!(inside_threshold(
            Some(10.0),
            None,
            Some(&FieldValue::Integer(11))
        ));
        assert!(!inside_threshold(
            Some(10.0),
            None,
            Some(&FieldValue::Integer(10))
        ));
        assert!(inside_threshold(
            None,
            Some(5.0),
            Some(&FieldValue::Number(4.0))
        ));
        assert!(!inside_threshold(Some(1.0), Some(5.0), None));
    }
}
