//! Merge-field templates: text with `{{path}}` placeholders, each optionally formatted
//! (`{{lead.amount | money}}`, `{{lead.close_date | date}}`, `{{lead.phone | default:
//! none}}`).
//!
//! A path names a value of the context the rule runs in: the triggering record by its
//! object's name (`lead.name`) or as `record.name`, the event's payload (`payload.budget`),
//! an earlier step's output (`steps.task.id`), or `now`. Parsing checks the syntax and
//! says where it is wrong; [`Template::fields`] lists the paths so the host can check each
//! against the schema before anything runs; [`Template::render`] fills them in.

use std::fmt::Write as _;

use serde_json::Value;

/// The longest template accepted.
pub const MAX_TEMPLATE: usize = 16 * 1024;
/// The most placeholders in one template.
pub const MAX_FIELDS: usize = 64;
/// The most segments in one path.
pub const MAX_DEPTH: usize = 8;

/// What is wrong with a template, or with rendering it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text does not parse.
    #[error("at character {at}: {reason}")]
    Syntax {
        /// Where (counted from 1).
        at: usize,
        /// What is wrong.
        reason: String,
    },
    /// A placeholder names a value the context does not have.
    #[error("unknown merge field `{{{{{0}}}}}`")]
    Unknown(String),
    /// A value cannot be formatted as asked.
    #[error("merge field `{{{{{field}}}}}`: {reason}")]
    Format {
        /// The placeholder's path.
        field: String,
        /// Why.
        reason: String,
    },
}

/// How a value is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// A point in time as `YYYY-MM-DD` (UTC).
    Date,
    /// A point in time as `YYYY-MM-DD HH:MM UTC`.
    DateTime,
    /// A number with two decimals and thousands separated, optionally followed by a
    /// currency (`money: EUR`).
    Money(Option<String>),
    /// A number with thousands separated.
    Number,
    /// Upper case.
    Upper,
    /// Lower case.
    Lower,
    /// What to show when the value is absent or empty.
    Default(String),
    /// Whole days from a point in time to now (`last_activity_at | days-ago`).
    DaysAgo,
    /// Whole days from now to a point in time (`renewal_date | days-until`).
    DaysUntil,
    /// Of a list (or a text), the items that are email addresses (`attendees | emails`).
    Emails,
}

impl Format {
    fn parse(text: &str) -> Result<Format, String> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim().to_string())),
            None => (text.trim(), None),
        };
        let no_arg = |f: Format| match &arg {
            None => Ok(f),
            Some(_) => Err(format!("the format `{name}` takes no argument")),
        };
        match name {
            "date" => no_arg(Format::Date),
            "datetime" => no_arg(Format::DateTime),
            "money" => Ok(Format::Money(arg.filter(|a| !a.is_empty()))),
            "number" => no_arg(Format::Number),
            "upper" => no_arg(Format::Upper),
            "lower" => no_arg(Format::Lower),
            "default" => Ok(Format::Default(arg.unwrap_or_default())),
            "days-ago" => no_arg(Format::DaysAgo),
            "days-until" => no_arg(Format::DaysUntil),
            "emails" => no_arg(Format::Emails),
            other => Err(format!(
                "unknown format `{other}` (date, datetime, money, number, upper, lower, default, days-ago, days-until, emails)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field {
        path: Vec<String>,
        formats: Vec<Format>,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

fn is_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Template {
    /// Parses a template; an error says at which character it goes wrong.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.len() > MAX_TEMPLATE {
            return Err(TemplateError::Syntax {
                at: MAX_TEMPLATE,
                reason: format!("a template is at most {MAX_TEMPLATE} bytes"),
            });
        }
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        let at = |byte: usize| text[..byte].chars().count() + 1;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let inner_start = open + 2;
            let Some(close) = rest[inner_start..].find("}}") else {
                return Err(TemplateError::Syntax {
                    at: at(offset + open),
                    reason: "`{{` is never closed with `}}`".into(),
                });
            };
            let inner = &rest[inner_start..inner_start + close];
            let here = at(offset + inner_start);
            let syntax = |reason: String| TemplateError::Syntax { at: here, reason };
            if inner.contains("{{") {
                return Err(syntax("a `{{` inside a merge field".into()));
            }
            let mut pieces = inner.split('|');
            let path_text = pieces.next().unwrap_or_default().trim();
            if path_text.is_empty() {
                return Err(syntax("an empty merge field".into()));
            }
            let path: Vec<String> = path_text.split('.').map(str::to_string).collect();
            if path.len() > MAX_DEPTH || !path.iter().all(|s| is_segment(s)) {
                return Err(syntax(format!(
                    "`{path_text}` is not a merge field (names of letters, digits, `_` or `-`, joined by dots)"
                )));
            }
            let formats = pieces
                .map(Format::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(syntax)?;
            parts.push(Part::Field { path, formats });
            let consumed = inner_start + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        let fields = parts
            .iter()
            .filter(|p| matches!(p, Part::Field { .. }))
            .count();
        if fields > MAX_FIELDS {
            return Err(TemplateError::Syntax {
                at: 1,
                reason: format!("at most {MAX_FIELDS} merge fields in one template"),
            });
        }
        Ok(Template { parts })
    }

    /// The paths its placeholders name, in order, each with its formats.
    pub fn fields(&self) -> impl Iterator<Item = (&[String], &[Format])> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { path, formats } => Some((path.as_slice(), formats.as_slice())),
            Part::Text(_) => None,
        })
    }

    /// The path of the one placeholder the template is, without formats (`{{lead.tags}}`):
    /// its value can be used as it is (a list, a number) rather than as text.
    pub fn single(&self) -> Option<&[String]> {
        match self.parts.as_slice() {
            [Part::Field { path, formats }] if formats.is_empty() => Some(path),
            _ => None,
        }
    }

    /// Whether it has no placeholder.
    pub fn is_plain(&self) -> bool {
        self.fields().next().is_none()
    }

    /// Fills the placeholders from `context` (a JSON object: `{"lead": {...}, "steps":
    /// {...}, "now": {"timestamp": ...}}`). A path the context does not have is an error,
    /// unless a `default` format gives what to show.
    pub fn render(&self, context: &Value) -> Result<String, TemplateError> {
        let now = context.get("now").and_then(timestamp);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field { path, formats } => {
                    let name = path.join(".");
                    let value = lookup(context, path);
                    out.push_str(&show(&name, value, formats, now)?);
                }
            }
        }
        Ok(out)
    }
}

/// The value at a path of the context.
pub fn lookup<'a>(context: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut at = context;
    for segment in path {
        at = match at {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn timestamp(v: &Value) -> Option<i64> {
    match v {
        Value::Object(o) => o.get("timestamp")?.as_i64(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn show(
    name: &str,
    value: Option<&Value>,
    formats: &[Format],
    now: Option<i64>,
) -> Result<String, TemplateError> {
    let fallback = formats.iter().find_map(|f| match f {
        Format::Default(d) => Some(d.clone()),
        _ => None,
    });
    if empty(value) {
        return match (fallback, value) {
            (Some(d), _) => Ok(d),
            (None, Some(_)) => Ok(String::new()),
            (None, None) => Err(TemplateError::Unknown(name.to_string())),
        };
    }
    let Some(value) = value else {
        return Err(TemplateError::Unknown(name.to_string()));
    };
    let bad = |reason: &str| TemplateError::Format {
        field: name.to_string(),
        reason: reason.to_string(),
    };
    let mut text = plain(value);
    for format in formats {
        text = match format {
            Format::Date | Format::DateTime => {
                let ms = timestamp(value).ok_or_else(|| bad("not a point in time"))?;
                date_text(ms, *format == Format::DateTime)
            }
            Format::Money(currency) => {
                let n = value.as_f64().ok_or_else(|| bad("not a number"))?;
                let amount = grouped(n, 2);
                match currency {
                    Some(c) => format!("{amount} {c}"),
                    None => amount,
                }
            }
            Format::Number => {
                let n = value.as_f64().ok_or_else(|| bad("not a number"))?;
                let decimals = if n.fract() == 0.0 { 0 } else { 2 };
                grouped(n, decimals)
            }
            Format::DaysAgo | Format::DaysUntil => {
                let ms = timestamp(value).ok_or_else(|| bad("not a point in time"))?;
                let now = now.ok_or_else(|| bad("the time now is not known"))?;
                let span = if *format == Format::DaysAgo {
                    now.saturating_sub(ms)
                } else {
                    ms.saturating_sub(now)
                };
                (span / 86_400_000).to_string()
            }
            Format::Emails => {
                let items: Vec<String> = match value {
                    Value::Array(items) => items.iter().map(plain).collect(),
                    other => vec![plain(other)],
                };
                items
                    .into_iter()
                    .filter(|i| {
                        i.split_once('@')
                            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            Format::Upper => text.to_uppercase(),
            Format::Lower => text.to_lowercase(),
            Format::Default(_) => text,
        };
    }
    Ok(text)
}

/// A value as plain text: text bare, lists joined with `, `, a point in time as a
/// date-time, other values as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(o) if o.len() == 1 && o.contains_key("timestamp") => {
            timestamp(value).map_or_else(|| value.to_string(), |ms| date_text(ms, true))
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A number with thousands separated by commas and `decimals` decimals.
fn grouped(n: f64, decimals: usize) -> String {
    if !n.is_finite() {
        return n.to_string();
    }
    let fixed = format!("{:.*}", decimals, n.abs());
    let (whole, fraction) = match fixed.split_once('.') {
        Some((w, f)) => (w.to_string(), Some(f.to_string())),
        None => (fixed, None),
    };
    let mut out = String::new();
    if n < 0.0 && fixed_is_nonzero(&whole, fraction.as_deref()) {
        out.push('-');
    }
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(&f);
    }
    out
}

fn fixed_is_nonzero(whole: &str, fraction: Option<&str>) -> bool {
    whole
        .chars()
        .chain(fraction.unwrap_or("").chars())
        .any(|c| c != '0')
}

/// `YYYY-MM-DD` (and ` HH:MM UTC`) of a time in ms since the Unix epoch.
fn date_text(ms: i64, with_time: bool) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) / 60_000;
    let (y, m, d) = civil_from_days(days);
    let mut out = format!("{y:04}-{m:02}-{d:02}");
    if with_time {
        let _ = write!(out, " {:02}:{:02} UTC", in_day / 60, in_day % 60);
    }
    out
}

/// The proleptic Gregorian date of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({
            "lead": {
                "name": "Chen Silva",
                "company": "Nakatomi",
                "employees": 1200,
                "amount": 1234567.5,
                "close_date": {"timestamp": 1_796_601_600_000_i64},
                "tags": ["enterprise", "emea"],
                "phone": "",
            },
            "steps": {"task": {"id": "task/T-9"}},
            "now": {"timestamp": 0},
        })
    }

    #[test]
    fn fields_are_filled_in_and_formatted() {
        let render = |t: &str| Template::parse(t).unwrap().render(&context()).unwrap();
        assert_eq!(
            render("New lead {{lead.name}} from {{ lead.company }}"),
            "New lead Chen Silva from Nakatomi"
        );
        assert_eq!(render("{{lead.amount | money}}"), "1,234,567.50");
        assert_eq!(render("{{lead.amount | money: EUR}}"), "1,234,567.50 EUR");
        assert_eq!(render("{{lead.employees | number}}"), "1,200");
        assert_eq!(render("{{lead.close_date | date}}"), "2026-12-07");
        assert_eq!(render("{{now | datetime}}"), "1970-01-01 00:00 UTC");
        assert_eq!(render("{{lead.tags}}"), "enterprise, emea");
        assert_eq!(render("{{lead.company | upper}}"), "NAKATOMI");
        assert_eq!(render("{{lead.phone | default: no phone}}"), "no phone");
        assert_eq!(render("{{lead.fax | default: none}}"), "none");
        assert_eq!(render("{{lead.phone}}"), "");
        assert_eq!(render("task {{steps.task.id}}"), "task task/T-9");
        assert_eq!(render("no fields"), "no fields");
        assert_eq!(grouped(-0.001, 2), "0.00");
        assert_eq!(grouped(-1500.0, 0), "-1,500");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn mistakes_are_named() {
        let err = |t: &str| Template::parse(t).unwrap_err().to_string();
        assert_eq!(
            err("Hi {{lead.name"),
            "at character 4: `{{` is never closed with `}}`"
        );
        assert!(err("{{ }}").contains("an empty merge field"));
        assert!(err("{{lead name}}").contains("is not a merge field"));
        assert!(err("{{lead.name | shout}}").contains("unknown format `shout`"));
        assert!(err("{{lead.name | date: x}}").contains("takes no argument"));
        assert!(err(&"{{a}}".repeat(65)).contains("at most 64"));
        let render = |t: &str| {
            Template::parse(t)
                .unwrap()
                .render(&context())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            render("{{lead.nmae}}"),
            "unknown merge field `{{lead.nmae}}`"
        );
        assert_eq!(
            render("{{lead.company | money}}"),
            "merge field `{{lead.company}}`: not a number"
        );
        assert_eq!(
            render("{{lead.name | date}}"),
            "merge field `{{lead.name}}`: not a point in time"
        );
    }

    #[test]
    fn the_fields_are_listed_for_checking() {
        let t =
            Template::parse("{{lead.name}} {{steps.task.id | upper}} {{payload.budget}}").unwrap();
        let paths: Vec<String> = t.fields().map(|(p, _)| p.join(".")).collect();
        assert_eq!(paths, ["lead.name", "steps.task.id", "payload.budget"]);
        assert!(!t.is_plain());
        assert!(Template::parse("plain").unwrap().is_plain());
    }
}
