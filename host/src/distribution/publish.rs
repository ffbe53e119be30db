//! Publishing a worker: publisher keys, the signed artifact, the same checks `roster
//! install` makes, and the push to a registry or an OCI image layout. Used by
//! `roster plugin keygen|publish` and by `roster up`.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use roster_registry::artifact::{self, Artifact, Signature};

use crate::distribution::oci::{OciError, Pulled, Source};
use crate::error::Error;
use crate::sandbox::manifest::Manifest;

/// A publisher key pair written to `<out>.key` (secret, readable by its owner only) and
/// `<out>.pub`; refuses to overwrite either.
pub fn keygen(out: &Path) -> Result<(SigningKey, PathBuf, PathBuf), Error> {
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    for path in [&secret, &public] {
        if path.exists() {
            return Err(Error::InvalidRequest(format!(
                "{} exists; remove it or choose another --out",
                path.display()
            )));
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::InvalidRequest(format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    if let Some(dir) = secret.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&secret).map_err(io(&secret))?;
        writeln!(f, "{}", hex::encode(key.to_bytes())).map_err(io(&secret))?;
    }
    std::fs::write(
        &public,
        format!("{}\n", hex::encode(key.verifying_key().as_bytes())),
    )
    .map_err(io(&public))?;
    Ok((key, secret, public))
}

/// Reads a secret key file.
pub fn read_key(path: &Path) -> Result<SigningKey, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    artifact::secret_key(&text)
        .map_err(|e| Error::InvalidRequest(format!("{}: {e}", path.display())))
}

/// A built, signed and checked artifact, ready to push.
pub struct Prepared {
    /// The manifest.
    pub manifest: Manifest,
    /// The artifact.
    pub built: Artifact,
    /// The publisher's signature, when signed.
    pub signature: Option<Signature>,
}

/// Builds the artifact of `component` with `manifest_text`, signs it with `key` (unsigned
/// when `None`) and checks it exactly as `roster install` will: a component importing
/// beyond its manifest is refused here, before anyone can pull it. `published_at` is an
/// RFC 3339 time.
pub fn prepare(
    manifest_origin: &Path,
    manifest_text: &str,
    component: Vec<u8>,
    key: Option<&SigningKey>,
    reference: &str,
    published_at: &str,
) -> Result<Prepared, Error> {
    let manifest = Manifest::parse(manifest_origin, manifest_text)?;
    let info = crate::sandbox::imports::inspect(&component)?;
    let signature = key.map(|k| {
        artifact::sign(
            k,
            &manifest.plugin.id,
            &manifest.plugin.version,
            &component,
            manifest_text,
        )
    });
    let built = Artifact::build(
        &manifest.plugin.id,
        &manifest.plugin.version,
        &manifest.owners.technical,
        component,
        manifest_text,
        signature.as_ref(),
        &info.imports,
        &info.exports,
        published_at,
    );
    let pulled = Pulled {
        digest: roster_registry::digest_of(&built.manifest),
        manifest: built.manifest.clone(),
        config: built.config.clone(),
        layer: built.layer.clone(),
    };
    let trusted: Vec<_> = key.iter().map(|k| k.verifying_key()).collect();
    match crate::distribution::install::verify(reference, &pulled, &trusted, key.is_none()) {
        Err(Error::InstallRefused(reason)) => {
            return Err(Error::InvalidRequest(format!(
                "publish refused: {reason}; nothing was published"
            )));
        }
        other => other?,
    };
    Ok(Prepared {
        manifest,
        built,
        signature,
    })
}

impl Prepared {
    /// Pushes it to `reference` (a registry reference, or `oci:DIR[:TAG]`; the tag defaults
    /// to the version) with `token` for registries that ask; returns the manifest digest.
    pub fn push(&self, reference: &str, token: Option<String>) -> Result<String, OciError> {
        match Source::parse(reference)? {
            Source::Registry(r) => crate::distribution::oci::Client::new(token)
                .map_err(|e| OciError::Unavailable {
                    registry: r.registry.clone(),
                    reason: e.to_string(),
                })?
                .push(&r, &self.built),
            Source::Layout(dir, tag) => crate::distribution::oci::write_layout(
                &dir,
                tag.as_deref().unwrap_or(&self.manifest.plugin.version),
                &self.built,
            ),
        }
    }
}
