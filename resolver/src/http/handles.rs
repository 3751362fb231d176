//! `GET /api/handles/{id}`: an identifier's record in the shape of the Handle.Net REST
//! API (see the [module docs](super#handles) for the answers).

use medid_registry::event::trace::ItemStatus;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use medid_did::DidKey;
use medid_registry::id::Identifier;
use medid_registry::read_payload;
use serde::{Deserialize, Serialize};
use serde_json::json;

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
    fn variant(&self) -> Cow<'static, str> {
        if self.types.is_empty() && self.indexes.is_empty() {
            return Cow::Borrowed("http:/api/handles");
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        for index in &self.indexes {
            query.append_pair("index", &index.to_string());
        }
        for kind in &self.types {
            query.append_pair("type", kind);
        }
        Cow::Owned(format!("http:/api/handles?{}", query.finish()))
    }
}

/// A computed answer: what to send, for how long it may be cached, and whether it
/// holds restricted data.
struct HandleAnswer {
    answer: Answer,
    ttl: Duration,
    restricted: bool,
}

pub(super) async fn resolve(State(state): State<AppState>, request: Request) -> Response {
    // The request itself rather than `Method`, `Uri` and `HeaderMap` extractors, which
    // clone what they extract.
    let (method, uri, headers) = (request.method(), request.uri(), request.headers());
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
    let filters = match Filters::parse(uri) {
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
    match signers(method, uri, headers) {
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
    let json = index.identifier_json(&handle).map_err(ApiError::internal)?;
    // A record that does not parse is absent, as the index's typed reads have it.
    let record = json
        .as_deref()
        .and_then(|bytes| serde_json::from_slice::<RecordView<'_>>(bytes).ok());
    let Some(record) = record else {
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

    let admins = controllers(state, closest.as_ref(), &record);
    let mut values: Vec<RenderedValue<'_>> = Vec::with_capacity(record.values.len() + 2);
    let mut restricted = false;
    let reader_dids: Vec<String> = readers.iter().map(ToString::to_string).collect();
    for value in &record.values {
        if !filters.matches(value.index, &value.kind) {
            continue;
        }
        let (data, note) = match (&value.read, &value.commitment) {
            (ReadView::Public, _) => (
                Cow::Borrowed(value.data.as_deref().unwrap_or_default()),
                None,
            ),
            (ReadView::Restricted(allowed), Some(commitment)) => {
                if !allowed
                    .iter()
                    .any(|did| reader_dids.iter().any(|r| *r == **did))
                {
                    continue;
                }
                restricted = true;
                match read_payload(state.dir(), state.index(), commitment)
                    .map_err(ApiError::internal)?
                {
                    Some(payload) => (Cow::Owned(payload.data), None),
                    None => (
                        Cow::Borrowed(""),
                        Some(
                            "erased: the data of this restricted value was erased; the ledger keeps its commitment",
                        ),
                    ),
                }
            }
            // A restricted value without a commitment cannot be read.
            (ReadView::Restricted(_), None) => continue,
        };
        values.push(RenderedValue {
            index: value.index,
            kind: &value.kind,
            data: Data::String(data),
            ttl: value.ttl,
            timestamp: &value.timestamp,
            note,
        });
    }

    let used: BTreeSet<u32> = record.values.iter().map(|v| v.index).collect();
    let mut next = ADMIN_INDEX;
    for admin in &admins {
        while used.contains(&next) {
            next = next.saturating_add(1);
        }
        if filters.matches(next, "HS_ADMIN") {
            values.push(RenderedValue {
                index: next,
                kind: "HS_ADMIN",
                data: Data::Admin(Admin {
                    handle: admin,
                    index: 0,
                    permissions: ADMIN_PERMISSIONS,
                }),
                ttl: ADMIN_TTL,
                timestamp: &record.updated,
                note: None,
            });
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
            values.push(RenderedValue {
                index: next,
                kind: "STATUS",
                data: Data::String(Cow::Owned(text)),
                ttl: STATUS_TTL,
                timestamp: &record.updated,
                note: None,
            });
        }
    }
    values.sort_by_key(|value| value.index);

    let ttl = values
        .iter()
        .map(|value| Duration::from_secs(u64::from(value.ttl)))
        .min()
        .map_or(NEGATIVE_TTL, |ttl| ttl.min(MAX_TTL));
    let response_code = if values.is_empty() {
        VALUES_NOT_FOUND
    } else {
        SUCCESS
    };
    Ok(HandleAnswer {
        answer: Answer::serialized(
            StatusCode::OK,
            &Found {
                response_code,
                handle: &handle,
                values,
                log_index: record.log_index,
            },
        ),
        ttl,
        restricted,
    })
}

/// A success answer: `{"responseCode","handle","values","logIndex"}`.
///
/// The answer is serialised from these borrowed structs rather than built as a
/// `serde_json::Value`: every request renders one, and a `Value` tree costs an
/// allocation per key and value.
#[derive(Serialize)]
struct Found<'a> {
    #[serde(rename = "responseCode")]
    response_code: u16,
    handle: &'a str,
    values: Vec<RenderedValue<'a>>,
    #[serde(rename = "logIndex")]
    log_index: u64,
}

/// One value of a success answer: `{"index","type","data","ttl","timestamp"[,"note"]}`.
#[derive(Serialize)]
struct RenderedValue<'a> {
    index: u32,
    #[serde(rename = "type")]
    kind: &'a str,
    data: Data<'a>,
    ttl: u32,
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

/// A value's `data`: `{"format":"string","value":<text>}` or `{"format":"admin",
/// "value":{"handle","index","permissions"}}`.
#[derive(Serialize)]
#[serde(tag = "format", content = "value", rename_all = "lowercase")]
enum Data<'a> {
    String(Cow<'a, str>),
    Admin(Admin<'a>),
}

/// The `value` of an `HS_ADMIN` value.
#[derive(Serialize)]
struct Admin<'a> {
    handle: &'a str,
    index: u32,
    permissions: &'static str,
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

/// The DIDs that may change the record, as text: its own controllers, then those of
/// its closest prefix (`closest`), without repeats.
fn controllers(
    state: &AppState,
    closest: Option<&medid_registry::PrefixRecord>,
    record: &RecordView<'_>,
) -> Vec<Arc<str>> {
    let mut all: Vec<Arc<str>> = record
        .controllers
        .iter()
        .flatten()
        .map(|did| Arc::from(&**did))
        .collect();
    for did in closest.iter().flat_map(|prefix| &prefix.controllers) {
        let did = state.did_text(did);
        if !all.contains(&did) {
            all.push(did);
        }
    }
    all
}

/// An identifier's record as the index stores it (an
/// [`IdentifierRecord`](medid_registry::IdentifierRecord) in JSON), read for an answer:
/// only the fields answers show, borrowing the text instead of copying it, and DIDs as
/// their text (answers print them; parsing one costs a point decompression).
#[derive(Deserialize)]
struct RecordView<'a> {
    #[serde(borrow)]
    values: Vec<ValueView<'a>>,
    #[serde(default, borrow)]
    controllers: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    updated: Text<'a>,
    log_index: u64,
}

/// A [`StoredValue`](medid_registry::StoredValue) as [`RecordView`] reads it.
#[derive(Deserialize)]
struct ValueView<'a> {
    index: u32,
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(default, borrow)]
    data: Option<Text<'a>>,
    #[serde(default, borrow)]
    commitment: Option<Text<'a>>,
    #[serde(default = "default_ttl")]
    ttl: u32,
    #[serde(default)]
    read: ReadView<'a>,
    #[serde(borrow)]
    timestamp: Text<'a>,
}

/// Text borrowed from the stored JSON, or copied when it holds escapes. (Serde borrows
/// a `Cow<str>` only where it is a field's own type, not inside an `Option` or a
/// `Vec`: this newtype is.)
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// The `ttl` of a stored value without one (as [`medid_registry::op::RecordValue`]).
fn default_ttl() -> u32 {
    86_400
}

/// A value's `read`: `"public"` or the DIDs that may read it.
#[derive(Default)]
enum ReadView<'a> {
    #[default]
    Public,
    Restricted(Vec<Text<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for ReadView<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = ReadView<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"public\" or a list of DIDs")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                match text {
                    "public" => Ok(ReadView::Public),
                    other => Err(E::custom(format!("`{other}` is not `public`"))),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut dids = Vec::new();
                while let Some(did) = seq.next_element::<Text<'a>>()? {
                    dids.push(did);
                }
                Ok(ReadView::Restricted(dids))
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
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
