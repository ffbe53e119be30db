//! Installations while the service runs: `GET /v1/registry/catalogue` (what the
//! registries this host installs from offer), `GET /v1/installations`, `POST
//! /v1/installations` (the review of an artifact on a registry this host installs from,
//! and with `apply` and a grant, the installation or upgrade) and `DELETE
//! /v1/installations/{name}?reason=` (the removal). Each needs `grants.change` and is an
//! audit entry.

use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path, Query, json_requests};
use super::page::{Listed, NoFilter, PageParams};
use crate::distribution::install::{GrantChoice, InstallOptions, Review};
use crate::governance::access::Operation;
use crate::service::{CatalogueSource, InstallSource, Installation, Removal};
use crate::store::GovernanceEvent;

/// The installations, by name.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Installations {
    installations: Vec<Installation>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/installations",
    tag = "installations",
    operation_id = "installs_list",
    params(PageParams),
    responses((status = 200, description = "the installed workers", body = Installations)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("workers.list")))
)]
pub(super) async fn list(
    Listed { page, .. }: Listed<NoFilter>,
    caller: Caller,
) -> ApiResult<Json<Installations>> {
    caller.may(Operation::WorkersList)?;
    let (installations, next) =
        page.cut("installations", caller.service().installations(), |i| {
            i.name.as_bytes().to_vec()
        })?;
    Ok(Json(Installations {
        installations,
        next,
    }))
}

/// What the registries this host installs from offer.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Catalogue {
    sources: Vec<CatalogueSource>,
}

#[utoipa::path(
    get,
    path = "/v1/registry/catalogue",
    tag = "installations",
    operation_id = "installs_catalogue",
    responses((status = 200, description = "each registry of `[registry] sources` with its repositories and tags", body = Catalogue)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("grants.change")))
)]
pub(super) async fn catalogue(caller: Caller) -> ApiResult<Json<Catalogue>> {
    caller.may(Operation::GrantsChange)?;
    let sources = caller.run(|service, _| Ok(service.catalogue())).await?;
    Ok(Json(Catalogue { sources }))
}

/// The largest installation request (an uploaded artifact travels in it).
pub const MAX_INSTALL_BODY: usize = 64 << 20;

/// The path installations are posted to (its bodies are bounded by [`MAX_INSTALL_BODY`]).
pub const INSTALL_PATH: &str = "/v1/installations";

/// An artifact uploaded with the request: the blobs of an OCI image layout, base64.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UploadedArtifact {
    /// The OCI image manifest.
    manifest: String,
    /// Its config blob.
    config: String,
    /// The component layer.
    layer: String,
}

impl UploadedArtifact {
    fn pulled(&self) -> ApiResult<crate::distribution::oci::Pulled> {
        use base64::Engine as _;
        let decode = |what: &str, text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| {
                    ApiError::bad_request(format!("artifact.{what}: not base64: {e}"))
                        .with_code("invalid-body")
                })
        };
        let manifest = decode("manifest", &self.manifest)?;
        Ok(crate::distribution::oci::Pulled {
            digest: roster_registry::storage::digest_of(&manifest),
            manifest,
            config: decode("config", &self.config)?,
            layer: decode("layer", &self.layer)?,
        })
    }
}

/// An installation to review, or to apply.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct InstallRequest {
    /// The artifact on a registry of the host's `[registry] sources`:
    /// `host[:port]/repository:tag` (or `@sha256:...`).
    #[serde(default)]
    reference: Option<String>,
    /// Or the artifact itself, uploaded (from an OCI image layout).
    #[serde(default)]
    artifact: Option<UploadedArtifact>,
    /// The installation's name (the plugin id's last part when absent).
    #[serde(default)]
    name: Option<String>,
    /// A grant file's text (TOML) to install under.
    #[serde(default)]
    grant: Option<String>,
    /// Grant exactly what the manifest requests, after reading the review.
    #[serde(default)]
    grant_requested: bool,
    /// Who the worker acts as (needed for a first install with `grant_requested`).
    #[serde(default)]
    principal: Option<String>,
    /// Settings of the plugin's `[config]` schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    settings: serde_json::Map<String, serde_json::Value>,
    /// Install a version older than the installed one.
    #[serde(default)]
    allow_downgrade: bool,
    /// Install it; without, only the review is answered and nothing changes.
    #[serde(default)]
    apply: bool,
}

json_requests!(InstallRequest);

/// The review, and what became of the request.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct InstallAnswer {
    /// Signature, publisher key, requested vs imported vs granted capabilities, and what
    /// an upgrade asks beyond the grant in force.
    #[schema(value_type = Object)]
    review: Review,
    /// `install`, `upgrade`, `downgrade` or `regrant`.
    change: String,
    /// Why it cannot be applied as asked, if it cannot (no grant, or a grant that must
    /// grow).
    blocker: Option<String>,
    /// Whether it was installed and runs now.
    applied: bool,
}

#[utoipa::path(
    post,
    path = "/v1/installations",
    tag = "installations",
    operation_id = "installs_create",
    request_body = InstallRequest,
    responses((status = 200, description = "the review; with `apply`, the worker runs", body = InstallAnswer)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("grants.change")))
)]
pub(super) async fn create(
    caller: Caller,
    body: Body<InstallRequest>,
) -> ApiResult<Json<InstallAnswer>> {
    caller.may(Operation::GrantsChange)?;
    let answer = caller
        .run(move |service, account| {
            let request = body.read()?;
            let grant = match (request.grant, request.grant_requested) {
                (Some(_), true) => {
                    return Err(ApiError::bad_request(
                        "give `grant` or `grant_requested`, not both",
                    ));
                }
                (Some(text), false) => Some(GrantChoice::File(text)),
                (None, true) => Some(GrantChoice::Requested),
                (None, false) => None,
            };
            let settings = toml::Table::try_from(request.settings).map_err(|e| {
                ApiError::bad_request(format!("settings: {e}")).with_code("invalid-body")
            })?;
            let options = InstallOptions {
                name: request.name,
                grant,
                principal: request.principal,
                allow_downgrade: request.allow_downgrade,
                settings,
                by: account.id.clone(),
                rule: None,
            };
            let source = match (request.reference, &request.artifact) {
                (Some(reference), None) => InstallSource::Registry(reference),
                (None, Some(artifact)) => InstallSource::Uploaded(artifact.pulled()?),
                _ => {
                    return Err(ApiError::bad_request(
                        "give `reference` (a registry's artifact) or `artifact` (an upload)",
                    ));
                }
            };
            let subject = match &source {
                InstallSource::Registry(reference) => reference.clone(),
                InstallSource::Uploaded(pulled) => pulled.digest.clone(),
            };
            let plan = service.plan_install(source, &options)?;
            let blocker = plan.blocker();
            let review = plan.review.clone();
            let change = plan.change.as_str().to_string();
            if !request.apply {
                service.store().record_governance(GovernanceEvent {
                    action: "worker.review".into(),
                    by: account.id.clone(),
                    worker: Some(review.worker.clone()),
                    subject: Some(subject),
                    reason: None,
                    data: serde_json::json!({
                        "version": review.version,
                        "change": change,
                        "blocker": blocker,
                    }),
                })?;
                return Ok(InstallAnswer {
                    review,
                    change,
                    blocker,
                    applied: false,
                });
            }
            if let Some(why) = blocker {
                return Err(crate::error::Error::InstallRefused(why).into());
            }
            service.install(plan)?;
            Ok(InstallAnswer {
                review,
                change,
                blocker: None,
                applied: true,
            })
        })
        .await?;
    Ok(Json(answer))
}

/// `?reason=` of a removal.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveParams {
    /// Why (recorded).
    reason: String,
}

#[utoipa::path(
    delete,
    path = "/v1/installations/{name}",
    tag = "installations",
    operation_id = "installs_remove",
    params(("name" = String, Path, description = "the installation"), RemoveParams),
    responses((status = 200, description = "removed: its triggers stopped, what was queued ran, its audit kept", body = Removal)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("grants.change")))
)]
pub(super) async fn remove(
    Path(name): Path<String>,
    Query(params): Query<RemoveParams>,
    caller: Caller,
) -> ApiResult<Json<Removal>> {
    caller.may_on_worker(Operation::GrantsChange, &name)?;
    let removal = caller
        .run(move |service, account| Ok(service.remove(&name, &account.id, &params.reason)?))
        .await?;
    Ok(Json(removal))
}
