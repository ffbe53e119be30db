//! Content-addressed storage on disk: blobs by digest, manifests linked into repositories,
//! tags, and upload sessions.
//!
//! ```text
//! <root>/blobs/sha256/<hex>                    every blob and manifest, by digest
//! <root>/uploads/<uuid>                        an upload in progress
//! <root>/repos/<name>/manifests/<hex>          the manifest's media type: it is in <name>
//! <root>/repos/<name>/tags/<tag>               the digest the tag points at
//! ```
//!
//! Files are written to a temporary name and renamed, so a reader never sees half a blob
//! and a crash leaves nothing half-written under a digest.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A name, reference or digest is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The content does not match the digest it was given under.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest given.
        expected: String,
        /// The content's digest.
        actual: String,
    },
    /// There is no such thing.
    #[error("{0} not found")]
    NotFound(String),
    /// The disk failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a well-formed `sha256:` digest.
pub fn digest_hex(digest: &str) -> Result<&str, StorageError> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        StorageError::Invalid(format!("unsupported digest `{digest}`: use sha256"))
    })?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex)
    } else {
        Err(StorageError::Invalid(format!(
            "malformed digest `{digest}`"
        )))
    }
}

/// Checks a repository name against the distribution spec's grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn check_name(name: &str) -> Result<(), StorageError> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b.first()
                .is_some_and(|x| x.is_ascii_lowercase() || x.is_ascii_digit())
            && b.last()
                .is_some_and(|x| x.is_ascii_lowercase() || x.is_ascii_digit())
            && b.iter()
                .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(x))
            && !c.contains("..")
            && !c.contains("._")
            && !c.contains("_.")
            && !c.contains("___")
    };
    if name.len() <= 255 && name.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "invalid repository name `{name}`"
        )))
    }
}

/// Checks a tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), StorageError> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || b"._-".contains(x));
    if ok {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!("invalid tag `{tag}`")))
    }
}

/// The registry's files.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    /// Opens (creating) the storage under `root`.
    pub fn open(root: &Path) -> Result<Storage, StorageError> {
        for dir in ["blobs/sha256", "uploads", "repos"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(io(&path))?;
        }
        Ok(Storage {
            root: root.to_path_buf(),
        })
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, StorageError> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    fn repo(&self, name: &str) -> Result<PathBuf, StorageError> {
        check_name(name)?;
        Ok(self.root.join("repos").join(name))
    }

    /// Writes `bytes` to `path` through a temporary file and a rename.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let tmp = self
            .root
            .join("uploads")
            .join(format!("write-{}", uuid::Uuid::now_v7()));
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }

    /// Whether a blob exists; its size when it does.
    pub fn blob_size(&self, digest: &str) -> Result<Option<u64>, StorageError> {
        let path = self.blob_path(digest)?;
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// A blob's bytes.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.blob_path(digest)?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound(format!("blob {digest}")),
            _ => io(&path)(e),
        })
    }

    /// Stores a blob after checking it matches `digest`.
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.blob_path(digest)?;
        let actual = digest_of(bytes);
        if actual != digest {
            return Err(StorageError::DigestMismatch {
                expected: digest.to_string(),
                actual,
            });
        }
        if path.is_file() {
            return Ok(());
        }
        self.write_atomic(&path, bytes)
    }

    /// Starts an upload session; returns its id.
    pub fn start_upload(&self) -> Result<String, StorageError> {
        let id = uuid::Uuid::now_v7().to_string();
        let path = self.root.join("uploads").join(&id);
        std::fs::File::create(&path).map_err(io(&path))?;
        Ok(id)
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf, StorageError> {
        uuid::Uuid::parse_str(id).map_err(|_| StorageError::NotFound(format!("upload {id}")))?;
        let path = self.root.join("uploads").join(id);
        if path.is_file() {
            Ok(path)
        } else {
            Err(StorageError::NotFound(format!("upload {id}")))
        }
    }

    /// How many bytes an upload holds.
    pub fn upload_size(&self, id: &str) -> Result<u64, StorageError> {
        let path = self.upload_path(id)?;
        Ok(std::fs::metadata(&path).map_err(io(&path))?.len())
    }

    /// Appends a chunk to an upload; `start`, when given, must be where the upload ends.
    /// Returns the new size.
    pub fn append_upload(
        &self,
        id: &str,
        start: Option<u64>,
        chunk: &[u8],
    ) -> Result<u64, StorageError> {
        let path = self.upload_path(id)?;
        let size = std::fs::metadata(&path).map_err(io(&path))?.len();
        if let Some(start) = start
            && start != size
        {
            return Err(StorageError::Invalid(format!(
                "chunk starts at {start}, the upload holds {size} bytes"
            )));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(chunk).map_err(io(&path))?;
        Ok(size + chunk.len() as u64)
    }

    /// Finishes an upload: its bytes (and a last chunk) must match `digest`. The session is
    /// gone afterwards either way.
    pub fn finish_upload(&self, id: &str, last: &[u8], digest: &str) -> Result<(), StorageError> {
        let path = self.upload_path(id)?;
        let mut bytes = std::fs::read(&path).map_err(io(&path))?;
        bytes.extend_from_slice(last);
        let _ = std::fs::remove_file(&path);
        self.put_blob(digest, &bytes)
    }

    /// Cancels an upload.
    pub fn cancel_upload(&self, id: &str) -> Result<(), StorageError> {
        let path = self.upload_path(id)?;
        std::fs::remove_file(&path).map_err(io(&path))
    }

    /// Stores a manifest in a repository under its digest and, when `tag` is given, tags
    /// it. Returns the manifest's digest.
    pub fn put_manifest(
        &self,
        name: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, StorageError> {
        let repo = self.repo(name)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        let digest = digest_of(bytes);
        self.put_blob(&digest, bytes)?;
        let hex = digest_hex(&digest)?.to_string();
        self.write_atomic(&repo.join("manifests").join(&hex), media_type.as_bytes())?;
        if let Some(tag) = tag {
            self.write_atomic(&repo.join("tags").join(tag), digest.as_bytes())?;
        }
        Ok(digest)
    }

    /// Resolves a tag or digest in a repository to a manifest digest and media type.
    pub fn resolve(&self, name: &str, reference: &str) -> Result<(String, String), StorageError> {
        let repo = self.repo(name)?;
        let digest = if reference.starts_with("sha256:") {
            digest_hex(reference)?;
            reference.to_string()
        } else {
            check_tag(reference)?;
            let path = repo.join("tags").join(reference);
            std::fs::read_to_string(&path)
                .map_err(|_| StorageError::NotFound(format!("manifest {name}:{reference}")))?
        };
        let hex = digest_hex(&digest)?;
        let media_type = std::fs::read_to_string(repo.join("manifests").join(hex))
            .map_err(|_| StorageError::NotFound(format!("manifest {name}@{digest}")))?;
        Ok((digest, media_type))
    }

    /// A repository's tags, sorted.
    pub fn tags(&self, name: &str) -> Result<Vec<String>, StorageError> {
        let dir = self.repo(name)?.join("tags");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(format!("repository {name}")));
            }
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut tags: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// Every repository, sorted.
    pub fn catalog(&self) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let root = self.root.join("repos");
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(io(&dir))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_name() == "manifests" {
                    if let Ok(rel) = dir.strip_prefix(&root) {
                        out.push(rel.to_string_lossy().replace('\\', "/"));
                    }
                } else if entry.file_name() != "tags" && path.is_dir() {
                    stack.push(path);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_and_digests_are_checked() {
        assert!(check_name("roster/lead-enricher").is_ok());
        assert!(check_name("a.b_c__d--e/f").is_ok());
        for bad in ["", "Roster/x", "../x", "x/../y", "x/", "-x", "x..y", "/x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_tag("1.0.0").is_ok());
        assert!(check_tag(".x").is_err());
        assert!(digest_hex("sha256:abc").is_err());
        assert!(digest_hex(&digest_of(b"x")).is_ok());
    }

    #[test]
    fn blobs_uploads_manifests_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let id = s.start_upload().unwrap();
        assert_eq!(s.append_upload(&id, Some(0), b"hello ").unwrap(), 6);
        assert!(s.append_upload(&id, Some(2), b"x").is_err());
        let digest = digest_of(b"hello world");
        assert!(matches!(
            s.finish_upload(&id, b"wrld", &digest),
            Err(StorageError::DigestMismatch { .. })
        ));
        let id = s.start_upload().unwrap();
        s.append_upload(&id, None, b"hello ").unwrap();
        s.finish_upload(&id, b"world", &digest).unwrap();
        assert_eq!(s.blob(&digest).unwrap(), b"hello world");
        let m = s
            .put_manifest(
                "roster/x",
                Some("1.0.0"),
                "application/vnd.oci.image.manifest.v1+json",
                b"{}",
            )
            .unwrap();
        assert_eq!(s.resolve("roster/x", "1.0.0").unwrap().0, m);
        assert_eq!(s.resolve("roster/x", &m).unwrap().0, m);
        assert_eq!(s.tags("roster/x").unwrap(), ["1.0.0"]);
        assert_eq!(s.catalog().unwrap(), ["roster/x"]);
        assert!(s.resolve("roster/y", "1.0.0").is_err());
    }
}
