//! [`ApiError`]: an HTTP error answer, JSON `{"error": code, "message": …}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medid_registry::log::LogError;
use serde_json::json;

/// An error answer: a status, a short stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "badRequest", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "notFound", message)
    }

    /// A failure of the node itself; the details go to the log, not to the client.
    pub(crate) fn internal(details: impl std::fmt::Display) -> Self {
        tracing::error!(%details, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the node failed to answer; its operator can find why in its log",
        )
    }

    /// The answer to a ledger read that failed.
    pub(crate) fn log(error: LogError) -> Self {
        match error {
            LogError::IndexOutOfRange { .. } => Self::not_found(error.to_string()),
            LogError::SizeOutOfRange { .. } | LogError::InvalidRequest(_) => {
                Self::bad_request(error.to_string())
            }
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "message": self.message});
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            serde_json::to_vec(&body).unwrap_or_default(),
        )
            .into_response()
    }
}
