//! Order-preserving encoding of field values for secondary-index keys.
//!
//! An index key is `object 0x00 field 0x00 value id`: byte order equals value order, so an
//! equality lookup is a prefix scan and a range (`greater-than`, `less-than`, dates within N
//! days) is a range scan. Text is indexed in lower case (matching the case-insensitive
//! comparisons) and escapes `0x00`, so it is self-terminating; numbers are fixed width.

use crate::value::FieldValue;

const TAG_FALSE: u8 = 0x10;
const TAG_TRUE: u8 = 0x11;
const TAG_INT: u8 = 0x20;
const TAG_NUMBER: u8 = 0x30;
const TAG_TEXT: u8 = 0x40;

/// The pseudo-field under which record owners are indexed (not a valid field name).
pub const OWNER: &str = "@owner";

/// `object 0x00 field 0x00`: the prefix of every key of one index.
pub fn prefix(object: &str, field: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(object.len() + field.len() + 2);
    key.extend_from_slice(object.as_bytes());
    key.push(0);
    key.extend_from_slice(field.as_bytes());
    key.push(0);
    key
}

/// Appends the encoding of one indexable value; `false` for values that are not indexed
/// (null, empty text, lists, which are indexed per element).
pub fn encode(value: &FieldValue, out: &mut Vec<u8>) -> bool {
    match value {
        FieldValue::Boolean(false) => out.push(TAG_FALSE),
        FieldValue::Boolean(true) => out.push(TAG_TRUE),
        FieldValue::Integer(n) | FieldValue::Timestamp { timestamp: n } => {
            out.push(TAG_INT);
            out.extend_from_slice(&((*n as u64) ^ (1 << 63)).to_be_bytes());
        }
        FieldValue::Number(n) => {
            out.push(TAG_NUMBER);
            let bits = n.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        FieldValue::Text(t) if !t.is_empty() => encode_text(t, true, out),
        _ => return false,
    }
    true
}

/// Appends lower-cased text, escaping `0x00` as `0x00 0xff`; `terminate` adds `0x00 0x01`
/// (leave it off to build a starts-with prefix).
pub fn encode_text(text: &str, terminate: bool, out: &mut Vec<u8>) {
    out.push(TAG_TEXT);
    for b in text.to_lowercase().bytes() {
        if b == 0 {
            out.extend_from_slice(&[0, 0xff]);
        } else {
            out.push(b);
        }
    }
    if terminate {
        out.extend_from_slice(&[0, 1]);
    }
}

/// The keys under which a value of `object.field` is indexed for record `id`.
pub fn keys(object: &str, field: &str, value: &FieldValue, id: &str) -> Vec<Vec<u8>> {
    let base = prefix(object, field);
    let one = |v: &FieldValue| {
        let mut key = base.clone();
        encode(v, &mut key).then(|| {
            key.extend_from_slice(id.as_bytes());
            key
        })
    };
    match value {
        FieldValue::TextList(items) => items
            .iter()
            .filter_map(|i| one(&FieldValue::Text(i.clone())))
            .collect(),
        v => one(v).into_iter().collect(),
    }
}

/// The record id at the end of an index key whose value starts at `value_start`.
pub fn id_of(key: &[u8], value_start: usize) -> Option<&str> {
    let rest = key.get(value_start..)?;
    let id_start = match *rest.first()? {
        TAG_FALSE | TAG_TRUE => 1,
        TAG_INT | TAG_NUMBER => 9,
        TAG_TEXT => {
            let mut i = 1;
            loop {
                match (rest.get(i)?, rest.get(i + 1)) {
                    (0, Some(1)) => break i + 2,
                    (0, Some(0xff)) => i += 2,
                    _ => i += 1,
                }
            }
        }
        _ => return None,
    };
    std::str::from_utf8(rest.get(id_start..)?).ok()
}

/// The smallest key above every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: FieldValue) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode(&v, &mut out));
        out
    }

    #[test]
    fn encodings_sort_like_their_values() {
        let ints: Vec<Vec<u8>> = [-5i64, -1, 0, 3, i64::MAX]
            .map(|n| enc(FieldValue::Integer(n)))
            .to_vec();
        assert!(ints.windows(2).all(|w| w[0] < w[1]));
        let nums: Vec<Vec<u8>> = [-1e9, -0.5, 0.0, 0.25, 7.0, 1e12]
            .map(|n| enc(FieldValue::Number(n)))
            .to_vec();
        assert!(nums.windows(2).all(|w| w[0] < w[1]));
        let texts: Vec<Vec<u8>> = ["", "a", "ab", "abc", "b"]
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| enc(FieldValue::Text(t.to_string())))
            .collect();
        assert!(texts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            enc(FieldValue::Text("ACME".into())),
            enc(FieldValue::Text("acme".into()))
        );
    }

    #[test]
    fn ids_are_recovered_from_keys() {
        for v in [
            FieldValue::Text("with\0nul".into()),
            FieldValue::Integer(-3),
            FieldValue::Number(2.5),
            FieldValue::Boolean(true),
        ] {
            let key = keys("lead", "f", &v, "L-9").remove(0);
            assert_eq!(id_of(&key, prefix("lead", "f").len()), Some("L-9"), "{v:?}");
        }
        assert_eq!(
            keys(
                "lead",
                "tags",
                &FieldValue::TextList(vec!["a".into(), "b".into()]),
                "x"
            )
            .len(),
            2
        );
        assert!(keys("lead", "f", &FieldValue::Null, "x").is_empty());
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
