//! Who is calling.
//!
//! [`Caller`]: the account of the bearer token (401 without a valid one), with the
//! questions a handler asks the access policies before it does anything (403 naming the
//! deciding policies), and the way it runs store work off the async threads.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

use super::Api;
use super::error::{ApiError, ApiResult};
use crate::error::Error;
use crate::governance::access::{Operation, Resource};
use crate::service::Service;
use crate::store::{Account, for_request};

/// The authenticated account of a request.
pub(super) struct Caller {
    api: Api,
    /// The token's account.
    pub(super) account: Account,
}

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Caller, ApiError> {
        let account = match parts.extensions.get::<ActingAs>() {
            Some(ActingAs(account)) => account.clone(),
            None => authenticate(api, &parts.headers)?,
        };
        Ok(Caller {
            api: api.clone(),
            account,
        })
    }
}

/// The account a request made inside this process acts as, without a token: the console
/// sets it for the person signed in to it. Request extensions never come from the
/// network, so no client can set it.
#[derive(Debug, Clone)]
pub struct ActingAs(pub Account);

/// The account the bootstrap token acts as on this service: `root`, or the operator
/// holding the data directory.
pub fn bootstrap_account(service: &Service) -> Account {
    let mut account = crate::governance::access::bootstrap_account();
    if let Some(operator) = &service.config().operator {
        account.id.clone_from(operator);
        account.name = "the operator holding the data directory".into();
    }
    account
}

/// The account a request acts as: the holder of a stored token, or `root` for the
/// bootstrap token. A request without a valid token is refused with 401.
fn authenticate(api: &Api, headers: &HeaderMap) -> ApiResult<Account> {
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong API token");
    if given.is_empty() {
        return Err(refused());
    }
    if let Some(token) = &api.service.config().api_token {
        // Compare digests so the comparison takes the same time wherever the tokens differ.
        if Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes()) {
            return Ok(bootstrap_account(&api.service));
        }
    }
    match api.service.store().authenticate(given) {
        Ok(Some((account, _))) => Ok(account),
        Ok(None) => Err(refused()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

impl Caller {
    /// The running service.
    pub(super) fn service(&self) -> &Service {
        &self.api.service
    }

    /// Whether the caller may perform `operation` on the host as a whole.
    pub(super) fn may(&self, operation: Operation) -> ApiResult<()> {
        self.may_on(operation, &Resource::Host)
    }

    /// Whether the caller may perform `operation` on `resource`; refused with 403,
    /// naming the deciding policies.
    pub(super) fn may_on(&self, operation: Operation, resource: &Resource) -> ApiResult<()> {
        let verdict = self
            .api
            .service
            .config()
            .access
            .decide(&self.account, operation, resource);
        if verdict.allowed {
            return Ok(());
        }
        tracing::warn!(
            account = %self.account.id,
            operation = operation.as_str(),
            "refused by the access policies"
        );
        let because = if verdict.policies.is_empty() {
            "no policy permits it".to_string()
        } else {
            format!("forbidden by {}", verdict.policies.join(", "))
        };
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "`{}` may not {} here: {because}",
                self.account.id,
                operation.as_str()
            ),
        ))
    }

    /// The resource a request names, or why not: an unknown worker or held action is a
    /// 404 only for a caller that may `list` them; anyone else gets the same 403 as for
    /// one that exists, so a request cannot learn what exists by its answer.
    pub(super) fn found(
        &self,
        list: Operation,
        resource: Result<Resource, Error>,
    ) -> ApiResult<Resource> {
        match resource {
            Ok(resource) => Ok(resource),
            Err(e @ (Error::UnknownWorker(_) | Error::NotFound(_))) => {
                self.may(list)?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// An installed worker, when the caller may perform `operation` on it.
    pub(super) fn may_on_worker(&self, operation: Operation, worker: &str) -> ApiResult<Resource> {
        let resource = self.found(
            Operation::WorkersList,
            self.api.service.worker_resource(worker),
        )?;
        self.may_on(operation, &resource)?;
        Ok(resource)
    }

    /// A held action, when the caller may perform `operation` on it.
    pub(super) fn may_on_approval(&self, operation: Operation, id: &str) -> ApiResult<()> {
        let resource = self.found(
            Operation::ApprovalsList,
            self.api.service.approval_resource(id),
        )?;
        self.may_on(operation, &resource)
    }

    /// Runs store work on a blocking thread, with the service and the caller's account.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Service, &Account) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (api, account) = (self.api.clone(), self.account.clone());
        // What the work records in the audit trail names this request.
        let request = super::current::current().map(|r| r.id);
        api.run(move |service| for_request(request, || work(service, &account)))
            .await
    }
}
