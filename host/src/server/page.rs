//! Cursor pagination, the same for every list: `?limit=` (1 to [`MAX_LIMIT`],
//! [`DEFAULT_LIMIT`] when absent) and `?next=`, the opaque cursor the previous page
//! answered. A page answers its items and `next`, `null` on the last page; nothing is
//! cut silently, and a limit above the maximum is refused rather than lowered.
//!
//! A cursor names the list it belongs to, so one list's cursor given to another is
//! refused with a 400 (`invalid-cursor`) instead of being read as a position there.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Api;
use super::error::{ApiError, ApiResult};

/// Items on a page when the request does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The most items on one page.
pub const MAX_LIMIT: usize = 1000;

/// The page a list request asks for (documented on every list operation).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "read by hand in `Listed`; this type describes the parameters"
)]
pub(super) struct PageParams {
    /// How many items (1 to 1000; 100 when absent).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next` cursor of the previous page.
    next: Option<String>,
}

/// A page of a list: how many items, and after which position.
#[derive(Debug, Clone)]
pub(super) struct Page {
    /// The most items to answer.
    pub limit: usize,
    cursor: Option<String>,
}

impl Page {
    /// The position this page starts after in the list `kind`, if any; a cursor of
    /// another list, or one that does not read, is refused.
    pub fn after(&self, kind: &str) -> ApiResult<Option<Vec<u8>>> {
        let Some(text) = &self.cursor else {
            return Ok(None);
        };
        let refused = || {
            ApiError::bad_request(format!(
                "next `{}`: not a cursor of this list (use the `next` it answered)",
                shorten(text)
            ))
            .with_code("invalid-cursor")
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| refused())?;
        let (named, position) = bytes
            .split_first()
            .and_then(|(len, rest)| rest.split_at_checked(usize::from(*len)))
            .ok_or_else(refused)?;
        if named != kind.as_bytes() {
            return Err(refused());
        }
        Ok(Some(position.to_vec()))
    }

    /// The position as a big-endian number (the lists kept in log order).
    pub fn after_seq(&self, kind: &str) -> ApiResult<Option<u64>> {
        self.after(kind)?
            .map(|p| {
                <[u8; 8]>::try_from(p.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| {
                        ApiError::bad_request("next: not a cursor of this list")
                            .with_code("invalid-cursor")
                    })
            })
            .transpose()
    }

    /// Cuts a list already in key order to this page; answers the page and its `next`.
    pub fn cut<T>(
        &self,
        kind: &str,
        items: impl IntoIterator<Item = T>,
        key: impl Fn(&T) -> Vec<u8>,
    ) -> ApiResult<(Vec<T>, Option<String>)> {
        let after = self.after(kind)?;
        let mut page: Vec<(Vec<u8>, T)> = Vec::new();
        for item in items {
            let k = key(&item);
            if after.as_ref().is_some_and(|a| k <= *a) {
                continue;
            }
            page.push((k, item));
            if page.len() > self.limit {
                break;
            }
        }
        Ok(self.finish(kind, page))
    }

    /// Ends a page read one item past its limit: answers at most `limit` items and, when
    /// there was one more, the cursor after the last one answered.
    pub fn finish<T>(&self, kind: &str, mut found: Vec<(Vec<u8>, T)>) -> (Vec<T>, Option<String>) {
        let more = found.len() > self.limit;
        found.truncate(self.limit);
        let next = if more {
            found.last().map(|(k, _)| cursor(kind, k))
        } else {
            None
        };
        (found.into_iter().map(|(_, t)| t).collect(), next)
    }
}

/// The cursor after `position` in the list `kind`.
pub(super) fn cursor(kind: &str, position: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(1 + kind.len() + position.len());
    bytes.push(u8::try_from(kind.len()).unwrap_or(u8::MAX));
    bytes.extend_from_slice(kind.as_bytes());
    bytes.extend_from_slice(position);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key that orders by time, then by id (times before 1970 included).
pub(super) fn time_key(at: i64, id: &str) -> Vec<u8> {
    let mut k = ((at as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

/// A list request: its filter `F` (the query string without `limit` and `next`) and its
/// page.
pub(super) struct Listed<F> {
    /// What to list.
    pub filter: F,
    /// Which page.
    pub page: Page,
}

impl<F: DeserializeOwned + Send> FromRequestParts<Api> for Listed<F> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Api) -> Result<Listed<F>, ApiError> {
        let invalid = |detail: String| ApiError::bad_request(detail).with_code("invalid-query");
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
                .map_err(|e| invalid(format!("the query string does not read: {e}")))?;
        let (mut limit, mut next) = (None, None);
        let mut rest = Vec::new();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "limit" => &mut limit,
                "next" => &mut next,
                _ => {
                    rest.push((name, value));
                    continue;
                }
            };
            if slot.replace(value).is_some() {
                return Err(invalid(format!("`{name}` is given twice")));
            }
        }
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n @ 1..=MAX_LIMIT) => n,
                _ => {
                    return Err(invalid(format!(
                        "limit `{}`: give 1 to {MAX_LIMIT} (follow `next` for more)",
                        shorten(&text)
                    )));
                }
            },
        };
        let rest = serde_urlencoded::to_string(&rest).map_err(ApiError::internal)?;
        let filter = serde_path_to_error::deserialize::<_, F>(serde_urlencoded::Deserializer::new(
            url::form_urlencoded::parse(rest.as_bytes()),
        ))
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Listed {
            filter,
            page: Page {
                limit,
                cursor: next.filter(|n| !n.is_empty()),
            },
        })
    }
}

/// The filter of a list that takes none but the page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoFilter {}
