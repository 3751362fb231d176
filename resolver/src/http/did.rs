//! `GET /1.0/identifiers/{did}`: the DID Resolution HTTP binding for `did:key` (see the
//! [module docs](super#dids)).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use medid_did::{DidKey, DidKeyError, KeyFormat, did_document};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{Answer, AppState, DID_TTL, NEGATIVE_TTL, cached, percent_decode};

/// Media type of a DID resolution result.
const RESULT_TYPE: &str = "application/ld+json;profile=\"https://w3id.org/did-resolution\"";
/// Media type of a DID document in JSON.
const DID_JSON: &str = "application/did+json";
/// Media type of a DID document in JSON-LD.
const DID_LD_JSON: &str = "application/did+ld+json";
const RESOLUTION_CONTEXT: &str = "https://w3id.org/did-resolution/v1";

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Representation {
    /// The resolution result (document and metadata).
    Result,
    /// The bare document as `application/did+json`.
    DidJson,
    /// The bare document as `application/did+ld+json`.
    DidLdJson,
}

impl Representation {
    /// From the `Accept` field: the first media range (by order, then by `q`) that
    /// names a representation; `None` when it names none.
    fn from_accept(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT) else {
            return Some(Self::Result);
        };
        let accept = accept.to_str().ok()?;
        let mut best: Option<(f32, Self)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut q = 1.0f32;
            let mut profile_ok = true;
            for param in parts {
                if let Some(value) = param.strip_prefix("q=") {
                    q = value.parse().unwrap_or(0.0);
                }
                if let Some(value) = param.strip_prefix("profile=") {
                    profile_ok = value.trim_matches('"') == "https://w3id.org/did-resolution";
                }
            }
            let representation = match media.as_str() {
                "application/did+json" => Self::DidJson,
                "application/did+ld+json" => Self::DidLdJson,
                "application/ld+json" if profile_ok => Self::Result,
                "application/did-resolution" | "application/json" | "application/*" | "*/*" => {
                    Self::Result
                }
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, representation));
            }
        }
        best.map(|(_, r)| r)
    }

    fn variant(self) -> &'static str {
        match self {
            Self::Result => "http:/1.0/identifiers;result",
            Self::DidJson => "http:/1.0/identifiers;did+json",
            Self::DidLdJson => "http:/1.0/identifiers;did+ld+json",
        }
    }
}

pub(super) async fn resolve(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let raw = uri
        .path()
        .strip_prefix("/1.0/identifiers/")
        .unwrap_or_default();
    let Some(representation) = Representation::from_accept(&headers) else {
        return error_result(
            StatusCode::NOT_ACCEPTABLE,
            "representationNotSupported",
            "the Accept field names no representation this node produces: application/did+json, \
             application/did+ld+json or a resolution result (application/ld+json;profile=\
             \"https://w3id.org/did-resolution\")",
        );
    };
    let Some(text) = percent_decode(raw) else {
        return error_result(
            StatusCode::BAD_REQUEST,
            "invalidDid",
            "the DID is not percent-encoded UTF-8",
        );
    };
    let did = match DidKey::parse(&text) {
        Ok(did) => did,
        Err(e) => {
            let status = match e {
                DidKeyError::MethodNotSupported(_) => StatusCode::NOT_IMPLEMENTED,
                _ => StatusCode::BAD_REQUEST,
            };
            return error_result(status, e.code(), &e.to_string());
        }
    };
    cached(&state, &did.to_string(), representation.variant(), || {
        resolution(&state, &did, representation)
    })
}

fn resolution(
    state: &AppState,
    did: &DidKey,
    representation: Representation,
) -> Result<(Answer, std::time::Duration), ApiError> {
    let document = did_document(did, KeyFormat::Multikey, false);
    let record = state.index().did(did).map_err(ApiError::internal)?;
    let ttl = if record.is_some() {
        DID_TTL
    } else {
        NEGATIVE_TTL
    };
    let deactivated = record.as_ref().is_some_and(|r| r.deactivated);
    let answer = match representation {
        Representation::DidJson if !deactivated => {
            Answer::with_type(StatusCode::OK, DID_JSON, &document)
        }
        Representation::DidLdJson if !deactivated => {
            Answer::with_type(StatusCode::OK, DID_LD_JSON, &document)
        }
        _ => {
            let metadata = match &record {
                Some(r) => json!({
                    "created": r.created,
                    "updated": r.updated,
                    "deactivated": r.deactivated,
                }),
                None => json!({}),
            };
            let status = if deactivated {
                StatusCode::GONE
            } else {
                StatusCode::OK
            };
            Answer::with_type(
                status,
                RESULT_TYPE,
                &json!({
                    "@context": RESOLUTION_CONTEXT,
                    "didDocument": document,
                    "didResolutionMetadata": {"contentType": DID_LD_JSON},
                    "didDocumentMetadata": metadata,
                }),
            )
        }
    };
    Ok((answer, ttl))
}

/// A resolution result that reports an error.
fn error_result(status: StatusCode, error: &str, message: &str) -> Response {
    let body: Value = json!({
        "@context": RESOLUTION_CONTEXT,
        "didDocument": null,
        "didResolutionMetadata": {"error": error, "errorMessage": message},
        "didDocumentMetadata": {},
    });
    Answer::with_type(status, RESULT_TYPE, &body).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &str) -> Option<Representation> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        Representation::from_accept(&headers)
    }

    #[test]
    fn accept_picks_the_representation() {
        assert_eq!(
            Representation::from_accept(&HeaderMap::new()),
            Some(Representation::Result)
        );
        assert_eq!(
            accept("application/did+json"),
            Some(Representation::DidJson)
        );
        assert_eq!(
            accept("application/did+ld+json"),
            Some(Representation::DidLdJson)
        );
        assert_eq!(accept("*/*"), Some(Representation::Result));
        assert_eq!(
            accept("application/ld+json;profile=\"https://w3id.org/did-resolution\""),
            Some(Representation::Result)
        );
        assert_eq!(
            accept("application/ld+json;profile=\"https://other\""),
            None
        );
        assert_eq!(accept("text/html"), None);
        assert_eq!(
            accept("application/json;q=0.5, application/did+json"),
            Some(Representation::DidJson)
        );
        assert_eq!(
            accept("application/did+json;q=0.2, application/json;q=0.9"),
            Some(Representation::Result)
        );
        assert_eq!(accept("application/did+json;q=0"), None);
    }
}
