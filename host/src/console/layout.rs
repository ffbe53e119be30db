//! The page around every page: the header with what the visitor may open, the notice of
//! what was just done, errors in words, and the security headers every answer carries.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::api::Refusal;
use super::assets;
use super::visitor::Visitor;
use crate::governance::access::Operation;

/// The Content-Security-Policy of every page: only the console's own script, style and
/// connections; no frames, no plugins, forms only to itself.
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every console answer.
pub(super) async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The sections of the console, in the header's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Dashboard,
    Value,
    Approvals,
    Workers,
    Rules,
    Install,
    Audit,
    People,
    Kill,
}

impl Nav {
    const ALL: [Nav; 9] = [
        Nav::Dashboard,
        Nav::Value,
        Nav::Approvals,
        Nav::Workers,
        Nav::Rules,
        Nav::Install,
        Nav::Audit,
        Nav::People,
        Nav::Kill,
    ];

    fn label(self) -> &'static str {
        match self {
            Nav::Dashboard => "Dashboard",
            Nav::Value => "Value",
            Nav::Approvals => "Approvals",
            Nav::Workers => "Workers",
            Nav::Rules => "Rules",
            Nav::Install => "Install",
            Nav::Audit => "Audit",
            Nav::People => "People",
            Nav::Kill => "Kill switch",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Nav::Dashboard => "/",
            Nav::Value => "/value",
            Nav::Approvals => "/approvals",
            Nav::Workers => "/workers",
            Nav::Rules => "/rules",
            Nav::Install => "/install",
            Nav::Audit => "/audit",
            Nav::People => "/people",
            Nav::Kill => "/kill",
        }
    }

    /// Whether the visitor may open the section at all.
    fn open_to(self, v: &Visitor) -> bool {
        match self {
            Nav::Dashboard | Nav::Value => v.may_host(Operation::ExecutionsView),
            Nav::Approvals => {
                v.may_host(Operation::ApprovalsList)
                    || !v.domains_where(Operation::ApprovalsList).is_empty()
            }
            Nav::Workers | Nav::Rules => v.may_host(Operation::InventoryView),
            Nav::Install => v.may_host(Operation::GrantsChange),
            Nav::Audit => v.may_host(Operation::AuditRead),
            Nav::People => v.may_host(Operation::PeopleRead),
            Nav::Kill => {
                v.may_host(Operation::Kill) || !v.domains_where(Operation::Kill).is_empty()
            }
        }
    }
}

/// A line saying what was just done, or what went wrong.
pub(super) enum Notice {
    Done(String),
    Failed(String),
}

/// A whole page for a signed-in visitor.
pub(super) fn page(
    v: &Visitor,
    title: &str,
    nav: Nav,
    notice: Option<Notice>,
    content: Markup,
) -> Response {
    let body = html! {
        a.skip href="#main" { "Skip to the content" }
        header.top {
            a.brand href="/" { span.mark aria-hidden="true" { "◆" } " Roster" }
            nav aria-label="Sections" {
                ul {
                    @for item in Nav::ALL {
                        @if item.open_to(v) {
                            li {
                                a href=(item.href())
                                    aria-current=[(item == nav).then_some("page")]
                                    class=[(item == Nav::Kill).then_some("danger-link")] {
                                    (item.label())
                                }
                            }
                        }
                    }
                }
            }
            div.who {
                button.ghost type="button" data-theme-toggle aria-label="Switch between light and dark" { "◐" }
                span title=(v.account.id) { (display_name(&v.account)) }
                form method="post" action="/logout" {
                    (csrf(v))
                    button.ghost type="submit" { "Sign out" }
                }
            }
        }
        main #main tabindex="-1" {
            @match notice {
                Some(Notice::Done(text)) => p.notice.done role="status" { (text) },
                Some(Notice::Failed(text)) => p.notice.failed role="alert" { (text) },
                None => {},
            }
            (content)
        }
    };
    Html(document(title, body).into_string()).into_response()
}

fn display_name(account: &crate::store::Account) -> String {
    let roles = account.roles.join(", ");
    let name = if account.name.is_empty() {
        &account.id
    } else {
        &account.name
    };
    if roles.is_empty() {
        name.clone()
    } else {
        format!("{name} · {roles}")
    }
}

/// A page with no header (signing in, refusals before a session).
pub(super) fn bare(title: &str, content: Markup) -> Html<String> {
    Html(document(title, content).into_string())
}

fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Roster" }
                link rel="stylesheet" href=(assets::href("console.css"));
                link rel="icon" href=(PreEscaped(ICON));
                script src=(assets::href("console.js")) defer {}
            }
            body { (body) }
        }
    }
}

/// The favicon, inline.
const ICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cpath d='M8 1l7 7-7 7-7-7z' fill='%234f46e5'/%3E%3C/svg%3E";

/// The hidden CSRF field of a form.
pub(super) fn csrf(v: &Visitor) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

/// A page showing what went wrong above its content, answered with `status`.
pub(super) fn failed(
    v: &Visitor,
    (title, nav): (&str, Nav),
    status: StatusCode,
    message: String,
    content: Markup,
) -> Response {
    let mut response = page(v, title, nav, Some(Notice::Failed(message)), content);
    *response.status_mut() = status;
    response
}

/// A refusal as a page of its own, in words.
pub(super) fn refusal(status: StatusCode, message: &str) -> Response {
    let body = html! {
        main.signin {
            h1 { (status.canonical_reason().unwrap_or("Refused")) }
            p.error role="alert" { (message) }
            p { a href="/" { "Back to the console" } }
        }
    };
    (status, bare("Refused", body)).into_response()
}

/// A page whose API request was refused: the visitor's header, and the refusal in words.
pub(super) fn refused(v: &Visitor, nav: Nav, r: &Refusal) -> Response {
    let content = html! {
        h1 { (r.status.canonical_reason().unwrap_or("Refused")) }
        p.error role="alert" { (r.message) }
    };
    let mut response = page(v, "Refused", nav, None, content);
    *response.status_mut() = r.status;
    response
}

/// An empty state: what is not there yet, and why.
pub(super) fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}
