//! The notify capability: email, SMS, Slack, Teams and in-app notifications.

pub use crate::bindings::roster::notify::notify::{Channel, Message, send};

/// Builds a message for one channel.
pub fn message(
    channel: Channel,
    recipients: &[&str],
    subject: Option<&str>,
    body: &str,
) -> Message {
    Message {
        channel,
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        subject: subject.map(str::to_string),
        body: body.to_string(),
    }
}
