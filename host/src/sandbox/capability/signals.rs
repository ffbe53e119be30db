//! `roster:signals/signals`: signals to other workers, on granted topics only.

use serde_json::json;

use crate::sandbox::bindings::roster::signals::signals::Host;
use crate::sandbox::bindings::roster::types::types::{Error, Receipt};
use crate::sandbox::gate::{ActionKind, Call, EffectIds};
use crate::sandbox::payload::Payload;
use crate::sandbox::state::HostState;
use crate::store::Risk;
use crate::store::{Effect, SignalEntry, record_signal_in};

impl Host for HostState {
    fn emit(&mut self, topic: String, payload: String) -> wasmtime::Result<Result<Receipt, Error>> {
        self.gate
            .enter(Payload::default().text(&topic).text(&payload))?;
        let call = Call::new(
            "signals",
            "emit",
            ActionKind::Effect,
            format!("topic:{topic}"),
            json!({ "topic": topic, "payload_bytes": payload.len() }),
        );
        let Some(scope) = &self.worker.grant.capabilities.signals else {
            return Ok(Err(self
                .gate
                .deny(call, "capability `signals` is not granted")));
        };
        if !scope.may_emit(&topic) {
            let reason = format!("topic `{topic}` is outside the granted topics");
            return Ok(Err(self.gate.deny(call, reason)));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&payload) {
            let error = Error::InvalidInput(format!("the payload is not JSON: {e}"));
            return Ok(Err(self.gate.reject(call, error)));
        }
        let mut chain = self.escalated.chain.clone();
        chain.push(self.worker.plugin.clone());
        let effect = Effect::Signal {
            topic: topic.clone(),
            payload: payload.clone(),
            chain: chain.clone(),
        };
        let worker = self.worker.plugin.clone();
        let emit = move |tx: &_, ids: EffectIds<'_>| {
            let entry = SignalEntry {
                seq: 0,
                id: ids.action_id.to_string(),
                chain: chain.clone(),
                worker: worker.clone(),
                topic: topic.clone(),
                payload: payload.clone(),
            };
            let seq = record_signal_in(tx, &entry)?;
            Ok(json!({ "signal": entry.id, "seq": seq }))
        };
        let call = call.proposing(&effect);
        Ok(self
            .propose(call, effect, Risk::InternalWrite, emit, |_| None)?
            .receipt())
    }
}
