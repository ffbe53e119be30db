//! A small OCI distribution client: pull a worker artifact from any OCI registry (and push
//! one to ours).
//!
//! References look like `registry/repository:tag` or `registry/repository@sha256:...`
//! (`127.0.0.1:5000/roster/lead-enricher:1.2.0`, `ghcr.io/acme/worker:1.0.0`). Loopback
//! registries are spoken to over plain HTTP, every other one over HTTPS with the web PKI
//! roots. Authentication: a token sent as Bearer (or as a Basic password when the registry
//! asks for Basic), and the anonymous token flow of registries that answer with a Bearer
//! challenge (`WWW-Authenticate: Bearer realm=...,service=...,scope=...`).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use roster_registry::artifact::{Artifact, MANIFEST_MEDIA_TYPE};
use roster_registry::digest_of;

/// Why talking to a registry failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference is malformed.
    #[error("`{0}` is not a registry reference (use host[:port]/repository:tag)")]
    Reference(String),
    /// The registry could not be reached.
    #[error("registry {registry}: {reason}")]
    Unavailable {
        /// The registry.
        registry: String,
        /// What happened.
        reason: String,
    },
    /// The registry answered with an error.
    #[error("registry answered {status} to {what}: {body}")]
    Refused {
        /// The status.
        status: u16,
        /// The request.
        what: String,
        /// The body (the spec's error envelope).
        body: String,
    },
}

/// A parsed artifact reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// The repository (`roster/lead-enricher`).
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
}

impl Reference {
    /// Parses `host[:port]/repository[:tag|@digest]`; the tag defaults to `latest`.
    pub fn parse(text: &str) -> Result<Reference, OciError> {
        let bad = || OciError::Reference(text.to_string());
        let text_ = text
            .strip_prefix("oci://")
            .or_else(|| text.strip_prefix("docker://"))
            .unwrap_or(text);
        let (registry, rest) = text_.split_once('/').ok_or_else(bad)?;
        if registry.is_empty()
            || !(registry.contains('.') || registry.contains(':') || registry == "localhost")
        {
            return Err(bad());
        }
        let (repository, reference) = match rest.split_once('@') {
            Some((repo, digest)) => (repo, digest.to_string()),
            None => match rest.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo, tag.to_string()),
                _ => (rest, "latest".to_string()),
            },
        };
        roster_registry::storage::check_name(repository).map_err(|_| bad())?;
        if reference.starts_with("sha256:") {
            roster_registry::storage::digest_hex(&reference).map_err(|_| bad())?;
        } else {
            roster_registry::storage::check_tag(&reference).map_err(|_| bad())?;
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            reference,
        })
    }

    /// Whether the registry is on this machine (spoken to over plain HTTP).
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        matches!(host, "localhost" | "127.0.0.1" | "[::1]")
    }

    fn base(&self) -> String {
        let scheme = if self.is_loopback() { "http" } else { "https" };
        format!("{scheme}://{}", self.registry)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sep = if self.reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        write!(
            f,
            "{}/{}{sep}{}",
            self.registry, self.repository, self.reference
        )
    }
}

/// A pulled artifact: the manifest bytes and its digest, the config and the component.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The OCI manifest as served.
    pub manifest: Vec<u8>,
    /// Its digest.
    pub digest: String,
    /// The config blob.
    pub config: Vec<u8>,
    /// The component (checked against its descriptor by the caller).
    pub layer: Vec<u8>,
}

/// A response: status, headers, body.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// The client.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    tls: tokio_rustls::TlsConnector,
    token: Option<String>,
}

impl Client {
    /// A client sending `token` (if any) to registries that ask for one.
    pub fn new(token: Option<String>) -> std::io::Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Client {
            runtime,
            tls: crate::net::web_pki_connector()?,
            token,
        })
    }

    /// Pulls an artifact: the manifest, then its config and single layer.
    pub fn pull(&self, r: &Reference) -> Result<Pulled, OciError> {
        let manifest_url = format!("{}/v2/{}/manifests/{}", r.base(), r.repository, r.reference);
        let manifest = self.fetch(r, &manifest_url, &[("accept", MANIFEST_MEDIA_TYPE)])?;
        let digest = digest_of(&manifest);
        if r.reference.starts_with("sha256:") && digest != r.reference {
            return Err(OciError::Refused {
                status: 200,
                what: format!("manifest {r}"),
                body: format!("the manifest's digest is {digest}, not the one asked for"),
            });
        }
        with_blobs(
            manifest,
            digest,
            |digest| {
                self.fetch(
                    r,
                    &format!("{}/v2/{}/blobs/{digest}", r.base(), r.repository),
                    &[],
                )
            },
            |reason| OciError::Refused {
                status: 200,
                what: format!("manifest {r}"),
                body: reason,
            },
        )
    }

    /// What a registry holds: each repository (at most `limit`) with its tags (at most
    /// `limit` each), from `/v2/_catalog` and `/v2/<name>/tags/list`.
    pub fn catalog(
        &self,
        registry: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, OciError> {
        let at = Reference {
            registry: registry.to_string(),
            repository: "catalog".to_string(),
            reference: "latest".to_string(),
        };
        let list = |url: &str, field: &str| -> Result<Vec<String>, OciError> {
            let body = self.fetch(&at, url, &[])?;
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| OciError::Refused {
                    status: 200,
                    what: url.to_string(),
                    body: format!("not a listing: {e}"),
                })?;
            Ok(value[field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .take(limit)
                .collect())
        };
        let base = at.base();
        let mut out = Vec::new();
        for name in list(&format!("{base}/v2/_catalog?n={limit}"), "repositories")? {
            if roster_registry::storage::check_name(&name).is_err() {
                continue;
            }
            let tags = list(&format!("{base}/v2/{name}/tags/list?n={limit}"), "tags")?;
            out.push((name, tags));
        }
        Ok(out)
    }

    /// Pushes an artifact's blobs (skipping those present) and its manifest under the
    /// reference's tag; returns the manifest's digest.
    pub fn push(&self, r: &Reference, artifact: &Artifact) -> Result<String, OciError> {
        for blob in [&artifact.layer, &artifact.config] {
            let digest = digest_of(blob);
            let head = format!("{}/v2/{}/blobs/{digest}", r.base(), r.repository);
            if self
                .send(r, http::Method::HEAD, &head, &[], Vec::new())?
                .status
                == 200
            {
                continue;
            }
            let upload = format!(
                "{}/v2/{}/blobs/uploads/?digest={digest}",
                r.base(),
                r.repository
            );
            let answer = self.send(r, http::Method::POST, &upload, &[], blob.to_vec())?;
            expect(answer, 201, &format!("blob {digest}"))?;
        }
        let url = format!("{}/v2/{}/manifests/{}", r.base(), r.repository, r.reference);
        let answer = self.send(
            r,
            http::Method::PUT,
            &url,
            &[("content-type", MANIFEST_MEDIA_TYPE)],
            artifact.manifest.clone(),
        )?;
        expect(answer, 201, &format!("manifest {r}"))?;
        Ok(digest_of(&artifact.manifest))
    }

    fn fetch(
        &self,
        r: &Reference,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<u8>, OciError> {
        let answer = self.send(r, http::Method::GET, url, headers, Vec::new())?;
        Ok(expect(answer, 200, url)?.body)
    }

    /// Sends a request, answering an auth challenge once: a Bearer challenge by fetching
    /// a token from its realm (with our token as the password, if any), a Basic one with
    /// our token as the password.
    fn send(
        &self,
        r: &Reference,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, OciError> {
        let mut auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        for _ in 0..2 {
            let mut all: Vec<(&str, String)> =
                headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
            if let Some(a) = &auth {
                all.push(("authorization", a.clone()));
            }
            let answer = self.exchange(r, method.clone(), url, &all, body.clone())?;
            if answer.status != 401 {
                return Ok(answer);
            }
            let challenge = answer
                .headers
                .get(http::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let next = if challenge.starts_with("Basic") {
                self.token.as_ref().map(|t| {
                    use base64::Engine;
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("roster:{t}"))
                    )
                })
            } else if let Some(params) = challenge.strip_prefix("Bearer ") {
                Some(format!("Bearer {}", self.bearer_token(r, params)?))
            } else {
                None
            };
            match next {
                Some(n) if auth.as_ref() != Some(&n) => auth = Some(n),
                _ => return Ok(answer),
            }
        }
        self.exchange(r, method, url, &[], body)
    }

    /// Fetches a token from a Bearer challenge's realm.
    fn bearer_token(&self, r: &Reference, params: &str) -> Result<String, OciError> {
        let mut realm = None;
        let mut query = Vec::new();
        for part in params.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            let v = v.trim_matches('"');
            match k {
                "realm" => realm = Some(v.to_string()),
                "service" | "scope" => query.push(format!("{k}={}", urlencode(v))),
                _ => {}
            }
        }
        let realm = realm.ok_or_else(|| OciError::Unavailable {
            registry: r.registry.clone(),
            reason: "a Bearer challenge without a realm".into(),
        })?;
        let url = if query.is_empty() {
            realm
        } else {
            format!("{realm}?{}", query.join("&"))
        };
        let mut headers = Vec::new();
        if let Some(t) = &self.token {
            use base64::Engine;
            headers.push((
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("roster:{t}"))
                ),
            ));
        }
        let answer = self.exchange(r, http::Method::GET, &url, &headers, Vec::new())?;
        let answer = expect(answer, 200, "the token endpoint")?;
        let json: serde_json::Value =
            serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
        json["token"]
            .as_str()
            .or(json["access_token"].as_str())
            .map(str::to_string)
            .ok_or_else(|| OciError::Unavailable {
                registry: r.registry.clone(),
                reason: "the token endpoint gave no token".into(),
            })
    }

    fn exchange(
        &self,
        r: &Reference,
        method: http::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, OciError> {
        let unavailable = |reason: String| OciError::Unavailable {
            registry: r.registry.clone(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| unavailable(format!("{url}: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let tls = self.tls.clone();
        let https = parsed.scheme() == "https";
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.runtime.block_on(async move {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| unavailable(format!("connecting to {authority}: {e}")))?;
            let mut request = http::Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, authority.as_str())
                .header(http::header::USER_AGENT, "roster/0.1");
            for (k, v) in &headers {
                request = request.header(k.as_str(), v.as_str());
            }
            let request = request
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| unavailable(e.to_string()))?;
            let response = if https {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| unavailable(e.to_string()))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| unavailable(format!("TLS: {e}")))?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .map_err(|e| unavailable(e.to_string()))?;
                tokio::spawn(conn);
                sender.send_request(request).await
            } else {
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await
                        .map_err(|e| unavailable(e.to_string()))?;
                tokio::spawn(conn);
                sender.send_request(request).await
            }
            .map_err(|e| unavailable(e.to_string()))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .to_bytes()
                .to_vec();
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
    }
}

fn expect(answer: Answer, status: u16, what: &str) -> Result<Answer, OciError> {
    if answer.status == status {
        Ok(answer)
    } else {
        Err(OciError::Refused {
            status: answer.status,
            what: what.to_string(),
            body: String::from_utf8_lossy(&answer.body)
                .chars()
                .take(500)
                .collect(),
        })
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The annotation naming a manifest's tag in an OCI image layout's `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Where an artifact lives: a registry, or an OCI image layout directory (`oci:DIR[:TAG]`,
/// as `skopeo copy ... oci:DIR:TAG` writes it) for installs without network access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A registry reference.
    Registry(Reference),
    /// An OCI image layout directory and the tag to take (the only manifest when `None`).
    Layout(std::path::PathBuf, Option<String>),
}

impl Source {
    /// Parses `oci:DIR[:TAG]` or a registry reference.
    pub fn parse(text: &str) -> Result<Source, OciError> {
        match text
            .strip_prefix("oci:")
            .filter(|rest| !rest.starts_with("//"))
        {
            Some(rest) => {
                let (dir, tag) = match rest.rsplit_once(':') {
                    Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => {
                        (dir, Some(tag.to_string()))
                    }
                    _ => (rest, None),
                };
                if dir.is_empty() {
                    return Err(OciError::Reference(text.to_string()));
                }
                Ok(Source::Layout(dir.into(), tag))
            }
            None => Reference::parse(text).map(Source::Registry),
        }
    }
}

fn layout_error(dir: &std::path::Path, reason: impl std::fmt::Display) -> OciError {
    OciError::Unavailable {
        registry: format!("oci:{}", dir.display()),
        reason: reason.to_string(),
    }
}

/// Writes an artifact into an OCI image layout directory under `tag`, adding to an
/// existing layout.
pub fn write_layout(
    dir: &std::path::Path,
    tag: &str,
    artifact: &Artifact,
) -> Result<String, OciError> {
    let err = |e: std::io::Error| layout_error(dir, e);
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(err)?;
    for blob in [&artifact.config, &artifact.layer, &artifact.manifest] {
        let digest = digest_of(blob);
        std::fs::write(blobs.join(&digest["sha256:".len()..]), blob).map_err(err)?;
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(err)?;
    let index_path = dir.join("index.json");
    let mut manifests: Vec<serde_json::Value> = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("manifests").and_then(|m| m.as_array()).cloned())
        .unwrap_or_default();
    manifests.retain(|m| m["annotations"][REF_NAME] != tag);
    let digest = digest_of(&artifact.manifest);
    manifests.push(serde_json::json!({
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": digest,
        "size": artifact.manifest.len(),
        "annotations": { REF_NAME: tag },
    }));
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": manifests });
    std::fs::write(
        &index_path,
        serde_json::to_vec_pretty(&index).unwrap_or_default(),
    )
    .map_err(err)?;
    Ok(digest)
}

/// Reads an artifact from an OCI image layout directory: the manifest tagged `tag` (or
/// the only one), its config and its single layer. Digests are checked by the caller.
pub fn read_layout(dir: &std::path::Path, tag: Option<&str>) -> Result<Pulled, OciError> {
    let index_path = dir.join("index.json");
    let index: serde_json::Value = std::fs::read(&index_path)
        .map_err(|e| layout_error(dir, format!("index.json: {e}")))
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| layout_error(dir, format!("index.json: {e}")))
        })?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen: Vec<&serde_json::Value> = manifests
        .iter()
        .filter(|m| tag.is_none_or(|t| m["annotations"][REF_NAME] == t))
        .collect();
    let entry = match chosen.as_slice() {
        [one] => *one,
        [] => {
            return Err(layout_error(
                dir,
                format!("no manifest tagged `{}`", tag.unwrap_or("")),
            ));
        }
        _ => {
            return Err(layout_error(
                dir,
                "several manifests; name one with oci:DIR:TAG",
            ));
        }
    };
    let blob = |digest: &str| -> Result<Vec<u8>, OciError> {
        let hex = roster_registry::storage::digest_hex(digest)
            .map_err(|_| layout_error(dir, format!("`{digest}` is not a sha256 digest")))?;
        std::fs::read(dir.join("blobs").join("sha256").join(hex))
            .map_err(|e| layout_error(dir, format!("blob {digest}: {e}")))
    };
    let digest = entry["digest"].as_str().unwrap_or_default().to_string();
    let manifest = blob(&digest)?;
    if digest_of(&manifest) != digest {
        return Err(layout_error(
            dir,
            format!("the manifest blob does not match its digest {digest}: it was tampered with"),
        ));
    }
    with_blobs(manifest, digest, blob, |reason| layout_error(dir, reason))
}

/// Completes a pulled manifest with its config blob and its first layer, fetched by
/// `blob`; the manifest must parse as an OCI image manifest.
fn with_blobs(
    manifest: Vec<u8>,
    digest: String,
    blob: impl Fn(&str) -> Result<Vec<u8>, OciError>,
    bad: impl Fn(String) -> OciError,
) -> Result<Pulled, OciError> {
    let parsed: roster_registry::artifact::OciManifest = serde_json::from_slice(&manifest)
        .map_err(|e| bad(format!("not an OCI image manifest: {e}")))?;
    let config = blob(&parsed.config.digest)?;
    let layer = match parsed.layers.first() {
        Some(l) => blob(&l.digest)?,
        None => Vec::new(),
    };
    Ok(Pulled {
        manifest,
        digest,
        config,
        layer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pull_through_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let storage = roster_registry::Storage::open(dir.path()).unwrap();
        let config = roster_registry::RegistryConfig::with_tokens(&["tok".into()], false);
        let port = roster_registry::spawn_on_loopback(storage, config)
            .unwrap()
            .port();
        let artifact = Artifact::build(
            "acme.w",
            "1.0.0",
            "acme",
            b"component".to_vec(),
            "[plugin]",
            None,
            &[],
            &[],
            "2026-11-21T00:00:00Z",
        );
        let r = Reference::parse(&format!("127.0.0.1:{port}/acme/w:1.0.0")).unwrap();
        let anonymous = Client::new(None).unwrap();
        assert!(matches!(
            anonymous.push(&r, &artifact),
            Err(OciError::Refused { status: 401, .. })
        ));
        let digest = Client::new(Some("tok".into()))
            .unwrap()
            .push(&r, &artifact)
            .unwrap();
        let pulled = anonymous.pull(&r).unwrap();
        assert_eq!(pulled.digest, digest);
        assert_eq!(pulled.layer, b"component");
        assert_eq!(pulled.manifest, artifact.manifest);
    }

    #[test]
    fn references_parse() {
        let r = Reference::parse("127.0.0.1:5000/roster/lead-enricher:1.2.0").unwrap();
        assert_eq!(r.repository, "roster/lead-enricher");
        assert_eq!(r.reference, "1.2.0");
        assert!(r.is_loopback());
        let r = Reference::parse("ghcr.io/acme/worker").unwrap();
        assert_eq!(r.reference, "latest");
        assert!(!r.is_loopback());
        assert!(Reference::parse("worker:1.0").is_err());
        assert!(Reference::parse("ghcr.io/../x:1").is_err());
        let d = digest_of(b"x");
        let r = Reference::parse(&format!("localhost:5000/a/b@{d}")).unwrap();
        assert_eq!(r.to_string(), format!("localhost:5000/a/b@{d}"));
    }
}
