//! Numbers, times and durations as people read them.

use serde_json::Value;

/// A count with thousands separated.
pub(super) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count from a JSON number.
pub(super) fn count_of(v: &Value) -> String {
    count(v.as_u64().unwrap_or(0))
}

/// A share (0 to 1) as a percentage, or a dash.
pub(super) fn percent(v: &Value) -> String {
    match v.as_f64() {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "—".into(),
    }
}

/// Milliseconds as a duration in words.
pub(super) fn millis(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "—".into();
    }
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms < 3_600_000.0 {
        format!("{:.0} min", ms / 60_000.0)
    } else if ms < 86_400_000.0 {
        format!("{:.1} h", ms / 3_600_000.0)
    } else {
        format!("{:.1} days", ms / 86_400_000.0)
    }
}

/// A JSON duration in ms, or a dash.
pub(super) fn millis_of(v: &Value) -> String {
    v.as_f64().map(millis).unwrap_or_else(|| "—".into())
}

/// A time (ms since the Unix epoch) in UTC.
pub(super) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A JSON time, or a dash.
pub(super) fn time_of(v: &Value) -> String {
    v.as_i64().map(time).unwrap_or_else(|| "—".into())
}

/// A day (ms since the Unix epoch) as `YYYY-MM-DD`.
pub(super) fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DD` as the start of that day (ms since the Unix epoch, UTC).
pub(super) fn parse_day(text: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// An amount of money.
pub(super) fn money(amount: f64, currency: &str) -> String {
    if !amount.is_finite() {
        return "—".into();
    }
    if amount != 0.0 && amount.abs() < 0.01 {
        format!("{amount:.4} {currency}")
    } else {
        format!("{amount:.2} {currency}")
    }
}

/// A JSON string, or the empty string.
pub(super) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A JSON value as short text (strings bare, the rest as JSON).
pub(super) fn value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(millis(12.4), "12 ms");
        assert_eq!(millis(1500.0), "1.5 s");
        assert_eq!(percent(&serde_json::json!(0.25)), "25.0%");
        assert_eq!(percent(&Value::Null), "—");
        assert_eq!(
            parse_day("2026-12-07").map(day).as_deref(),
            Some("2026-12-07")
        );
        assert_eq!(parse_day("yesterday"), None);
    }
}
