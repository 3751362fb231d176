//! `GET /api/handles/{id}`: an identifier's record in the shape of the Handle.Net REST
//! API (see the [module docs](super#handles) for the answers).

use medid_registry::event::trace::ItemStatus;
use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use medid_did::DidKey;
use medid_registry::id::Identifier;
use medid_registry::op::ReadPermission;
use medid_registry::{IdentifierRecord, read_payload};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{Answer, AppState, NEGATIVE_TTL, cached, percent_decode, query_pairs, signers};
use crate::RecordReads;

/// Handle protocol response codes.
const SUCCESS: u16 = 1;
const ERROR: u16 = 2;
const HANDLE_NOT_FOUND: u16 = 100;
const INVALID_HANDLE: u16 = 102;
const VALUES_NOT_FOUND: u16 = 200;
const NOT_RESPONSIBLE: u16 = 301;

/// The first index of the `HS_ADMIN` values that render a record's controllers.
const ADMIN_INDEX: u32 = 100;
/// The permissions of an `HS_ADMIN` value: the Handle System's usual administrator
/// default (everything but creating and deleting handles under the handle).
const ADMIN_PERMISSIONS: &str = "011111110011";
/// The `ttl` of `HS_ADMIN` values.
const ADMIN_TTL: u32 = 86_400;
/// How long a referral to another node may be cached (the DNS zone's default TTL; a
/// change of delegation drops it from this node's cache at once).
pub(crate) const REFERRAL_TTL: Duration = Duration::from_secs(3600);
/// The longest a handle answer is cached, whatever its values' `ttl`.
const MAX_TTL: Duration = Duration::from_secs(86_400);

/// The `?type=` and `?index=` filters of a request.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filters {
    /// Lower-cased (types compare ignoring ASCII case), sorted, deduplicated.
    types: BTreeSet<String>,
    indexes: BTreeSet<u32>,
}

impl Filters {
    fn parse(uri: &Uri) -> Result<Self, String> {
        let mut filters = Self::default();
        for (name, value) in query_pairs(uri) {
            match name.as_str() {
                "type" => {
                    filters.types.insert(value.to_ascii_lowercase());
                }
                "index" => {
                    let index = value
                        .parse::<u32>()
                        .ok()
                        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            format!(
                                "`index={}` is not a value index (a decimal from 0 to 4294967295)",
                                super::shorten(&value)
                            )
                        })?;
                    filters.indexes.insert(index);
                }
                // Other parameters of the Handle.Net API (`auth`, `pretty`, …) change
                // nothing here.
                _ => {}
            }
        }
        Ok(filters)
    }

    fn matches(&self, index: u32, kind: &str) -> bool {
        (self.types.is_empty() && self.indexes.is_empty())
            || self.indexes.contains(&index)
            || self.types.contains(&kind.to_ascii_lowercase())
    }

    /// The cache variant: `http:/api/handles`, then the filters as a query.
    fn variant(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for index in &self.indexes {
            query.append_pair("index", &index.to_string());
        }
        for kind in &self.types {
            query.append_pair("type", kind);
        }
        let query = query.finish();
        if query.is_empty() {
            "http:/api/handles".to_owned()
        } else {
            format!("http:/api/handles?{query}")
        }
    }
}

/// A computed answer: what to send, for how long it may be cached, and whether it
/// holds restricted data.
struct HandleAnswer {
    answer: Answer,
    ttl: Duration,
    restricted: bool,
}

pub(super) async fn resolve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let raw = uri.path().strip_prefix("/api/handles/").unwrap_or_default();
    let Some(text) = percent_decode(raw) else {
        return failure(
            StatusCode::BAD_REQUEST,
            INVALID_HANDLE,
            "invalidHandle",
            raw,
            "the identifier is not percent-encoded UTF-8 (a `%` must start an escape such as %2F)",
        );
    };
    let filters = match Filters::parse(&uri) {
        Ok(filters) => filters,
        Err(message) => {
            return failure(
                StatusCode::BAD_REQUEST,
                ERROR,
                "badRequest",
                &text,
                &message,
            );
        }
    };
    let id = match Identifier::parse(&text) {
        Ok(id) => id,
        Err(e) => {
            return failure(
                StatusCode::BAD_REQUEST,
                INVALID_HANDLE,
                "invalidHandle",
                &text,
                &e.to_string(),
            );
        }
    };
    match signers(&method, &uri, &headers) {
        // From the in-memory mirror, an answer costs less to compute than to cache.
        None if state.has_mirror() => match answer(&state, &id, &filters, &[]) {
            Ok(a) => a.answer.into_response(),
            Err(e) => e.into_response(),
        },
        None => cached(&state, &id.to_string(), &filters.variant(), || {
            answer(&state, &id, &filters, &[]).map(|a| (a.answer, a.ttl))
        }),
        Some(readers) => match answer(&state, &id, &filters, &readers) {
            Ok(a) => {
                let mut response = a.answer.into_response();
                if a.restricted {
                    response.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("private, no-store"),
                    );
                }
                response
            }
            Err(e) => e.into_response(),
        },
    }
}

/// A Handle error answer: `responseCode`, the handle as given, a message, and the
/// `error` code every medid error carries.
fn failure(status: StatusCode, code: u16, error: &str, handle: &str, message: &str) -> Response {
    let handle: String = handle
        .chars()
        .take(medid_registry::id::MAX_INPUT_LEN)
        .collect();
    Answer::json(
        status,
        &json!({"responseCode": code, "handle": handle, "message": message, "error": error}),
    )
    .into_response()
}

/// TTL of the derived STATUS value: events change it without touching the record.
const STATUS_TTL: u32 = 60;

fn answer(
    state: &AppState,
    id: &Identifier,
    filters: &Filters,
    readers: &[DidKey],
) -> Result<HandleAnswer, ApiError> {
    let index = state.reads();
    let handle = id.to_string();
    let closest = closest_prefix(index, id)?;
    if let Some(prefix) = &closest
        && let Some(node) = &prefix.node
    {
        return Ok(HandleAnswer {
            answer: Answer::json(
                StatusCode::BAD_REQUEST,
                &json!({
                    "responseCode": NOT_RESPONSIBLE,
                    "handle": handle,
                    "message": format!(
                        "this node ({}) is not responsible for {handle}: {} is delegated to \
                         the node {} at {}",
                        state.inner.node.config.name, prefix.prefix, node.name, node.http
                    ),
                    "error": "notResponsible",
                    "referral": {
                        "prefix": prefix.prefix,
                        "node": node,
                        "logIndex": prefix.log_index,
                    },
                }),
            ),
            ttl: REFERRAL_TTL,
            restricted: false,
        });
    }
    let Some(record) = index.identifier_record(id).map_err(ApiError::internal)? else {
        let answer = if closest.is_some() {
            Answer::json(
                StatusCode::NOT_FOUND,
                &json!({
                    "responseCode": HANDLE_NOT_FOUND,
                    "handle": handle,
                    "message": "handle not found",
                    "error": "notFound",
                }),
            )
        } else {
            Answer::json(
                StatusCode::BAD_REQUEST,
                &json!({
                    "responseCode": NOT_RESPONSIBLE,
                    "handle": handle,
                    "message": format!(
                        "this node ({}) is not responsible for {handle}: none of its prefixes \
                         covers it; resolve it at the node that holds its prefix (the root \
                         node refers to it)",
                        state.inner.node.config.name
                    ),
                    "error": "notResponsible",
                    "referral": state.inner.node.parent.as_ref().map(|parent| json!({"parent": parent})),
                }),
            )
        };
        return Ok(HandleAnswer {
            answer,
            ttl: NEGATIVE_TTL,
            restricted: false,
        });
    };

    let mut values: Vec<(u32, u32, Value)> = Vec::new();
    let mut restricted = false;
    for stored in &record.values {
        let value = &stored.value;
        if !filters.matches(value.index, &value.kind) {
            continue;
        }
        let (data, note) = match (&value.read, &value.commitment) {
            (ReadPermission::Public, _) => (value.data.clone().unwrap_or_default(), None),
            (ReadPermission::Restricted(allowed), Some(commitment)) => {
                if !readers.iter().any(|r| allowed.contains(r)) {
                    continue;
                }
                restricted = true;
                match read_payload(state.dir(), state.index(), commitment)
                    .map_err(ApiError::internal)?
                {
                    Some(payload) => (payload.data, None),
                    None => (
                        String::new(),
                        Some(
                            "erased: the data of this restricted value was erased; the ledger keeps its commitment",
                        ),
                    ),
                }
            }
            // A restricted value without a commitment cannot be read.
            (ReadPermission::Restricted(_), None) => continue,
        };
        let mut rendered = json!({
            "index": value.index,
            "type": value.kind,
            "data": {"format": "string", "value": data},
            "ttl": value.ttl,
            "timestamp": stored.timestamp,
        });
        if let Some(note) = note {
            rendered["note"] = json!(note);
        }
        values.push((value.index, value.ttl, rendered));
    }

    let used: BTreeSet<u32> = record.values.iter().map(|v| v.value.index).collect();
    let mut next = ADMIN_INDEX;
    for admin in controllers(index, id, &record)? {
        while used.contains(&next) {
            next = next.saturating_add(1);
        }
        if filters.matches(next, "HS_ADMIN") {
            values.push((
                next,
                ADMIN_TTL,
                json!({
                    "index": next,
                    "type": "HS_ADMIN",
                    "data": {
                        "format": "admin",
                        "value": {"handle": admin.to_string(), "index": 0, "permissions": ADMIN_PERMISSIONS},
                    },
                    "ttl": ADMIN_TTL,
                    "timestamp": record.updated,
                }),
            ));
        }
        next = next.saturating_add(1);
    }
    // The lifecycle status of an item with events (sterile, used, recalled), derived
    // from the event index at answer time, as a STATUS value.
    let status = index.status(&handle).map_err(ApiError::internal)?;
    if status != ItemStatus::Unprocessed {
        while used.contains(&next) {
            next = next.saturating_add(1);
        }
        if filters.matches(next, "STATUS") {
            let text = serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            values.push((
                next,
                STATUS_TTL,
                json!({
                    "index": next,
                    "type": "STATUS",
                    "data": {"format": "string", "value": text},
                    "ttl": STATUS_TTL,
                    "timestamp": record.updated,
                }),
            ));
        }
    }
    values.sort_by_key(|(index, _, _)| *index);

    let ttl = values
        .iter()
        .map(|(_, ttl, _)| Duration::from_secs(u64::from(*ttl)))
        .min()
        .map_or(NEGATIVE_TTL, |ttl| ttl.min(MAX_TTL));
    let code = if values.is_empty() {
        VALUES_NOT_FOUND
    } else {
        SUCCESS
    };
    let values: Vec<Value> = values.into_iter().map(|(_, _, v)| v).collect();
    Ok(HandleAnswer {
        answer: Answer::json(
            StatusCode::OK,
            &json!({"responseCode": code, "handle": handle, "values": values, "logIndex": record.log_index}),
        ),
        ttl,
        restricted,
    })
}

/// The closest prefix of this node that covers `id`, if any.
fn closest_prefix(
    index: &dyn RecordReads,
    id: &Identifier,
) -> Result<Option<medid_registry::PrefixRecord>, ApiError> {
    for key in id.namespace().ancestors_keys() {
        if let Some(prefix) = index.prefix_record(&key).map_err(ApiError::internal)? {
            return Ok(Some(prefix));
        }
    }
    Ok(None)
}

/// The DIDs that may change the record: its own controllers, then its closest
/// prefix's, without repeats.
fn controllers(
    index: &dyn RecordReads,
    id: &Identifier,
    record: &IdentifierRecord,
) -> Result<Vec<DidKey>, ApiError> {
    let mut all: Vec<DidKey> = record.controllers.clone().unwrap_or_default();
    if let Some(prefix) = closest_prefix(index, id)? {
        for did in prefix.controllers {
            if !all.contains(&did) {
                all.push(did);
            }
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn filters(query: &str) -> Result<Filters, String> {
        Filters::parse(&format!("/api/handles/x?{query}").parse().unwrap())
    }

    #[test]
    fn filters_normalise_into_the_cache_variant() {
        assert_eq!(filters("").unwrap().variant(), "http:/api/handles");
        assert_eq!(filters("pretty=1").unwrap().variant(), "http:/api/handles");
        let a = filters("type=URL&index=2&type=email&index=1&index=2").unwrap();
        let b = filters("index=1&type=Email&index=2&type=url").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.variant(),
            "http:/api/handles?index=1&index=2&type=email&type=url"
        );
        // A comma inside a type is not a second type.
        assert_ne!(
            filters("type=a,b").unwrap().variant(),
            filters("type=a&type=b").unwrap().variant()
        );
        assert!(filters("index=x").is_err());
        assert!(filters("index=-1").is_err());
        assert!(filters("index=+1").is_err());
        assert!(filters("index=99999999999").is_err());
    }

    #[test]
    fn filters_select_by_type_or_index() {
        let none = filters("").unwrap();
        assert!(none.matches(1, "URL"));
        let f = filters("type=url&index=7").unwrap();
        assert!(f.matches(1, "URL"));
        assert!(f.matches(7, "EMAIL"));
        assert!(!f.matches(2, "EMAIL"));
    }
}
