//! Lifecycle events: EPCIS 2.0 events signed by the acting DID, logged beside the
//! operations, indexed for queries and time-aware tracing.
//!
//! - [`epcis`] — schema validation (GS1's EPCIS 2.0 JSON Schemas) and [`EventFacts`],
//!   what medid's CSSD profile reads from an event.
//! - [`hash`] — the CBV 2.0 event hash ID, `ni:///sha-256;…?ver=CBV2.0`.
//! - [`scenario`] — generated CSSD histories for tests, benchmarks and the demo.
//! - [`report`] — trace answers as JSON, patient redaction, proofs, offline checks.
//! - [`retention`] — how long washing and sterilization records are kept.
//! - [`trace`] — the trace engine: forward from a load, a sterilizer or a lot, reverse
//!   from a patient, over the index's range scans.
//!
//! A logged event is the event JSON with its `eventID` (the hash ID when the capturer
//! gave none) and `medid:proof`, a Data Integrity proof (`eddsa-jcs-2022`) by the acting
//! DID over the event without `medid:proof`. A patient never appears in it: `medid:patient`
//! is a salted commitment (`{"commitment": "sha256:…"}`) whose payload — the patient's
//! pseudonymous identifier — travels beside the event and is stored off-log, erasable.
//!
//! Index keys (all derived from the ledger by [`apply_event`]; `T` is the event time and
//! `L` the ledger index, both 16 hex digits so keys sort by time then by ledger order):
//!
//! ```text
//! eh/<hash hex>            → L          the CBV hash ID (idempotent capture)
//! ei/<eventID>             → L
//! et/T/L                   → ""         every event by time (GET /events)
//! ee/<epc>\0T\0L           → EpcFact    every event naming an EPC, with its role
//! es/<sterilizer>\0T\0L    → EpcFact    loads and cycle results of a sterilizer
//! el/<lot>\0T\0L           → EpcFact    uses (and recalls) of a device or drug lot
//! ep/<commitment>\0T\0L    → EpcFact    the uses behind a patient commitment
//! ec/<commitment>          → L          the event holding a sealed value
//! ```

pub mod epcis;
pub mod hash;
pub mod report;
pub mod retention;
pub mod scenario;
pub mod trace;

use std::collections::BTreeMap;

use medid_did::{DidKey, KeyPair, ProofOptions, add_proof, canonical_json, verify_proofs};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use epcis::{EventFacts, Indicator, normalise_epc, validate_event};
pub use hash::event_hash_id;

use crate::op::{MAX_OPERATION_BYTES, OpError, RestrictedPayload};
use crate::state::{Changes, DidRecord, StateRead};

/// The member holding the acting DID's proof.
pub const PROOF_MEMBER: &str = "medid:proof";

/// An event whose schema, proof and identifiers have been checked.
#[derive(Debug, Clone)]
pub struct SignedEvent {
    /// Its `eventID` (the hash ID when the capturer gave none).
    pub event_id: String,
    /// Its CBV 2.0 hash ID.
    pub hash_id: String,
    /// The acting DID.
    pub signer: DidKey,
    /// What the profile reads from it.
    pub facts: EventFacts,
    /// The ledger entry: the logged event's RFC 8785 canonical form.
    pub entry: Vec<u8>,
}

fn proof_error(message: impl std::fmt::Display) -> OpError {
    OpError::Proof(message.to_string())
}

impl SignedEvent {
    /// Checks an event: EPCIS schema, profile facts, the `medid:proof` of one DID.
    pub fn from_json(event: &Value) -> Result<Self, OpError> {
        let map = event.as_object().ok_or_else(|| OpError::Invalid {
            pointer: String::new(),
            message: "an event is a JSON object".into(),
        })?;
        validate_event(event)?;
        let facts = EventFacts::read(map)?;
        let hash_id = event_hash_id(map, &BTreeMap::new());
        let proof = map
            .get(PROOF_MEMBER)
            .ok_or_else(|| proof_error("the event carries no `medid:proof` by the acting DID"))?;
        if !proof.is_object() {
            return Err(proof_error("`medid:proof` must be one proof (an object)"));
        }
        if map.contains_key("proof") {
            return Err(OpError::Invalid {
                pointer: "/proof".into(),
                message: "the proof goes in `medid:proof`".into(),
            });
        }
        let signer = verify_event_proof(map, &hash_id)?;
        let mut logged = map.clone();
        let event_id = match map.get("eventID").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                logged.insert("eventID".into(), hash_id.clone().into());
                hash_id.clone()
            }
        };
        let entry = canonical_json(&Value::Object(logged));
        if entry.len() > MAX_OPERATION_BYTES {
            return Err(OpError::TooLarge(entry.len()));
        }
        Ok(Self {
            event_id,
            hash_id,
            signer,
            facts,
            entry,
        })
    }

    /// Reads an event back from its ledger entry, checking it again.
    pub fn from_entry(entry: &[u8]) -> Result<Self, OpError> {
        let event: Value = serde_json::from_slice(entry).map_err(|e| OpError::Invalid {
            pointer: String::new(),
            message: format!("not JSON: {e}"),
        })?;
        Self::from_json(&event)
    }
}

/// Verifies `medid:proof` over the event without it. The node adds `eventID` (the hash
/// ID) to an event captured without one, so an event whose `eventID` is its hash ID
/// may have been signed without it.
fn verify_event_proof(map: &Map<String, Value>, hash_id: &str) -> Result<DidKey, OpError> {
    let attempt = |without_id: bool| {
        let mut document = map.clone();
        let proof = document.remove(PROOF_MEMBER).unwrap_or(Value::Null);
        if without_id {
            document.remove("eventID");
        }
        document.insert("proof".into(), proof);
        verify_proofs(&Value::Object(document))
    };
    let verified = match attempt(false) {
        Ok(proofs) => proofs,
        Err(first) => {
            if map.get("eventID").and_then(Value::as_str) == Some(hash_id) {
                attempt(true).map_err(|_| proof_error(&first))?
            } else {
                return Err(proof_error(first));
            }
        }
    };
    match verified.as_slice() {
        [one] => Ok(one.signer),
        _ => Err(proof_error("an event is signed by exactly one DID")),
    }
}

/// Prepares an event for capture, as `medid capture` does: bare handles in
/// `epcList`, `childEPCs`, `parentID` and `medid:sterilizer` are written `hdl:…` (EPCIS
/// takes URIs), a plaintext `medid:patient` or `medid:operator` is sealed (its payload is returned, to send
/// beside the event), `eventID` is set to the hash ID when absent, and the event is
/// signed into `medid:proof`.
pub fn seal_and_sign(
    event: &Value,
    key: &KeyPair,
) -> Result<(Value, Vec<RestrictedPayload>), OpError> {
    let mut map = event.as_object().cloned().ok_or_else(|| OpError::Invalid {
        pointer: String::new(),
        message: "an event is a JSON object".into(),
    })?;
    map.remove(PROOF_MEMBER);
    let as_uri = |v: &mut Value| {
        if let Value::String(s) = v
            && !s.contains(':')
        {
            *s = format!("hdl:{s}");
        }
    };
    for list in ["epcList", "childEPCs"] {
        if let Some(Value::Array(items)) = map.get_mut(list) {
            items.iter_mut().for_each(as_uri);
        }
    }
    for single in ["parentID", "medid:sterilizer"] {
        if let Some(value) = map.get_mut(single) {
            as_uri(value);
        }
    }
    let mut payloads = Vec::new();
    for sealed in ["medid:patient", "medid:operator"] {
        if let Some(Value::String(data)) = map.get(sealed) {
            let payload = RestrictedPayload::seal(data);
            map.insert(
                sealed.into(),
                serde_json::json!({ "commitment": payload.commitment }),
            );
            payloads.push(payload);
        }
    }
    if !map.contains_key("eventID") {
        let id = event_hash_id(&map, &BTreeMap::new());
        map.insert("eventID".into(), id.into());
    }
    let mut signed =
        add_proof(&Value::Object(map), key, &ProofOptions::now()).map_err(proof_error)?;
    if let Some(object) = signed.as_object_mut()
        && let Some(proof) = object.remove("proof")
    {
        object.insert(PROOF_MEMBER.into(), proof);
    }
    Ok((signed, payloads))
}

/// The role an EPC plays in an event, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpcFact {
    /// `load` (a pack in a sterilizer load), `loadParent` (the load itself), `result`
    /// (a cycle result on a load), `use` (used on a patient), `pack` (instruments put
    /// into the pack), `unpack`, `recall`, or `event` (anything else).
    pub role: String,
    /// The event's `eventID`.
    pub event_id: String,
    /// The business step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The load (for `load`, `result`), or the EPC (for sterilizer, lot and patient keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The sterilizer of a load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sterilizer: Option<String>,
    /// The biological indicator of a cycle result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biological: Option<Indicator>,
    /// The patient commitment of a use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The DID that recorded a use and the DIDs it lets see the patient.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<String>,
    /// The children of a pack or a load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
}

/// Time as a key component: milliseconds, sign bit flipped, 16 hex digits.
pub fn time_key(ms: i64) -> String {
    format!("{:016x}", (ms as u64) ^ (1 << 63))
}

/// Ledger index as a key component: 16 hex digits.
pub fn leaf_key(leaf: u64) -> String {
    format!("{leaf:016x}")
}

/// Reads `(time ms, leaf)` back from the end of a `…\0T\0L` key.
pub fn key_position(key: &[u8]) -> Option<(i64, u64)> {
    let text = std::str::from_utf8(key).ok()?;
    let mut parts = text.rsplit('\0');
    let leaf = u64::from_str_radix(parts.next()?, 16).ok()?;
    let time = u64::from_str_radix(parts.next()?, 16).ok()? ^ (1 << 63);
    Some((time as i64, leaf))
}

/// The key prefix of everything indexed under `subject` in `space` (`ee`, `es`, …).
pub fn subject_prefix(space: &str, subject: &str) -> Vec<u8> {
    format!("{space}/{subject}\0").into_bytes()
}

fn positioned(space: &str, subject: &str, time: i64, leaf: u64) -> Vec<u8> {
    format!("{space}/{subject}\0{}\0{}", time_key(time), leaf_key(leaf)).into_bytes()
}

/// Key of the ledger index of an event by its hash ID.
pub(crate) fn hash_key(hash_id: &str) -> Vec<u8> {
    let hex = hash_id
        .strip_prefix("ni:///sha-256;")
        .and_then(|h| h.split('?').next())
        .unwrap_or(hash_id);
    format!("eh/{hex}").into_bytes()
}

/// Key of the ledger index of an event by its `eventID`.
pub(crate) fn event_id_key(event_id: &str) -> Vec<u8> {
    format!("ei/{event_id}").into_bytes()
}

fn put(changes: &mut Changes, key: Vec<u8>, fact: &EpcFact) {
    // Serialising a plain struct cannot fail.
    let bytes = serde_json::to_vec(fact).unwrap_or_default();
    changes.writes.insert(key, Some(bytes));
}

fn leaf_of(value: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(value).ok().map(u64::from_be_bytes)
}

/// Applies an event (ledger entry `leaf`) to the state: the acting DID must be
/// registered and active; an event whose hash ID is logged already is refused with
/// [`OpError::AlreadyLogged`] (the capture answers the existing receipt).
pub(crate) fn apply_event(
    state: &dyn StateRead,
    changes: &mut Changes,
    event: &SignedEvent,
    leaf: u64,
) -> Result<(), OpError> {
    let did_key = crate::state::did_key(&event.signer);
    let record: Option<DidRecord> = state
        .read(&did_key)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match record {
        None => {
            return Err(OpError::NotFound(format!(
                "{} is not a registered DID; register it before it records events",
                event.signer
            )));
        }
        Some(record) if record.deactivated => {
            return Err(OpError::Deactivated(event.signer.to_string()));
        }
        Some(_) => {}
    }
    let hash_key = hash_key(&event.hash_id);
    if let Some(existing) = state.read(&hash_key)?.as_deref().and_then(leaf_of) {
        return Err(OpError::AlreadyLogged {
            event_id: event.event_id.clone(),
            leaf: existing,
        });
    }
    let id_key = event_id_key(&event.event_id);
    if state.read(&id_key)?.is_some() {
        return Err(OpError::Exists(format!(
            "eventID {} names another event",
            event.event_id
        )));
    }
    let leaf_bytes = leaf.to_be_bytes().to_vec();
    let mut mine = Changes::default();
    for commitment in &event.facts.sealed {
        mine.writes.insert(
            format!("ec/{commitment}").into_bytes(),
            Some(leaf_bytes.clone()),
        );
    }
    mine.writes.insert(hash_key, Some(leaf_bytes.clone()));
    mine.writes.insert(id_key, Some(leaf_bytes));
    let facts = &event.facts;
    let time = facts.time;
    mine.writes.insert(
        format!("et/{}/{}", time_key(time), leaf_key(leaf)).into_bytes(),
        Some(Vec::new()),
    );
    let base = EpcFact {
        role: "event".into(),
        event_id: event.event_id.clone(),
        step: facts.biz_step.clone(),
        subject: None,
        sterilizer: None,
        biological: None,
        patient: None,
        readers: Vec::new(),
        children: Vec::new(),
    };
    let is_delete = facts.action.as_deref() == Some("DELETE");
    let recall = facts.disposition.as_deref() == Some("recalled");
    if facts.is_load() {
        let parent = facts.parent.clone().unwrap_or_default();
        let sterilizer = facts.sterilizer.clone();
        for child in &facts.children {
            let fact = EpcFact {
                role: "load".into(),
                subject: Some(parent.clone()),
                sterilizer: sterilizer.clone(),
                ..base.clone()
            };
            put(&mut mine, positioned("ee", child, time, leaf), &fact);
        }
        let fact = EpcFact {
            role: "loadParent".into(),
            sterilizer: sterilizer.clone(),
            children: facts.children.clone(),
            ..base.clone()
        };
        put(&mut mine, positioned("ee", &parent, time, leaf), &fact);
        if let Some(sterilizer) = &sterilizer {
            let fact = EpcFact {
                role: "load".into(),
                subject: Some(parent.clone()),
                ..base.clone()
            };
            put(&mut mine, positioned("es", sterilizer, time, leaf), &fact);
        }
    } else if facts.kind == "AggregationEvent" {
        let parent = facts.parent.clone().unwrap_or_default();
        let role = if is_delete { "unpack" } else { "pack" };
        let fact = EpcFact {
            role: role.into(),
            children: facts.children.clone(),
            ..base.clone()
        };
        put(&mut mine, positioned("ee", &parent, time, leaf), &fact);
        for child in &facts.children {
            let fact = EpcFact {
                role: "event".into(),
                subject: Some(parent.clone()),
                ..base.clone()
            };
            put(&mut mine, positioned("ee", child, time, leaf), &fact);
        }
    } else {
        let role = if facts.is_cycle_result() {
            "result"
        } else if facts.is_use() && facts.patient.is_some() {
            "use"
        } else if recall {
            "recall"
        } else {
            "event"
        };
        let mut readers = vec![event.signer.to_string()];
        readers.extend(facts.readers.iter().cloned());
        for epc in &facts.epcs {
            let fact = EpcFact {
                role: role.into(),
                sterilizer: facts.sterilizer.clone(),
                biological: facts.biological,
                patient: facts.patient.clone(),
                readers: if role == "use" {
                    readers.clone()
                } else {
                    Vec::new()
                },
                subject: (role == "result").then(|| epc.clone()),
                ..base.clone()
            };
            put(&mut mine, positioned("ee", epc, time, leaf), &fact);
            let elsewhere = EpcFact {
                subject: Some(epc.clone()),
                ..fact.clone()
            };
            if role == "result"
                && let Some(sterilizer) = &facts.sterilizer
            {
                put(
                    &mut mine,
                    positioned("es", sterilizer, time, leaf),
                    &elsewhere,
                );
            }
            if role == "use" {
                if let Some(patient) = &facts.patient {
                    put(&mut mine, positioned("ep", patient, time, leaf), &elsewhere);
                }
                if let Some(lot) = epcis::lot_of(epc) {
                    put(&mut mine, positioned("el", &lot, time, leaf), &elsewhere);
                }
            }
            if role == "recall" {
                put(&mut mine, positioned("el", epc, time, leaf), &elsewhere);
            }
        }
    }
    changes.merge(mine);
    Ok(())
}
