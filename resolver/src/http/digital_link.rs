//! GS1 Digital Link: `GET /01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]` redirects to
//! the record's default link or answers its RFC 9264 linkset (see the
//! [module docs](super#gs1-digital-link)).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use medid_registry::IdentifierRecord;
use medid_registry::id::{Gs1Key, Identifier};
use medid_registry::op::ReadPermission;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::{AppState, authority, query_pairs, scheme};

/// Media type of a linkset (RFC 9264).
const LINKSET: &str = "application/linkset+json";
/// The GS1 Web Vocabulary, where `gs1:` link types live.
const GS1_VOC: &str = "https://gs1.org/voc/";

/// One link of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    /// Its relation type: a URI, or a registered name (`related`).
    rel: String,
    /// Its target.
    href: String,
}

pub(super) async fn resolve(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match respond(&state, &uri, &headers) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn respond(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Result<Response, ApiError> {
    let path = uri.path();
    let key = Gs1Key::parse(path)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalidIdentifier", e.to_string()))?;
    let id = Identifier::Gs1(key);
    let index = state.index();
    let Some(record) = index.identifier(&id).map_err(ApiError::internal)? else {
        let responsible = id
            .namespace()
            .ancestors_keys()
            .iter()
            .map(|k| index.prefix(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::internal)?
            .iter()
            .any(Option::is_some);
        return Err(if responsible {
            ApiError::not_found(format!("{id} is not registered at this node"))
        } else {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "notResponsible",
                format!(
                    "this node ({}) is not responsible for {id}: none of its GS1 Company \
                     Prefixes covers the GTIN",
                    state.inner.node.config.name
                ),
            )
        });
    };
    let links = links(&record);
    let anchor = match authority(uri, headers) {
        Some(authority) => format!("{}://{authority}{id}", scheme(uri)),
        None => id.to_string(),
    };
    let link_type = query_pairs(uri)
        .into_iter()
        .find(|(name, _)| name == "linkType")
        .map(|(_, value)| value);
    let wants_linkset = matches!(link_type.as_deref(), Some("linkset" | "all"))
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.to_ascii_lowercase().contains(LINKSET));
    let link_header = link_header(&links, &anchor);
    if wants_linkset {
        let body = linkset(&links, &anchor);
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(LINKSET))],
            serde_json::to_vec(&body).unwrap_or_default(),
        )
            .into_response();
        insert_link(&mut response, link_header);
        return Ok(response);
    }
    let wanted = link_type.as_deref().map(relation_of_link_type);
    let target = wanted
        .and_then(|rel| links.iter().find(|l| l.rel == rel))
        .or_else(|| default_link(&links))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "noDefaultLink",
                format!("{id} has no link to redirect to (no gs1:defaultLink or URL value)"),
            )
        })?;
    let location = HeaderValue::from_str(&target.href).map_err(ApiError::internal)?;
    let mut response = (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response();
    insert_link(&mut response, link_header);
    Ok(response)
}

fn insert_link(response: &mut Response, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::LINK, value);
    }
}

/// The relation a `linkType` names: `gs1:pip` and `https://gs1.org/voc/pip` alike.
fn relation_of_link_type(link_type: &str) -> String {
    match link_type.strip_prefix("gs1:") {
        Some(name) => format!("{GS1_VOC}{name}"),
        None => link_type.to_owned(),
    }
}

/// The record's links, in index order (see the module docs for which values count).
fn links(record: &IdentifierRecord) -> Vec<Link> {
    let mut links = Vec::new();
    let mut default: Option<String> = None;
    let mut first_url: Option<String> = None;
    for stored in &record.values {
        let value = &stored.value;
        if value.read != ReadPermission::Public {
            continue;
        }
        let Some(href) = value.data.as_deref().filter(|d| is_link_target(d)) else {
            continue;
        };
        if value.kind == "URL" {
            first_url.get_or_insert_with(|| href.to_owned());
            links.push(Link {
                rel: "related".to_owned(),
                href: href.to_owned(),
            });
        } else if let Some(name) = value.kind.strip_prefix("gs1:") {
            if name == "defaultLink" {
                default.get_or_insert_with(|| href.to_owned());
            } else {
                links.push(Link {
                    rel: format!("{GS1_VOC}{name}"),
                    href: href.to_owned(),
                });
            }
        }
    }
    if let Some(href) = default.or(first_url) {
        links.insert(
            0,
            Link {
                rel: format!("{GS1_VOC}defaultLink"),
                href,
            },
        );
    }
    links
}

fn default_link(links: &[Link]) -> Option<&Link> {
    links
        .iter()
        .find(|l| l.rel.strip_prefix(GS1_VOC) == Some("defaultLink"))
}

/// An absolute `http(s)` URL that fits a `Location` and a `Link` field as is.
fn is_link_target(data: &str) -> bool {
    let lower = data.get(..8).unwrap_or(data).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && data.len() <= 2048
        && data
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
}

/// The `Link` field (RFC 8288): every link, and the linkset itself.
fn link_header(links: &[Link], anchor: &str) -> String {
    let mut parts: Vec<String> = links
        .iter()
        .map(|l| format!("<{}>; rel=\"{}\"", l.href, l.rel))
        .collect();
    if is_link_target(anchor) || anchor.starts_with('/') {
        parts.push(format!(
            "<{anchor}?linkType=linkset>; rel=\"linkset\"; type=\"{LINKSET}\""
        ));
    }
    parts.join(", ")
}

/// The linkset document (RFC 9264 §4.2): one context, its targets by relation.
fn linkset(links: &[Link], anchor: &str) -> Value {
    let mut context = Map::new();
    context.insert("anchor".into(), json!(anchor));
    for link in links {
        let targets = context
            .entry(link.rel.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(targets) = targets {
            targets.push(json!({"href": link.href}));
        }
    }
    json!({"linkset": [Value::Object(context)]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_must_be_plain_absolute_urls() {
        assert!(is_link_target("https://example.com/a?b=c"));
        assert!(is_link_target("HTTP://example.com/"));
        for bad in [
            "ftp://x",
            "https://a b",
            "https://x/<y>",
            "/relative",
            "https://é.example",
            "javascript:x",
        ] {
            assert!(!is_link_target(bad), "{bad}");
        }
    }

    #[test]
    fn link_types_name_gs1_relations() {
        assert_eq!(relation_of_link_type("gs1:pip"), "https://gs1.org/voc/pip");
        assert_eq!(
            relation_of_link_type("https://gs1.org/voc/pip"),
            "https://gs1.org/voc/pip"
        );
    }
}
