//! Offline models, the predictions workers made, and what reviewers said about them.
//!
//! A model is kept per plugin and model name. Every prediction made in a live execution is
//! recorded under the plugin, the event and its position in the execution (so a retry of
//! the same event overwrites rather than adds). When a person decides on a held action of
//! that event, the predictions whose label the action carries learn from the decision in
//! the decision's own transaction (`learn_from_decision_in`): an approval confirms the
//! label, an edit that replaces it with another of the prediction's labels corrects it, a
//! rejection (or an edit that drops the label) removes its evidence. Each prediction learns
//! from one decision only.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{COUNTERS, Store, StoreError, decode, encode};
use crate::classifier::{Feedback, Model, OFFLINE};

pub(crate) const MODELS: TableDefinition<&str, &[u8]> = TableDefinition::new("models");
pub(crate) const PREDICTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("predictions");

/// The longest text kept with a prediction (the rest is not needed to learn from it).
const KEPT_TEXT: usize = 4096;

fn model_key(plugin: &str, model: &str) -> String {
    format!("{plugin}\u{1f}{model}")
}

fn prediction_prefix(plugin: &str, event_id: &str) -> String {
    format!("{plugin}\u{1f}{event_id}\u{1f}")
}

/// One recorded prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    /// `prd-` and a digest of the plugin, event and position.
    pub id: String,
    /// The plugin that asked.
    pub plugin: String,
    /// The model.
    pub model: String,
    /// The provider that answered.
    pub provider: String,
    /// The event it was made for.
    pub event_id: String,
    /// Its position among the event's predictions (from 0).
    pub n: u32,
    /// The text classified (its first 4 KiB).
    pub text: String,
    /// The labels it chose among.
    pub labels: Vec<String>,
    /// The label predicted.
    pub label: String,
    /// Its confidence.
    pub confidence: f64,
    /// When.
    pub at: i64,
    /// What a reviewer said, once one did.
    #[serde(default)]
    pub feedback: Option<Feedback>,
    /// The held action whose decision it learnt from.
    #[serde(default)]
    pub approval: Option<String>,
}

impl PredictionRecord {
    /// The id of the `n`th prediction for `event_id` by `plugin`.
    pub fn id_for(plugin: &str, event_id: &str, n: u32) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{plugin}\u{1f}{event_id}\u{1f}{n}"));
        format!("prd-{}", hex::encode(&digest[..12]))
    }
}

/// A model as `roster models` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ModelSummary {
    /// The plugin it belongs to.
    pub plugin: String,
    /// Its name.
    pub model: String,
    /// The labels it has examples of.
    pub labels: Vec<String>,
    /// How many reviewed examples it learnt from.
    pub reviewed: usize,
    /// Its calibration temperature.
    pub temperature: f64,
    /// Predictions recorded, and how many of them reviewers decided on.
    pub predictions: usize,
    /// Of the decided ones, how many were approved as predicted.
    pub confirmed: usize,
}

fn truncated(text: &str) -> String {
    if text.len() <= KEPT_TEXT {
        return text.to_string();
    }
    let mut end = KEPT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn load_model_in(tx: &WriteTransaction, key: &str) -> Result<Model, StoreError> {
    let table = tx.open_table(MODELS)?;
    let model = match table.get(key)? {
        Some(v) => decode(key, v.value())?,
        None => Model::new(),
    };
    Ok(model)
}

fn save_model_in(tx: &WriteTransaction, key: &str, model: &Model) -> Result<(), StoreError> {
    tx.open_table(MODELS)?
        .insert(key, encode(model).as_slice())?;
    Ok(())
}

impl Store {
    /// `plugin`'s offline model of that name, if it has learnt anything.
    pub fn model(&self, plugin: &str, model: &str) -> Result<Option<Model>, StoreError> {
        let key = model_key(plugin, model);
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MODELS)?;
        let Some(v) = table.get(key.as_str())? else {
            return Ok(None);
        };
        decode(&key, v.value()).map(Some)
    }

    /// Teaches `plugin`'s offline `model` one example.
    pub fn teach(
        &self,
        plugin: &str,
        model: &str,
        text: &str,
        label: &str,
    ) -> Result<(), StoreError> {
        let key = model_key(plugin, model);
        let (text, label) = (text.to_string(), label.to_string());
        self.write(move |tx| {
            let mut m = load_model_in(tx, &key)?;
            m.train(&text, &label, 1.0);
            save_model_in(tx, &key, &m)
        })
    }

    /// Records a prediction (replacing the one a retry of the same event made).
    pub fn record_prediction(&self, mut record: PredictionRecord) -> Result<(), StoreError> {
        record.text = truncated(&record.text);
        let key = format!(
            "{}{:08}",
            prediction_prefix(&record.plugin, &record.event_id),
            record.n
        );
        self.write(move |tx| {
            tx.open_table(PREDICTIONS)?
                .insert(key.as_str(), encode(&record).as_slice())?;
            Ok(())
        })
    }

    /// The predictions `plugin` made (every plugin's when `None`), oldest event first.
    pub fn predictions(&self, plugin: Option<&str>) -> Result<Vec<PredictionRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PREDICTIONS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let record: PredictionRecord = decode(k.value(), v.value())?;
            if plugin.is_none_or(|p| p == record.plugin) {
                out.push(record);
            }
        }
        out.sort_by_key(|r| (r.at, r.n));
        Ok(out)
    }

    /// Every offline model with its figures.
    pub fn models(&self) -> Result<Vec<ModelSummary>, StoreError> {
        let predictions = self.predictions(None)?;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MODELS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let model: Model = decode(k.value(), v.value())?;
            let (plugin, name) = k.value().split_once('\u{1f}').unwrap_or_default();
            let mine: Vec<&PredictionRecord> = predictions
                .iter()
                .filter(|p| p.plugin == plugin && p.model == name)
                .collect();
            out.push(ModelSummary {
                plugin: plugin.to_string(),
                model: name.to_string(),
                labels: model.labels(),
                reviewed: model.reviewed(),
                temperature: model.temperature(),
                predictions: mine.len(),
                confirmed: mine
                    .iter()
                    .filter(|p| p.feedback == Some(Feedback::Approved))
                    .count(),
            });
        }
        Ok(out)
    }

    /// Counts one inference call of `plugin` on `day` (days since the Unix epoch) against
    /// `limit`; `false` (and nothing counted) when the day's budget is spent.
    pub fn take_inference_call(
        &self,
        plugin: &str,
        day: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let name = format!("inference-calls\u{1f}{plugin}\u{1f}{day}");
        self.write(move |tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            let used = counters.get(name.as_str())?.map_or(0, |v| v.value());
            if used >= u64::from(limit) {
                return Ok(false);
            }
            counters.insert(name.as_str(), used + 1)?;
            Ok(true)
        })
    }
}

/// Lets the predictions of a held action's event learn from a person's decision on it, in
/// the decision's transaction; returns how many learnt.
/// `judge` says what the decision means for a prediction of a label among labels (`None`:
/// nothing).
pub(crate) fn learn_from_decision_in(
    tx: &WriteTransaction,
    plugin: &str,
    event_id: &str,
    approval_id: &str,
    judge: impl Fn(&str, &[String]) -> Option<Feedback>,
) -> Result<usize, StoreError> {
    let prefix = prediction_prefix(plugin, event_id);
    let mut pending = Vec::new();
    {
        let table = tx.open_table(PREDICTIONS)?;
        for entry in table.range(prefix.as_str()..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            let record: PredictionRecord = decode(k.value(), v.value())?;
            if record.feedback.is_none() {
                pending.push((k.value().to_string(), record));
            }
        }
    }
    let mut learnt = 0;
    for (key, mut record) in pending {
        let Some(feedback) = judge(&record.label, &record.labels) else {
            continue;
        };
        if record.provider == OFFLINE {
            let mk = model_key(&record.plugin, &record.model);
            let mut model = load_model_in(tx, &mk)?;
            model.learn(&record.text, &record.label, &feedback);
            save_model_in(tx, &mk, &model)?;
        }
        record.feedback = Some(feedback);
        record.approval = Some(approval_id.to_string());
        tx.open_table(PREDICTIONS)?
            .insert(key.as_str(), encode(&record).as_slice())?;
        learnt += 1;
    }
    Ok(learnt)
}
