//! The HTTP front end of a node (axum): Handle-style resolution, DID resolution, GS1
//! Digital Link, operation submission and the ledger.
//!
//! [`app`] builds the router from an [`AppState`] (made with [`AppState::new`] from a
//! [`Sequencer`], a [`NodeInfo`] and an [`AnswerCache`]); tests call it directly.
//!
//! | endpoint | answers |
//! |---|---|
//! | `GET /api/handles/{id}` | Handle.Net REST JSON ([`handles`](self#handles)) |
//! | `GET /1.0/identifiers/{did}` | DID resolution result or document ([`did`](self#dids)) |
//! | `GET /01/{gtin}[/22/…][/10/{lot}][/21/{serial}]` | 307 to the default link, or a linkset |
//! | `POST /api/ops` | 201 + receipt, or the refusal |
//! | `GET /checkpoint`, `GET /tile/…` | the ledger as tlog-tiles static resources |
//! | `GET /api/log/proof/inclusion?index=&size=` | inclusion proof JSON |
//! | `GET /api/log/proof/consistency?old=&new=` | consistency proof JSON |
//! | `GET /api/log/bundle/{index}[?extra=entry]` | offline proof, `c2sp.org/tlog-proof@v1` |
//! | `GET /api/node` | the node's name, DID, admin, zone and checkpoint key |
//! | `POST /capture`, `GET /events`, `GET /epcs/{epc}/events` | EPCIS 2.0 capture and query ([`events`](events)) |
//! | `GET /api/trace`, `GET /api/recall` | trace and recall reports |
//! | `GET /api/node` | the node's name, DID, admin, zone, checkpoint key and parent |
//! | `POST /add-checkpoint` | C2SP tlog-witness: a cosignature on another log's checkpoint (when the node witnesses it) |
//! | `GET /api/prefixes/{prefix}` | a prefix's record: controllers, the node it is delegated to, its ledger index |
//!
//! Every error is JSON `{"error": code, "message": …}` with its HTTP status (the Handle
//! API adds its `responseCode`; DID resolution errors are resolution results, as that
//! binding requires). Request bodies are limited to [`MAX_BODY_BYTES`], request targets
//! to [`MAX_URI_BYTES`], header fields to [`MAX_HEADER_COUNT`] fields and
//! [`MAX_HEADER_BYTES`] bytes.
//!
//! # Handles
//!
//! Any identifier syntax is accepted after `/api/handles/` (percent-decoded once):
//! handles (`86.1000/PKG-1`, the `/` unencoded), `urn:oid:…`, GS1 element strings and
//! Digital Link paths (`/api/handles//01/…` or `%2F01%2F…`). Answers, as the Handle.Net
//! REST API gives them (`responseCode` / HTTP status):
//!
//! - `1` / 200 — `{"responseCode":1,"handle":<canonical id>,"values":[…]}`, each value
//!   `{"index","type","data":{"format","value"},"ttl","timestamp"}`; the timestamp is
//!   the `created` time of the operation that set the value;
//! - `200` / 200 — "values not found": the identifier exists but the `?type=` /
//!   `?index=` filters match none of its values (`"values":[]`);
//! - `100` / 404 — handle not found, under a prefix of this node;
//! - `102` / 400 — invalid handle: the identifier's syntax error, as the message;
//! - `301` / 400 — not responsible: no prefix of this node covers the identifier, or
//!   the prefix that covers it is delegated to another node. `referral` says where to
//!   go: `{"prefix", "node": {"did","name","dns","http"}, "logIndex"}` for a delegation
//!   (the ledger index of the operation that made it), `{"parent": URL}` on a child
//!   node for identifiers outside its prefixes, `null` otherwise.
//!
//! A success carries `logIndex`, the ledger index of the operation that last changed
//! the record (its proof: `/api/log/bundle/<logIndex>?extra=entry`).
//!
//! Filters are repeatable; a value is listed when its type (compared ignoring ASCII
//! case) is one of the `type`s or its index one of the `index`es (either list may be
//! empty, as in the Handle protocol). `data.format` is `string` for every value (medid
//! values are UTF-8 text, so `base64` never arises) and `admin` for `HS_ADMIN`: the
//! DIDs that may change the record (its own controllers, then those of its closest
//! prefix) are rendered as `HS_ADMIN` values from index 100 up, skipping indexes the
//! record uses, each `{"handle": <did>, "index": 0, "permissions": "011111110011"}`
//! (index 0: the DID itself holds its key), with the record's `updated` time.
//!
//! An identifier named by lifecycle events gets a derived `STATUS` value (`sterile`,
//! `used`, `recalled`; see [`ItemStatus`](medid_registry::event::trace::ItemStatus)),
//! computed from the event index at answer time, at the first free index from 100 after
//! the `HS_ADMIN` values, with a TTL of 60 s.
//!
//! Restricted values (a `commitment` and a `read` list) are absent unless the request
//! carries an HTTP Message Signature (RFC 9421, see [`signature`]) by a DID of the
//! value's `read` list; then the data is read from the node's off-log payloads. A value
//! whose payload was erased is listed with an empty `data.value` and a `note`. Answers
//! with restricted data carry `Cache-Control: private, no-store` and never enter the
//! cache.
//!
//! # DIDs
//!
//! `did:key` is the only method; its document is derived from the key (`Multikey`), so
//! every well-formed did:key resolves, registered or not — `notFound` never arises.
//! Registration adds `didDocumentMetadata` (`created`, `updated`, `deactivated`); a
//! deactivated DID answers 410 with the resolution result (whatever `Accept` says).
//! Errors: `invalidDid` and the did:key key errors 400, `methodNotSupported` 501,
//! `representationNotSupported` 406. `Accept: application/did+json` (or
//! `application/did+ld+json`) gives the bare document.
//!
//! # GS1 Digital Link
//!
//! The default link is the record's `gs1:defaultLink` value if it has one, else its
//! lowest-index `URL` value. Links are the public values of type `URL` (relation
//! `related`) and `gs1:<name>` (relation `https://gs1.org/voc/<name>`) whose data is an
//! absolute `http(s)` URL; the default link is also listed as
//! `https://gs1.org/voc/defaultLink`. `?linkType=<gs1:name or its URI>` redirects to
//! that link when the record has it. `Accept: application/linkset+json`,
//! `?linkType=linkset` or `?linkType=all` give the RFC 9264 linkset.
//!
//! # Operations
//!
//! `POST /api/ops` takes a [`Submission`](medid_registry::op::Submission); refusals
//! carry `error` = [`OpError::code`](medid_registry::op::OpError::code): `schema`,
//! `invalid`, `proof`, `stale`, `restricted` 422 (a proof that does not verify is a
//! property of the document, not HTTP authentication, hence not 401); `notAuthorised`,
//! `deactivated`, `missingPossession` 403; `conflict`, `exists`, `replay` 409;
//! `notFound` 404; `tooLarge` 413. A body that is not JSON is 400 `invalidJson`; the
//! node failing to write is 503 `unavailable`.
//!
//! A receipt is `{"leafIndex","entryHash","treeSize"}` (201), with `Location:` its proof
//! bundle, `/api/log/bundle/<leafIndex>`.
//!
//! # The ledger
//!
//! `/checkpoint` (`text/plain; charset=utf-8`, `Cache-Control: no-cache`) and
//! `/tile/<L>/<N>[.p/<W>]`, `/tile/entries/<N>[.p/<W>]` (`application/octet-stream`)
//! are the files of `DIR/log`, byte for byte (the checkpoint followed by the
//! cosignatures its witnesses returned on it, see [`collect_cosignatures`]) — but only those of the tree of the
//! current checkpoint: a path outside it, or not in the tlog-tiles grammar's one
//! spelling, is 404, so files of an append that never committed are never served. Full
//! tiles are `immutable`; partial ones are cached for a day, as they may be deleted once
//! full (a deleted partial is served from the first hashes of its full tile).
//!
//! Proofs (hashes in base64), each computed against one checkpoint, which they carry:
//! inclusion `{"index","treeSize","leafHash","proof","root","checkpoint"}` (`size`
//! defaults to the checkpoint's), consistency `{"oldSize","newSize","proof","oldRoot",
//! "newRoot","checkpoint"}` (`new` defaults likewise). An index beyond the tree is 404;
//! a size beyond it, or `old` 0 or above `new`, 400. The proof bundle follows
//! `c2sp-tlog-proof.md`: `c2sp.org/tlog-proof@v1`, with `?extra=entry` an `extra` line
//! holding the entry (base64), `index N`, the proof hashes, an empty line, the
//! checkpoint.
//!
//! # Request signatures
//!
//! A restricted value is read with an RFC 9421 signature whose `keyid` is a did:key:
//! covering at least `"@method"` and `"@target-uri"` (or `"@path"`), with `created`
//! at most 5 minutes old (60 s ahead tolerated), and `alg`, if present, `"ed25519"`.
//! The node rebuilds `@target-uri` as `http://<Host><path>[?query]`; behind a TLS
//! proxy, sign `@path`. A signature that does not verify only hides restricted values;
//! the request is answered as an unsigned one (without the cache).
//!
//! # Caching
//!
//! Unsigned `GET`s of `/api/handles` and `/1.0/identifiers` go through the
//! [`AnswerCache`] under `CacheKey::new(subject, variant)`: the subject is the canonical
//! identifier (`Identifier`'s `Display`) or the DID, for every answer about it
//! (found, not found, not responsible), so invalidating the subject after a write drops
//! them all; the variant is `http:/api/handles` followed by `?index=…&type=…` when
//! filtered (sorted, deduplicated, types lower-cased), or `http:/1.0/identifiers;<representation>`
//! (`result`, `did+json`, `did+ld+json`). Handle answers live for the smallest `ttl` of
//! their values, DID answers for [`DID_TTL`], negative answers for [`NEGATIVE_TTL`].
//! An answer whose computation overlapped a commit's invalidation is dropped again
//! after its insert. A miss is computed from the [`IndexMirror`](crate::IndexMirror)
//! when the state reads one ([`AppState::set_mirror`], as `medid serve` does), else
//! from the index.

mod did;
mod digital_link;
mod error;
mod events;
mod handles;
mod hierarchy;
mod log;
mod ops;
pub mod signature;
mod witness;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use medid_did::DidKey;
use medid_registry::event::mirror::TraceMirror;
use medid_registry::event::trace::TraceSource;
use medid_registry::log::{FsTileStore, LogError, LogReader, verifier_key};
use medid_registry::{NodeConfig, Registry, Sequencer};
use serde_json::json;

use crate::cache::AnswerCache;
use error::ApiError;
pub use witness::collect_cosignatures;

/// Largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest request target (path and query), in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields in a request.
pub const MAX_HEADER_COUNT: usize = 64;
/// Most bytes of header field names and values in a request.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long negative answers (not found, not responsible, unregistered DID) are cached.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// How long a DID resolution answer is cached (writes invalidate it sooner).
pub const DID_TTL: Duration = Duration::from_secs(300);

/// What the HTTP front end needs to know about its node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The data directory (`DIR`): the ledger is `DIR/log`, restricted payloads
    /// `DIR/restricted`.
    pub dir: PathBuf,
    /// The node's configuration (name, admin).
    pub config: NodeConfig,
    /// The node's DID: the key that signs its checkpoints.
    pub node_did: DidKey,
    /// The node's DNS zone.
    pub zone: String,
    /// The HTTP URL of the parent node that delegated this node's prefix, if any:
    /// identifiers outside this node's prefixes are referred there.
    pub parent: Option<String>,
}

impl NodeInfo {
    /// The information of an open registry (before it moves to its sequencer thread).
    pub fn of(registry: &Registry, zone: &str) -> Result<Self, LogError> {
        let vkey = registry.log().verifier_key();
        let node_did = did_of_verifier_key(vkey).ok_or_else(|| {
            LogError::Checkpoint(medid_registry::log::CheckpointError::InvalidVerifierKey {
                vkey: vkey.to_owned(),
                reason: "not an Ed25519 signed-note verifier key".into(),
            })
        })?;
        Ok(Self {
            dir: registry.dir().to_owned(),
            config: registry.config().clone(),
            node_did,
            zone: zone.to_owned(),
            parent: None,
        })
    }
}

/// The Ed25519 key of a signed-note verifier key `<name>+<id>+<base64(0x01 ‖ key)>`.
fn did_of_verifier_key(vkey: &str) -> Option<DidKey> {
    // The name has no `+`; the base64 key may.
    let encoded = vkey.splitn(3, '+').nth(2)?;
    let bytes = BASE64.decode(encoded).ok()?;
    let (&kind, key) = bytes.split_first()?;
    let key: [u8; 32] = key.try_into().ok()?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).ok()?;
    (kind == 0x01).then(|| DidKey::from_verifying_key(key))
}

/// The shared state of the HTTP front end; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    sequencer: Sequencer,
    log: LogReader<FsTileStore>,
    node: NodeInfo,
    cache: AnswerCache,
    witness: witness::WitnessState,
    /// The index in memory, when the node keeps one ([`AppState::set_mirror`]).
    mirror: std::sync::OnceLock<Arc<crate::IndexMirror>>,
    /// The trace timelines in memory, when the node keeps them
    /// ([`AppState::set_trace_mirror`]).
    trace_mirror: std::sync::OnceLock<Arc<TraceMirror>>,
    /// DIDs rendered as text ([`AppState::did_text`]), at most [`MAX_DID_TEXTS`].
    did_texts: std::sync::RwLock<std::collections::HashMap<DidKey, Arc<str>>>,
}

/// How many DIDs [`AppState::did_text`] keeps rendered.
const MAX_DID_TEXTS: usize = 4096;

impl AppState {
    /// The state for a node: its sequencer (reads through `sequencer.index()`, writes
    /// through `sequencer.submit`), what it is, and the answer cache it shares with the
    /// DNS front end (whose subjects the sequencer's commit hook invalidates).
    pub fn new(sequencer: Sequencer, node: NodeInfo, cache: AnswerCache) -> Result<Self, LogError> {
        let path = node.dir.join("log");
        let store = FsTileStore::open(&path).map_err(|source| LogError::Store {
            action: format!("opening {}", path.display()),
            source,
        })?;
        let vkey = verifier_key(&node.config.name, node.node_did.verifying_key());
        let log = LogReader::new(store, &vkey)?;
        Ok(Self {
            inner: Arc::new(Inner {
                sequencer,
                log,
                node,
                cache,
                witness: witness::WitnessState::default(),
                mirror: std::sync::OnceLock::new(),
                trace_mirror: std::sync::OnceLock::new(),
                did_texts: std::sync::RwLock::default(),
            }),
        })
    }

    fn index(&self) -> &medid_registry::Index {
        self.inner.sequencer.index()
    }

    /// Reads identifier answers from `mirror` instead of the index (once; later calls
    /// are ignored). The sequencer's commit hook must [`crate::IndexMirror::apply`]
    /// every commit to it before invalidating the cache.
    pub fn set_mirror(&self, mirror: Arc<crate::IndexMirror>) {
        let _ = self.inner.mirror.set(mirror);
    }

    /// Traces walk the timelines of `mirror` instead of the index's keys (once; later
    /// calls are ignored). The sequencer's commit hook must [`TraceMirror::apply`]
    /// every commit to it.
    pub fn set_trace_mirror(&self, mirror: Arc<TraceMirror>) {
        let _ = self.inner.trace_mirror.set(mirror);
    }

    /// What traces read: the trace mirror when set, else the index.
    fn traces(&self) -> &dyn TraceSource {
        match self.inner.trace_mirror.get() {
            Some(mirror) => mirror.as_ref(),
            None => self.index(),
        }
    }

    /// The text of `did` (`did:key:z…`), rendered once for the DIDs that answers list
    /// on every request (a prefix's controllers): base58 costs more than the lookup.
    fn did_text(&self, did: &DidKey) -> Arc<str> {
        use std::sync::PoisonError;
        let texts = &self.inner.did_texts;
        if let Some(text) = texts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(did)
        {
            return text.clone();
        }
        let text: Arc<str> = did.to_string().into();
        let mut texts = texts.write().unwrap_or_else(PoisonError::into_inner);
        if texts.len() < MAX_DID_TEXTS {
            texts.insert(*did, text.clone());
        }
        text
    }

    /// What identifier answers read: the mirror when set, else the index.
    fn reads(&self) -> &dyn crate::RecordReads {
        match self.inner.mirror.get() {
            Some(mirror) => mirror.as_ref(),
            None => self.index(),
        }
    }

    fn dir(&self) -> &Path {
        &self.inner.node.dir
    }
}

/// The router of the HTTP front end (see the module docs for the endpoints).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/handles/", get(handles::resolve))
        .route("/api/handles/{*id}", get(handles::resolve))
        .route("/1.0/identifiers/", get(did::resolve))
        .route("/1.0/identifiers/{*did}", get(did::resolve))
        .route("/01/", get(digital_link::resolve))
        .route("/01/{*key}", get(digital_link::resolve))
        .route("/api/ops", post(ops::submit))
        .route("/capture", post(events::capture))
        .route("/events", get(events::query))
        .route("/epcs/{*epc}", get(events::epc_events))
        .route("/api/trace", get(events::trace))
        .route("/api/recall", get(events::recall))
        .route("/checkpoint", get(log::checkpoint))
        .route("/tile/{*path}", get(log::tile))
        .route("/api/log/proof/inclusion", get(log::inclusion))
        .route("/api/log/proof/consistency", get(log::consistency))
        .route("/api/log/bundle/{index}", get(log::bundle))
        .route("/api/node", get(node_info))
        .route("/api/prefixes/{*prefix}", get(hierarchy::prefix))
        .route("/add-checkpoint", post(witness::add_checkpoint))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(limits))
        .with_state(state)
}

async fn node_info(State(state): State<AppState>) -> Response {
    let node = &state.inner.node;
    json_response(
        StatusCode::OK,
        &json!({
            "name": node.config.name,
            "did": node.node_did.to_string(),
            "admin": node.config.admin.to_string(),
            "zone": node.zone,
            "verifierKey": state.inner.log.verifier_key(),
            "parent": node.parent,
        }),
    )
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "notFound",
        format!("no resource at {}", shorten(uri.path())),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "methodNotAllowed",
        format!("{method} is not allowed on {}", shorten(uri.path())),
    )
}

/// Refuses oversized request targets and header sections, and turns any error answer
/// that is not JSON (from a layer or the HTTP library) into the JSON error shape.
async fn limits(request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uriTooLong",
            format!("the request target has {uri_len} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response();
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_COUNT || header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headersTooLarge",
            format!(
                "the request has {} header fields of {header_bytes} bytes; at most \
                 {MAX_HEADER_COUNT} fields and {MAX_HEADER_BYTES} bytes are accepted",
                headers.len()
            ),
        )
        .into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // `text/x.tlog.size`: a witness's 409, whose body the tlog-witness spec fixes.
        .is_some_and(|v| v.contains("json") || v == "text/x.tlog.size");
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "tooLarge",
            StatusCode::NOT_FOUND => "notFound",
            s if s.is_server_error() => "internal",
            _ => "badRequest",
        };
        return ApiError::new(
            status,
            code,
            status
                .canonical_reason()
                .unwrap_or("the request failed")
                .to_owned(),
        )
        .into_response();
    }
    response
}

/// A JSON answer.
fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

/// A complete answer as the cache keeps it: status, media type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    content_type: Cow<'static, str>,
    body: Bytes,
}

impl Answer {
    fn json(status: StatusCode, body: &serde_json::Value) -> Self {
        Self::with_type(status, "application/json", body)
    }

    fn with_type(status: StatusCode, content_type: &'static str, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: Cow::Borrowed(content_type),
            body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    /// A JSON answer serialised straight from `body`.
    fn serialized(status: StatusCode, body: &impl serde::Serialize) -> Self {
        Self {
            status,
            content_type: Cow::Borrowed("application/json"),
            body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    /// `status (u16, big-endian) ‖ media type length (u8) ‖ media type ‖ body`.
    fn encode(&self) -> Bytes {
        let content_type = self.content_type.as_bytes();
        let len = u8::try_from(content_type.len()).unwrap_or(u8::MAX);
        let mut out = Vec::with_capacity(3 + usize::from(len) + self.body.len());
        out.extend_from_slice(&self.status.as_u16().to_be_bytes());
        out.push(len);
        out.extend_from_slice(&content_type[..usize::from(len)]);
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }

    fn decode(bytes: &Bytes) -> Option<Self> {
        let (&[hi, lo, len], rest) = bytes.split_first_chunk::<3>()?;
        let status = StatusCode::from_u16(u16::from_be_bytes([hi, lo])).ok()?;
        let content_type = rest.get(..usize::from(len))?;
        Some(Self {
            status,
            content_type: Cow::Owned(String::from_utf8(content_type.to_vec()).ok()?),
            body: bytes.slice(3 + usize::from(len)..),
        })
    }

    fn into_response(self) -> Response {
        let content_type = match self.content_type {
            Cow::Borrowed(static_type) => HeaderValue::from_static(static_type),
            Cow::Owned(decoded) => HeaderValue::from_str(&decoded)
                .unwrap_or(HeaderValue::from_static("application/json")),
        };
        (
            self.status,
            [(header::CONTENT_TYPE, content_type)],
            self.body,
        )
            .into_response()
    }
}

/// An answer from the cache, or computed (and cached for the TTL it comes with).
///
/// An answer computed across an invalidation (a write committing meanwhile) is not
/// kept ([`AnswerCache::get_or_compute`](crate::AnswerCache::get_or_compute)).
fn cached(
    state: &AppState,
    subject: &str,
    variant: &str,
    compute: impl FnOnce() -> Result<(Answer, Duration), ApiError>,
) -> Response {
    let key = crate::cache::CacheKey::new(subject, variant);
    let encoded = state.inner.cache.get_or_compute(key, || {
        compute().map(|(answer, ttl)| (answer.encode(), ttl))
    });
    match encoded.map(|bytes| Answer::decode(&bytes)) {
        Ok(Some(answer)) => answer.into_response(),
        Ok(None) => ApiError::internal("a cached answer could not be decoded").into_response(),
        Err(error) => error.into_response(),
    }
}

/// Percent-decodes a path part once; `None` on a malformed escape or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The query's `(name, value)` pairs, `application/x-www-form-urlencoded` decoded.
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The authority the client addressed: the URI's, else a well-formed `Host` field.
fn authority(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if let Some(authority) = uri.authority() {
        return Some(authority.as_str().to_owned());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then(|| host.to_owned())
}

/// The scheme of the target URI: the URI's when absolute, else `http` (the node speaks
/// plain HTTP; behind a TLS proxy, clients should sign `@path` rather than
/// `@target-uri`).
fn scheme(uri: &Uri) -> &str {
    uri.scheme_str().unwrap_or("http")
}

/// The DIDs proven by the request's HTTP Message Signatures: `None` when the request
/// carries none (it may use the cache), else those that verify (maybe none).
fn signers(method: &axum::http::Method, uri: &Uri, headers: &HeaderMap) -> Option<Vec<DidKey>> {
    if !headers.contains_key("signature") && !headers.contains_key("signature-input") {
        return None;
    }
    let authority = authority(uri, headers).unwrap_or_default();
    let message = signature::Message {
        method: method.as_str(),
        scheme: scheme(uri),
        authority: &authority,
        path: uri.path(),
        query: uri.query(),
        headers,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match signature::verify_did_signatures(&message, now) {
        Ok(dids) => Some(dids),
        Err(reason) => {
            tracing::debug!(%reason, "request signature refused");
            Some(Vec::new())
        }
    }
}

/// Quotes untrusted input in a message: at most 200 characters, control characters
/// escaped.
fn shorten(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(200)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn answers_round_trip_through_their_cache_encoding() {
        let answer = Answer::json(StatusCode::NOT_FOUND, &json!({"responseCode": 100}));
        assert_eq!(Answer::decode(&answer.encode()), Some(answer));
        assert_eq!(Answer::decode(&Bytes::from_static(b"\x00")), None);
        assert_eq!(Answer::decode(&Bytes::from_static(b"\x00\xc8\x09ab")), None);
    }

    #[test]
    fn an_answer_computed_before_a_write_does_not_outlive_its_invalidation() {
        use medid_registry::op::{Submission, draft, sign};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        let admin = medid_did::KeyPair::generate();
        Registry::init(&path, "test.medid.example", Some(admin.did())).unwrap();
        let registry = Registry::open(&path).unwrap();
        let info = NodeInfo::of(&registry, "medid.test").unwrap();
        let cache = AnswerCache::new(100);
        let hook = cache.clone();
        let (sequencer, _thread) = Sequencer::start_with_hook(registry, move |keys| {
            for did in keys.iter().filter_map(|k| k.strip_prefix("d/")) {
                hook.invalidate_subject(did);
            }
        })
        .unwrap();
        let state = AppState::new(sequencer.clone(), info, cache.clone()).unwrap();
        let person = medid_did::KeyPair::generate();
        let did = person.did().to_string();
        let key = crate::CacheKey::new(&did, "http:/1.0/identifiers;result");

        let response = cached(&state, &did, "http:/1.0/identifiers;result", || {
            // The answer of the state before the write...
            let old = Answer::json(StatusCode::OK, &json!({"registered": false}));
            // ...and the write commits, its hook dropping the subject, before the
            // answer enters the cache.
            let operation = sign(
                &draft(
                    "did.register",
                    json!({"did": did, "name": "P", "role": "person"}),
                ),
                &[&person],
            )
            .unwrap();
            let submission = Submission {
                operation,
                restricted: Vec::new(),
            };
            assert!(sequencer.submit_blocking(&submission).is_ok());
            Ok((old, Duration::from_secs(60)))
        });
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(cache.get(&key), None, "the answer of the old state is gone");

        // Without a write meanwhile, the answer stays.
        let _ = cached(&state, &did, "http:/1.0/identifiers;result", || {
            Ok((
                Answer::json(StatusCode::OK, &json!({"registered": true})),
                Duration::from_secs(60),
            ))
        });
        assert!(cache.get(&key).is_some());
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(
            percent_decode("86.1000/A%2FB").as_deref(),
            Some("86.1000/A/B")
        );
        assert_eq!(percent_decode("%2f01%2F"), Some("/01/".into()));
        for bad in ["50%", "%zz", "%4", "%ff"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_node_did_comes_from_its_verifier_key() {
        let key = medid_did::KeyPair::generate();
        let vkey = verifier_key("node.example", &key.verifying_key());
        assert_eq!(did_of_verifier_key(&vkey), Some(key.did()));
        assert_eq!(did_of_verifier_key("node.example+00000000+AAAA"), None);
    }
}
