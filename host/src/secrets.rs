//! Secrets for connectors and providers: API keys, webhook URLs, passwords.
//!
//! A secret is named in `roster.toml` by where it comes from, never by its value: an
//! environment variable (`key-env = "OPENAI_API_KEY"`) or an entry of the secrets file
//! (`key-secret = "openai"`), a TOML file of `name = "value"` lines that only its owner may
//! read (`secrets-file = "secrets.toml"`). Manifests and grants never hold secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The secrets file's entries, when one is configured.
#[derive(Clone, Default)]
pub struct Secrets {
    path: Option<PathBuf>,
    entries: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: a value never reaches a log line.
        f.debug_struct("Secrets")
            .field("path", &self.path)
            .field("names", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// No secrets file.
    pub fn none() -> Secrets {
        Secrets::default()
    }

    /// Reads a secrets file: a TOML table of strings, not readable by group or others.
    pub fn load(path: &Path) -> Result<Secrets, String> {
        let shown = path.display();
        let metadata = std::fs::metadata(path).map_err(|e| format!("secrets file {shown}: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "secrets file {shown} is readable by others (mode {:o}); run `chmod 600 {shown}`",
                    mode & 0o777
                ));
            }
        }
        #[cfg(not(unix))]
        let _ = metadata;
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("secrets file {shown}: {e}"))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("secrets file {shown}: {}", e.message()))?;
        let mut entries = BTreeMap::new();
        for (name, value) in table {
            let toml::Value::String(value) = value else {
                return Err(format!("secrets file {shown}: `{name}` must be a string"));
            };
            entries.insert(name, value);
        }
        Ok(Secrets {
            path: Some(path.to_path_buf()),
            entries,
        })
    }

    /// Resolves a secret given by an environment variable or a secrets-file entry (not
    /// both); `None` when neither is given. `what` names the setting in errors.
    pub fn resolve(
        &self,
        what: &str,
        env: Option<&str>,
        secret: Option<&str>,
    ) -> Result<Option<String>, String> {
        match (env, secret) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(format!(
                "{what}: give the environment variable or the secret's name, not both"
            )),
            (Some(var), None) => std::env::var(var)
                .map(Some)
                .map_err(|_| format!("{what}: environment variable `{var}` is not set")),
            (None, Some(name)) => match (&self.path, self.entries.get(name)) {
                (_, Some(value)) => Ok(Some(value.clone())),
                (Some(path), None) => Err(format!(
                    "{what}: secret `{name}` is not in {}",
                    path.display()
                )),
                (None, None) => Err(format!(
                    "{what}: secret `{name}` is named but no secrets-file is configured"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_the_file_or_the_environment_never_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, "openai = \"sk-test\"\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = Secrets::load(&path).unwrap_err();
            assert!(err.contains("readable by others"), "{err}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let secrets = Secrets::load(&path).unwrap();
        assert_eq!(
            secrets
                .resolve("k", None, Some("openai"))
                .unwrap()
                .as_deref(),
            Some("sk-test")
        );
        assert!(secrets.resolve("k", None, Some("other")).is_err());
        assert!(secrets.resolve("k", Some("X"), Some("openai")).is_err());
        assert_eq!(secrets.resolve("k", None, None).unwrap(), None);
        assert!(!format!("{secrets:?}").contains("sk-test"));
        assert!(
            Secrets::none()
                .resolve("k", Some("ROSTER_TEST_UNSET_VARIABLE"), None)
                .unwrap_err()
                .contains("not set")
        );
    }
}
