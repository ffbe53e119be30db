//! The host's outbound HTTP client, for workers' requests and for every connector: every
//! destination is checked before anything is sent.
//!
//! The rules, each checked by the host and never by the caller:
//! - the URL's scheme, host and port must match a granted [`Origin`](crate::scope::Origin);
//! - the host name is resolved by the host, and every address it would connect to is
//!   checked: private, loopback, link-local, shared, reserved and cloud-metadata addresses
//!   are refused unless the origin sets `allow-private`; the connection goes to the checked
//!   address itself, so a second DNS answer cannot swap it (no rebinding);
//! - redirects are followed by the host, and every hop passes the same checks;
//!   credentials are dropped when a redirect leaves the origin;
//! - the `Host` header and other connection-level headers cannot be set by the caller:
//!   the host writes `Host` from the checked URL;
//! - the response body is capped at the granted size, and the request at the granted and
//!   remaining time.
//!
//! Connections use HTTP/1.1, over rustls for `https`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;

use crate::scope::HttpScope;

/// A TLS connector trusting the web PKI roots (rustls with ring), for every outbound
/// HTTPS connection the host makes.
pub(crate) fn web_pki_connector() -> std::io::Result<tokio_rustls::TlsConnector> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Headers a worker may not set: they control the connection or where the request goes.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Headers dropped when a redirect leaves the original origin.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie"];

/// Why an address may not be reached without `allow-private`, or `None` if it may.
pub fn restricted_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("an unspecified address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        Some("a reserved address")
    } else {
        None
    }
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return restricted_v4(v4);
    }
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a private (unique local) address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64: judge the embedded IPv4 address.
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        restricted_v4(Ipv4Addr::new(a, b, c, d))
    } else if s[0] == 0x2002 {
        // 6to4: judge the embedded IPv4 address.
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        restricted_v4(Ipv4Addr::new(a, b, c, d))
    } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0 {
        Some("a deprecated IPv4-compatible address")
    } else {
        None
    }
}

/// A failed request, mapped onto the WIT error the worker receives.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// The grant does not allow it.
    Denied(String),
    /// The request is malformed.
    Invalid(String),
    /// The response body is larger than allowed.
    TooLarge(String),
    /// The peer could not be reached or answered badly, or the request timed out.
    Unavailable(String),
}

/// A checked response.
#[derive(Debug)]
pub struct Fetched {
    /// The final status.
    pub status: u16,
    /// The final headers.
    pub headers: Vec<(String, String)>,
    /// The body, within the cap.
    pub body: Vec<u8>,
    /// The final URL.
    pub url: String,
    /// Every URL visited, the first included.
    pub hops: Vec<String>,
}

/// The host's outbound HTTP client: a small runtime of its own so that synchronous host
/// calls can drive asynchronous I/O from any thread.
pub struct HttpClient {
    runtime: tokio::runtime::Runtime,
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Starts the client's runtime and loads the web PKI roots.
    pub fn new() -> std::io::Result<HttpClient> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("roster-http")
            .enable_all()
            .build()?;
        Ok(HttpClient {
            runtime,
            tls: web_pki_connector()?,
        })
    }

    /// Sends a request under `scope`, following redirects, giving up at `deadline` — or as
    /// soon as `halt` is set (the worker was paused).
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &self,
        scope: &HttpScope,
        method: &http::Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
        deadline: Instant,
        halt: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<Fetched, HttpError> {
        let headers = check_headers(headers)?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let budget = remaining.min(Duration::from_millis(scope.timeout_ms));
        let halted = async {
            loop {
                if halt.is_some_and(|h| h.load(std::sync::atomic::Ordering::SeqCst)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        self.runtime.block_on(async {
            tokio::select! {
                result = tokio::time::timeout(
                    budget,
                    self.follow(scope, method.clone(), url, headers, body),
                ) => match result {
                    Ok(result) => result,
                    Err(_) => Err(HttpError::Unavailable(format!(
                        "no response within {} ms",
                        budget.as_millis()
                    ))),
                },
                () = halted => Err(HttpError::Unavailable(
                    "interrupted: the worker was paused".into(),
                )),
            }
        })
    }

    async fn follow(
        &self,
        scope: &HttpScope,
        mut method: http::Method,
        url: &str,
        mut headers: http::HeaderMap,
        mut body: Option<Vec<u8>>,
    ) -> Result<Fetched, HttpError> {
        let mut current =
            url::Url::parse(url).map_err(|e| HttpError::Invalid(format!("`{url}`: {e}")))?;
        let first_origin = current.origin();
        let mut hops = Vec::new();
        loop {
            hops.push(current.to_string());
            let target = check_url(scope, &current).await?;
            let response = self
                .exchange(&target, &current, &method, &headers, body.clone())
                .await?;
            let status = response.status();
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if status.is_redirection() && status != http::StatusCode::NOT_MODIFIED {
                let Some(location) = location else {
                    return read(response, scope, current, hops).await;
                };
                if hops.len() > scope.max_redirects as usize {
                    return Err(HttpError::Denied(format!(
                        "more than {} redirects",
                        scope.max_redirects
                    )));
                }
                let next = current.join(&location).map_err(|e| {
                    HttpError::Unavailable(format!("bad redirect location `{location}`: {e}"))
                })?;
                if status == http::StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == http::Method::POST)
                {
                    method = http::Method::GET;
                    body = None;
                }
                if next.origin() != first_origin {
                    for name in CREDENTIAL_HEADERS {
                        headers.remove(*name);
                    }
                }
                current = next;
                continue;
            }
            return read(response, scope, current, hops).await;
        }
    }

    async fn exchange(
        &self,
        target: &Target,
        url: &url::Url,
        method: &http::Method,
        headers: &http::HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<http::Response<hyper::body::Incoming>, HttpError> {
        let tcp = connect(&target.addrs).await?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::HOST, target.authority.as_str())
            .header(http::header::USER_AGENT, "roster/0.1");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| HttpError::Invalid(e.to_string()))?;

        let unavailable = |e: hyper::Error| HttpError::Unavailable(format!("{}: {e}", target.host));
        if url.scheme() == "https" {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| HttpError::Invalid(format!("`{}`: {e}", target.host)))?;
            let tls =
                self.tls.connect(name, tcp).await.map_err(|e| {
                    HttpError::Unavailable(format!("TLS with {}: {e}", target.host))
                })?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .map_err(unavailable)?;
            tokio::spawn(conn);
            sender.send_request(request).await.map_err(unavailable)
        } else {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .map_err(unavailable)?;
            tokio::spawn(conn);
            sender.send_request(request).await.map_err(unavailable)
        }
    }
}

/// Where a checked URL may be connected to.
struct Target {
    host: String,
    authority: String,
    addrs: Vec<SocketAddr>,
}

/// Checks a URL's scheme and origin against the grant, without resolving it; returns the
/// matching origin, the host and the port.
fn check_origin<'s>(
    scope: &'s HttpScope,
    url: &url::Url,
) -> Result<(&'s crate::scope::Origin, String, u16), HttpError> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(HttpError::Denied(format!(
            "scheme `{scheme}` is not allowed"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(HttpError::Invalid(
            "credentials in URLs are not accepted".into(),
        ));
    }
    // Matched as written in the URL (IPv6 literals keep their brackets, as in origins).
    let host = url
        .host_str()
        .ok_or_else(|| HttpError::Invalid(format!("`{url}` has no host")))?
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| HttpError::Invalid(format!("`{url}` has no port")))?;
    let origin = scope
        .allow
        .iter()
        .find(|o| o.parsed().is_ok_and(|p| p.matches(scheme, &host, port)))
        .ok_or_else(|| {
            HttpError::Denied(format!("{scheme}://{host}:{port} is not a granted origin"))
        })?;
    Ok((origin, host, port))
}

/// Checks a URL against the grant without sending anything (the checks a dry run makes).
pub fn check_request_url(scope: &HttpScope, url: &str) -> Result<(), HttpError> {
    let parsed = url::Url::parse(url).map_err(|e| HttpError::Invalid(format!("`{url}`: {e}")))?;
    check_origin(scope, &parsed).map(|_| ())
}

/// Checks a URL against the grant and resolves it to the addresses that may be reached.
async fn check_url(scope: &HttpScope, url: &url::Url) -> Result<Target, HttpError> {
    let (origin, host, port) = check_origin(scope, url)?;
    let resolved: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        _ => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| HttpError::Unavailable(format!("cannot resolve {host}: {e}")))?
            .collect(),
    };
    let mut refused = None;
    let addrs: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|a| match restricted_reason(a.ip()) {
            Some(reason) if !origin.allow_private => {
                refused = Some((a.ip(), reason));
                false
            }
            _ => true,
        })
        .collect();
    if addrs.is_empty() {
        return Err(match refused {
            Some((ip, reason)) => HttpError::Denied(format!(
                "{host} is {ip}, {reason}, which the grant does not allow"
            )),
            None => HttpError::Unavailable(format!("{host} has no addresses")),
        });
    }
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let server_name = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => host.clone(),
    };
    Ok(Target {
        host: server_name,
        authority,
        addrs,
    })
}

async fn connect(addrs: &[SocketAddr]) -> Result<tokio::net::TcpStream, HttpError> {
    let mut last = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    Err(HttpError::Unavailable(format!(
        "cannot connect: {}",
        last.unwrap_or_default()
    )))
}

pub(crate) fn check_headers(headers: &[(String, String)]) -> Result<http::HeaderMap, HttpError> {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
            return Err(HttpError::Denied(format!(
                "header `{lower}` is set by the host, not by workers"
            )));
        }
        let name = http::HeaderName::from_bytes(lower.as_bytes())
            .map_err(|_| HttpError::Invalid(format!("`{name}` is not a valid header name")))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| HttpError::Invalid(format!("the value of `{name}` is not valid")))?;
        map.append(name, value);
    }
    Ok(map)
}

async fn read(
    response: http::Response<hyper::body::Incoming>,
    scope: &HttpScope,
    url: url::Url,
    hops: Vec<String>,
) -> Result<Fetched, HttpError> {
    let cap = scope.max_response_bytes;
    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(HttpError::TooLarge(format!(
            "the response declares {} bytes, more than the granted {cap}",
            declared.unwrap_or_default()
        )));
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = Limited::new(response.into_body(), cap as usize)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                HttpError::TooLarge(format!("the response exceeds the granted {cap} bytes"))
            } else {
                HttpError::Unavailable(format!("reading the response: {e}"))
            }
        })?
        .to_bytes()
        .to_vec();
    Ok(Fetched {
        status,
        headers,
        body,
        url: url.to_string(),
        hops,
    })
}

/// The header that carries a side effect's idempotency key to the peer.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// How long a throttling peer asked to be left alone (`Retry-After` on a 429 or 503), in
/// milliseconds.
pub fn retry_after_ms(fetched: &Fetched) -> Option<u64> {
    if fetched.status != 429 && fetched.status != 503 {
        return None;
    }
    let value = fetched
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.trim())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Some((at.timestamp_millis() - now).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_addresses_are_named() {
        let cases = [
            ("127.0.0.1", Some("a loopback address")),
            ("10.1.2.3", Some("a private address")),
            ("172.20.0.1", Some("a private address")),
            ("192.168.1.1", Some("a private address")),
            ("169.254.169.254", Some("a cloud metadata address")),
            ("169.254.1.1", Some("a link-local address")),
            ("100.64.0.1", Some("a shared (carrier-grade NAT) address")),
            ("0.0.0.0", Some("an unspecified address")),
            ("::1", Some("a loopback address")),
            ("fe80::1", Some("a link-local address")),
            ("fd00:ec2::254", Some("a cloud metadata address")),
            ("fc00::1", Some("a private (unique local) address")),
            ("::ffff:127.0.0.1", Some("a loopback address")),
            ("64:ff9b::a00:1", Some("a private address")),
            ("2002:a00:1::", Some("a private address")),
            ("93.184.215.14", None),
            ("2606:4700::1111", None),
        ];
        for (ip, expected) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(restricted_reason(ip), expected, "{ip}");
        }
    }

    #[test]
    fn connection_headers_are_refused() {
        for name in [
            "Host",
            "HOST",
            "Transfer-Encoding",
            "X-Forwarded-Host",
            "Connection",
        ] {
            let err = check_headers(&[(name.to_string(), "x".to_string())]).unwrap_err();
            assert!(matches!(err, HttpError::Denied(_)), "{name}");
        }
        assert!(check_headers(&[("accept".into(), "application/json".into())]).is_ok());
        assert!(matches!(
            check_headers(&[("bad name".into(), "x".into())]),
            Err(HttpError::Invalid(_))
        ));
    }
}
