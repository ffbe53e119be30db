//! A published worker as an OCI artifact, in the CNCF Wasm OCI layout, with its Roster
//! manifest and the publisher's signature.
//!
//! ```text
//! OCI manifest (application/vnd.oci.image.manifest.v1+json)
//!   config  application/vnd.wasm.config.v0+json   {created, author, architecture, os, layerDigests, component}
//!   layers  [application/wasm]                    the component
//!   annotations
//!     org.opencontainers.image.title / .version   the plugin id and version
//!     dev.roster.manifest                         the Roster manifest (TOML text)
//!     dev.roster.signature                        {"key": <ed25519 public key, hex>, "signature": <hex>}
//! ```
//!
//! The signature is over [`signed_message`]: the plugin id and version, the component's
//! digest and the Roster manifest's digest. A tampered layer fails the layer digest, a
//! tampered manifest fails the signature, and a signature taken from another artifact
//! names other digests.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::storage::digest_of;

/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The Wasm config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The component layer's media type.
pub const WASM_MEDIA_TYPE: &str = "application/wasm";
/// The annotation carrying the Roster manifest.
pub const MANIFEST_ANNOTATION: &str = "dev.roster.manifest";
/// The annotation carrying the publisher's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.roster.signature";

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST_MEDIA_TYPE`].
    #[serde(default)]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The publisher's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The ed25519 public key (hex).
    pub key: String,
    /// The signature (hex).
    pub signature: String,
}

/// Why an artifact is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// The manifest is not a Wasm OCI artifact.
    #[error("not a Roster worker artifact: {0}")]
    Layout(String),
    /// A blob does not match its descriptor.
    #[error(
        "the {what} does not match its digest (expected {expected}, got {actual}): it was tampered with"
    )]
    Tampered {
        /// Which blob.
        what: &'static str,
        /// The descriptor's digest.
        expected: String,
        /// The content's.
        actual: String,
    },
    /// No signature, and unsigned artifacts are not allowed.
    #[error("the artifact is not signed (pass --allow-unsigned to install it anyway)")]
    Unsigned,
    /// The signature does not verify.
    #[error("the signature does not verify: {0}")]
    BadSignature(String),
    /// Signed by a key nobody trusts.
    #[error("signed by key {0}, which is not among the trusted publisher keys")]
    UntrustedKey(String),
}

/// The message a publisher signs.
pub fn signed_message(
    plugin: &str,
    version: &str,
    component_digest: &str,
    manifest_digest: &str,
) -> String {
    format!(
        "roster-publisher-signature-v1\nplugin {plugin}\nversion {version}\ncomponent {component_digest}\nmanifest {manifest_digest}\n"
    )
}

/// A short id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    digest_of(key.as_bytes())["sha256:".len()..][..16].to_string()
}

/// Signs a component and its Roster manifest.
pub fn sign(
    key: &SigningKey,
    plugin: &str,
    version: &str,
    component: &[u8],
    manifest: &str,
) -> Signature {
    let message = signed_message(
        plugin,
        version,
        &digest_of(component),
        &digest_of(manifest.as_bytes()),
    );
    Signature {
        key: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(key.sign(message.as_bytes()).to_bytes()),
    }
}

/// Parses a hex public key.
pub fn public_key(hex_text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("a public key is 32 bytes of hex")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("public key: {e}"))
}

/// Parses a hex secret key (the 32-byte seed).
pub fn secret_key(hex_text: &str) -> Result<SigningKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("a secret key is 32 bytes of hex")?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Verifies `signature` over `message` by one of `trusted`.
pub fn verify(
    signature: &Signature,
    message: &str,
    trusted: &[VerifyingKey],
) -> Result<(), ArtifactError> {
    let key = public_key(&signature.key).map_err(ArtifactError::BadSignature)?;
    if !trusted.contains(&key) {
        return Err(ArtifactError::UntrustedKey(key_id(&key)));
    }
    let bytes: [u8; 64] = hex::decode(&signature.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ArtifactError::BadSignature("a signature is 64 bytes of hex".into()))?;
    key.verify(
        message.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&bytes),
    )
    .map_err(|_| {
        ArtifactError::BadSignature(
            "it was made for other content (another component or manifest digest)".into(),
        )
    })
}

/// The blobs and manifest of an artifact to push.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The config blob.
    pub config: Vec<u8>,
    /// The component.
    pub layer: Vec<u8>,
    /// The OCI manifest (bytes as pushed).
    pub manifest: Vec<u8>,
}

impl Artifact {
    /// Builds the artifact of a component with its Roster manifest, signed or not.
    /// `created` is an RFC 3339 time; `imports` and `exports` describe the component.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        plugin: &str,
        version: &str,
        author: &str,
        component: Vec<u8>,
        roster_manifest: &str,
        signature: Option<&Signature>,
        imports: &[String],
        exports: &[String],
        created: &str,
    ) -> Artifact {
        let layer_digest = digest_of(&component);
        let config = serde_json::to_vec(&serde_json::json!({
            "created": created,
            "author": author,
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer_digest],
            "component": { "exports": exports, "imports": imports, "target": null },
        }))
        .unwrap_or_default();
        let mut annotations = BTreeMap::from([
            (
                "org.opencontainers.image.title".to_string(),
                plugin.to_string(),
            ),
            (
                "org.opencontainers.image.version".to_string(),
                version.to_string(),
            ),
            (
                "org.opencontainers.image.created".to_string(),
                created.to_string(),
            ),
            (MANIFEST_ANNOTATION.to_string(), roster_manifest.to_string()),
        ]);
        if let Some(s) = signature {
            annotations.insert(
                SIGNATURE_ANNOTATION.to_string(),
                serde_json::to_string(s).unwrap_or_default(),
            );
        }
        let manifest = OciManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            config: Descriptor {
                media_type: CONFIG_MEDIA_TYPE.to_string(),
                digest: digest_of(&config),
                size: config.len() as u64,
            },
            layers: vec![Descriptor {
                media_type: WASM_MEDIA_TYPE.to_string(),
                digest: layer_digest,
                size: component.len() as u64,
            }],
            annotations,
        };
        Artifact {
            manifest: serde_json::to_vec(&manifest).unwrap_or_default(),
            config,
            layer: component,
        }
    }
}

/// What a pulled artifact says about itself, once its layout is checked.
#[derive(Debug, Clone)]
pub struct Described {
    /// The OCI manifest.
    pub manifest: OciManifest,
    /// The component layer's descriptor.
    pub layer: Descriptor,
    /// The Roster manifest text.
    pub roster_manifest: String,
    /// The publisher's signature, if any.
    pub signature: Option<Signature>,
}

/// Checks a pulled OCI manifest's layout: Wasm config, exactly one `application/wasm`
/// layer, a Roster manifest annotation.
pub fn describe(manifest_bytes: &[u8]) -> Result<Described, ArtifactError> {
    let manifest: OciManifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| ArtifactError::Layout(format!("the OCI manifest does not parse: {e}")))?;
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(ArtifactError::Layout(format!(
            "config media type `{}`, expected {CONFIG_MEDIA_TYPE}",
            manifest.config.media_type
        )));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(ArtifactError::Layout(format!(
            "{} layers, expected one {WASM_MEDIA_TYPE} layer",
            manifest.layers.len()
        )));
    };
    if layer.media_type != WASM_MEDIA_TYPE {
        return Err(ArtifactError::Layout(format!(
            "layer media type `{}`, expected {WASM_MEDIA_TYPE}",
            layer.media_type
        )));
    }
    let roster_manifest = manifest
        .annotations
        .get(MANIFEST_ANNOTATION)
        .cloned()
        .ok_or_else(|| ArtifactError::Layout(format!("no `{MANIFEST_ANNOTATION}` annotation")))?;
    let signature = match manifest.annotations.get(SIGNATURE_ANNOTATION) {
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            ArtifactError::BadSignature(format!("the signature does not parse: {e}"))
        })?),
        None => None,
    };
    Ok(Described {
        layer: layer.clone(),
        manifest,
        roster_manifest,
        signature,
    })
}

/// Checks that a pulled blob is what its descriptor names.
pub fn check_blob(
    what: &'static str,
    descriptor: &Descriptor,
    bytes: &[u8],
) -> Result<(), ArtifactError> {
    let actual = digest_of(bytes);
    if actual != descriptor.digest || bytes.len() as u64 != descriptor.size {
        return Err(ArtifactError::Tampered {
            what,
            expected: descriptor.digest.clone(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn signatures_cover_component_and_manifest() {
        let k = key(1);
        let s = sign(&k, "p", "1.0.0", b"wasm", "[plugin]");
        let ok = signed_message("p", "1.0.0", &digest_of(b"wasm"), &digest_of(b"[plugin]"));
        verify(&s, &ok, &[k.verifying_key()]).unwrap();
        let other = signed_message("p", "1.0.0", &digest_of(b"wasm2"), &digest_of(b"[plugin]"));
        assert!(matches!(
            verify(&s, &other, &[k.verifying_key()]),
            Err(ArtifactError::BadSignature(_))
        ));
        assert!(matches!(
            verify(&s, &ok, &[key(2).verifying_key()]),
            Err(ArtifactError::UntrustedKey(_))
        ));
    }

    #[test]
    fn built_artifacts_describe_themselves() {
        let s = sign(&key(1), "p", "1.0.0", b"wasm", "[plugin]");
        let a = Artifact::build(
            "p",
            "1.0.0",
            "me",
            b"wasm".to_vec(),
            "[plugin]",
            Some(&s),
            &[],
            &[],
            "2026-01-01T00:00:00Z",
        );
        let d = describe(&a.manifest).unwrap();
        assert_eq!(d.roster_manifest, "[plugin]");
        assert_eq!(d.signature, Some(s));
        check_blob("component", &d.layer, b"wasm").unwrap();
        assert!(check_blob("component", &d.layer, b"wasn").is_err());
    }
}
