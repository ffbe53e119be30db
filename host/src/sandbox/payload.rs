//! What crosses the boundary: the size of a host call's arguments as the payload limit
//! counts it, and the bound on any text a worker can make the host keep.

/// The most elements one list argument of a host call may have (fields, filters,
/// headers, recipients, labels, the items of a text list).
pub const MAX_LIST_ELEMENTS: usize = 1_000;

/// The bytes counted for every element of a list crossing the boundary, on top of its
/// contents: an empty element still costs the host memory to lift and to describe.
pub const ELEMENT_BYTES: u64 = 16;

/// The size of a host call's arguments, as the payload limit counts it: the bytes of
/// every string and byte list, [`ELEMENT_BYTES`] for every list element, and the
/// longest list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Payload {
    bytes: u64,
    longest: usize,
}

impl Payload {
    /// Adds a string (or any run of `n` bytes).
    pub fn bytes(mut self, n: usize) -> Payload {
        self.bytes = self.bytes.saturating_add(n as u64);
        self
    }

    /// Adds a string.
    pub fn text(self, s: &str) -> Payload {
        self.bytes(s.len())
    }

    /// Adds a list, each element measured by `each`.
    pub fn list<T>(mut self, items: &[T], each: impl Fn(Payload, &T) -> Payload) -> Payload {
        self.longest = self.longest.max(items.len());
        let per_element = ELEMENT_BYTES.saturating_mul(items.len() as u64);
        self.bytes = self.bytes.saturating_add(per_element);
        items.iter().fold(self, each)
    }

    /// Adds a list of strings.
    pub fn texts(self, items: &[String]) -> Payload {
        self.list(items, |p, s| p.text(s))
    }

    /// The bytes counted.
    pub fn size(&self) -> u64 {
        self.bytes
    }

    /// The length of the longest list.
    pub fn longest(&self) -> usize {
        self.longest
    }
}

/// `text` cut to at most `max` bytes on a character boundary, saying how much was cut.
pub fn bounded_text(mut text: String, max: usize) -> String {
    if text.len() > max {
        let total = text.len();
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(&format!(" [truncated from {total} bytes]"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::gate::{Gate, Mode};
    use crate::sandbox::limits::{LimitExceeded, Limits};

    #[test]
    fn every_list_element_counts_and_lists_are_capped() {
        let empty = vec![String::new(); 100];
        assert_eq!(Payload::default().texts(&empty).size(), 100 * ELEMENT_BYTES);
        let mut gate = Gate::new("x".into(), "s".into(), Limits::default(), Mode::Live);
        let long = vec![String::new(); MAX_LIST_ELEMENTS + 1];
        let err = gate.enter(Payload::default().texts(&long)).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<LimitExceeded>(),
            Some(LimitExceeded::ListLength { .. })
        ));
        let nested = Payload::default().list(&[(), ()], |p, _| p.texts(&long[..5]));
        assert_eq!(nested.longest(), 5);
        assert_eq!(nested.size(), 12 * ELEMENT_BYTES);
    }
}
