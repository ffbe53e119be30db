//! Field comparisons, shared by record queries (from workers and the API) and by trigger
//! conditions, so that "equals" means the same thing everywhere.
//!
//! Text comparisons ignore case. `contains` on a text-list field tests membership.
//! `is-empty` holds for a missing field, null, empty text and an empty list.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::value::FieldValue;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Equal (text ignoring case; numbers by value).
    Equals,
    /// Not equal (a missing field is not equal to anything).
    NotEquals,
    /// Text contains, or list has the item.
    Contains,
    /// Text starts with.
    StartsWith,
    /// Text ends with.
    EndsWith,
    /// Missing, null, empty text or empty list.
    IsEmpty,
    /// Has a non-empty value.
    IsNotEmpty,
    /// Greater than (numbers, timestamps, text).
    GreaterThan,
    /// Less than (numbers, timestamps, text).
    LessThan,
}

impl Op {
    /// The operator's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Equals => "equals",
            Op::NotEquals => "not-equals",
            Op::Contains => "contains",
            Op::StartsWith => "starts-with",
            Op::EndsWith => "ends-with",
            Op::IsEmpty => "is-empty",
            Op::IsNotEmpty => "is-not-empty",
            Op::GreaterThan => "greater-than",
            Op::LessThan => "less-than",
        }
    }

    /// Whether the operator ignores its value.
    pub fn is_unary(self) -> bool {
        matches!(self, Op::IsEmpty | Op::IsNotEmpty)
    }
}

/// One comparison of a field with a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// The field.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The value compared with (ignored by `is-empty` and `is-not-empty`).
    #[serde(default = "null")]
    pub value: FieldValue,
}

fn null() -> FieldValue {
    FieldValue::Null
}

/// Whether a field's value (absent when `None`) satisfies `op` against `target`.
pub fn matches(value: Option<&FieldValue>, op: Op, target: &FieldValue) -> bool {
    let empty = value.is_none_or(FieldValue::is_empty);
    match op {
        Op::IsEmpty => empty,
        Op::IsNotEmpty => !empty,
        Op::Equals => value.is_some_and(|v| equal(v, target)),
        Op::NotEquals => !value.is_some_and(|v| equal(v, target)),
        Op::Contains => match (value, target) {
            (Some(FieldValue::Text(t)), FieldValue::Text(s)) => {
                t.to_lowercase().contains(&s.to_lowercase())
            }
            (Some(FieldValue::TextList(l)), FieldValue::Text(s)) => {
                l.iter().any(|i| i.to_lowercase() == s.to_lowercase())
            }
            _ => false,
        },
        Op::StartsWith => text_pair(value, target)
            .is_some_and(|(t, s)| t.to_lowercase().starts_with(&s.to_lowercase())),
        Op::EndsWith => text_pair(value, target)
            .is_some_and(|(t, s)| t.to_lowercase().ends_with(&s.to_lowercase())),
        Op::GreaterThan => order(value, target) == Some(Ordering::Greater),
        Op::LessThan => order(value, target) == Some(Ordering::Less),
    }
}

fn text_pair<'a>(
    value: Option<&'a FieldValue>,
    target: &'a FieldValue,
) -> Option<(&'a str, &'a str)> {
    match (value?, target) {
        (FieldValue::Text(t), FieldValue::Text(s)) => Some((t, s)),
        _ => None,
    }
}

fn equal(a: &FieldValue, b: &FieldValue) -> bool {
    match (a, b) {
        (FieldValue::Text(x), FieldValue::Text(y)) => x.to_lowercase() == y.to_lowercase(),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn order(a: Option<&FieldValue>, b: &FieldValue) -> Option<Ordering> {
    match (a?, b) {
        (FieldValue::Text(x), FieldValue::Text(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (x, y) => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_the_documented_rules() {
        let t = |s: &str| FieldValue::Text(s.into());
        assert!(matches(Some(&t("Acme Corp")), Op::Contains, &t("acme")));
        assert!(matches(Some(&t("Acme")), Op::Equals, &t("ACME")));
        assert!(matches(None, Op::IsEmpty, &FieldValue::Null));
        assert!(matches(Some(&t("")), Op::IsEmpty, &FieldValue::Null));
        assert!(matches(None, Op::NotEquals, &t("x")));
        assert!(matches(
            Some(&FieldValue::Integer(5)),
            Op::GreaterThan,
            &FieldValue::Number(4.5)
        ));
        assert!(!matches(
            Some(&t("5")),
            Op::GreaterThan,
            &FieldValue::Integer(4)
        ));
        assert!(matches(
            Some(&FieldValue::TextList(vec!["vip".into()])),
            Op::Contains,
            &t("VIP")
        ));
        assert!(matches(
            Some(&t("lead@x.test")),
            Op::EndsWith,
            &t("@X.TEST")
        ));
        assert!(matches(Some(&t("Lead")), Op::StartsWith, &t("le")));
        assert!(matches(
            Some(&FieldValue::Timestamp { timestamp: 5 }),
            Op::LessThan,
            &FieldValue::Timestamp { timestamp: 6 }
        ));
    }
}
