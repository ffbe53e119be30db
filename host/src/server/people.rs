//! People, service accounts, tokens and grants over the API.
//!
//! - `GET /v1/whoami` — the caller's account.
//! - `GET /v1/people`, `POST /v1/people`, `PATCH /v1/people/{id}` — accounts and roles.
//! - `POST /v1/people/{id}/tokens`, `DELETE /v1/tokens/{id}` — tokens (shown once).
//! - `GET /v1/grants` — what each installed worker is granted (for security review).
//! - `GET /v1/audit/grants?days=N` — requested vs imported vs granted per worker, unused
//!   and idle grants, and the grant's changes across installed versions.

use std::path::PathBuf;

use super::extract::{Path, Query};
use axum::Json;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, json_requests};
use super::page::{Listed, NoFilter, PageParams};
use crate::distribution::grant_audit::GrantReport;
use crate::governance::access::{Operation, check_role};
use crate::sandbox::grant::Grant;
use crate::scope::Scopes;
use crate::store::{Account, AccountKind, TokenInfo};

/// One account.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct OneAccount {
    account: Account,
}

#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "people",
    operation_id = "people_whoami",
    responses((status = 200, description = "the caller's account", body = OneAccount)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("whoami")))
)]
pub(super) async fn whoami(caller: Caller) -> ApiResult<Json<OneAccount>> {
    caller.may(Operation::Whoami)?;
    Ok(Json(OneAccount {
        account: caller.account,
    }))
}

/// Every account and every token (without the tokens themselves).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct People {
    /// A page of accounts, by id.
    accounts: Vec<Account>,
    /// The tokens of those accounts.
    tokens: Vec<TokenInfo>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/people",
    tag = "people",
    operation_id = "people_list",
    params(PageParams),
    responses((status = 200, description = "every account and token (without the tokens themselves)", body = People)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("people.read")))
)]
pub(super) async fn list(
    Listed { page, .. }: Listed<NoFilter>,
    caller: Caller,
) -> ApiResult<Json<People>> {
    caller.may(Operation::PeopleRead)?;
    let (accounts, tokens, next) = caller
        .run(move |service, _| {
            let store = service.store();
            let (accounts, next) =
                page.cut("people", store.accounts()?, |a| a.id.as_bytes().to_vec())?;
            let mut tokens = store.tokens(None)?;
            tokens.retain(|t| accounts.iter().any(|a| a.id == t.account));
            Ok((accounts, tokens, next))
        })
        .await?;
    Ok(Json(People {
        accounts,
        tokens,
        next,
    }))
}

/// Checks every role grant; the first bad one is the error.
pub fn check_roles(roles: &[String]) -> Result<(), String> {
    roles.iter().try_for_each(|r| check_role(r))
}

/// A new account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    id: String,
    kind: AccountKind,
    #[serde(default)]
    name: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// A change to an account: replace, add or remove roles; disable or enable it.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    /// Replace the roles with these.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Add these roles.
    #[serde(default)]
    pub add: Vec<String>,
    /// Remove these roles.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Disable (true) or enable (false) the account.
    #[serde(default)]
    pub disabled: Option<bool>,
}

impl AccountChange {
    /// Checks the roles it grants.
    pub fn check(&self) -> Result<(), String> {
        check_roles(self.roles.as_deref().unwrap_or_default())?;
        check_roles(&self.add)
    }

    /// Applies it to an account.
    pub fn apply(&self, account: &mut Account) {
        if let Some(roles) = &self.roles {
            account.roles = roles.clone();
        }
        for role in &self.add {
            if !account.roles.contains(role) {
                account.roles.push(role.clone());
            }
        }
        account.roles.retain(|r| !self.remove.contains(r));
        if let Some(disabled) = self.disabled {
            account.disabled = disabled;
        }
    }
}

/// A token to issue.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    name: String,
    #[serde(default)]
    expires_days: Option<u32>,
}

json_requests!(NewAccount, AccountChange, NewToken);

#[utoipa::path(
    post,
    path = "/v1/people",
    tag = "people",
    operation_id = "people_create",
    request_body = NewAccount,
    responses((status = 201, description = "the account created", body = OneAccount)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("people.manage")))
)]
pub(super) async fn create(
    caller: Caller,
    body: Body<NewAccount>,
) -> ApiResult<(StatusCode, Json<OneAccount>)> {
    caller.may(Operation::PeopleManage)?;
    let new = body.read()?;
    check_roles(&new.roles).map_err(ApiError::bad_request)?;
    let account = caller
        .run(move |service, by| {
            let account = Account {
                id: new.id,
                kind: new.kind,
                name: new.name,
                roles: new.roles,
                disabled: false,
                created_at: 0,
                updated_at: 0,
            };
            Ok(service.store().create_account(account, &by.id)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(OneAccount { account })))
}

#[utoipa::path(
    patch,
    path = "/v1/people/{id}",
    tag = "people",
    operation_id = "people_change",
    params(("id" = String, Path, description = "the account")),
    request_body = AccountChange,
    responses((status = 200, description = "the account changed", body = OneAccount)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("people.manage")))
)]
pub(super) async fn change(
    Path(id): Path<String>,
    caller: Caller,
    body: Body<AccountChange>,
) -> ApiResult<Json<OneAccount>> {
    caller.may(Operation::PeopleManage)?;
    let change = body.read()?;
    change.check().map_err(ApiError::bad_request)?;
    let account = caller
        .run(move |service, by| {
            Ok(service
                .store()
                .update_account(&id, &by.id, move |a| change.apply(a))?)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    Ok(Json(OneAccount { account }))
}

/// A token just issued: shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Issued {
    token: String,
    info: TokenInfo,
    note: &'static str,
}

#[utoipa::path(
    post,
    path = "/v1/people/{id}/tokens",
    tag = "people",
    operation_id = "people_issue_token",
    params(("id" = String, Path, description = "the account")),
    request_body = NewToken,
    responses((status = 201, description = "the token, shown once, and its record", body = Issued)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("people.manage")))
)]
pub(super) async fn issue_token(
    Path(id): Path<String>,
    caller: Caller,
    body: Body<NewToken>,
) -> ApiResult<(StatusCode, Json<Issued>)> {
    caller.may(Operation::PeopleManage)?;
    let new = body.read()?;
    let (info, token) = caller
        .run(move |service, by| {
            let store = service.store();
            let expires = store.token_expiry(new.expires_days)?;
            Ok(store.issue_token(&id, &new.name, expires, &by.id)?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Issued {
            token,
            info,
            note: "the token is shown once; only its digest is stored",
        }),
    ))
}

/// A one-time sign-in link to ask for.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewLoginLink {
    /// How many hours it works (1 to 72; 24 when absent).
    #[serde(default)]
    hours: Option<u32>,
}

impl super::extract::RequestBody for NewLoginLink {
    fn parse(body: &[u8]) -> ApiResult<Self> {
        if body.is_empty() {
            return Ok(NewLoginLink::default());
        }
        super::extract::json(body, "invalid request")
    }
}

/// A one-time sign-in link for the console.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct LoginLink {
    /// The console's path that signs the account in once: `/login?code=...`.
    link: String,
    /// When it stops working (ms since the Unix epoch).
    expires_at: i64,
    note: &'static str,
}

/// The longest a login link works.
pub const MAX_LOGIN_LINK_HOURS: u32 = 72;

#[utoipa::path(
    post,
    path = "/v1/people/{id}/login-links",
    tag = "people",
    operation_id = "people_login_link",
    params(("id" = String, Path, description = "the account")),
    request_body = NewLoginLink,
    responses((status = 201, description = "the link, shown once", body = LoginLink)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("people.manage")))
)]
pub(super) async fn login_link(
    Path(id): Path<String>,
    caller: Caller,
    body: Body<NewLoginLink>,
) -> ApiResult<(StatusCode, Json<LoginLink>)> {
    caller.may(Operation::PeopleManage)?;
    let hours = body.read()?.hours.unwrap_or(24);
    if !(1..=MAX_LOGIN_LINK_HOURS).contains(&hours) {
        return Err(ApiError::bad_request(format!(
            "`hours` is 1 to {MAX_LOGIN_LINK_HOURS}, not {hours}"
        )));
    }
    let (code, expires_at) = caller
        .run(move |service, by| {
            let ttl = i64::from(hours) * crate::clock::HOUR_MS;
            Ok(service.store().issue_login_code(&id, ttl, &by.id)?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(LoginLink {
            link: format!("/login?code={code}"),
            expires_at,
            note: "the link works once; only its digest is stored",
        }),
    ))
}

/// A token just revoked.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Revoked {
    revoked: TokenInfo,
}

#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "people",
    operation_id = "people_revoke_token",
    params(("id" = String, Path, description = "the token")),
    responses((status = 200, description = "the token revoked", body = Revoked)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("people.manage")))
)]
pub(super) async fn revoke_token(
    Path(id): Path<String>,
    caller: Caller,
) -> ApiResult<Json<Revoked>> {
    caller.may(Operation::PeopleManage)?;
    let revoked = caller
        .run(move |service, by| Ok(service.store().revoke_token(&id, &by.id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such token"))?;
    Ok(Json(Revoked { revoked }))
}

/// What one installed worker asked for and was granted.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(super) struct WorkerGrant {
    name: String,
    plugin: String,
    version: String,
    #[schema(value_type = Object)]
    requested: Scopes,
    #[schema(value_type = Object)]
    granted: Grant,
    #[schema(value_type = String)]
    grant_file: PathBuf,
    revoked: bool,
}

/// The grants of every installed worker.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Grants {
    workers: Vec<WorkerGrant>,
}

#[utoipa::path(
    get,
    path = "/v1/grants",
    tag = "people",
    operation_id = "people_grants",
    responses((status = 200, description = "per installed worker: requested and granted capabilities, and whether the kill switch revoked the grant", body = Grants)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("grants.read")))
)]
pub(super) async fn grants(caller: Caller) -> ApiResult<Json<Grants>> {
    caller.may(Operation::GrantsRead)?;
    let service = caller.service();
    let controls = service.controls();
    let workers = service
        .workers()
        .iter()
        .map(|(name, w)| WorkerGrant {
            name: name.clone(),
            plugin: w.config.manifest.plugin.id.clone(),
            version: w.config.manifest.plugin.version.clone(),
            requested: w.config.manifest.capabilities.clone(),
            granted: w.config.grant.clone(),
            grant_file: w.config.grant_path.clone(),
            revoked: controls.get(name).is_some_and(|c| c.grant_revoked),
        })
        .collect();
    Ok(Json(Grants { workers }))
}

/// `?days=` of the grant audit.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct GrantAuditQuery {
    days: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/v1/audit/grants",
    tag = "audit",
    operation_id = "people_audit_grants",
    params(GrantAuditQuery),
    responses((status = 200, body = Object, description = "per worker: requested, imported and granted capabilities, unused and idle grants, changes across versions")),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("grants.read")))
)]
pub(super) async fn audit_grants(
    Query(query): Query<GrantAuditQuery>,
    caller: Caller,
) -> ApiResult<Json<GrantReport>> {
    caller.may(Operation::GrantsRead)?;
    let days = query.days.unwrap_or(30);
    if days == 0 || days > 3650 {
        return Err(ApiError::bad_request("days: 1 to 3650"));
    }
    caller
        .run(move |service, _| {
            crate::distribution::grant_audit::report(
                &service.current_config(),
                service.store(),
                days,
            )
            .map(Json)
            .map_err(ApiError::from)
        })
        .await
}
