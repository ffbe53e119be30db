//! The registry's HTTP API, driven over loopback with plain HTTP/1.1 requests: pushes need
//! a token, chunked and monolithic uploads, digests checked, manifests by tag and digest,
//! tags and catalog with pages, the wasm-pkg discovery document.

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine;
use roster_registry::artifact::{Artifact, describe};
use roster_registry::{RegistryConfig, Storage, digest_of, router};

struct Server {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(config: RegistryConfig) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, router(storage, config))
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Server {
            port,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// One request; returns the status, the headers (lower-case names) and the body.
    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nconnection: close\r\ncontent-length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, raw[split + 4..].to_vec())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("roster:{token}"))
    )
}

#[test]
fn pushes_need_a_token_and_blobs_manifests_and_tags_round_trip() {
    let server = Server::start(RegistryConfig::with_tokens(&["s3cret".into()], false));
    let auth = basic("s3cret");
    let auth = [("authorization", auth.as_str())];

    // The version check asks for credentials; with them it answers.
    let (status, headers, _) = server.call("GET", "/v2/", &[], b"");
    assert_eq!(status, 401);
    assert_eq!(
        header(&headers, "www-authenticate"),
        Some("Basic realm=\"roster\"")
    );
    assert_eq!(server.call("GET", "/v2/", &auth, b"").0, 200);
    // A push without a token, or with a wrong one, is refused.
    assert_eq!(
        server
            .call("POST", "/v2/roster/x/blobs/uploads/", &[], b"")
            .0,
        401
    );
    let wrong = basic("nope");
    assert_eq!(
        server
            .call(
                "POST",
                "/v2/roster/x/blobs/uploads/",
                &[("authorization", &wrong)],
                b""
            )
            .0,
        401
    );

    let artifact = Artifact::build(
        "acme.worker",
        "1.0.0",
        "acme",
        b"\0asm component bytes".to_vec(),
        "[plugin]\nid = \"acme.worker\"\n",
        None,
        &[],
        &[],
        "2026-11-21T00:00:00Z",
    );
    let d = describe(&artifact.manifest).unwrap();

    // Chunked upload of the layer (as oci-client does), with an out-of-order chunk refused.
    let (status, headers, _) = server.call("POST", "/v2/roster/x/blobs/uploads/", &auth, b"");
    assert_eq!(status, 202);
    let location = header(&headers, "location").unwrap().to_string();
    let (first, second) = artifact.layer.split_at(5);
    let range = format!("0-{}", first.len() - 1);
    let (status, headers, _) = server.call(
        "PATCH",
        &location,
        &[auth[0], ("content-range", &range)],
        first,
    );
    assert_eq!(status, 202);
    assert_eq!(header(&headers, "range"), Some(range.as_str()));
    assert_eq!(
        server
            .call(
                "PATCH",
                &location,
                &[auth[0], ("content-range", "0-3")],
                second
            )
            .0,
        416
    );
    // The whole rest without Content-Range (as skopeo does), then the digest: a wrong
    // digest is refused.
    assert_eq!(server.call("PATCH", &location, &auth, second).0, 202);
    let finish = format!("{location}?digest={}", d.layer.digest);
    let (status, headers, _) = server.call("PUT", &finish, &auth, b"");
    assert_eq!(status, 201);
    assert_eq!(
        header(&headers, "docker-content-digest"),
        Some(d.layer.digest.as_str())
    );

    // Monolithic upload of the config, with a wrong digest first.
    let bad = format!("/v2/roster/x/blobs/uploads/?digest={}", digest_of(b"other"));
    let (status, _, body) = server.call("POST", &bad, &auth, &artifact.config);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("DIGEST_INVALID"));
    let good = format!(
        "/v2/roster/x/blobs/uploads/?digest={}",
        d.manifest.config.digest
    );
    assert_eq!(server.call("POST", &good, &auth, &artifact.config).0, 201);

    // A manifest naming a blob that was not pushed is refused; this one is stored.
    let orphan = Artifact::build(
        "acme.worker",
        "1.0.1",
        "acme",
        b"other bytes".to_vec(),
        "[plugin]",
        None,
        &[],
        &[],
        "2026-11-21T00:00:00Z",
    );
    let (status, _, body) = server.call(
        "PUT",
        "/v2/roster/x/manifests/1.0.1",
        &auth,
        &orphan.manifest,
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_BLOB_UNKNOWN"));
    let (status, headers, _) = server.call(
        "PUT",
        "/v2/roster/x/manifests/1.0.0",
        &[
            auth[0],
            ("content-type", "application/vnd.oci.image.manifest.v1+json"),
        ],
        &artifact.manifest,
    );
    assert_eq!(status, 201);
    let digest = header(&headers, "docker-content-digest")
        .unwrap()
        .to_string();
    assert_eq!(digest, digest_of(&artifact.manifest));

    // Anonymous pulls: by tag and by digest, HEAD and GET, blobs.
    let (status, headers, body) = server.call("GET", "/v2/roster/x/manifests/1.0.0", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(body, artifact.manifest);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let (status, headers, body) = server.call(
        "HEAD",
        &format!("/v2/roster/x/manifests/{digest}"),
        &[],
        b"",
    );
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(
        header(&headers, "content-length"),
        Some(artifact.manifest.len().to_string().as_str())
    );
    let (status, _, body) = server.call(
        "GET",
        &format!("/v2/roster/x/blobs/{}", d.layer.digest),
        &[],
        b"",
    );
    assert_eq!((status, body), (200, artifact.layer.clone()));
    let (status, _, body) = server.call("GET", "/v2/roster/x/manifests/9.9.9", &[], b"");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_UNKNOWN"));
    assert_eq!(
        server
            .call("GET", "/v2/roster/../x/manifests/1", &[], b"")
            .0,
        400
    );

    // Tags and catalog, with pages.
    for tag in ["1.1.0", "2.0.0"] {
        let path = format!("/v2/roster/x/manifests/{tag}");
        assert_eq!(server.call("PUT", &path, &auth, &artifact.manifest).0, 201);
    }
    let (_, _, body) = server.call("GET", "/v2/roster/x/tags/list", &[], b"");
    let tags: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1.0.0", "1.1.0", "2.0.0"]));
    let (_, headers, body) = server.call("GET", "/v2/roster/x/tags/list?n=2", &[], b"");
    let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["tags"], serde_json::json!(["1.0.0", "1.1.0"]));
    assert_eq!(
        header(&headers, "link"),
        Some("</v2/roster/x/tags/list?n=2&last=1.1.0>; rel=\"next\"")
    );
    let (_, _, body) = server.call("GET", "/v2/_catalog", &[], b"");
    let catalog: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["roster/x"]));
    assert_eq!(
        server.call("GET", "/v2/roster/none/tags/list", &[], b"").0,
        404
    );

    // Discovery for wasm package tools.
    let (_, _, body) = server.call("GET", "/.well-known/wasm-pkg/registry.json", &[], b"");
    let found: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(found["preferredProtocol"], "oci");
    assert_eq!(
        found["oci"]["registry"],
        format!("127.0.0.1:{}", server.port)
    );
}

#[test]
fn a_private_registry_needs_a_token_to_pull_and_one_without_tokens_takes_no_pushes() {
    let private = Server::start(RegistryConfig::with_tokens(&["t".into()], true));
    assert_eq!(private.call("GET", "/v2/_catalog", &[], b"").0, 401);
    let auth = basic("t");
    assert_eq!(
        private
            .call("GET", "/v2/_catalog", &[("authorization", &auth)], b"")
            .0,
        200
    );
    let bearer = [("authorization", "Bearer t")];
    assert_eq!(private.call("GET", "/v2/_catalog", &bearer, b"").0, 200);

    let read_only = Server::start(RegistryConfig::with_tokens(&[], false));
    assert_eq!(read_only.call("GET", "/v2/", &[], b"").0, 200);
    assert_eq!(
        read_only
            .call("POST", "/v2/roster/x/blobs/uploads/", &[], b"")
            .0,
        403
    );
}
