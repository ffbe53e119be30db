//! People, service accounts, tokens and grants over the API.
//!
//! - `GET /v1/whoami` — the caller's account.
//! - `GET /v1/people`, `POST /v1/people`, `PATCH /v1/people/{id}` — accounts and roles.
//! - `POST /v1/people/{id}/tokens`, `DELETE /v1/tokens/{id}` — tokens (shown once).
//! - `GET /v1/grants` — what each installed worker is granted (for security review).
//! - `GET /v1/audit/grants?days=N` — requested vs imported vs granted per worker, unused
//!   and idle grants, and the grant's changes across installed versions.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{Api, ApiError, ApiResult, authorize_host, blocking, json_body};
use crate::governance::access::{Operation, check_role};
use crate::store::{Account, AccountKind};

pub(super) async fn whoami(
    State(api): State<Api>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_host(&api, &headers, Operation::Whoami)?;
    Ok(Json(json!({ "account": account })))
}

pub(super) async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::PeopleRead)?;
    let (accounts, tokens) = blocking(move || {
        let store = api.service.store();
        Ok((store.accounts()?, store.tokens(None)?))
    })
    .await?;
    Ok(Json(json!({ "accounts": accounts, "tokens": tokens })))
}

/// Checks every role grant; the first bad one is the error.
pub fn check_roles(roles: &[String]) -> Result<(), String> {
    roles.iter().try_for_each(|r| check_role(r))
}

/// A new account.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    id: String,
    kind: AccountKind,
    #[serde(default)]
    name: String,
    #[serde(default)]
    roles: Vec<String>,
}

pub(super) async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let by = authorize_host(&api, &headers, Operation::PeopleManage)?;
    let new: NewAccount = json_body(&body)?;
    check_roles(&new.roles).map_err(ApiError::bad_request)?;
    let account = blocking(move || {
        let account = Account {
            id: new.id,
            kind: new.kind,
            name: new.name,
            roles: new.roles,
            disabled: false,
            created_at: 0,
            updated_at: 0,
        };
        Ok(api.service.store().create_account(account, &by.id)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "account": account }))))
}

/// A change to an account: replace, add or remove roles; disable or enable it.
#[derive(Deserialize, Default)]
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

pub(super) async fn change(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let by = authorize_host(&api, &headers, Operation::PeopleManage)?;
    let change: AccountChange = json_body(&body)?;
    change.check().map_err(ApiError::bad_request)?;
    let account = blocking(move || {
        Ok(api
            .service
            .store()
            .update_account(&id, &by.id, move |a| change.apply(a))?)
    })
    .await?
    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such account"))?;
    Ok(Json(json!({ "account": account })))
}

/// A token to issue.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    name: String,
    #[serde(default)]
    expires_days: Option<u32>,
}

pub(super) async fn issue_token(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let by = authorize_host(&api, &headers, Operation::PeopleManage)?;
    let new: NewToken = json_body(&body)?;
    let (info, token) = blocking(move || {
        let store = api.service.store();
        let expires = store.token_expiry(new.expires_days)?;
        Ok(store.issue_token(&id, &new.name, expires, &by.id)?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "token": token, "info": info, "note": "the token is shown once; only its digest is stored" }),
        ),
    ))
}

pub(super) async fn revoke_token(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let by = authorize_host(&api, &headers, Operation::PeopleManage)?;
    let revoked = blocking(move || Ok(api.service.store().revoke_token(&id, &by.id)?))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such token"))?;
    Ok(Json(json!({ "revoked": revoked })))
}

pub(super) async fn grants(
    State(api): State<Api>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::GrantsRead)?;
    let controls = api.service.controls();
    let list: Vec<serde_json::Value> = api
        .service
        .workers()
        .iter()
        .map(|(name, w)| {
            json!({
                "name": name,
                "plugin": w.config.manifest.plugin.id,
                "version": w.config.manifest.plugin.version,
                "requested": w.config.manifest.capabilities,
                "granted": w.config.grant,
                "grant-file": w.config.grant_path,
                "revoked": controls.get(name).is_some_and(|c| c.grant_revoked),
            })
        })
        .collect();
    Ok(Json(json!({ "workers": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GrantAuditQuery {
    days: Option<u32>,
}

pub(super) async fn audit_grants(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(query): Query<GrantAuditQuery>,
) -> ApiResult<Json<crate::distribution::grant_audit::GrantReport>> {
    authorize_host(&api, &headers, Operation::GrantsRead)?;
    let days = query.days.unwrap_or(30);
    if days == 0 || days > 3650 {
        return Err(ApiError::bad_request("days: 1 to 3650"));
    }
    blocking(move || {
        let service = &api.service;
        crate::distribution::grant_audit::report(service.config(), service.store(), days)
            .map(Json)
            .map_err(ApiError::from)
    })
    .await
}
