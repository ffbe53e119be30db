//! Records over the API: `GET /v1/records/{object}?where=&limit=`, `POST
//! /v1/records/{object}`, and `GET`, `PATCH`, `DELETE /v1/records/{object}/{id}`.

use std::collections::BTreeMap;

use super::extract::Path;
use axum::Json;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, RequestBody, json};
use super::page::{Listed, PageParams, cursor};
use crate::filter::{Filter, Op};
use crate::governance::access::Operation;
use crate::store::{RecordQuery, StoreError};
use crate::value::{FieldValue, Record};

#[utoipa::path(
    get,
    path = "/v1/records/{object}/{id}",
    tag = "records",
    operation_id = "records_get",
    params(("object" = String, Path, description = "the object type"), ("id" = String, Path, description = "the record")),
    responses((status = 200, description = "the record", body = Record)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("records.read")))
)]
pub(super) async fn get(
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<Json<Record>> {
    caller.may(Operation::RecordsRead)?;
    let found = caller
        .run(move |service, _| {
            service
                .store()
                .schema()
                .object(&object)
                .map_err(StoreError::from)?;
            Ok(service.store().get_record(&object, &id)?)
        })
        .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such record"))
}

/// `?where=` of a records query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordsQuery {
    /// `field:op:value`, repeatable as a comma-free list separated by `;`.
    r#where: Option<String>,
}

/// Parses `field:op:value;field:op` into filters (values are read as JSON when they parse,
/// as text otherwise).
pub fn parse_where(text: &str) -> Result<Vec<Filter>, String> {
    text.split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|clause| {
            let mut parts = clause.splitn(3, ':');
            let field = parts.next().unwrap_or_default().trim().to_string();
            let op_text = parts
                .next()
                .ok_or_else(|| format!("`{clause}`: expected field:op:value"))?;
            let op: Op =
                serde_json::from_value(serde_json::Value::String(op_text.trim().to_string()))
                    .map_err(|_| format!("`{clause}`: unknown operator `{op_text}`"))?;
            let value = match parts.next() {
                None if op.is_unary() => FieldValue::Null,
                None => return Err(format!("`{clause}`: `{op_text}` needs a value")),
                Some(v) => {
                    serde_json::from_str(v).unwrap_or_else(|_| FieldValue::Text(v.to_string()))
                }
            };
            Ok(Filter { field, op, value })
        })
        .collect()
}

/// The records a query found.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Records {
    records: Vec<Record>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/records/{object}",
    tag = "records",
    operation_id = "records_query",
    params(("object" = String, Path, description = "the object type"), RecordsQuery, PageParams),
    responses((status = 200, description = "the matching records", body = Records)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("records.read")))
)]
pub(super) async fn query(
    Path(object): Path<String>,
    Listed { filter: q, page }: Listed<RecordsQuery>,
    caller: Caller,
) -> ApiResult<Json<Records>> {
    caller.may(Operation::RecordsRead)?;
    let filters = parse_where(q.r#where.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    // The cursor names the object and the filters, so it resumes only the same query.
    let kind = format!("records/{object}/{}", q.r#where.as_deref().unwrap_or(""));
    let kind = format!("r{:016x}", fnv(kind.as_bytes()));
    let after = page.after(&kind)?;
    let (records, next) = caller
        .run(move |service, _| {
            let found = service.store().query_page(
                &RecordQuery {
                    object,
                    filters,
                    owners: None,
                    limit: page.limit,
                },
                after.as_deref(),
            )?;
            Ok((found.records, found.next.map(|k| cursor(&kind, &k))))
        })
        .await?;
    Ok(Json(Records { records, next }))
}

/// A record to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRecord {
    id: Option<String>,
    owner: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, FieldValue>,
}

impl RequestBody for NewRecord {
    fn parse(body: &[u8]) -> ApiResult<Self> {
        json(body, "invalid record")
    }
}

#[utoipa::path(
    post,
    path = "/v1/records/{object}",
    tag = "records",
    operation_id = "records_create",
    params(("object" = String, Path, description = "the object type")),
    request_body = NewRecord,
    responses((status = 201, description = "the record created", body = Record)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("records.write")))
)]
pub(super) async fn create(
    Path(object): Path<String>,
    caller: Caller,
    body: Body<NewRecord>,
) -> ApiResult<(StatusCode, Json<Record>)> {
    caller.may(Operation::RecordsWrite)?;
    let new = body.read()?;
    let record = caller
        .run(move |service, account| {
            Ok(service.store().create_record(
                &object,
                new.id,
                new.owner,
                new.fields,
                &format!("api:{}", account.id),
            )?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Fields to change on a record.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordUpdate {
    fields: BTreeMap<String, FieldValue>,
}

impl RequestBody for RecordUpdate {
    fn parse(body: &[u8]) -> ApiResult<Self> {
        json(body, "invalid update")
    }
}

#[utoipa::path(
    patch,
    path = "/v1/records/{object}/{id}",
    tag = "records",
    operation_id = "records_update",
    params(("object" = String, Path, description = "the object type"), ("id" = String, Path, description = "the record")),
    request_body = RecordUpdate,
    responses((status = 200, description = "the record changed", body = Record)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("records.write")))
)]
pub(super) async fn update(
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
    body: Body<RecordUpdate>,
) -> ApiResult<Json<Record>> {
    caller.may(Operation::RecordsWrite)?;
    let update = body.read()?;
    let updated = caller
        .run(move |service, account| {
            Ok(service.store().update_record(
                &object,
                &id,
                &update.fields,
                &format!("api:{}", account.id),
            )?)
        })
        .await?;
    updated
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such record"))
}

#[utoipa::path(
    delete,
    path = "/v1/records/{object}/{id}",
    tag = "records",
    operation_id = "records_delete",
    params(("object" = String, Path, description = "the object type"), ("id" = String, Path, description = "the record")),
    responses((status = 204, description = "deleted")),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("records.write")))
)]
pub(super) async fn delete(
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<StatusCode> {
    caller.may(Operation::RecordsWrite)?;
    let existed = caller
        .run(move |service, account| {
            service
                .store()
                .schema()
                .object(&object)
                .map_err(StoreError::from)?;
            Ok(service
                .store()
                .delete_record(&object, &id, &format!("api:{}", account.id))?)
        })
        .await?;
    if existed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such record"))
    }
}

/// A 64-bit FNV-1a digest: names a query in its cursors.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_clauses_parse() {
        let f = parse_where("status:equals:open;amount:greater-than:1000;email:is-empty").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].value, FieldValue::Integer(1000));
        assert_eq!(f[0].value, FieldValue::Text("open".into()));
        assert!(parse_where("status:resembles:x").is_err());
        assert!(parse_where("status:equals").is_err());
    }
}
