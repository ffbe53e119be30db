//! Installing workers: the catalogue of the registries this host installs from, and a
//! plugin's review page — publisher and signature, requested, imported and granted
//! capabilities side by side, what an upgrade adds — where an admin chooses the grant
//! and installs or upgrades, hot, through the API.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{query, segment};
use super::fmt;
use super::layout::{self, Nav};
use super::session::{Posted, Visitor};

/// `GET /install`: what the registries offer, beside what is installed.
pub(super) async fn catalogue(v: Visitor) -> Response {
    let catalogue = match v.get("/v1/registry/catalogue").await {
        Ok(c) => c,
        Err(r) => return layout::refused(&v, Nav::Install, &r),
    };
    let installed = v
        .get("/v1/installations?limit=1000")
        .await
        .map(|i| i["installations"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let sources = catalogue["sources"].as_array().cloned().unwrap_or_default();
    let content = html! {
        h1 { "Install" }
        p.lede { "Plugins on the registries this host installs from. Open a version to review what it asks for before anything is installed." }
        @if sources.is_empty() {
            (layout::empty("This host installs from no registry yet. An admin lists registries under [registry] sources in roster.toml."))
        }
        @for s in &sources {
            section.panel {
                h2 { "Registry " code { (fmt::text(&s["registry"])) } }
                @if let Some(e) = s["error"].as_str() {
                    p.error { "It could not be read: " (e) }
                }
                @let repos = s["repositories"].as_array().cloned().unwrap_or_default();
                @if repos.is_empty() && s["error"].is_null() {
                    (layout::empty("It holds no plugins."))
                } @else if !repos.is_empty() {
                    table {
                        thead { tr { th scope="col" { "Plugin" } th scope="col" { "Versions (review one)" } } }
                        tbody { @for r in &repos { tr {
                            th scope="row" { (fmt::text(&r["name"])) }
                            td { @for (i, t) in r["tags"].as_array().into_iter().flatten().enumerate() {
                                @if i > 0 { " · " }
                                @let reference = format!("{}/{}:{}", fmt::text(&s["registry"]), fmt::text(&r["name"]), fmt::text(t));
                                a href=(format!("/install/review{}", query(&[("reference", Some(reference))]))) { (fmt::text(t)) }
                            } }
                        } } }
                    }
                }
            }
        }
        h2 { "Installed" }
        @if installed.is_empty() {
            (layout::empty("No worker is installed."))
        } @else {
            table {
                thead { tr { th scope="col" { "Worker" } th scope="col" { "Plugin" } th scope="col" { "Version" } th scope="col" { "Domain" } th scope="col" { "Acts as" } th scope="col" { "From a registry" } } }
                tbody { @for i in &installed { tr {
                    th scope="row" { a href=(format!("/workers/{}", segment(fmt::text(&i["name"])))) { (fmt::text(&i["name"])) } }
                    td { (fmt::text(&i["plugin"])) }
                    td { (fmt::text(&i["version"])) }
                    td { (fmt::text(&i["domain"])) }
                    td { code { (fmt::text(&i["principal"])) } }
                    td { @if i["from_registry"] == true { "yes" } @else { "no" } }
                } } }
            }
        }
    };
    layout::page(&v, "Install", Nav::Install, None, content)
}

/// `?reference=` of the review page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ReviewQuery {
    reference: Option<String>,
}

fn scope_cell(text: &Value) -> Markup {
    match text.as_str() {
        Some(t) if !t.trim().is_empty() => html! { pre { (t) } },
        Some(_) => html! { span.badge.ok { "yes" } },
        None => html! { span.muted { "—" } },
    }
}

/// The review as the API answered it.
fn review_markup(answer: &Value) -> Markup {
    let r = &answer["review"];
    let change = fmt::text(&answer["change"]);
    html! {
        section.panel {
            h2 { (fmt::text(&r["plugin"])) " " (fmt::text(&r["version"])) " " span.badge { (change) } }
            dl.facts {
                dt { "Installs as" } dd { (fmt::text(&r["worker"])) }
                dt { "Domain" } dd { (fmt::text(&r["domain"])) }
                dt { "Reference" } dd { code { (fmt::text(&r["reference"])) } }
                dt { "Publisher" } dd {
                    @match r["signer"].as_str() {
                        Some(key) => { span.badge.ok { "signed" } " by key " code { (key) } }
                        None => { span.badge.bad { "unsigned" } }
                    }
                }
                dt { "Manifest digest" } dd { code { (fmt::text(&r["manifest_digest"])) } }
                dt { "Component digest" } dd { code { (fmt::text(&r["component_digest"])) } " (pinned on install)" }
                @if let Some(current) = r["current_version"].as_str() {
                    dt { "Installed now" } dd { (current) }
                }
            }
        }
        section.panel {
            h2 { "Capabilities" }
            p.muted { "What the manifest requests, what the component actually imports, and what the grant would give." }
            table {
                thead { tr { th scope="col" { "Capability" } th scope="col" { "Requested" } th scope="col" { "Imported" } th scope="col" { "Granted" } } }
                tbody { @for line in r["capabilities"].as_array().into_iter().flatten() { tr {
                    th scope="row" { (fmt::value(&line["capability"])) @if line["optional"] == true { " " span.badge { "optional" } } }
                    td { (scope_cell(&line["requested"])) }
                    td { @if line["imported"] == true { span.badge.warn { "imported" } } @else { span.muted { "not imported" } } }
                    td { (scope_cell(&line["granted"])) }
                } } }
            }
            @let beyond = r["beyond_current_grant"].as_array().cloned().unwrap_or_default();
            @if !beyond.is_empty() {
                h3 { "What this version adds beyond the grant in force" }
                ul { @for b in &beyond { li { (fmt::value(b)) } } }
            }
            @let unused = r["unused"].as_array().cloned().unwrap_or_default();
            @if !unused.is_empty() {
                p { "Granted but never imported: " (unused.iter().map(fmt::value).collect::<Vec<_>>().join(", ")) }
            }
            @if let Some(g) = r["proposed_grant"].as_str() {
                h3 { "The grant it would run under" }
                pre { (g) }
            }
        }
        @if let Some(b) = answer["blocker"].as_str() {
            p.notice.failed { "Before it can be installed: " (b) }
        }
    }
}

fn install_form(v: &Visitor, reference: &str, answer: &Value) -> Markup {
    let r = &answer["review"];
    let change = fmt::text(&answer["change"]);
    let principals: Vec<String> = v
        .console
        .service
        .config()
        .directory
        .principals()
        .filter(|p| matches!(p.kind, crate::governance::directory::PrincipalKind::Service))
        .map(|p| p.id.clone())
        .collect();
    // The principal the domain's other workers act as comes first, then one named after
    // the domain.
    let domain = fmt::text(&r["domain"]);
    let word = domain.split('-').next().unwrap_or(domain);
    let mut usual: Vec<(usize, bool, String)> = principals
        .iter()
        .map(|p| {
            let n = v
                .console
                .service
                .workers()
                .values()
                .filter(|w| {
                    w.config.manifest.plugin.domain.as_str() == domain
                        && w.config.grant.grant.principal == *p
                })
                .count();
            (n, !word.is_empty() && p.contains(word), p.clone())
        })
        .collect();
    usual.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)).then_with(|| a.2.cmp(&b.2)));
    let principals: Vec<String> = usual.into_iter().map(|(_, _, p)| p).collect();
    let verb = match change {
        "upgrade" => "Upgrade",
        "downgrade" => "Downgrade",
        "regrant" => "Change the grant",
        _ => "Install",
    };
    html! {
        section.panel {
            h2 { "Grant and " (verb.to_lowercase()) }
            form method="post" action="/install/review" data-confirm=(format!("{verb} {} {} now?", fmt::text(&r["plugin"]), fmt::text(&r["version"]))) {
                (layout::csrf(v))
                input type="hidden" name="reference" value=(reference);
                label for="name" { "Worker name" }
                input #name name="name" value=(fmt::text(&r["worker"]));
                fieldset {
                    legend { "Grant" }
                    label { input type="radio" name="grant_choice" value="requested" checked; " Grant exactly what it requests (shown above)" }
                    label { input type="radio" name="grant_choice" value="file"; " Grant less: a grant file" }
                    textarea name="grant" rows="8" aria-label="Grant file (TOML)" placeholder="[grant]\nplugin = \"…\"\nprincipal = \"…\"\n\n[capabilities.records]\n…" {}
                }
                @if r["current_version"].is_null() {
                    label for="principal" { "Acts as (a service principal)" }
                    select #principal name="principal" {
                        @for p in &principals { option value=(p) { (p) } }
                    }
                }
                @if change == "downgrade" {
                    label { input type="checkbox" name="allow_downgrade" value="yes"; " Install this older version" }
                }
                div.actions { button.primary type="submit" { (verb) } }
            }
        }
    }
}

/// `GET /install/review?reference=`: what installing this version would mean.
pub(super) async fn review(v: Visitor, Query(q): Query<ReviewQuery>) -> Response {
    let Some(reference) = q.reference.filter(|r| !r.trim().is_empty()) else {
        return Redirect::to("/install").into_response();
    };
    let answer = match v
        .post("/v1/installations", &json!({ "reference": reference }))
        .await
    {
        Ok(a) => a,
        Err(r) => {
            let content = html! { p { a href="/install" { "← The catalogue" } } h1 { "Review" } };
            return layout::failed(&v, ("Review", Nav::Install), r.status, r.message, content);
        }
    };
    let content = html! {
        p { a href="/install" { "← The catalogue" } }
        h1 { "Review " (fmt::text(&answer["review"]["plugin"])) }
        (review_markup(&answer))
        (install_form(&v, &reference, &answer))
    };
    layout::page(&v, "Review", Nav::Install, None, content)
}

/// `POST /install/review`: installs or upgrades with the chosen grant, through the API.
pub(super) async fn install(Posted { visitor: v, form }: Posted) -> Response {
    let Some(reference) = form.text("reference") else {
        return layout::refusal(
            StatusCode::BAD_REQUEST,
            "Choose a plugin version to install.",
        );
    };
    let mut request = json!({
        "reference": reference,
        "apply": true,
        "allow_downgrade": form.get("allow_downgrade") == Some("yes"),
    });
    if let Some(name) = form.text("name") {
        request["name"] = json!(name);
    }
    if let Some(principal) = form.text("principal") {
        request["principal"] = json!(principal);
    }
    match form.get("grant_choice") {
        Some("file") => match form.text("grant") {
            Some(grant) => request["grant"] = json!(grant),
            None => {
                return layout::refusal(
                    StatusCode::BAD_REQUEST,
                    "Paste the grant file, or grant what it requests.",
                );
            }
        },
        _ => request["grant_requested"] = json!(true),
    }
    match v.post("/v1/installations", &request).await {
        Ok(answer) => {
            let name = fmt::text(&answer["review"]["worker"]).to_string();
            Redirect::to(&format!("/workers/{}?done=install", segment(&name))).into_response()
        }
        Err(r) => {
            // Show the review again with what went wrong.
            let again = v
                .post("/v1/installations", &json!({ "reference": reference }))
                .await;
            let content = html! {
                p { a href="/install" { "← The catalogue" } }
                h1 { "Review" }
                @if let Ok(answer) = &again {
                    (review_markup(answer))
                    (install_form(&v, &reference, answer))
                }
            };
            let status = if r.status.is_client_error() {
                r.status
            } else {
                StatusCode::BAD_GATEWAY
            };
            layout::failed(&v, ("Review", Nav::Install), status, r.message, content)
        }
    }
}
