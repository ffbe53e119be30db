//! People and tokens, for admins: accounts with their roles, adding and changing them,
//! disabling them, issuing and revoking API tokens, and one-time sign-in links.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::api::segment;
use super::fmt;
use super::layout::{self, Nav, Notice};
use super::session::{Posted, Visitor};
use crate::governance::access::Operation;

/// `GET /people`.
pub(super) async fn list(v: Visitor) -> Response {
    page(&v, None, None).await
}

/// A secret shown once: a token or a sign-in link.
struct Shown {
    what: String,
    secret: String,
}

async fn page(v: &Visitor, notice: Option<Notice>, shown: Option<Shown>) -> Response {
    let answer = match v.get("/v1/people?limit=1000").await {
        Ok(a) => a,
        Err(r) => return layout::refused(v, Nav::People, &r),
    };
    let accounts = answer["accounts"].as_array().cloned().unwrap_or_default();
    let tokens = answer["tokens"].as_array().cloned().unwrap_or_default();
    let manage = v.may_host(Operation::PeopleManage);
    let content = html! {
        h1 { "People" }
        p.lede { (accounts.len()) " accounts. Roles are granted host-wide (" code { "viewer" } ") or in a domain (" code { "reviewer@revenue" } ")." }
        @if let Some(s) = &shown {
            section.panel role="status" {
                h2 { (s.what) }
                p { "Copy it now: it is shown once, and only its digest is kept." }
                pre data-secret { (s.secret) }
            }
        }
        @if accounts.is_empty() {
            (layout::empty("No accounts yet."))
        } @else {
            table {
                thead { tr { th scope="col" { "Account" } th scope="col" { "Kind" } th scope="col" { "Roles" } th scope="col" { "Tokens" } @if manage { th scope="col" { "Change" } } } }
                tbody { @for a in &accounts {
                    @let id = fmt::text(&a["id"]);
                    tr {
                        th scope="row" {
                            (id)
                            @if !fmt::text(&a["name"]).is_empty() { br; span.muted { (fmt::text(&a["name"])) } }
                            @if a["disabled"] == true { " " span.badge.bad { "disabled" } }
                        }
                        td { (fmt::value(&a["kind"])) }
                        td { (a["roles"].as_array().into_iter().flatten().map(fmt::value).collect::<Vec<_>>().join(", ")) }
                        td {
                            @for t in tokens.iter().filter(|t| t["account"] == id) {
                                div {
                                    code { (fmt::text(&t["hint"])) "…" } " " (fmt::text(&t["name"]))
                                    @if let Some(exp) = t["expires_at"].as_i64() { span.muted { " until " (fmt::day(exp)) } }
                                    @if manage {
                                        " "
                                        form.inline method="post" action="/people" data-confirm="Revoke this token? Anything using it stops working." {
                                            (layout::csrf(v))
                                            input type="hidden" name="op" value="revoke";
                                            input type="hidden" name="token" value=(fmt::text(&t["id"]));
                                            button.ghost type="submit" { "revoke" }
                                        }
                                    }
                                }
                            }
                        }
                        @if manage {
                            td { (account_forms(v, a)) }
                        }
                    }
                } }
            }
        }
        @if manage {
            section.panel {
                h2 { "Add an account" }
                form method="post" action="/people" {
                    (layout::csrf(v))
                    input type="hidden" name="op" value="create";
                    label for="new-id" { "Id (an email address for people)" }
                    input #new-id name="id" required;
                    label for="new-name" { "Name" }
                    input #new-name name="name";
                    label for="new-kind" { "Kind" }
                    select #new-kind name="kind" { option value="user" { "person" } option value="service" { "program" } }
                    label for="new-roles" { "Roles (comma-separated)" }
                    input #new-roles name="roles" placeholder="reviewer@revenue, viewer";
                    div.actions { button.primary type="submit" { "Add" } }
                }
            }
        }
    };
    layout::page(v, "People", Nav::People, notice, content)
}

fn account_forms(v: &Visitor, a: &Value) -> Markup {
    let id = fmt::text(&a["id"]);
    let roles = a["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(fmt::value)
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        details {
            summary { "Change" }
            form method="post" action="/people" {
                (layout::csrf(v))
                input type="hidden" name="op" value="roles";
                input type="hidden" name="id" value=(id);
                label for=(format!("roles-{id}")) { "Roles" }
                input id=(format!("roles-{id}")) name="roles" value=(roles);
                div.actions { button type="submit" { "Save roles" } }
            }
            div.actions {
                form.inline method="post" action="/people" {
                    (layout::csrf(v))
                    input type="hidden" name="op" value="token";
                    input type="hidden" name="id" value=(id);
                    input name="name" placeholder="Token name" required aria-label="Token name";
                    " " button type="submit" { "Issue token" }
                }
                @if a["kind"] == "user" {
                    form.inline method="post" action="/people" {
                        (layout::csrf(v))
                        input type="hidden" name="op" value="link";
                        input type="hidden" name="id" value=(id);
                        button type="submit" { "Sign-in link" }
                    }
                }
                form.inline method="post" action="/people" data-confirm=(if a["disabled"] == true { "Enable this account?" } else { "Disable this account? Its tokens and sessions stop working." }) {
                    (layout::csrf(v))
                    input type="hidden" name="op" value=(if a["disabled"] == true { "enable" } else { "disable" });
                    input type="hidden" name="id" value=(id);
                    button.ghost type="submit" { @if a["disabled"] == true { "Enable" } @else { "Disable" } }
                }
            }
        }
    }
}

fn roles(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// `POST /people`: one change, through the API.
pub(super) async fn act(Posted { visitor: v, form }: Posted) -> Response {
    let id = form.text("id").unwrap_or_default();
    let account = format!("/v1/people/{}", segment(&id));
    let op = form.get("op").unwrap_or_default().to_string();
    let result = match op.as_str() {
        "create" => v
            .post(
                "/v1/people",
                &json!({
                    "id": id,
                    "kind": form.get("kind").unwrap_or("user"),
                    "name": form.text("name").unwrap_or_default(),
                    "roles": roles(form.text("roles")),
                }),
            )
            .await
            .map(|_| (format!("Added {id}."), None)),
        "roles" => v
            .call(
                Method::PATCH,
                &account,
                Some(&json!({ "roles": roles(form.text("roles")) })),
            )
            .await
            .map(|_| (format!("Saved the roles of {id}."), None)),
        "disable" | "enable" => v
            .call(
                Method::PATCH,
                &account,
                Some(&json!({ "disabled": op == "disable" })),
            )
            .await
            .map(|_| (format!("{id} is {op}d."), None)),
        "token" => v
            .post(
                &format!("{account}/tokens"),
                &json!({ "name": form.text("name").unwrap_or_else(|| "console".into()) }),
            )
            .await
            .map(|answer| {
                (
                    format!("Issued a token for {id}."),
                    Some(Shown {
                        what: format!("API token for {id}"),
                        secret: fmt::text(&answer["token"]).to_string(),
                    }),
                )
            }),
        "link" => v
            .post(&format!("{account}/login-links"), &json!({}))
            .await
            .map(|answer| {
                (
                    format!("Made a one-time sign-in link for {id}."),
                    Some(Shown {
                        what: format!("Sign-in link for {id} (works once, for 24 hours)"),
                        secret: fmt::text(&answer["link"]).to_string(),
                    }),
                )
            }),
        "revoke" => {
            let token = form.text("token").unwrap_or_default();
            v.call(
                Method::DELETE,
                &format!("/v1/tokens/{}", segment(&token)),
                None,
            )
            .await
            .map(|_| ("Revoked the token.".to_string(), None))
        }
        other => {
            return layout::refusal(
                StatusCode::BAD_REQUEST,
                &format!("`{other}` is not a change this page makes."),
            );
        }
    };
    match result {
        Ok((done, shown)) => page(&v, Some(Notice::Done(done)), shown).await,
        Err(r) if r.status == StatusCode::FORBIDDEN => layout::refused(&v, Nav::People, &r),
        Err(r) => {
            let mut response = page(&v, Some(Notice::Failed(r.message)), None).await;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
    }
}
