//! Reading TOML and JSON files with errors that name the file, line and reason.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::Error;

/// Parses TOML text that came from `path`; errors carry `path:line:column`.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Error> {
    toml::from_str(text).map_err(|e| {
        let location = e
            .span()
            .map(|span| {
                let (line, col) = line_col(text, span.start);
                format!(":{line}:{col}")
            })
            .unwrap_or_default();
        Error::Config {
            location: format!("{}{location}", path.display()),
            reason: e.message().to_string(),
        }
    })
}

/// Parses JSON text that came from `what` (a path, or `<stdin>`); errors carry line and column.
pub fn parse_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Config {
        location: format!("{what}:{}:{}", e.line(), e.column()),
        reason: e.to_string(),
    })
}

/// Reads a whole UTF-8 file.
pub fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_errors_name_file_line_and_column() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let err = parse_toml::<T>(Path::new("x.toml"), "\n\na = \"nope\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("x.toml:3:5"), "{msg}");
    }
}
