//! Time as the host sees it. Everything that depends on "now" — schedules, delays, rate
//! windows, "no activity for N days" — asks a [`Clock`], so tests drive time explicitly
//! instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// One minute, hour and day in milliseconds.
pub const MINUTE_MS: Millis = 60_000;
/// One hour in milliseconds.
pub const HOUR_MS: Millis = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: Millis = 24 * HOUR_MS;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis)
    }
}

/// A clock that only moves when told to; shared by clones.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Millis) -> Self {
        ManualClock {
            now: Arc::new(AtomicI64::new(start)),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, now: Millis) {
        self.now.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Parses a duration such as `250ms`, `90s`, `15m`, `2h`, `3d` or `1w` into milliseconds.
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}`: add a unit (ms, s, m, h, d or w)"))?;
    let (digits, unit) = text.split_at(split);
    let n: Millis = digits
        .parse()
        .map_err(|_| format!("`{text}`: expected a number followed by a unit"))?;
    let per = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m, h, d or w)"
            ));
        }
    };
    let ms = n
        .checked_mul(per)
        .ok_or_else(|| format!("`{text}` is too long"))?;
    if ms == 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(ms)
}

/// Writes a duration in the largest unit that divides it: `10m`, `90s`, `1500ms`.
pub fn format_duration(ms: Millis) -> String {
    for (per, unit) in [
        (7 * DAY_MS, "w"),
        (DAY_MS, "d"),
        (HOUR_MS, "h"),
        (MINUTE_MS, "m"),
        (1000, "s"),
    ] {
        if ms != 0 && ms % per == 0 {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("15m"), Ok(15 * MINUTE_MS));
        assert_eq!(parse_duration("2h"), Ok(2 * HOUR_MS));
        assert_eq!(parse_duration("3d"), Ok(3 * DAY_MS));
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000);
        let shared = c.clone();
        c.advance(500);
        assert_eq!(shared.now_ms(), 1500);
        c.set(7);
        assert_eq!(shared.now_ms(), 7);
    }
}
