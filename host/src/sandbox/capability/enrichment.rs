//! `roster:enrichment/lookup`: the granted providers only, within each provider's rate
//! limit and the organisation's monthly credit budget (see [`crate::enrichment`]). The
//! gate records the provider, the key and the fields found. A dry run looks nothing up: it
//! would spend credits.

use serde_json::json;

use crate::enrichment::LookupError;
use crate::sandbox::bindings::roster::enrichment::lookup::{Enrichment, Host};
use crate::sandbox::bindings::roster::types::types::{Error, Field};
use crate::sandbox::gate::{ActionKind, Call, Mode};
use crate::sandbox::payload::Payload;
use crate::sandbox::state::HostState;

impl Host for HostState {
    fn lookup(
        &mut self,
        provider: String,
        key: String,
    ) -> wasmtime::Result<Result<Enrichment, Error>> {
        self.gate
            .enter(Payload::default().text(&provider).text(&key))?;
        let call = Call::new(
            "enrichment",
            "lookup",
            ActionKind::Read,
            format!("provider:{provider}"),
            json!({ "provider": provider, "key": key }),
        );
        let Some(scope) = &self.worker.grant.capabilities.enrichment else {
            return Ok(Err(self
                .gate
                .deny(call, "capability `enrichment` is not granted")));
        };
        if !scope.providers.contains(&provider) {
            let reason = format!("provider `{provider}` is not granted");
            return Ok(Err(self.gate.deny(call, reason)));
        }
        if self.gate.mode() == Mode::DryRun {
            let error =
                Error::Unavailable("a dry run looks nothing up (it would spend credits)".into());
            return Ok(Err(self.gate.reject(call, error)));
        }
        let answer = self.worker.services.enrichment.lookup(
            &provider,
            &key,
            self.deadline,
            Some(&self.worker.halt),
        );
        Ok(self.gate.read(call, || {
            let found = answer.map_err(|e| match e {
                LookupError::Unknown(r) | LookupError::Unavailable(r) => Error::Unavailable(r),
                LookupError::Invalid(r) => Error::InvalidInput(r),
                LookupError::NotFound(r) => Error::NotFound(r),
                LookupError::Budget(r) => Error::BudgetExceeded(r),
            })?;
            let names: Vec<&str> = found.fields.iter().map(|(n, _)| n.as_str()).collect();
            let output = json!({ "fields": names, "credits_left": found.credits_left });
            let fields = found
                .fields
                .into_iter()
                .map(|(name, value)| Field {
                    name,
                    value: super::records::to_wit(&value),
                })
                .collect();
            Ok((
                Enrichment {
                    provider: provider.clone(),
                    fields,
                    credits_left: found.credits_left,
                },
                output,
            ))
        }))
    }
}
