//! `GET /api/prefixes/{prefix}`: a prefix's record as the index holds it — its
//! controllers, the prefix it was delegated from, the node it is delegated to and the
//! ledger index of the operation that last changed it. A child node reads its
//! delegation here when it is set up (`medid init --parent`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medid_registry::op::parse_prefix;

use super::error::ApiError;
use super::{AppState, json_response, shorten};

/// The record of a prefix: 200 and the record, 400 for a malformed prefix, 404 when
/// this node has no such prefix.
pub(super) async fn prefix(State(state): State<AppState>, Path(text): Path<String>) -> Response {
    let namespace = match parse_prefix(&text) {
        Ok(namespace) => namespace,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalidPrefix",
                format!("`{}`: {e}", shorten(&text)),
            )
            .into_response();
        }
    };
    match state.index().prefix(&namespace.namespace_key()) {
        Ok(Some(record)) => json_response(StatusCode::OK, &record),
        Ok(None) => ApiError::new(
            StatusCode::NOT_FOUND,
            "notFound",
            format!("this node has no prefix {namespace}"),
        )
        .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}
