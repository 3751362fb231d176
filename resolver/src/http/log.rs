//! The ledger over HTTP: the tlog-tiles static resources (`/checkpoint`, `/tile/…`),
//! proofs as JSON, and offline proof bundles (`c2sp.org/tlog-proof@v1`).
//!
//! Every answer about the tree is computed against one checkpoint read at the start of
//! the request ([`LogSnapshot`](medid_registry::log::LogSnapshot)), so a proof, its
//! root and the checkpoint it comes with always agree while the writer appends.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use medid_registry::log::{Hash, TileResource, leaf_hash};
use serde_json::json;

use super::error::ApiError;
use super::{AppState, json_response, query_pairs};

/// `Cache-Control` of the checkpoint: it changes with every commit.
const CHECKPOINT_CACHE: &str = "no-cache";
/// `Cache-Control` of tiles and bundles: immutable once their checkpoint is written.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a partial tile or bundle: immutable too, but it may be deleted
/// once the full one exists, so caches keep it for a day.
const PARTIAL: &str = "public, max-age=86400";

/// The media type of checkpoints and proof bundles.
const TEXT: &str = "text/plain; charset=utf-8";

pub(super) async fn checkpoint(State(state): State<AppState>) -> Response {
    match state.inner.log.checkpoint() {
        Ok(note) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(TEXT)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(CHECKPOINT_CACHE),
                ),
            ],
            state.with_cosignatures(note),
        )
            .into_response(),
        Err(e) => ApiError::log(e).into_response(),
    }
}

pub(super) async fn tile(State(state): State<AppState>, uri: Uri) -> Response {
    let path = uri.path().strip_prefix('/').unwrap_or_default();
    let Some(resource) = TileResource::parse(path) else {
        return ApiError::not_found(
            "not a tlog-tiles resource: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]",
        )
        .into_response();
    };
    let found = state
        .inner
        .log
        .snapshot()
        .and_then(|snapshot| snapshot.resource(&resource));
    match found {
        Ok(Some(bytes)) => (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(if resource.is_full() {
                        IMMUTABLE
                    } else {
                        PARTIAL
                    }),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => ApiError::not_found(format!(
            "{path} is not part of the tree of the current checkpoint"
        ))
        .into_response(),
        Err(e) => ApiError::log(e).into_response(),
    }
}

/// A non-negative decimal query parameter; `Ok(None)` when absent.
fn number(uri: &Uri, name: &str) -> Result<Option<u64>, ApiError> {
    let Some((_, value)) = query_pairs(uri).into_iter().find(|(n, _)| n == name) else {
        return Ok(None);
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "`{name}={}` is not a non-negative decimal",
            super::shorten(&value)
        )));
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("`{name}` is larger than 2^64-1")))
}

fn required(uri: &Uri, name: &str) -> Result<u64, ApiError> {
    number(uri, name)?.ok_or_else(|| ApiError::bad_request(format!("`{name}=` is required")))
}

fn hashes(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(ToString::to_string).collect()
}

fn note_text(note: &[u8]) -> String {
    String::from_utf8_lossy(note).into_owned()
}

/// `GET /api/log/proof/inclusion?index=I[&size=N]`: the inclusion proof of entry `I` in
/// the tree of `N` entries (default: the current checkpoint's size).
pub(super) async fn inclusion(State(state): State<AppState>, uri: Uri) -> Response {
    let answer = (|| {
        let index = required(&uri, "index")?;
        let snapshot = state.inner.log.snapshot().map_err(ApiError::log)?;
        let size = number(&uri, "size")?.unwrap_or(snapshot.size());
        let proof = snapshot
            .inclusion_proof(index, size)
            .map_err(ApiError::log)?;
        let root = snapshot.root_at(size).map_err(ApiError::log)?;
        let entry = snapshot.entry(index).map_err(ApiError::log)?;
        Ok::<_, ApiError>(json!({
            "index": index,
            "treeSize": size,
            "leafHash": leaf_hash(&entry),
            "proof": hashes(&proof),
            "root": root,
            "checkpoint": note_text(snapshot.note()),
        }))
    })();
    match answer {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/log/proof/consistency?old=M[&new=N]`: the consistency proof from the tree
/// of `M` entries to the tree of `N` (default: the current checkpoint's size).
pub(super) async fn consistency(State(state): State<AppState>, uri: Uri) -> Response {
    let answer = (|| {
        let old = required(&uri, "old")?;
        let snapshot = state.inner.log.snapshot().map_err(ApiError::log)?;
        let new = number(&uri, "new")?.unwrap_or(snapshot.size());
        let proof = snapshot
            .consistency_proof(old, new)
            .map_err(ApiError::log)?;
        Ok::<_, ApiError>(json!({
            "oldSize": old,
            "newSize": new,
            "proof": hashes(&proof),
            "oldRoot": snapshot.root_at(old).map_err(ApiError::log)?,
            "newRoot": snapshot.root_at(new).map_err(ApiError::log)?,
            "checkpoint": note_text(snapshot.note()),
        }))
    })();
    match answer {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/log/bundle/{index}[?extra=entry]`: an offline proof of entry `index`
/// (C2SP tlog-proof): the header line, the optional `extra` line (with
/// `?extra=entry`: the entry itself, base64, so the bundle proves it alone), the index,
/// the inclusion proof, an empty line and the current checkpoint verbatim.
pub(super) async fn bundle(State(state): State<AppState>, uri: Uri) -> Response {
    let answer = (|| {
        let text = uri
            .path()
            .strip_prefix("/api/log/bundle/")
            .unwrap_or_default();
        let index: u64 = text
            .parse()
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
            .filter(|_| text == "0" || !text.starts_with('0'))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{}` is not an entry index (a decimal without leading zeroes)",
                    super::shorten(text)
                ))
            })?;
        let with_entry = match query_pairs(&uri)
            .into_iter()
            .find(|(name, _)| name == "extra")
            .map(|(_, value)| value)
        {
            None => false,
            Some(value) if value == "entry" => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "`extra={}`: the only extra data is `entry`",
                    super::shorten(&other)
                )));
            }
        };
        let snapshot = state.inner.log.snapshot().map_err(ApiError::log)?;
        let size = snapshot.size();
        let proof = snapshot
            .inclusion_proof(index, size)
            .map_err(ApiError::log)?;
        let mut out = String::from("c2sp.org/tlog-proof@v1\n");
        if with_entry {
            let entry = snapshot.entry(index).map_err(ApiError::log)?;
            let _ = writeln!(out, "extra {}", BASE64.encode(entry));
        }
        let _ = writeln!(out, "index {index}");
        for hash in &proof {
            let _ = writeln!(out, "{hash}");
        }
        out.push('\n');
        let mut body = out.into_bytes();
        body.extend_from_slice(&state.with_cosignatures(snapshot.note().to_vec()));
        Ok::<_, ApiError>(body)
    })();
    match answer {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT))],
            body,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
