//! Signing in and out, and who a request comes from.
//!
//! A person signs in with an API token (checked by the API's own `whoami`, so failed
//! attempts are throttled like any failed authentication) or a one-time login link. The
//! session lives in the store under the digest of its secret; the browser holds the
//! secret in an HttpOnly, SameSite=Strict cookie (Secure when a TLS proxy says the page
//! came over HTTPS). Every state-changing form carries the session's CSRF token and must
//! come from the console's own origin. A session ends at sign-out, after
//! [`SESSION_HOURS`], or as soon as its account is disabled or its token stops working.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::Console;
use super::layout;
pub(super) use super::visitor::Visitor;
use crate::clock::HOUR_MS;
use crate::store::{Account, token_digest};

/// The session cookie's name.
pub(super) const COOKIE: &str = "roster_session";
/// How long a session lasts.
pub(super) const SESSION_HOURS: i64 = 12;

/// Where a visitor without a session is sent.
fn to_login(parts: &Parts) -> Response {
    if parts.method != Method::GET {
        return layout::refusal(
            StatusCode::FORBIDDEN,
            "Your session has ended. Sign in again, then repeat what you were doing.",
        );
    }
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/login?{query}")).into_response()
}

/// The session secret the request's cookie carries.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

impl Console {
    /// The account a session acts as now, if it still may act.
    fn account_of(&self, session: &crate::store::Session) -> Option<Account> {
        let service = &self.service;
        if let Some(token) = &session.token {
            let bootstrap = service
                .config()
                .api_token
                .as_ref()
                .is_some_and(|t| token_digest(t) == *token);
            if bootstrap {
                let account = crate::server::bootstrap_account(service);
                return (account.id == session.account).then_some(account);
            }
            if !service.store().token_valid(token).ok()? {
                return None;
            }
        }
        service
            .store()
            .account(&session.account)
            .ok()
            .flatten()
            .filter(|a| !a.disabled)
    }
}

impl FromRequestParts<Console> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Visitor, Response> {
        let Some(secret) = cookie(&parts.headers) else {
            return Err(to_login(parts));
        };
        let (c, s) = (console.clone(), secret.clone());
        let found = tokio::task::spawn_blocking(move || {
            let session = c.service.store().session(&s).ok().flatten()?;
            let account = c.account_of(&session)?;
            Some((session, account))
        })
        .await
        .ok()
        .flatten();
        let Some((session, account)) = found else {
            return Err(to_login(parts));
        };
        Ok(Visitor {
            console: console.clone(),
            account,
            csrf: session.csrf,
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
        })
    }
}

/// A form posted by a page: its fields in order (a name may repeat).
pub(super) struct Form(pub(super) Vec<(String, String)>);

impl Form {
    /// The first value of a field.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a field, trimmed, when it is not empty.
    pub(super) fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// Every value of a field.
    pub(super) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Whether a state-changing request comes from the console's own pages: the `Origin`
/// (or, without one, `Sec-Fetch-Site`) must say so when the browser sends it.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let bare = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        return bare.is_some() && bare == host;
    }
    match headers.get("sec-fetch-site").and_then(|s| s.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

impl FromRequest<Console> for Form {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Form, Response> {
        if !same_origin(request.headers()) {
            return Err(layout::refusal(
                StatusCode::FORBIDDEN,
                "This form was sent from another site, so it was not accepted.",
            ));
        }
        let form_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(layout::refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The console accepts forms only (application/x-www-form-urlencoded).",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, console)
            .await
            .map_err(|e| layout::refusal(e.status(), &e.body_text()))?;
        Ok(Form(
            url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// A state-changing form from a signed-in visitor, its CSRF token checked.
pub(super) struct Posted {
    pub(super) visitor: Visitor,
    pub(super) form: Form,
}

impl FromRequest<Console> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Posted, Response> {
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, console).await?;
        let form = Form::from_request(Request::from_parts(parts, body), console).await?;
        let given = form.get("csrf").unwrap_or_default();
        let expected = visitor.csrf.as_bytes();
        // Compare digests so the time taken says nothing about where they differ.
        use sha2::Digest as _;
        if sha2::Sha256::digest(given.as_bytes()) != sha2::Sha256::digest(expected) {
            return Err(layout::refusal(
                StatusCode::FORBIDDEN,
                "This form is out of date or was not sent by the console (its CSRF token does not match). Reload the page and try again.",
            ));
        }
        Ok(Posted { visitor, form })
    }
}

/// `?next=&code=` of the sign-in page.
#[derive(Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
    code: Option<String>,
}

/// Only paths of this site are followed after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

/// `GET /login`: the sign-in form (or, with a one-time code, the button that uses it).
pub(super) async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    login_form(&next, q.code.as_deref(), None)
}

fn login_form(next: &str, code: Option<&str>, error: Option<&str>) -> Response {
    let body = html! {
        main.signin {
            h1 { span.mark aria-hidden="true" { "◆" } " Roster" }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            @if let Some(code) = code {
                p { "You were given a one-time sign-in link. It works once." }
                form method="post" action="/login" {
                    input type="hidden" name="code" value=(code);
                    input type="hidden" name="next" value=(next);
                    button.primary type="submit" autofocus { "Sign in" }
                }
            } @else {
                p { "Sign in with an API token, or open a one-time sign-in link an admin gave you." }
                form method="post" action="/login" {
                    label for="token" { "API token" }
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    input type="hidden" name="next" value=(next);
                    button.primary type="submit" { "Sign in" }
                }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    (status, layout::bare("Sign in", body)).into_response()
}

/// The browser's address, when the server knows it.
pub(super) struct Peer(Option<ConnectInfo<SocketAddr>>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
        ))
    }
}

/// `POST /login`: opens a session from an API token or a one-time code.
pub(super) async fn login(
    State(console): State<Console>,
    Peer(peer): Peer,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let next = safe_next(form.get("next"));
    let (account, token, how) = if let Some(code) = form.text("code") {
        let c = console.clone();
        let found = tokio::task::spawn_blocking(move || c.service.store().redeem_login_code(&code))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        match found {
            Some(account) => (account, None, "login link"),
            None => {
                return login_form(
                    &next,
                    None,
                    Some(
                        "That sign-in link has been used or has expired. Ask an admin for a new one.",
                    ),
                );
            }
        }
    } else if let Some(token) = form.text("token") {
        match super::api::whoami(&console, &token, peer).await {
            Ok(account) => (account.id, Some(token_digest(&token)), "API token"),
            Err(message) => return login_form(&next, None, Some(&message)),
        }
    } else {
        return login_form(&next, None, Some("Enter an API token."));
    };
    let c = console.clone();
    let expires_at = c.service.store().clock().now_ms() + SESSION_HOURS * HOUR_MS;
    let opened = tokio::task::spawn_blocking(move || {
        c.service
            .store()
            .start_session(&account, token, expires_at, how)
    })
    .await;
    let Ok(Ok((secret, _))) = opened else {
        return layout::refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "The session could not be recorded. Try again in a moment.",
        );
    };
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if secure { "; Secure" } else { "" }
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

/// `POST /logout`: ends the session.
pub(super) async fn logout(headers: HeaderMap, Posted { visitor, .. }: Posted) -> Response {
    if let Some(secret) = cookie(&headers) {
        let service = visitor.console.service.clone();
        let _ = tokio::task::spawn_blocking(move || service.store().end_session(&secret)).await;
    }
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}
