//! Rules made without code over the API.
//!
//! - `GET /v1/rules` — the saved rules, their versions and readiness.
//! - `POST /v1/rules/check` — `{"text": ...}`: what checking the rule finds and the grant
//!   it would get (always 200; the problems are the answer).
//! - `POST /v1/rules` — `{"text": ...}`: save the rule as its next version (422 with every
//!   problem when it does not check); nothing is deployed.
//! - `GET /v1/rules/{name}` — one rule.
//! - `POST /v1/rules/{name}/test` — `{"version"?, "dataset"?, "sample"?}`: a dry run of a
//!   version on a staging dataset or on live records (`object/id`), nothing performed.
//! - `POST /v1/rules/{name}/deploy` — `{"version"?, "reason"}`: deploy a ready version.
//! - `POST /v1/rules/{name}/rollback` — `{"reason"}`: deploy the version that ran before.

use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path, json_requests};
use crate::governance::access::{Operation, Resource};
use crate::service::rules::{RuleCheck, RuleView};
use crate::service::staging::{Dataset, StagingReport};

/// A rule file's text.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleText {
    /// The rule file (TOML).
    text: String,
}

/// What to try a rule on.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleTrial {
    /// The version (the newest when absent).
    #[serde(default)]
    version: Option<u32>,
    /// A staging dataset (`records` and `events`), as for a worker's dry run.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    dataset: Option<serde_json::Value>,
    /// Live records to try it on, `object/id` (at most 100).
    #[serde(default)]
    sample: Vec<String>,
}

/// A deployment request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleDeploy {
    /// The version (the newest when absent).
    #[serde(default)]
    version: Option<u32>,
    /// Why (recorded).
    reason: String,
}

/// A rollback request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleRollback {
    /// Why (recorded).
    reason: String,
}

json_requests!(RuleText, RuleTrial, RuleDeploy, RuleRollback);

/// The saved rules.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RuleList {
    rules: Vec<RuleView>,
}

/// A rule's dry run.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RuleDryRun {
    #[schema(value_type = Object)]
    staging: StagingReport,
}

/// The domain a rule file names, for the access decision (the host when it names none).
fn domain_of(text: &str) -> Resource {
    let domain = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("rule")?.get("domain")?.as_str().map(str::to_string));
    match domain {
        Some(d) => Resource::Domain(d),
        None => Resource::Host,
    }
}

/// The domains a saved rule's versions work in (any of them may be tried, deployed or
/// rolled back to); none when no rule has the name.
fn saved_domains(caller: &Caller, name: &str) -> ApiResult<Vec<Resource>> {
    let Some(rule) = caller.service().store().rule(name)? else {
        return Ok(Vec::new());
    };
    let mut domains: Vec<Resource> = Vec::new();
    for v in &rule.versions {
        let d = domain_of(&v.text);
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    Ok(domains)
}

/// The caller may perform `operation` on every domain of the saved rule `name` (404
/// when there is none).
fn may_on_rule(caller: &Caller, operation: Operation, name: &str) -> ApiResult<()> {
    let domains = saved_domains(caller, name)?;
    if domains.is_empty() {
        return Err(ApiError::not_found(format!("no rule is named `{name}`")));
    }
    for d in &domains {
        let resource = match (operation, d) {
            // A dry run is asked about the worker the rule would be.
            (Operation::StagingRun, Resource::Domain(domain)) => Resource::Worker {
                name: name.to_string(),
                domain: domain.clone(),
                owners: Vec::new(),
            },
            _ => d.clone(),
        };
        caller.may_on(operation, &resource)?;
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/v1/rules",
    tag = "rules",
    operation_id = "rules_list",
    responses((status = 200, description = "the saved rules", body = RuleList)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("workers.list")))
)]
pub(super) async fn list(caller: Caller) -> ApiResult<Json<RuleList>> {
    caller.may(Operation::WorkersList)?;
    let rules = caller.run(|service, _| Ok(service.rules()?)).await?;
    Ok(Json(RuleList { rules }))
}

#[utoipa::path(
    post,
    path = "/v1/rules/check",
    tag = "rules",
    operation_id = "rules_check",
    request_body = RuleText,
    responses((status = 200, description = "what checking the rule found, and its grant", body = RuleCheck)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("workers.list")))
)]
pub(super) async fn check(caller: Caller, body: Body<RuleText>) -> ApiResult<Json<RuleCheck>> {
    caller.may(Operation::WorkersList)?;
    let request = body.read()?;
    let check = caller
        .run(move |service, _| Ok(service.check_rule(&request.text)))
        .await?;
    Ok(Json(check))
}

#[utoipa::path(
    post,
    path = "/v1/rules",
    tag = "rules",
    operation_id = "rules_save",
    request_body = RuleText,
    responses(
        (status = 200, description = "the rule with its new version", body = RuleView),
        (status = 422, description = "the rule does not check; every problem named", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("grants.change")))
)]
pub(super) async fn save(caller: Caller, body: Body<RuleText>) -> ApiResult<Json<RuleView>> {
    let request = body.read()?;
    caller.may_on(Operation::GrantsChange, &domain_of(&request.text))?;
    // A new version of an existing rule changes what runs in its domains too.
    let name = toml::from_str::<toml::Table>(&request.text)
        .ok()
        .and_then(|t| t.get("rule")?.get("name")?.as_str().map(str::to_string));
    if let Some(name) = name {
        for d in saved_domains(&caller, &name)? {
            caller.may_on(Operation::GrantsChange, &d)?;
        }
    }
    let view = caller
        .run(move |service, account| Ok(service.save_rule(&request.text, &account.id)?))
        .await?;
    Ok(Json(view))
}

#[utoipa::path(
    get,
    path = "/v1/rules/{name}",
    tag = "rules",
    operation_id = "rules_show",
    params(("name" = String, Path, description = "the rule")),
    responses((status = 200, description = "the rule, its versions and readiness", body = RuleView)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("workers.list")))
)]
pub(super) async fn show(Path(name): Path<String>, caller: Caller) -> ApiResult<Json<RuleView>> {
    caller.may(Operation::WorkersList)?;
    let view = caller
        .run(move |service, _| Ok(service.rule_view(&name)?))
        .await?;
    Ok(Json(view))
}

#[utoipa::path(
    post,
    path = "/v1/rules/{name}/test",
    tag = "rules",
    operation_id = "rules_test",
    params(("name" = String, Path, description = "the rule")),
    request_body = RuleTrial,
    responses((status = 200, description = "the dry run's report", body = RuleDryRun)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("staging.run")))
)]
pub(super) async fn test(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<RuleTrial>,
) -> ApiResult<Json<RuleDryRun>> {
    may_on_rule(&caller, Operation::StagingRun, &name)?;
    let trial = body.read()?;
    // Trying a rule on live records shows their values.
    if !trial.sample.is_empty() {
        caller.may(Operation::RecordsRead)?;
    }
    let dataset = match &trial.dataset {
        Some(d) => Some(
            serde_json::from_value::<Dataset>(d.clone())
                .map_err(|e| ApiError::bad_request(format!("dataset: {e}")))?,
        ),
        None if trial.sample.is_empty() => {
            return Err(ApiError::bad_request(
                "give a `dataset` or `sample` records to try the rule on",
            ));
        }
        None => None,
    };
    let staging = caller
        .run(move |service, account| {
            let dataset = match dataset {
                Some(d) => d,
                None => service.sample_dataset(&trial.sample)?,
            };
            Ok(service.test_rule(&name, trial.version, &dataset, &account.id)?)
        })
        .await?;
    Ok(Json(RuleDryRun { staging }))
}

#[utoipa::path(
    post,
    path = "/v1/rules/{name}/deploy",
    tag = "rules",
    operation_id = "rules_deploy",
    params(("name" = String, Path, description = "the rule")),
    request_body = RuleDeploy,
    responses((status = 200, description = "the rule, now deployed", body = RuleView)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("grants.change")))
)]
pub(super) async fn deploy(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<RuleDeploy>,
) -> ApiResult<Json<RuleView>> {
    may_on_rule(&caller, Operation::GrantsChange, &name)?;
    let request = body.read()?;
    let view = caller
        .run(move |service, account| {
            Ok(service.deploy_rule(&name, request.version, &account.id, &request.reason)?)
        })
        .await?;
    Ok(Json(view))
}

#[utoipa::path(
    post,
    path = "/v1/rules/{name}/rollback",
    tag = "rules",
    operation_id = "rules_rollback",
    params(("name" = String, Path, description = "the rule")),
    request_body = RuleRollback,
    responses((status = 200, description = "the rule, back on its previous version", body = RuleView)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("grants.change")))
)]
pub(super) async fn rollback(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<RuleRollback>,
) -> ApiResult<Json<RuleView>> {
    may_on_rule(&caller, Operation::GrantsChange, &name)?;
    let request = body.read()?;
    let view = caller
        .run(move |service, account| {
            Ok(service.rollback_rule(&name, &account.id, &request.reason)?)
        })
        .await?;
    Ok(Json(view))
}
