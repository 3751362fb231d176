//! `POST /api/ops`: a signed operation (a [`Submission`]) in, a receipt or the refusal
//! out (see the [module docs](super#operations) for the statuses).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medid_registry::SubmitError;
use medid_registry::op::{OpError, Submission};
use serde_json::json;

use super::error::ApiError;
use super::{AppState, MAX_BODY_BYTES, json_response};

/// The HTTP status of a refusal.
pub(super) fn refusal_status(error: &OpError) -> StatusCode {
    match error.code() {
        "notAuthorised" | "deactivated" | "missingPossession" => StatusCode::FORBIDDEN,
        "conflict" | "exists" | "replay" => StatusCode::CONFLICT,
        "notFound" => StatusCode::NOT_FOUND,
        "tooLarge" => StatusCode::PAYLOAD_TOO_LARGE,
        // schema, invalid, proof, stale, restricted, and any code added later.
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

pub(super) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match accept(&state, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn accept(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let json = content_type
            .to_str()
            .ok()
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupportedMediaType",
                "a submission is application/json",
            ));
        }
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "tooLarge",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if is_length_limit(&e) {
                too_large()
            } else {
                ApiError::bad_request(format!("the request body could not be read: {e}"))
            }
        })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalidJson",
            format!("the body is not JSON: {e}"),
        )
    })?;
    let submission: Submission = serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema",
            format!(
                "the body is not a submission {{\"operation\": {{…}}, \"restricted\": [...]}}: {e}"
            ),
        )
    })?;
    // `submit` only queues: the sequencer's checker threads do the CPU work.
    let answer = state
        .inner
        .sequencer
        .submit(&submission)
        .await
        .unwrap_or_else(|_| Err(SubmitError::Failed("the sequencer has stopped".into())));
    match answer {
        Ok(receipt) => {
            let mut response = json_response(StatusCode::CREATED, &receipt);
            if let Ok(location) =
                HeaderValue::from_str(&format!("/api/log/bundle/{}", receipt.leaf_index))
            {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        Err(SubmitError::Refused(error)) => Ok(json_response(
            refusal_status(&error),
            &json!({"error": error.code(), "message": error.to_string()}),
        )),
        Err(failure) => Ok(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            failure.to_string(),
        )
        .into_response()),
    }
}

/// Whether reading a body failed because it exceeded its limit.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use medid_registry::SchemaError;

    use super::*;

    #[test]
    fn every_refusal_has_its_status() {
        let text = || "x".to_owned();
        let cases = [
            (
                OpError::Schema(SchemaError {
                    pointer: text(),
                    message: text(),
                }),
                422,
            ),
            (
                OpError::Invalid {
                    pointer: text(),
                    message: text(),
                },
                422,
            ),
            (OpError::Proof(text()), 422),
            (OpError::TooLarge(70_000), 413),
            (
                OpError::Stale {
                    created: text(),
                    window_seconds: 300,
                },
                422,
            ),
            (
                OpError::Replay {
                    signer: text(),
                    nonce: text(),
                },
                409,
            ),
            (
                OpError::NotController {
                    signers: text(),
                    target: text(),
                },
                403,
            ),
            (OpError::Deactivated(text()), 403),
            (OpError::MissingPossession(text()), 403),
            (
                OpError::Conflict {
                    target: text(),
                    expected: 1,
                    current: 2,
                },
                409,
            ),
            (OpError::NotFound(text()), 404),
            (OpError::Exists(text()), 409),
            (OpError::Restricted(text()), 422),
        ];
        for (error, status) in cases {
            assert_eq!(refusal_status(&error).as_u16(), status, "{}", error.code());
        }
    }
}
