//! Signed webhooks, both ways: the signature Roster checks on `POST /v1/events/{name}` and
//! puts on what it sends (alerts, the audit stream). The signature is HMAC-SHA256 over
//! `"{timestamp}.{body}"`, sent as `sha256=<hex>` beside the signing time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-roster-timestamp";
/// The header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-roster-signature";

/// The MAC of `"{timestamp}.{body}"` under `secret` (HMAC takes keys of any length).
pub(crate) fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// Computes the `x-roster-signature` value (`sha256=<hex>`) for a webhook body.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("sha256={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = sign("secret", 100, b"{}");
        assert!(a.starts_with("sha256="));
        assert_ne!(a, sign("secret", 101, b"{}"));
        assert_ne!(a, sign("other", 100, b"{}"));
        assert_ne!(a, sign("secret", 100, b"{ }"));
    }
}
