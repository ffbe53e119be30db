//! `roster:notify/notify`: notifications on granted channels to granted recipients.
//!
//! Accepted notifications go to the outbox in the embedded store, which is the in-app
//! notification centre and the queue that channel connectors deliver from.

use serde_json::json;

use crate::sandbox::bindings::roster::notify::notify::{Channel as WitChannel, Host, Message};
use crate::sandbox::bindings::roster::types::types::{Error, Receipt};
use crate::sandbox::gate::{ActionKind, Call, EffectIds};
use crate::sandbox::payload::Payload;
use crate::sandbox::state::HostState;
use crate::scope::Channel;
use crate::store::Risk;
use crate::store::{Effect, OutboxEntry, enqueue_notification_in};

/// The largest notification body accepted, in bytes.
const MAX_BODY: usize = 64 * 1024;

fn channel(c: WitChannel) -> Channel {
    match c {
        WitChannel::Email => Channel::Email,
        WitChannel::Sms => Channel::Sms,
        WitChannel::Slack => Channel::Slack,
        WitChannel::Teams => Channel::Teams,
        WitChannel::InApp => Channel::InApp,
    }
}

impl Host for HostState {
    fn send(&mut self, message: Message) -> wasmtime::Result<Result<Receipt, Error>> {
        self.gate.enter(
            Payload::default()
                .text(&message.body)
                .text(message.subject.as_deref().unwrap_or_default())
                .texts(&message.recipients),
        )?;
        let channel = channel(message.channel);
        let call = Call::new(
            "notify",
            "send",
            ActionKind::Effect,
            format!("{}:{}", channel.as_str(), message.recipients.join(",")),
            json!({
                "channel": channel.as_str(),
                "recipients": message.recipients,
                "subject": message.subject,
                "body_bytes": message.body.len(),
            }),
        );
        let Some(scope) = &self.worker.grant.capabilities.notify else {
            return Ok(Err(self
                .gate
                .deny(call, "capability `notify` is not granted")));
        };
        if !scope.channels.contains(&channel) {
            let reason = format!("channel `{}` is not granted", channel.as_str());
            return Ok(Err(self.gate.deny(call, reason)));
        }
        if message.recipients.is_empty() {
            return Ok(Err(self
                .gate
                .reject(call, Error::InvalidInput("no recipients".into()))));
        }
        if message.recipients.len() > scope.max_recipients as usize {
            let reason = format!(
                "{} recipients, more than the granted {}",
                message.recipients.len(),
                scope.max_recipients
            );
            return Ok(Err(self.gate.deny(call, reason)));
        }
        let outside: Vec<&str> = message
            .recipients
            .iter()
            .filter(|r| !scope.may_address(r))
            .map(String::as_str)
            .collect();
        if !outside.is_empty() {
            let reason = format!(
                "recipients outside the granted patterns: {}",
                outside.join(", ")
            );
            return Ok(Err(self.gate.deny(call, reason)));
        }
        if message.body.len() > MAX_BODY {
            let error = Error::InvalidInput(format!("the body exceeds {MAX_BODY} bytes"));
            return Ok(Err(self.gate.reject(call, error)));
        }
        let effect = Effect::Notify {
            channel: channel.as_str().to_string(),
            recipients: message.recipients.clone(),
            subject: message.subject.clone(),
            body: message.body.clone(),
        };
        let risk = if channel.as_str() == "in-app" {
            Risk::InternalWrite
        } else {
            Risk::ExternalCommunication
        };
        let worker = self.worker.plugin.clone();
        let channel = channel.as_str().to_string();
        let enqueue = move |tx: &_, ids: EffectIds<'_>| {
            // The idempotency key is the notification's id: connectors pass it on (as a
            // message id or idempotency key) so that a repeated delivery is recognised.
            let entry = OutboxEntry {
                id: ids.key.to_string(),
                worker: worker.clone(),
                channel: channel.clone(),
                recipients: message.recipients.clone(),
                subject: message.subject.clone(),
                body: message.body.clone(),
            };
            enqueue_notification_in(tx, &entry)?;
            Ok(json!({ "queued": entry.id }))
        };
        let call = call.proposing(&effect);
        Ok(self
            .propose(call, effect, risk, enqueue, |_| None)?
            .receipt())
    }
}
