//! EPCIS 2.0 events: validation against GS1's JSON Schemas (vendored in
//! `schemas/epcis/`, compiled into the binary) and the facts medid's CSSD profile reads
//! from an event ([`EventFacts`]), with every EPC normalised to medid's canonical
//! identifier form.

use std::sync::LazyLock;

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::id::Identifier;
use crate::op::OpError;
use crate::schema::SchemaError;

const BASE: &str = "https://gs1.github.io/EPCIS/JSON-Schema/";

/// GS1's EPCIS 2.0 JSON Schemas, by the `$id` each declares.
const SCHEMAS: &[(&str, &str)] = &[
    (
        "EPCIS-Event-JSON-Schema.json",
        include_str!("../../../schemas/epcis/EPCIS-Event-JSON-Schema.json"),
    ),
    (
        "EPCIS-Document-JSON-Schema.json",
        include_str!("../../../schemas/epcis/EPCIS-Document-JSON-Schema.json"),
    ),
    (
        "schemas/ObjectEvent-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/ObjectEvent-JSON-Schema.json"),
    ),
    (
        "schemas/AggregationEvent-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/AggregationEvent-JSON-Schema.json"),
    ),
    (
        "schemas/AssociationEvent-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/AssociationEvent-JSON-Schema.json"),
    ),
    (
        "schemas/TransactionEvent-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/TransactionEvent-JSON-Schema.json"),
    ),
    (
        "schemas/TransformationEvent-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/TransformationEvent-JSON-Schema.json"),
    ),
    (
        "schemas/bizStep-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/bizStep-JSON-Schema.json"),
    ),
    (
        "schemas/bizTransaction-type-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/bizTransaction-type-JSON-Schema.json"),
    ),
    (
        "schemas/component-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/component-JSON-Schema.json"),
    ),
    (
        "schemas/definitions-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/definitions-JSON-Schema.json"),
    ),
    (
        "schemas/disposition-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/disposition-JSON-Schema.json"),
    ),
    (
        "schemas/error-reason-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/error-reason-JSON-Schema.json"),
    ),
    (
        "schemas/event-definitions-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/event-definitions-JSON-Schema.json"),
    ),
    (
        "schemas/measurement-type-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/measurement-type-JSON-Schema.json"),
    ),
    (
        "schemas/sensor-alert-type-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/sensor-alert-type-JSON-Schema.json"),
    ),
    (
        "schemas/source-dest-type-JSON-Schema.json",
        include_str!("../../../schemas/epcis/schemas/source-dest-type-JSON-Schema.json"),
    ),
];

/// Serves the vendored schemas to the validator; nothing is fetched from the network.
struct Vendored;

impl Retrieve for Vendored {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.as_str().strip_prefix(BASE).unwrap_or_default();
        let path = path.split('#').next().unwrap_or_default();
        let text = SCHEMAS
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, text)| *text)
            .ok_or_else(|| format!("{uri} is not among the vendored EPCIS schemas"))?;
        Ok(serde_json::from_str(text)?)
    }
}

fn compile(definition: &str) -> Result<Validator, String> {
    let schema = serde_json::json!({ "$ref": format!("{BASE}{definition}") });
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .with_retriever(Vendored)
        .build(&schema)
        .map_err(|e| e.to_string())
}

static EVENT: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| compile("EPCIS-Event-JSON-Schema.json#/definitions/EPCIS-Document-Event"));

/// Validates one event against GS1's EPCIS 2.0 event schema.
pub fn validate_event(event: &Value) -> Result<(), SchemaError> {
    let validator = EVENT.as_ref().map_err(|e| SchemaError {
        pointer: String::new(),
        message: format!("the EPCIS schema does not compile: {e}"),
    })?;
    match validator.iter_errors(event).next() {
        None => Ok(()),
        Some(error) => Err(SchemaError {
            pointer: error.instance_path().to_string(),
            message: error.to_string(),
        }),
    }
}

/// medid's business steps (CBV has none for washing and sterilizing).
pub mod bizstep {
    /// Washing / disinfection.
    pub const WASHING: &str = "urn:medid:bizstep:washing";
    /// A sterilizer load and its cycle result.
    pub const STERILIZING: &str = "urn:medid:bizstep:sterilizing";
    /// A pack used on a patient in a procedure.
    pub const USING: &str = "urn:medid:bizstep:using";
    /// A device implanted in a patient.
    pub const IMPLANTING: &str = "urn:medid:bizstep:implanting";
    /// A drug dispensed to a patient.
    pub const DISPENSING: &str = "urn:medid:bizstep:dispensing";
}

/// The result of an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    /// It passed.
    Pass,
    /// It failed.
    Fail,
}

/// What medid reads from an event: its kind, time, business step and the identifiers
/// it names, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFacts {
    /// `ObjectEvent`, `AggregationEvent`, …
    pub kind: String,
    /// `eventTime` in milliseconds since the Unix epoch, UTC.
    pub time: i64,
    /// `ADD`, `OBSERVE` or `DELETE`.
    pub action: Option<String>,
    /// The business step, short CBV word (`packing`) or full URI (medid's own steps).
    pub biz_step: Option<String>,
    /// The disposition, short CBV word.
    pub disposition: Option<String>,
    /// `epcList`, canonical.
    pub epcs: Vec<String>,
    /// `parentID`, canonical.
    pub parent: Option<String>,
    /// `childEPCs`, canonical.
    pub children: Vec<String>,
    /// `medid:sterilizer`, canonical.
    pub sterilizer: Option<String>,
    /// `medid:biologicalIndicator`.
    pub biological: Option<Indicator>,
    /// `medid:chemicalIndicator`.
    pub chemical: Option<Indicator>,
    /// `medid:patient`: the salted commitment to the patient's pseudonymous identifier.
    pub patient: Option<String>,
    /// `medid:procedure`.
    pub procedure: Option<String>,
    /// `medid:readers`: DIDs the recorder lets see the patient.
    pub readers: Vec<String>,
    /// Every sealed value's commitment (`medid:patient`, a sealed `medid:operator`):
    /// their payloads are stored off-log.
    pub sealed: Vec<String>,
}

fn invalid(pointer: &str, message: impl std::fmt::Display) -> OpError {
    OpError::Invalid {
        pointer: pointer.to_owned(),
        message: message.to_string(),
    }
}

/// The short form of a CBV value: `urn:epcglobal:cbv:bizstep:packing`,
/// `https://ref.gs1.org/cbv/BizStep-packing` and `packing` are all `packing`; other
/// URIs stay whole.
pub fn short_vocabulary(value: &str) -> String {
    for prefix in [
        "urn:epcglobal:cbv:bizstep:",
        "urn:epcglobal:cbv:disp:",
        "https://ref.gs1.org/cbv/BizStep-",
        "https://ref.gs1.org/cbv/Disp-",
        "https://gs1.org/voc/BizStep-",
        "https://gs1.org/voc/Disp-",
    ] {
        if let Some(word) = value.strip_prefix(prefix) {
            return word.to_owned();
        }
    }
    value.to_owned()
}

/// An EPC as medid keys it: a handle (`hdl:86.1000.23/PKG-1` or `86.1000.23/PKG-1`),
/// an OID URN or a GS1 Digital Link URI in medid's canonical identifier form; any other
/// URI (EPC URNs, …) as written.
pub fn normalise_epc(epc: &str) -> Result<String, crate::id::IdError> {
    let epc = epc.trim();
    let lower = epc.to_ascii_lowercase();
    if let Some(handle) = epc.strip_prefix("hdl:") {
        return Identifier::parse(handle).map(|id| id.canonical());
    }
    if lower.starts_with("urn:oid:") {
        return Identifier::parse(epc).map(|id| id.canonical());
    }
    if (lower.starts_with("https://") || lower.starts_with("http://"))
        && let Ok(id) = Identifier::parse(epc)
    {
        return Ok(id.canonical());
    }
    if !epc.contains(':') {
        return Identifier::parse(epc).map(|id| id.canonical());
    }
    Ok(epc.to_owned())
}

/// The lot of a GS1 item (`/01/{gtin}/10/{lot}`), for lot tracing and recall.
pub fn lot_of(epc: &str) -> Option<String> {
    match Identifier::parse(epc).ok()? {
        Identifier::Gs1(key) => key
            .lot()
            .map(|lot| format!("/01/{}/10/{}", key.gtin(), lot)),
        _ => None,
    }
}

/// `eventTime` in milliseconds since the epoch.
pub fn parse_time(text: &str, pointer: &str) -> Result<i64, OpError> {
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        invalid(
            pointer,
            format!("`{text}` is not an RFC 3339 date-time: {e}"),
        )
    })?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| invalid(pointer, "out of range"))
}

fn is_commitment(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn epc_at(value: &Value, pointer: &str) -> Result<String, OpError> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(pointer, "is not a string"))?;
    normalise_epc(text).map_err(|e| invalid(pointer, e))
}

fn epc_list(event: &Map<String, Value>, name: &str) -> Result<Vec<String>, OpError> {
    match event.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| epc_at(v, &format!("/{name}/{i}")))
            .collect(),
        Some(_) => Err(invalid(&format!("/{name}"), "is not a list")),
    }
}

fn indicator(event: &Map<String, Value>, name: &str) -> Result<Option<Indicator>, OpError> {
    match event.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if s == "pass" => Ok(Some(Indicator::Pass)),
        Some(Value::String(s)) if s == "fail" => Ok(Some(Indicator::Fail)),
        Some(_) => Err(invalid(&format!("/{name}"), "must be \"pass\" or \"fail\"")),
    }
}

impl EventFacts {
    /// Reads the facts of a schema-valid event.
    pub fn read(event: &Map<String, Value>) -> Result<Self, OpError> {
        let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
        let kind = text("type").unwrap_or_default();
        let time = parse_time(&text("eventTime").unwrap_or_default(), "/eventTime")?;
        let parent = match event.get("parentID") {
            Some(v) => Some(epc_at(v, "/parentID")?),
            None => None,
        };
        let sterilizer = match event.get("medid:sterilizer") {
            Some(v) => Some(epc_at(v, "/medid:sterilizer")?),
            None => None,
        };
        let patient = match event.get("medid:patient") {
            None => None,
            Some(Value::Object(map)) => {
                let commitment = map
                    .get("commitment")
                    .and_then(Value::as_str)
                    .filter(|c| is_commitment(c))
                    .ok_or_else(|| {
                        invalid(
                            "/medid:patient/commitment",
                            "must be `sha256:` and 64 hex digits",
                        )
                    })?;
                if map.len() != 1 {
                    return Err(invalid(
                        "/medid:patient",
                        "holds only `commitment`: patient data never enters the ledger",
                    ));
                }
                Some(commitment.to_owned())
            }
            Some(_) => {
                return Err(invalid(
                    "/medid:patient",
                    "must be a sealed {\"commitment\": …}; the patient's identifier travels beside the event (medid capture seals it)",
                ));
            }
        };
        let readers = match event.get("medid:readers") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .filter(|d| medid_did::DidKey::parse(d).is_ok())
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(&format!("/medid:readers/{i}"), "is not a did:key"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("/medid:readers", "is not a list of DIDs")),
        };
        let mut sealed: Vec<String> = patient.iter().cloned().collect();
        if let Some(Value::Object(operator)) = event.get("medid:operator") {
            let commitment = operator
                .get("commitment")
                .and_then(Value::as_str)
                .filter(|c| operator.len() == 1 && is_commitment(c))
                .ok_or_else(|| {
                    invalid(
                        "/medid:operator",
                        "a sealed operator is {\"commitment\": \"sha256:…\"} alone",
                    )
                })?;
            sealed.push(commitment.to_owned());
        }
        Ok(Self {
            sealed,
            kind,
            time,
            action: text("action"),
            biz_step: text("bizStep").map(|s| short_vocabulary(&s)),
            disposition: text("disposition").map(|s| short_vocabulary(&s)),
            epcs: epc_list(event, "epcList")?,
            parent,
            children: epc_list(event, "childEPCs")?,
            sterilizer,
            biological: indicator(event, "medid:biologicalIndicator")?,
            chemical: indicator(event, "medid:chemicalIndicator")?,
            patient,
            procedure: text("medid:procedure"),
            readers,
        })
    }

    /// Whether the event records a use on a patient (using, implanting, dispensing).
    pub fn is_use(&self) -> bool {
        matches!(
            self.biz_step.as_deref(),
            Some(bizstep::USING | bizstep::IMPLANTING | bizstep::DISPENSING)
        )
    }

    /// Whether the event is a sterilizer load (packs into a load).
    pub fn is_load(&self) -> bool {
        self.kind == "AggregationEvent"
            && self.biz_step.as_deref() == Some(bizstep::STERILIZING)
            && self.action.as_deref() != Some("DELETE")
    }

    /// Whether the event is a sterilization cycle result (an indicator on a load).
    pub fn is_cycle_result(&self) -> bool {
        self.kind == "ObjectEvent"
            && self.biz_step.as_deref() == Some(bizstep::STERILIZING)
            && (self.biological.is_some() || self.chemical.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_schema_compiles() {
        assert!(EVENT.is_ok(), "{:?}", EVENT.as_ref().err());
    }

    #[test]
    fn epcs_normalise() {
        assert_eq!(
            normalise_epc("hdl:86.1000.23/PKG-1").unwrap(),
            "86.1000.23/PKG-1"
        );
        assert_eq!(
            normalise_epc("urn:epc:id:sgtin:0614141.107346.2017").unwrap(),
            "urn:epc:id:sgtin:0614141.107346.2017"
        );
        assert!(normalise_epc("hdl:").is_err());
        assert_eq!(
            short_vocabulary("urn:epcglobal:cbv:bizstep:packing"),
            "packing"
        );
    }
}
