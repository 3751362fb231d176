//! The CBV 2.0 event hash ID (CBV 2.0 §8.9): a syntax-agnostic fingerprint of an EPCIS
//! event, `ni:///sha-256;<hex>?ver=CBV2.0`.
//!
//! [`pre_hash`] builds the canonical pre-hash string: `eventType=…`, then the event's
//! standard fields in the order CBV fixes (eventTime, eventTimeZoneOffset,
//! certificationInfo, parentID, epcList, …, sensorElementList), each `name=value` with
//! times in UTC at millisecond precision, CBV URNs and bare CBV words as GS1 Web URIs,
//! EPC URIs as canonical GS1 Digital Link URIs, numbers without trailing zeros; lists
//! are sorted lexically; then the user extensions, `{namespace}name`, sorted. `eventID`,
//! `recordTime`, `errorDeclaration` and medid's own `medid:proof` (the signature, which
//! differs each time the same event is signed) take no part.
//!
//! Written by hand: no Rust crate computes it. Checked against the expected hashes of
//! GS1's reference implementation (`registry/tests/event_hash.rs`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The JSON-LD namespace of medid's EPCIS extensions (`medid:…`).
pub const MEDID_NAMESPACE: &str = "https://w3id.org/medid/epcis/";

/// Members of an event that take no part in its hash.
const IGNORED: &[&str] = &[
    "eventID",
    "recordTime",
    "type",
    "errorDeclaration",
    "@context",
    "medid:proof",
    "rdfs:comment",
    "comment",
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

/// A property order: each child name with the order of its own children.
struct Order(&'static str, &'static [Order]);

const EPC: &[Order] = &[Order("epc", &[])];
const QUANTITY: &[Order] = &[Order(
    "quantityElement",
    &[
        Order("epcClass", &[]),
        Order("quantity", &[]),
        Order("uom", &[]),
    ],
)];
const SENSOR_METADATA: &[Order] = &[
    Order("time", &[]),
    Order("startTime", &[]),
    Order("endTime", &[]),
    Order("deviceID", &[]),
    Order("deviceMetadata", &[]),
    Order("rawData", &[]),
    Order("dataProcessingMethod", &[]),
    Order("bizRules", &[]),
];
const SENSOR_REPORT: &[Order] = &[
    Order("type", &[]),
    Order("exception", &[]),
    Order("deviceID", &[]),
    Order("deviceMetadata", &[]),
    Order("rawData", &[]),
    Order("dataProcessingMethod", &[]),
    Order("time", &[]),
    Order("microorganism", &[]),
    Order("chemicalSubstance", &[]),
    Order("value", &[]),
    Order("component", &[]),
    Order("stringValue", &[]),
    Order("booleanValue", &[]),
    Order("hexBinaryValue", &[]),
    Order("uriValue", &[]),
    Order("minValue", &[]),
    Order("maxValue", &[]),
    Order("meanValue", &[]),
    Order("sDev", &[]),
    Order("percRank", &[]),
    Order("percValue", &[]),
    Order("uom", &[]),
    Order("coordinateReferenceSystem", &[]),
];
const SENSOR_ELEMENT: &[Order] = &[Order(
    "sensorElement",
    &[
        Order("sensorMetadata", SENSOR_METADATA),
        Order("sensorReport", SENSOR_REPORT),
    ],
)];

/// CBV 2.0 §8.9.2, the order of an event's standard fields.
const EVENT_ORDER: &[Order] = &[
    Order("eventTime", &[]),
    Order("eventTimeZoneOffset", &[]),
    Order("certificationInfo", &[]),
    Order("parentID", &[]),
    Order("epcList", EPC),
    Order("inputEPCList", EPC),
    Order("childEPCs", EPC),
    Order("quantityList", QUANTITY),
    Order("childQuantityList", QUANTITY),
    Order("inputQuantityList", QUANTITY),
    Order("outputEPCList", EPC),
    Order("outputQuantityList", QUANTITY),
    Order("action", &[]),
    Order("transformationID", &[]),
    Order("bizStep", &[]),
    Order("disposition", &[]),
    Order(
        "persistentDisposition",
        &[Order("set", &[]), Order("unset", &[])],
    ),
    Order("readPoint", &[Order("id", &[])]),
    Order("bizLocation", &[Order("id", &[])]),
    Order("sensorElementList", SENSOR_ELEMENT),
];

/// The CBV 2.0 event hash ID of an EPCIS event (JSON/JSON-LD), given the JSON-LD
/// namespaces in scope (`prefix` → IRI) besides the event's own `@context`.
pub fn event_hash_id(event: &Map<String, Value>, namespaces: &BTreeMap<String, String>) -> String {
    let digest = Sha256::digest(pre_hash(event, namespaces).as_bytes());
    format!("ni:///sha-256;{}?ver=CBV2.0", hex::encode(digest))
}

/// The canonical pre-hash string of an event (CBV 2.0 §8.9.2).
pub fn pre_hash(event: &Map<String, Value>, namespaces: &BTreeMap<String, String>) -> String {
    let mut namespaces = namespaces.clone();
    namespaces
        .entry("medid".into())
        .or_insert_with(|| MEDID_NAMESPACE.into());
    namespaces
        .entry("gs1".into())
        .or_insert_with(|| "https://gs1.org/voc/".into());
    if let Some(context) = event.get("@context") {
        collect_namespaces(context, &mut namespaces);
    }
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut children: Vec<Node> = event
        .iter()
        .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
        .flat_map(|(k, v)| to_nodes(k, v, &namespaces))
        .collect();
    let mut out = format!("eventType={kind}");
    out.push_str(&ordered(&mut children, EVENT_ORDER));
    out.push_str(&generic(&children));
    out
}

/// The `prefix → IRI` pairs of a JSON-LD `@context` (strings name remote contexts and
/// define no prefix medid needs).
pub fn collect_namespaces(context: &Value, into: &mut BTreeMap<String, String>) {
    match context {
        Value::Array(items) => items.iter().for_each(|c| collect_namespaces(c, into)),
        Value::Object(map) => {
            for (prefix, iri) in map {
                if let Some(iri) = iri.as_str() {
                    into.insert(prefix.clone(), iri.to_owned());
                }
            }
        }
        _ => {}
    }
}

fn expand_name(name: &str, namespaces: &BTreeMap<String, String>) -> String {
    match name.split_once(':') {
        Some((prefix, local)) if namespaces.contains_key(prefix) => {
            format!("{{{}}}{local}", namespaces[prefix])
        }
        _ => name.to_owned(),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The name a list's items take in the XML model that the pre-hash string follows.
fn item_name(list: &str) -> String {
    match list {
        "epcList" | "childEPCs" | "inputEPCList" | "outputEPCList" => "epc".into(),
        "quantityList" | "childQuantityList" | "inputQuantityList" | "outputQuantityList" => {
            "quantityElement".into()
        }
        "bizTransactionList" | "sourceList" | "destinationList" => "item".into(),
        other => other.strip_suffix("List").unwrap_or(other).to_owned(),
    }
}

fn to_nodes(key: &str, value: &Value, ns: &BTreeMap<String, String>) -> Vec<Node> {
    let name = expand_name(key, ns);
    match value {
        Value::Array(items) => {
            let standard_list = key.ends_with("List") || key == "childEPCs";
            if standard_list && !key.contains(':') {
                let child = item_name(key);
                let children = items
                    .iter()
                    .flat_map(|item| typed_item(key, &child, item, ns))
                    .collect();
                vec![Node {
                    name,
                    text: String::new(),
                    children,
                }]
            } else {
                // Repeated elements (sensorReport, extensions): siblings of one name.
                items
                    .iter()
                    .flat_map(|item| to_nodes(key, item, ns))
                    .collect()
            }
        }
        Value::Object(map) => vec![Node {
            name,
            text: String::new(),
            children: map
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "rdfs:comment" | "comment"))
                .flat_map(|(k, v)| to_nodes(k, v, ns))
                .collect(),
        }],
        scalar => vec![Node {
            name,
            text: expand_value(&scalar_text(scalar), key, ns),
            children: Vec::new(),
        }],
    }
}

/// An item of a standard list. Typed values (`{"type": …, "bizTransaction": …}`) of
/// `bizTransactionList`, `sourceList` and `destinationList` become `type=…` followed
/// by the value (the type first, as CBV fixes it); they take their place among the
/// other elements, sorted, after the ordered fields.
fn typed_item(list: &str, child: &str, item: &Value, ns: &BTreeMap<String, String>) -> Vec<Node> {
    match item {
        Value::Object(map) if child == "item" => {
            let value_name = list.strip_suffix("List").unwrap_or(list);
            let kind = map.get("type").map(scalar_text).unwrap_or_default();
            let kind = expand_value(&kind, typed_vocabulary(list), ns);
            let value = map.get(value_name).map(scalar_text).unwrap_or_default();
            let mut text = String::new();
            if !kind.is_empty() {
                text.push_str(&format!("type={}", canonical_value(&kind)));
            }
            text.push_str(&format!("{value_name}={}", canonical_value(value.trim())));
            vec![Node {
                name: String::new(),
                text,
                children: Vec::new(),
            }]
        }
        other => to_nodes(child, other, ns),
    }
}

fn typed_vocabulary(list: &str) -> &'static str {
    match list {
        "bizTransactionList" => "bizTransactionType",
        _ => "sourceDestType",
    }
}

/// Bare CBV words and `prefix:` values as the IRIs JSON-LD expansion gives them.
fn expand_value(text: &str, key: &str, ns: &BTreeMap<String, String>) -> String {
    let bare = !text.is_empty() && !text.contains(':') && !text.contains('/');
    if bare {
        let vocabulary = match key {
            "bizStep" => Some("https://ref.gs1.org/cbv/BizStep-"),
            "disposition" | "set" | "unset" => Some("https://ref.gs1.org/cbv/Disp-"),
            "bizTransactionType" => Some("https://ref.gs1.org/cbv/BTT-"),
            "sourceDestType" => Some("https://ref.gs1.org/cbv/SDT-"),
            "type" | "exception" | "component" => Some("https://gs1.org/voc/"),
            _ => None,
        };
        if let Some(base) = vocabulary {
            return format!("{base}{text}");
        }
    }
    match text.split_once(':') {
        Some((prefix, local)) if ns.contains_key(prefix) && !local.starts_with("//") => {
            format!("{}{local}", ns[prefix])
        }
        _ => text.to_owned(),
    }
}

fn ordered(children: &mut Vec<Node>, order: &[Order]) -> String {
    let mut out = String::new();
    for Order(name, sub_order) in order {
        let mut values = Vec::new();
        let mut i = 0;
        while i < children.len() {
            if children[i].name != *name {
                i += 1;
                continue;
            }
            let text = child_text(&mut children[i], sub_order);
            if !text.is_empty() {
                values.push(text);
            }
            if children[i].children.is_empty() {
                children.remove(i);
            } else {
                i += 1;
            }
        }
        values.sort();
        out.push_str(&values.concat());
    }
    out
}

fn child_text(node: &mut Node, sub_order: &[Order]) -> String {
    let nested = if sub_order.is_empty() {
        String::new()
    } else {
        let mut text = ordered(&mut node.children, sub_order);
        // Extensions inside a standard element follow its ordered children.
        let extensions: Vec<Node> = node
            .children
            .iter()
            .filter(|c| c.name.starts_with('{'))
            .cloned()
            .collect();
        if !extensions.is_empty() {
            node.children.retain(|c| !c.name.starts_with('{'));
            text.push_str(&generic(&extensions));
        }
        text
    };
    let value = if node.name.is_empty() {
        node.text.clone()
    } else {
        let text = node.text.trim();
        if text.is_empty() {
            String::new()
        } else if is_time(&node.name) {
            format!("={}", utc_millis(text))
        } else {
            format!("={}", canonical_value(text))
        }
    };
    if value.is_empty() && nested.is_empty() {
        return String::new();
    }
    format!("{}{value}{nested}", node.name)
}

fn is_time(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("time") && !lower.contains("offset")
}

/// Elements no order names (user extensions), each `name=value` followed by its
/// children, sorted lexically.
fn generic(children: &[Node]) -> String {
    let mut values: Vec<String> = children
        .iter()
        .map(|child| {
            if child.name.is_empty() {
                return child.text.clone();
            }
            let mut text = child.name.clone();
            let value = child.text.trim();
            if !value.is_empty() {
                text.push('=');
                text.push_str(&canonical_value(value));
            }
            text.push_str(&generic(&child.children));
            text
        })
        .collect();
    values.sort();
    values.concat()
}

/// A timestamp in UTC at millisecond precision, `2020-03-04T10:00:30.000Z`; text that
/// is no RFC 3339 date-time stays as it is.
pub fn utc_millis(text: &str) -> String {
    let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) else {
        return text.to_owned();
    };
    let time = time.to_offset(UtcOffset::UTC);
    let micros = time.microsecond();
    // Round half to even to the millisecond, as the reference implementation does.
    let (q, r) = (micros / 1000, micros % 1000);
    let millis = if r > 500 || (r == 500 && q % 2 == 1) {
        q + 1
    } else {
        q
    };
    let base = time - time::Duration::nanoseconds(i64::from(time.nanosecond()));
    utc_millis_text(base + time::Duration::milliseconds(i64::from(millis)))
}

/// `time` (in UTC, truncated to the millisecond) as `2020-03-04T10:00:30.000Z`.
pub(crate) fn utc_millis_text(time: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    )
}

/// One value through every canonicalisation: CBV URNs to Web URIs, numbers without
/// trailing zeros, EPC URIs and Digital Link URIs to canonical Digital Link URIs.
pub fn canonical_value(text: &str) -> String {
    let text = web_vocabulary(text);
    let text = numeric(&text);
    digital_link(&text).unwrap_or(text)
}

fn web_vocabulary(text: &str) -> String {
    const PAIRS: &[(&str, &str)] = &[
        (
            "urn:epcglobal:cbv:bizstep:",
            "https://ref.gs1.org/cbv/BizStep-",
        ),
        ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
        ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
        ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
        ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
    ];
    let mut text = text.to_owned();
    for (urn, web) in PAIRS {
        text = text.replace(urn, web);
    }
    text
}

fn numeric(text: &str) -> String {
    let bytes = text.as_bytes();
    let digits = bytes
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if !digits || !bytes.iter().any(u8::is_ascii_digit) {
        return text.to_owned();
    }
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => {
            if n.fract() == 0.0 && n.abs() < 1e15 {
                format!("{}", n as i64)
            } else {
                format!("{n}")
            }
        }
        _ => text.to_owned(),
    }
}

fn check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10
}

/// Percent-encodes what a Digital Link path segment may not hold.
fn dl_encode(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '.' | '_' | '~' | '%' => out.push(c),
            '!' | '\'' | '(' | ')' | '*' | '+' | ',' | ':' | ';' | '=' => out.push(c),
            other => {
                let mut buf = [0u8; 4];
                for b in other.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// EPC pure-identity URIs (sgtin, sscc, sgln, grai, giai) and Digital Link URIs as
/// canonical `https://id.gs1.org/…` URIs; `None` when the text is neither.
fn digital_link(text: &str) -> Option<String> {
    const GS1: &str = "https://id.gs1.org/";
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = text.strip_prefix("urn:epc:id:") {
        let (scheme, body) = rest.split_once(':')?;
        let parts: Vec<&str> = body.split('.').collect();
        match (scheme, parts.as_slice()) {
            ("sgtin", [company, item, serial]) if all_digits(company) && all_digits(item) => {
                let indicator = item.get(..1)?;
                let raw = format!("{indicator}{company}{}", item.get(1..)?);
                (raw.len() == 13).then(|| {
                    format!(
                        "{GS1}01/{raw}{}/21/{}",
                        check_digit(&raw),
                        dl_encode(serial)
                    )
                })
            }
            ("sscc", [company, serial]) if all_digits(company) && all_digits(serial) => {
                let raw = format!("{}{company}{}", serial.get(..1)?, serial.get(1..)?);
                (raw.len() == 17).then(|| format!("{GS1}00/{raw}{}", check_digit(&raw)))
            }
            ("sgln", [company, location, extension]) if all_digits(company) => {
                let raw = format!("{company}{location}");
                (raw.len() == 12 && all_digits(location)).then(|| {
                    let gln = format!("{GS1}414/{raw}{}", check_digit(&raw));
                    if *extension == "0" {
                        gln
                    } else {
                        format!("{gln}/254/{}", dl_encode(extension))
                    }
                })
            }
            ("grai", [company, asset, serial]) if all_digits(company) && all_digits(asset) => {
                let raw = format!("0{company}{asset}");
                (raw.len() == 13)
                    .then(|| format!("{GS1}8003/{raw}{}{}", check_digit(&raw), dl_encode(serial)))
            }
            ("pgln", [company, party]) if all_digits(company) && all_digits(party) => {
                let raw = format!("{company}{party}");
                (raw.len() == 12).then(|| format!("{GS1}417/{raw}{}", check_digit(&raw)))
            }
            ("gdti", [company, kind, serial]) if all_digits(company) && all_digits(kind) => {
                let raw = format!("{company}{kind}");
                (raw.len() == 12)
                    .then(|| format!("{GS1}253/{raw}{}{}", check_digit(&raw), dl_encode(serial)))
            }
            ("giai", [company, asset]) if all_digits(company) => {
                Some(format!("{GS1}8004/{company}{}", dl_encode(asset)))
            }
            _ => None,
        }
    } else if text.starts_with("https://") || text.starts_with("http://") {
        // A Digital Link URI on any domain: keep the path from its primary key on.
        const PRIMARY: &[&str] = &[
            "01", "00", "414", "8003", "8004", "8006", "8010", "8017", "8018", "253", "255", "401",
            "402", "417",
        ];
        let after_scheme = text.split_once("://")?.1;
        let path = after_scheme.split_once('/')?.1;
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').collect();
        let start = segments
            .iter()
            .position(|s| PRIMARY.contains(s))
            .filter(|&i| segments.get(i + 1).is_some_and(|v| !v.is_empty()))?;
        Some(format!("{GS1}{}", segments[start..].join("/")))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_milliseconds() {
        assert_eq!(
            utc_millis("2020-03-04T11:00:30.000+01:00"),
            "2020-03-04T10:00:30.000Z"
        );
        assert_eq!(
            utc_millis("2005-04-03T20:33:31.116000-06:00"),
            "2005-04-04T02:33:31.116Z"
        );
        assert_eq!(
            utc_millis("2020-01-01T00:00:00Z"),
            "2020-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn epc_uris_become_digital_link() {
        assert_eq!(
            canonical_value("urn:epc:id:sscc:4012345.0000000333"),
            "https://id.gs1.org/00/040123450000003338"
        );
        assert_eq!(
            canonical_value("urn:epc:id:sgln:4012345.00011.987"),
            "https://id.gs1.org/414/4012345000115/254/987"
        );
        assert_eq!(
            canonical_value("urn:epc:id:sgtin:4012345.011111.9876"),
            "https://id.gs1.org/01/04012345111118/21/9876"
        );
        assert_eq!(
            canonical_value("https://id.example.org/8004/401234599999"),
            "https://id.gs1.org/8004/401234599999"
        );
        assert_eq!(canonical_value("12.10"), "12.1");
        assert_eq!(canonical_value("hello"), "hello");
    }
}
