//! Flat JSON objects: what signal payloads and schedule payloads usually are.
//!
//! ```ignore
//! use roster_sdk::json::{self, Json};
//!
//! let payload = json::object(&[("account_id", Json::from("A-1")), ("amount", Json::from(4200.0))]);
//! roster_sdk::signals::emit("revenue.closed-won", &payload)?;
//! // ... and on the receiving side:
//! let account = json::text(event.payload.as_deref().unwrap_or("{}"), "account_id");
//! ```

use crate::settings::{self, Setting};

/// A scalar JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// A string.
    Text(String),
    /// A number.
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::Text(s.to_string())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::Text(s)
    }
}

impl From<f64> for Json {
    fn from(n: f64) -> Self {
        Json::Number(n)
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Self {
        Json::Number(n as f64)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Self {
        v.map_or(Json::Null, Into::into)
    }
}

/// Writes `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A flat JSON object of the given members, in order.
pub fn object(members: &[(&str, Json)]) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Json::Null => "null".to_string(),
                Json::Text(t) => quote(t),
                Json::Number(n) if n.is_finite() => {
                    if n.fract() == 0.0 && n.abs() < 9e15 {
                        format!("{}", *n as i64)
                    } else {
                        format!("{n}")
                    }
                }
                Json::Number(_) => "null".to_string(),
                Json::Bool(b) => b.to_string(),
            };
            format!("{}:{value}", quote(k))
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// The text member `key` of a flat JSON object.
pub fn text(json: &str, key: &str) -> Option<String> {
    match settings::get(json, key)? {
        Setting::Text(t) => Some(t),
        _ => None,
    }
}

/// The numeric member `key` of a flat JSON object.
pub fn number(json: &str, key: &str) -> Option<f64> {
    match settings::get(json, key)? {
        Setting::Number(n) => Some(n),
        _ => None,
    }
}
