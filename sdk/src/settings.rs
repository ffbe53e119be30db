//! Reading the installation's settings: the flat JSON object the host passes with every
//! event (`Event::settings`), already checked against the manifest's `[config]` schema.
//!
//! ```ignore
//! let days = event.setting_number("days").unwrap_or(14.0);
//! ```

/// One setting's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// A string.
    Text(String),
    /// An integer or a number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

/// The value of `key` in a flat JSON object of scalars, or `None` when it is absent, null,
/// or the text is not such an object.
pub fn get(settings: &str, key: &str) -> Option<Setting> {
    let mut p = Parser {
        bytes: settings.as_bytes(),
        at: 0,
    };
    p.expect(b'{')?;
    if p.peek()? == b'}' {
        return None;
    }
    loop {
        let name = p.string()?;
        p.expect(b':')?;
        let value = p.value()?;
        if name == key {
            return value;
        }
        match p.next()? {
            b',' => continue,
            _ => return None,
        }
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = std::str::from_utf8(&self.bytes[self.at..]).ok()?;
            let c = rest.chars().next()?;
            self.at += c.len_utf8();
            match c {
                '"' => return Some(out),
                '\\' => {
                    let e = *self.bytes.get(self.at)?;
                    self.at += 1;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex =
                                std::str::from_utf8(self.bytes.get(self.at..self.at + 4)?).ok()?;
                            self.at += 4;
                            char::from_u32(u32::from_str_radix(hex, 16).ok()?).unwrap_or('\u{fffd}')
                        }
                        _ => return None,
                    });
                }
                c => out.push(c),
            }
        }
    }

    /// A scalar; `Some(None)` for null.
    fn value(&mut self) -> Option<Option<Setting>> {
        match self.peek()? {
            b'"' => Some(Some(Setting::Text(self.string()?))),
            b't' | b'f' | b'n' => {
                let rest = &self.bytes[self.at..];
                for (word, value) in [
                    ("true", Some(Setting::Bool(true))),
                    ("false", Some(Setting::Bool(false))),
                    ("null", None),
                ] {
                    if rest.starts_with(word.as_bytes()) {
                        self.at += word.len();
                        return Some(value);
                    }
                }
                None
            }
            _ => {
                let start = self.at;
                while self
                    .bytes
                    .get(self.at)
                    .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
                {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
                Some(Some(Setting::Number(text.parse().ok()?)))
            }
        }
    }
}
