//! The rules worker: runs the chain of steps of one rule, taken from its installation's
//! `chain` setting (written by the host when a rule is deployed, after the host checked
//! it against the schema and computed its grant). The host has already matched the
//! rule's trigger and conditions; this worker only acts.
//!
//! Each step fills its merge fields from the triggering record, the event's payload,
//! earlier steps' outputs and the time, then makes one or two capability calls; every
//! call is checked against the grant the rule was given and recorded in the execution
//! log with its values, so the audit trail shows each step as it was taken.

use std::collections::BTreeMap;

use roster_rules::{
    Chain, ENROLLMENT, SequenceOp, Step, StepValue, Strategy, Template, TemplateError,
};
use roster_sdk::notify::{self, Channel};
use roster_sdk::records::{self, Comparison};
use roster_sdk::{
    ActionState, CrmRecord, Event, Field, Outcome, Receipt, Value, Worker, WorkerError, field, log,
    memory, signals,
};
use serde_json::{Map, Value as Json, json};

struct Rules;

/// The longest summary reported.
const MAX_SUMMARY: usize = 600;

fn invalid(reason: impl Into<String>) -> WorkerError {
    WorkerError::InvalidInput(reason.into())
}

/// The same error, its reason prefixed with where it happened.
fn at(place: &str, e: WorkerError) -> WorkerError {
    let reason = format!("{place}: {}", e.reason());
    match e {
        WorkerError::Denied(_) => WorkerError::Denied(reason),
        WorkerError::NotFound(_) => WorkerError::NotFound(reason),
        WorkerError::InvalidInput(_) => WorkerError::InvalidInput(reason),
        WorkerError::Unavailable(_) => WorkerError::Unavailable(reason),
        WorkerError::BudgetExceeded(_) => WorkerError::BudgetExceeded(reason),
        WorkerError::Other(_) => WorkerError::Other(reason),
    }
}

/// A record value as the templates see it.
fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Text(t) => Json::String(t.clone()),
        Value::Integer(n) => json!(n),
        Value::Number(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Timestamp(ms) => json!({ "timestamp": ms }),
        Value::TextList(items) => json!(items),
    }
}

fn record_json(record: &CrmRecord) -> Json {
    let mut map = Map::new();
    map.insert("id".into(), Json::String(record.id.clone()));
    map.insert(
        "owner".into(),
        record.owner.clone().map_or(Json::Null, Json::String),
    );
    for f in &record.fields {
        map.insert(f.name.clone(), to_json(&f.value));
    }
    Json::Object(map)
}

/// Fields with their values, for the log: `subject="Call Ada", due_date=1803..`.
fn shown(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| {
            let v = match &f.value {
                Value::Timestamp(ms) => roster_sdk::time::date(*ms),
                other => to_json(other).to_string(),
            };
            format!("{}={v}", f.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::RoundRobin => "round-robin",
        Strategy::Territory => "territory",
        Strategy::Capacity => "capacity",
        Strategy::Score => "score",
    }
}

/// One run of the chain.
struct Run<'a> {
    event: &'a Event,
    chain: &'a Chain,
    context: Json,
    done: Vec<String>,
}

impl Run<'_> {
    /// Fills a template. A field of the triggering record that is not set renders empty
    /// (the host checked every such field exists); anything else unknown is an error.
    fn render(&mut self, text: &str) -> Result<String, WorkerError> {
        let template = Template::parse(text).map_err(|e| invalid(e.to_string()))?;
        for (path, _) in template.fields() {
            self.related(path)?;
        }
        if let Some(object) = &self.chain.object {
            for (path, _) in template.fields() {
                if !(path[0] == *object || path[0] == "record") {
                    continue;
                }
                for root in [object.as_str(), "record"] {
                    let Some(Json::Object(r)) = self.context.get_mut(root) else {
                        continue;
                    };
                    match path.len() {
                        2 => {
                            r.entry(path[1].clone()).or_insert(Json::Null);
                        }
                        // A related record that is not there shows its fields empty.
                        3 => {
                            let related = r.entry(path[1].clone()).or_insert(Json::Null);
                            if !related.is_object() {
                                *related = json!({});
                            }
                            if let Json::Object(fields) = related {
                                fields.entry(path[2].clone()).or_insert(Json::Null);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        template
            .render(&self.context)
            .map_err(|e: TemplateError| invalid(e.to_string()))
    }

    /// Reads the related record a three-part path names (`opportunity.account.name`:
    /// the account the opportunity's `account_id` names) into the context, once. A link
    /// that is empty or names no record leaves it null.
    fn related(&mut self, path: &[String]) -> Result<(), WorkerError> {
        let Some(object) = self.chain.object.clone() else {
            return Ok(());
        };
        if path.len() != 3 || (path[0] != object && path[0] != "record") {
            return Ok(());
        }
        let relation = &path[1];
        let record = &self.context[object.as_str()];
        if record.get(relation).is_some_and(|r| !r.is_null()) || record.is_null() {
            return Ok(());
        }
        let link = record
            .get(format!("{relation}_id"))
            .and_then(Json::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        let found = match link {
            None => Json::Null,
            Some(id) => match records::get(relation, &id) {
                Ok(r) => record_json(&r),
                Err(WorkerError::NotFound(_)) => Json::Null,
                Err(e) => return Err(e),
            },
        };
        for root in [object.as_str(), "record"] {
            if let Some(Json::Object(r)) = self.context.get_mut(root) {
                r.insert(relation.clone(), found.clone());
            }
        }
        Ok(())
    }

    /// The value of a template that is one placeholder without formats, as it is (a
    /// number stays a number, a list a list, a point in time a timestamp).
    fn raw(&mut self, text: &str) -> Result<Option<Value>, WorkerError> {
        let template = Template::parse(text).map_err(|e| invalid(e.to_string()))?;
        let Some(path) = template.single() else {
            return Ok(None);
        };
        self.related(path)?;
        let found = roster_rules::template::lookup(&self.context, path).cloned();
        Ok(match found {
            None | Some(Json::Null) => {
                // Unknown paths are an error, as when rendering; a record field not set
                // is null.
                self.render(text)?;
                Some(Value::Null)
            }
            Some(Json::String(s)) => Some(Value::Text(s)),
            Some(Json::Bool(b)) => Some(Value::Boolean(b)),
            Some(Json::Number(n)) => Some(match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => Value::Number(n.as_f64().unwrap_or(0.0)),
            }),
            Some(Json::Array(items)) => Some(Value::TextList(
                items
                    .iter()
                    .map(|i| match i {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            )),
            Some(Json::Object(o)) => match o.get("timestamp").and_then(Json::as_i64) {
                Some(ms) => Some(Value::Timestamp(ms)),
                None => Some(Value::Text(Json::Object(o).to_string())),
            },
        })
    }

    fn value(&mut self, value: &StepValue) -> Result<Value, WorkerError> {
        Ok(match value {
            StepValue::Relative(r) => {
                let from = match &r.from {
                    None => self.event.occurred_at,
                    Some(t) => match self.raw(t)? {
                        Some(Value::Timestamp(ms)) => ms,
                        _ => return Err(invalid(format!("`{t}` is not a point in time"))),
                    },
                };
                Value::Timestamp(
                    from.checked_add(r.offset_ms())
                        .ok_or_else(|| invalid("the point in time is out of range"))?,
                )
            }
            StepValue::Text(t) => match self.raw(t)? {
                Some(v) => v,
                None => Value::Text(self.render(t)?),
            },
            StepValue::Integer(n) => Value::Integer(*n),
            StepValue::Number(n) => Value::Number(*n),
            StepValue::Boolean(b) => Value::Boolean(*b),
            StepValue::List(items) => Value::TextList(
                items
                    .iter()
                    .map(|i| self.render(i))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn fields(&mut self, given: &BTreeMap<String, StepValue>) -> Result<Vec<Field>, WorkerError> {
        given
            .iter()
            .map(|(name, v)| Ok(field(name.clone(), self.value(v)?)))
            .collect()
    }

    /// The triggering record, or why the step needs one.
    fn record(&self) -> Result<&CrmRecord, WorkerError> {
        self.event.require_record()
    }

    fn note(&mut self, what: String, receipt: &Receipt) {
        let state = match receipt.state {
            ActionState::Performed => "",
            ActionState::HeldForApproval => " (held for approval)",
            ActionState::DryRun => " (dry run)",
        };
        self.done.push(format!("{what}{state}"));
    }

    fn step(&mut self, step: &Step) -> Result<Json, WorkerError> {
        match step {
            Step::Create { object, fields, .. } => {
                let fields = self.fields(fields)?;
                let created = records::create(object, &fields)?;
                log::info(&format!(
                    "created {object}/{}: {}",
                    created.id,
                    shown(&fields)
                ));
                self.note(format!("created {object}/{}", created.id), &created.receipt);
                Ok(json!({ "id": created.id }))
            }
            Step::Update {
                record,
                set,
                increment,
                append,
                clear,
                ..
            } => {
                let (object, id) = match record {
                    Some(r) => {
                        let r = self.render(r)?;
                        let (o, i) = r
                            .split_once('/')
                            .ok_or_else(|| invalid(format!("record `{r}` is not `object/id`")))?;
                        (o.to_string(), i.to_string())
                    }
                    None => {
                        let r = self.record()?;
                        (r.object.clone(), r.id.clone())
                    }
                };
                let mut fields = self.fields(set)?;
                if !increment.is_empty() || !append.is_empty() {
                    let current = records::get(&object, &id)?;
                    for (name, by) in increment {
                        let value = match current.get(name) {
                            Some(Value::Integer(n)) if by.fract() == 0.0 => {
                                Value::Integer(n.saturating_add(*by as i64))
                            }
                            Some(v) => Value::Number(v.as_f64().unwrap_or(0.0) + by),
                            None if by.fract() == 0.0 => Value::Integer(*by as i64),
                            None => Value::Number(*by),
                        };
                        fields.push(field(name.clone(), value));
                    }
                    for (name, option) in append {
                        let option = self.render(option)?;
                        let mut items = match current.get(name) {
                            Some(Value::TextList(items)) => items.clone(),
                            _ => Vec::new(),
                        };
                        if !items.contains(&option) {
                            items.push(option);
                        }
                        fields.push(field(name.clone(), Value::TextList(items)));
                    }
                }
                for name in clear {
                    fields.push(field(name.clone(), Value::Null));
                }
                let receipt = records::update(&object, &id, &fields)?;
                log::info(&format!("updated {object}/{id}: {}", shown(&fields)));
                let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                self.note(
                    format!("updated {object}/{id} ({})", names.join(", ")),
                    &receipt,
                );
                Ok(json!({ "updated": format!("{object}/{id}") }))
            }
            Step::Notify {
                channel,
                to,
                subject,
                message,
                ..
            } => {
                let channel_value = match channel.as_str() {
                    "in-app" => Channel::InApp,
                    "email" => Channel::Email,
                    "sms" => Channel::Sms,
                    "slack" => Channel::Slack,
                    "teams" => Channel::Teams,
                    other => return Err(invalid(format!("`{other}` is not a channel"))),
                };
                // A recipient that is one list-valued merge field is each of its items.
                let mut recipients: Vec<String> = Vec::new();
                for r in to {
                    match self.raw(r)? {
                        Some(Value::TextList(items)) => recipients.extend(items),
                        Some(Value::Null) => {}
                        // A recipient that renders as a comma-separated list is each item.
                        _ => recipients
                            .extend(self.render(r)?.split(',').map(|i| i.trim().to_string())),
                    }
                }
                recipients.retain(|r| !r.trim().is_empty());
                if recipients.is_empty() {
                    // The merge fields named no one (a record without an owner).
                    self.done.push(format!("no one to send {channel} to"));
                    return Ok(json!({ "sent": "" }));
                }
                let subject = subject.as_deref().map(|s| self.render(s)).transpose()?;
                let body = self.render(message)?;
                log::info(&format!(
                    "{channel} to {}: {}{body}",
                    recipients.join(", "),
                    subject
                        .as_deref()
                        .map(|s| format!("[{s}] "))
                        .unwrap_or_default()
                ));
                let receipt = notify::send(&notify::Message {
                    channel: channel_value,
                    recipients: recipients.clone(),
                    subject,
                    body,
                })?;
                let sent = recipients.join(", ");
                self.note(format!("sent {channel} to {sent}"), &receipt);
                Ok(json!({ "sent": sent }))
            }
            Step::Assign {
                strategy,
                to,
                field: read,
                territories,
                capacity,
                threshold,
                open,
                ..
            } => {
                let record = self.record()?.clone();
                let owner = match strategy {
                    Strategy::RoundRobin => {
                        let key = format!("round-robin/{}", self.chain.rule);
                        let turn: u64 = memory::get_text(&key)?
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(0);
                        let len = to.len().max(1) as u64;
                        let chosen = to
                            .get((turn % len) as usize)
                            .cloned()
                            .ok_or_else(|| invalid("`to` names no one"))?;
                        memory::set_text(&key, &(turn.wrapping_add(1) % len).to_string())?;
                        chosen
                    }
                    Strategy::Territory => {
                        let name = read.as_deref().unwrap_or_default();
                        let value = record.get(name).map(|v| match v {
                            Value::Text(t) => t.clone(),
                            other => to_json(other).to_string(),
                        });
                        let found = value.as_ref().and_then(|v| {
                            territories
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(v))
                                .map(|(_, p)| p.clone())
                        });
                        match (found, to.first()) {
                            (Some(p), _) => p,
                            (None, Some(fallback)) => fallback.clone(),
                            (None, None) => {
                                return Err(invalid(format!(
                                    "no territory for {name} `{}` and no one in `to` to fall back on",
                                    value.unwrap_or_default()
                                )));
                            }
                        }
                    }
                    Strategy::Score => {
                        let score = read.as_deref().and_then(|f| record.number(f));
                        let high = score.is_some_and(|s| s >= threshold.unwrap_or(f64::MAX));
                        to.get(if high { 0 } else { 1 })
                            .cloned()
                            .ok_or_else(|| invalid("`to` needs two principals"))?
                    }
                    Strategy::Capacity => {
                        let filters = open
                            .iter()
                            .map(|o| {
                                records::filter(&o.field, Comparison::Equals, o.value.as_str())
                            })
                            .collect();
                        let held = records::find(&records::query(&record.object, filters, 1000))?;
                        let limit = u64::from(capacity.unwrap_or(1));
                        let load = |p: &String| {
                            held.iter()
                                .filter(|r| r.id != record.id && r.owner.as_ref() == Some(p))
                                .count() as u64
                        };
                        to.iter()
                            .map(|p| (load(p), p))
                            .filter(|(n, _)| *n < limit)
                            .min_by_key(|(n, _)| *n)
                            .map(|(_, p)| p.clone())
                            .ok_or_else(|| {
                                invalid(format!(
                                    "everyone in `to` already holds {limit} open records"
                                ))
                            })?
                    }
                };
                let receipt = records::update(
                    &record.object,
                    &record.id,
                    &[field("owner", owner.as_str())],
                )?;
                for root in [record.object.as_str(), "record"] {
                    if let Some(Json::Object(r)) = self.context.get_mut(root) {
                        r.insert("owner".into(), Json::String(owner.clone()));
                    }
                }
                let what = format!("assigned {}/{} to {owner}", record.object, record.id);
                log::info(&format!("{what} ({})", strategy_name(*strategy)));
                self.note(what, &receipt);
                Ok(json!({ "owner": owner }))
            }
            Step::LogActivity { subject, kind, .. } => {
                let record = self.record()?;
                let related = format!("{}/{}", record.object, record.id);
                let mut fields = vec![
                    field("subject", self.render(subject)?),
                    field("related_to", related.as_str()),
                ];
                if let Some(kind) = kind {
                    fields.push(field("type", kind.as_str()));
                }
                let created = records::create("activity", &fields)?;
                log::info(&format!(
                    "logged activity/{}: {}",
                    created.id,
                    shown(&fields)
                ));
                self.note(
                    format!("logged activity/{} on {related}", created.id),
                    &created.receipt,
                );
                Ok(json!({ "id": created.id }))
            }
            Step::Sequence { op, sequence, .. } => {
                let record = self.record()?;
                let key = format!("{}/{}", record.object, record.id);
                let now = Value::Timestamp(self.event.occurred_at);
                let active = records::find(&records::query(
                    ENROLLMENT,
                    vec![
                        records::filter("sequence", Comparison::Equals, sequence.as_str()),
                        records::filter("record", Comparison::Equals, key.as_str()),
                        records::filter("status", Comparison::Equals, "active"),
                    ],
                    1,
                ))?
                .into_iter()
                .next();
                match (op, active) {
                    (SequenceOp::Add, Some(e)) => {
                        self.done
                            .push(format!("{key} is already in sequence {sequence}"));
                        Ok(json!({ "id": e.id }))
                    }
                    (SequenceOp::Add, None) => {
                        let created = records::create(
                            ENROLLMENT,
                            &[
                                field("sequence", sequence.as_str()),
                                field("record", key.as_str()),
                                field("step", 1_i64),
                                field("status", "active"),
                                field("enrolled_at", now.clone()),
                                field("advanced_at", now),
                            ],
                        )?;
                        self.note(
                            format!("enrolled {key} in sequence {sequence}"),
                            &created.receipt,
                        );
                        Ok(json!({ "id": created.id }))
                    }
                    (SequenceOp::Remove | SequenceOp::Advance, None) => {
                        self.done
                            .push(format!("{key} is not in sequence {sequence}"));
                        Ok(json!({ "id": "" }))
                    }
                    (SequenceOp::Remove, Some(e)) => {
                        let receipt = records::update(
                            ENROLLMENT,
                            &e.id,
                            &[field("status", "removed"), field("advanced_at", now)],
                        )?;
                        self.note(format!("removed {key} from sequence {sequence}"), &receipt);
                        Ok(json!({ "id": e.id }))
                    }
                    (SequenceOp::Advance, Some(e)) => {
                        let step = match e.get("step") {
                            Some(Value::Integer(n)) => n.saturating_add(1),
                            _ => 2,
                        };
                        let receipt = records::update(
                            ENROLLMENT,
                            &e.id,
                            &[field("step", step), field("advanced_at", now)],
                        )?;
                        self.note(
                            format!("advanced {key} to step {step} of sequence {sequence}"),
                            &receipt,
                        );
                        Ok(json!({ "id": e.id }))
                    }
                }
            }
            Step::RequestApproval { reason, .. } => {
                // The host holds the actions of the steps after this one (the rule's
                // review rules); the chain goes on with held receipts.
                log::info(&format!("approval requested: {reason}"));
                self.done.push(format!("approval requested ({reason})"));
                Ok(json!({ "requested": true }))
            }
            Step::Emit { topic, payload, .. } => {
                let mut body = Map::new();
                for (key, value) in payload {
                    let v = match self.value(value)? {
                        Value::Timestamp(ms) => json!(ms),
                        other => to_json(&other),
                    };
                    body.insert(key.clone(), v);
                }
                let payload = Json::Object(body).to_string();
                log::info(&format!("emitted {topic}: {payload}"));
                let receipt = signals::emit(topic, &payload)?;
                self.note(format!("emitted {topic}"), &receipt);
                Ok(json!({ "topic": topic }))
            }
        }
    }
}

impl Worker for Rules {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let text = event
            .setting_text("chain")
            .ok_or_else(|| invalid("the installation has no `chain` setting; deploy a rule"))?;
        let chain: Chain = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("the `chain` setting is not a rule's chain: {e}")))?;
        let mut context = json!({
            "now": { "timestamp": event.occurred_at },
            "steps": {},
        });
        if let Some(record) = event.record() {
            let r = record_json(record);
            context[record.object.as_str()] = r.clone();
            context["record"] = r;
        }
        if let Some(payload) = event.payload.as_deref() {
            context["payload"] = serde_json::from_str(payload).unwrap_or(Json::Null);
        }
        if !event.changes().is_empty() {
            let changes: Map<String, Json> = event
                .changes()
                .iter()
                .map(|c| {
                    (
                        c.field.clone(),
                        json!({ "old": to_json(&c.old), "new": to_json(&c.new) }),
                    )
                })
                .collect();
            context["changes"] = Json::Object(changes);
        }
        // The host evaluated each step's own condition: `when` in the settings.
        let when: Map<String, Json> = serde_json::from_str::<Json>(&event.settings)
            .ok()
            .and_then(|s| s.get("when").and_then(Json::as_object).cloned())
            .unwrap_or_default();
        let mut run = Run {
            event: &event,
            chain: &chain,
            context,
            done: Vec::new(),
        };
        for (i, step) in chain.steps.iter().enumerate() {
            let place = step.place(i + 1);
            if step.when().is_some() {
                match when.get(&(i + 1).to_string()) {
                    Some(Json::Bool(true)) => {}
                    Some(_) => continue,
                    None => {
                        return Err(invalid(format!(
                            "{place}: the host did not evaluate its condition"
                        )));
                    }
                }
            }
            let output = run.step(step).map_err(|e| at(&place, e))?;
            if let (Some(id), Json::Object(steps)) = (step.id(), &mut run.context["steps"]) {
                steps.insert(id.to_string(), output);
            }
        }
        let mut summary = format!("rule {}: {}", chain.rule, run.done.join("; "));
        if summary.len() > MAX_SUMMARY {
            let mut cut = MAX_SUMMARY;
            while !summary.is_char_boundary(cut) {
                cut -= 1;
            }
            summary.truncate(cut);
            summary.push('…');
        }
        Ok(Outcome::success(summary))
    }
}

roster_sdk::export!(Rules);
