//! `roster:inference/inference`: granted models on the granted provider, within the daily
//! call budget.
//!
//! Every call is recorded by the gate with the model, the provider and (for
//! classifications) the label and confidence, never the text. A classification in a live
//! execution is also recorded as a prediction, so that reviewers' decisions on the
//! execution's held actions teach the model (see [`crate::store::models`]). A dry run
//! (staging, a shadow version, fixture tests) classifies but neither records predictions,
//! teaches models nor spends the budget.

use serde_json::json;

use crate::inference::{Bounds, InferenceError};
use crate::sandbox::bindings::roster::inference::inference::{Host, LabelScore, Prediction};
use crate::sandbox::bindings::roster::types::types::Error;
use crate::sandbox::gate::{ActionKind, Call, Mode};
use crate::sandbox::payload::Payload;
use crate::sandbox::state::HostState;
use crate::scope::InferenceScope;
use crate::store::PredictionRecord;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn wit_error(e: InferenceError) -> Error {
    match e {
        InferenceError::Invalid(r) => Error::InvalidInput(r),
        InferenceError::Unsupported(r) | InferenceError::Unavailable(r) => Error::Unavailable(r),
    }
}

impl HostState {
    /// Checks the grant, the model and the day's budget; on success returns the scope and
    /// the provider the call runs on.
    fn inference_call(
        &mut self,
        call: Call,
        model: &str,
    ) -> Result<(InferenceScope, String, Call), Error> {
        let Some(scope) = self.worker.grant.capabilities.inference.clone() else {
            return Err(self
                .gate
                .deny(call, "capability `inference` is not granted"));
        };
        if !scope.models.iter().any(|m| m == model) {
            let reason = format!("model `{model}` is not granted");
            return Err(self.gate.deny(call, reason));
        }
        let inference = &self.worker.services.inference;
        let provider = inference
            .provider_for(scope.provider.as_deref())
            .to_string();
        if !inference.config().knows(&provider) {
            let error = Error::Unavailable(format!(
                "provider `{provider}` is not configured on this host"
            ));
            return Err(self.gate.reject(call, error));
        }
        if self.gate.mode() == Mode::Live {
            let store = &self.worker.services.store;
            let day = store.clock().now_ms().div_euclid(DAY_MS);
            match store.take_inference_call(&self.worker.plugin, day, scope.calls_per_day) {
                Ok(true) => {}
                Ok(false) => {
                    let error = Error::BudgetExceeded(format!(
                        "the {} inference calls a day granted are spent",
                        scope.calls_per_day
                    ));
                    return Err(self.gate.reject(call, error));
                }
                Err(e) => {
                    return Err(self.gate.reject(call, Error::Unavailable(e.to_string())));
                }
            }
        }
        Ok((scope, provider, call))
    }

    fn bounds(&self) -> Bounds<'_> {
        Bounds {
            deadline: self.deadline,
            halt: Some(&self.worker.halt),
        }
    }
}

impl Host for HostState {
    fn classify(
        &mut self,
        model: String,
        text: String,
        labels: Vec<String>,
    ) -> wasmtime::Result<Result<Prediction, Error>> {
        self.gate
            .enter(Payload::default().text(&model).text(&text).texts(&labels))?;
        let call = Call::new(
            "inference",
            "classify",
            ActionKind::Read,
            format!("model:{model}"),
            json!({ "model": model, "labels": labels, "text_bytes": text.len() }),
        );
        let (_, provider, call) = wit_try!(self.inference_call(call, &model));
        let answer = self.worker.services.inference.classify(
            &provider,
            &self.worker.plugin,
            &model,
            &text,
            &labels,
            self.bounds(),
        );
        let n = self.predictions;
        let id = PredictionRecord::id_for(&self.worker.plugin, &self.event_id, n);
        let live = self.gate.mode() == Mode::Live;
        let store = self.worker.services.store.clone();
        let mut record = PredictionRecord {
            id: id.clone(),
            plugin: self.worker.plugin.clone(),
            model: model.clone(),
            provider: provider.clone(),
            event_id: self.event_id.clone(),
            n,
            text,
            labels,
            label: String::new(),
            confidence: 0.0,
            at: store.clock().now_ms(),
            feedback: None,
            approval: None,
        };
        let result = self.gate.read(call, || {
            let p = answer.map_err(wit_error)?;
            if live {
                record.label = p.label.clone();
                record.confidence = p.confidence;
                store
                    .record_prediction(record)
                    .map_err(|e| Error::Unavailable(e.to_string()))?;
            }
            let output = json!({
                "prediction": id,
                "provider": provider,
                "label": p.label,
                "confidence": p.confidence,
            });
            let prediction = Prediction {
                id: id.clone(),
                label: p.label,
                confidence: p.confidence as f32,
                scores: p
                    .scores
                    .into_iter()
                    .map(|(label, score)| LabelScore {
                        label,
                        score: score as f32,
                    })
                    .collect(),
                provider: provider.clone(),
            };
            Ok((prediction, output))
        });
        if result.is_ok() {
            self.predictions += 1;
        }
        Ok(result)
    }

    fn learn(
        &mut self,
        model: String,
        text: String,
        label: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.gate
            .enter(Payload::default().text(&model).text(&text).text(&label))?;
        let call = Call::new(
            "inference",
            "learn",
            ActionKind::State,
            format!("model:{model}"),
            json!({ "model": model, "label": label, "text_bytes": text.len() }),
        );
        let (scope, provider, call) = wit_try!(self.inference_call(call, &model));
        if !scope.learn {
            return Ok(Err(self
                .gate
                .deny(call, "teaching models is not granted (`learn`)")));
        }
        if self.gate.mode() == Mode::DryRun {
            return Ok(self
                .gate
                .read(call, || Ok(((), json!({ "dry-run": true })))));
        }
        let inference = self.worker.services.inference.clone();
        let plugin = self.worker.plugin.clone();
        Ok(self.gate.read(call, || {
            inference
                .learn(&provider, &plugin, &model, &text, &label)
                .map_err(wit_error)?;
            Ok(((), json!({ "learnt": label })))
        }))
    }

    fn draft(
        &mut self,
        model: String,
        prompt: String,
        max_words: u32,
    ) -> wasmtime::Result<Result<String, Error>> {
        self.gate
            .enter(Payload::default().text(&model).text(&prompt))?;
        let call = Call::new(
            "inference",
            "draft",
            ActionKind::Read,
            format!("model:{model}"),
            json!({ "model": model, "prompt_bytes": prompt.len(), "max_words": max_words }),
        );
        let (_, provider, call) = wit_try!(self.inference_call(call, &model));
        let answer =
            self.worker
                .services
                .inference
                .draft(&provider, &prompt, max_words, self.bounds());
        Ok(self.gate.read(call, || {
            let text = answer.map_err(wit_error)?;
            let output = json!({ "provider": provider, "words": text.split_whitespace().count() });
            Ok((text, output))
        }))
    }
}
