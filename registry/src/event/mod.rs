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
//! - [`mirror`] — [`TraceMirror`](mirror::TraceMirror): the timelines traces walk, in
//!   memory and kept in step with commits.
//!
//! A logged event is the event JSON with its `eventID` (the hash ID when the capturer
//! gave none) and `medid:proof`, a Data Integrity proof (`eddsa-jcs-2022`) by the acting
//! DID over the event without `medid:proof`. A patient never appears in it: `medid:patient`
//! is a salted commitment (`{"commitment": "sha256:…"}`) whose payload — the patient's
//! pseudonymous identifier — travels beside the event and is stored off-log, erasable.
//!
//! Index keys (all derived from the ledger by [`apply_event`]). `T` is the event time in
//! milliseconds (8 bytes, sign bit flipped) and `L` the ledger index (8 bytes), both
//! big-endian, so keys sort by time then by ledger order; `R` is the EPC's [`Role`]
//! (one byte); `ID` an event ID, 32 bytes when it is a CBV hash ID:
//!
//! ```text
//! eh/<32-byte hash>         → L             the CBV hash ID (idempotent capture)
//! ei/ID                     → L
//! ev/L                      → EventRecord   what tracing reads of the event, once
//! et/T L                    → ""            every event by time (GET /events)
//! ee/<epc>\0 T L R          → ""            every event naming an EPC, with its role
//! es/<sterilizer>\0 T L R   → ""            loads and cycle results of a sterilizer
//! el/<lot>\0 T L R          → ""            events naming a device or drug lot or its units
//! ep/<commitment>\0 T L R   → ""            the uses behind a patient commitment
//! ec/<commitment>           → L             the event holding a sealed value
//! er/<lot>                  → L             the first recall of a lot
//! ```
//!
//! Only `ev/` has a value to read: a walk over a timeline decides on the role in the
//! key and reads the records of the few events it keeps.

pub mod epcis;
pub mod hash;
pub mod mirror;
pub mod report;
pub mod retention;
pub mod scenario;
pub mod trace;

use std::collections::BTreeMap;

use medid_did::{
    DidKey, KeyPair, PendingSignatures, ProofOptions, add_proof, canonical_json, read_proofs,
};
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
        let (event, signatures) = Self::read(event)?;
        signatures.verify().map_err(proof_error)?;
        Ok(event)
    }

    /// Checks an event's schema and profile facts, reads its `medid:proof`, and returns
    /// the signature still to check.
    pub fn read(event: &Value) -> Result<(Self, PendingSignatures), OpError> {
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
        let (signer, signatures) = read_event_proof(map, &hash_id)?;
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
        let event = Self {
            event_id,
            hash_id,
            signer,
            facts,
            entry,
        };
        Ok((event, signatures))
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

/// Reads `medid:proof`, a signature over the event without it. The node adds `eventID`
/// (the hash ID) to an event captured without one, so an event whose `eventID` is its
/// hash ID may have been signed without it.
fn read_event_proof(
    map: &Map<String, Value>,
    hash_id: &str,
) -> Result<(DidKey, PendingSignatures), OpError> {
    let mut document = map.clone();
    let proof = document.remove(PROOF_MEMBER).unwrap_or(Value::Null);
    document.insert("proof".into(), proof);
    let mut document = Value::Object(document);
    let (proofs, mut signatures) = read_proofs(&document).map_err(proof_error)?;
    if map.get("eventID").and_then(Value::as_str) == Some(hash_id)
        && let Value::Object(mut without_id) = document.take()
    {
        without_id.remove("eventID");
        signatures = signatures.or_over(without_id);
    }
    match proofs.as_slice() {
        [one] => Ok((one.signer, signatures)),
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

/// The role an EPC plays in an event: the last byte of its index keys, so that a walk
/// decides without reading a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Role {
    /// Anything else (washing, dispatch, an instrument put into a pack, …).
    Event = 0,
    /// A pack put into a sterilizer load.
    Load = 1,
    /// The load itself, in its load event.
    LoadParent = 2,
    /// A cycle result on a load.
    Result = 3,
    /// Used on a patient.
    Use = 4,
    /// A pack whose instruments were put into it.
    Pack = 5,
    /// A pack taken apart.
    Unpack = 6,
    /// Recalled (disposition `recalled`).
    Recall = 7,
}

impl Role {
    /// The role of a key's last byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Event,
            1 => Self::Load,
            2 => Self::LoadParent,
            3 => Self::Result,
            4 => Self::Use,
            5 => Self::Pack,
            6 => Self::Unpack,
            7 => Self::Recall,
            _ => return None,
        })
    }
}

/// What the trace engine needs of an event, kept once per event under `ev/L`
/// ([`EventRecord::encode`]); the keys of the EPCs it names carry no value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRecord {
    /// The event's `eventID`.
    pub event_id: String,
    /// `parentID`: the load of a load event, the pack of a packing.
    pub parent: Option<String>,
    /// `childEPCs` of an aggregation.
    pub children: Vec<String>,
    /// `epcList` of a use, a cycle result or a recall.
    pub epcs: Vec<String>,
    /// The sterilizer of a load or a cycle result.
    pub sterilizer: Option<String>,
    /// The biological indicator of a cycle result.
    pub biological: Option<Indicator>,
    /// The patient commitment of a use.
    pub patient: Option<String>,
    /// The DID that recorded a use and the DIDs it lets see the patient.
    pub readers: Vec<String>,
}

const HASH_ID_PREFIX: &str = "ni:///sha-256;";
const HASH_ID_SUFFIX: &str = "?ver=CBV2.0";

/// The 32 bytes of a CBV 2.0 hash ID written the way medid writes it.
fn hash_id_bytes(id: &str) -> Option<[u8; 32]> {
    let hex = id
        .strip_prefix(HASH_ID_PREFIX)?
        .strip_suffix(HASH_ID_SUFFIX)?;
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut bytes = [0; 32];
    hex::decode_to_slice(hex, &mut bytes).ok()?;
    Some(bytes)
}

/// An event ID in a key or value: `1` and the 32 bytes of a hash ID, else `0` and the
/// text.
fn compact_id(id: &str, out: &mut Vec<u8>) {
    match hash_id_bytes(id) {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&bytes);
        }
        None => {
            out.push(0);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    // Identifiers and DIDs are far below 64 KiB (an entry is at most 64 KiB).
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..len as usize]);
}

fn put_list(out: &mut Vec<u8>, items: &[String]) {
    let count = u16::try_from(items.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for item in items.iter().take(count as usize) {
        put_text(out, item);
    }
}

/// Reads what [`put_text`] and [`put_list`] wrote.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u16(&mut self) -> Option<u16> {
        let (n, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        Some(u16::from_be_bytes(*n))
    }

    fn text(&mut self) -> Option<String> {
        let len = self.u16()? as usize;
        let text = std::str::from_utf8(self.0.get(..len)?).ok()?.to_owned();
        self.0 = &self.0[len..];
        Some(text)
    }

    fn optional(&mut self) -> Option<Option<String>> {
        self.text().map(|t| (!t.is_empty()).then_some(t))
    }

    fn list(&mut self) -> Option<Vec<String>> {
        (0..self.u16()?).map(|_| self.text()).collect()
    }
}

impl EventRecord {
    /// The compact value: the event ID (a hash ID as 32 bytes), then the biological
    /// indicator (0 none, 1 pass, 2 fail), parent, sterilizer and patient (empty when
    /// absent) and the children, EPCs and readers, each text a 2-byte length and its
    /// UTF-8.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let mut id = Vec::new();
        compact_id(&self.event_id, &mut id);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(&id);
        out.push(match self.biological {
            None => 0,
            Some(Indicator::Pass) => 1,
            Some(Indicator::Fail) => 2,
        });
        for text in [&self.parent, &self.sterilizer, &self.patient] {
            put_text(&mut out, text.as_deref().unwrap_or_default());
        }
        put_list(&mut out, &self.children);
        put_list(&mut out, &self.epcs);
        put_list(&mut out, &self.readers);
        out
    }

    /// Reads [`EventRecord::encode`]'s value back; `None` if it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut cursor = Cursor(bytes);
        let len = cursor.u16()? as usize;
        let id = cursor.0.get(..len)?;
        cursor.0 = &cursor.0[len..];
        let event_id = match id.split_first()? {
            (1, hash) if hash.len() == 32 => {
                format!("{HASH_ID_PREFIX}{}{HASH_ID_SUFFIX}", hex::encode(hash))
            }
            (0, text) => std::str::from_utf8(text).ok()?.to_owned(),
            _ => return None,
        };
        let (biological, rest) = cursor.0.split_first()?;
        cursor.0 = rest;
        let biological = match biological {
            0 => None,
            1 => Some(Indicator::Pass),
            2 => Some(Indicator::Fail),
            _ => return None,
        };
        let record = Self {
            event_id,
            biological,
            parent: cursor.optional()?,
            sterilizer: cursor.optional()?,
            patient: cursor.optional()?,
            children: cursor.list()?,
            epcs: cursor.list()?,
            readers: cursor.list()?,
        };
        cursor.0.is_empty().then_some(record)
    }
}

/// Time as a key component: milliseconds, sign bit flipped, 8 bytes big-endian, so
/// keys sort by time.
pub fn time_bytes(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// The key prefix of everything indexed under `subject` in `space` (`ee`, `es`, …).
pub fn subject_prefix(space: &str, subject: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(space.len() + subject.len() + 19);
    key.extend_from_slice(space.as_bytes());
    key.push(b'/');
    key.extend_from_slice(subject.as_bytes());
    key.push(0);
    key
}

/// `subject_prefix` then the position: time and ledger index, 8 bytes each.
pub fn position_key(space: &str, subject: &str, time: i64, leaf: u64) -> Vec<u8> {
    let mut key = subject_prefix(space, subject);
    key.extend_from_slice(&time_bytes(time));
    key.extend_from_slice(&leaf.to_be_bytes());
    key
}

fn role_key(space: &str, subject: &str, time: i64, leaf: u64, role: Role) -> Vec<u8> {
    let mut key = position_key(space, subject, time, leaf);
    key.push(role as u8);
    key
}

/// Reads `(time ms, leaf, role)` back from the end of a `…\0 T L role` key.
pub fn key_position(key: &[u8]) -> Option<(i64, u64, Role)> {
    let (role, rest) = key.split_last()?;
    let (rest, leaf) = rest.split_last_chunk::<8>()?;
    let (rest, time) = rest.split_last_chunk::<8>()?;
    if rest.last() != Some(&0) {
        return None;
    }
    let time = (u64::from_be_bytes(*time) ^ (1 << 63)) as i64;
    Some((time, u64::from_be_bytes(*leaf), Role::from_byte(*role)?))
}

/// `et/` T L: every event by time.
pub fn time_key(time: i64, leaf: u64) -> Vec<u8> {
    let mut key = b"et/".to_vec();
    key.extend_from_slice(&time_bytes(time));
    key.extend_from_slice(&leaf.to_be_bytes());
    key
}

/// Reads `(time ms, leaf)` back from an `et/` key.
pub fn time_key_position(key: &[u8]) -> Option<(i64, u64)> {
    let rest = key.strip_prefix(b"et/")?;
    let (time, leaf) = rest.split_first_chunk::<8>()?;
    let leaf: [u8; 8] = leaf.try_into().ok()?;
    Some((
        (u64::from_be_bytes(*time) ^ (1 << 63)) as i64,
        u64::from_be_bytes(leaf),
    ))
}

/// Key of an event's [`EventRecord`].
pub fn record_key(leaf: u64) -> Vec<u8> {
    let mut key = b"ev/".to_vec();
    key.extend_from_slice(&leaf.to_be_bytes());
    key
}

/// Key of the ledger index of an event by its hash ID.
pub(crate) fn hash_key(hash_id: &str) -> Vec<u8> {
    let mut key = b"eh/".to_vec();
    match hash_id_bytes(hash_id) {
        Some(bytes) => key.extend_from_slice(&bytes),
        None => key.extend_from_slice(hash_id.as_bytes()),
    }
    key
}

/// Key of the ledger index of an event by its `eventID`.
pub fn event_id_key(event_id: &str) -> Vec<u8> {
    let mut key = b"ei/".to_vec();
    compact_id(event_id, &mut key);
    key
}

/// Key of the ledger index of the event holding a sealed value.
pub(crate) fn commitment_key(commitment: &str) -> Vec<u8> {
    format!("ec/{commitment}").into_bytes()
}

/// Key of the first recall of a device or drug lot.
pub(crate) fn lot_recall_key(lot: &str) -> Vec<u8> {
    format!("er/{lot}").into_bytes()
}

/// A ledger index kept as a value: 8 bytes big-endian.
pub fn leaf_of(value: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(value).ok().map(u64::from_be_bytes)
}

/// Every patient commitment with a use in the index, each once.
pub(crate) fn patient_commitments_indexed(
    index: &crate::index::Index,
) -> Result<Vec<String>, crate::index::IndexError> {
    let mut found: Vec<String> = Vec::new();
    index.walk_range(b"ep/", b"ep0", false, &mut |key, _| {
        let subject = key
            .get(3..key.len().saturating_sub(18))
            .and_then(|s| std::str::from_utf8(s).ok());
        if let Some(subject) = subject
            && found.last().map(String::as_str) != Some(subject)
        {
            found.push(subject.to_owned());
        }
        true
    })?;
    Ok(found)
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
    let facts = &event.facts;
    let time = facts.time;
    let leaf_bytes = leaf.to_be_bytes().to_vec();
    let mut mine = Changes::default();
    let mut put = |key: Vec<u8>, value: Vec<u8>| {
        mine.writes.insert(key, Some(value));
    };
    for commitment in &facts.sealed {
        put(commitment_key(commitment), leaf_bytes.clone());
    }
    put(hash_key, leaf_bytes.clone());
    put(id_key, leaf_bytes.clone());
    put(time_key(time, leaf), Vec::new());
    let mut record = EventRecord {
        event_id: event.event_id.clone(),
        ..EventRecord::default()
    };
    // (space, subject, role) of every key the event gets.
    let mut keys: Vec<(&str, String, Role)> = Vec::new();
    let is_delete = facts.action.as_deref() == Some("DELETE");
    let recall = facts.disposition.as_deref() == Some("recalled");
    if facts.kind == "AggregationEvent" {
        let parent = facts.parent.clone().unwrap_or_default();
        let (parent_role, child_role) = if facts.is_load() {
            if let Some(sterilizer) = &facts.sterilizer {
                keys.push(("es", sterilizer.clone(), Role::Load));
            }
            record.sterilizer = facts.sterilizer.clone();
            (Role::LoadParent, Role::Load)
        } else if is_delete {
            (Role::Unpack, Role::Event)
        } else {
            (Role::Pack, Role::Event)
        };
        keys.push(("ee", parent.clone(), parent_role));
        for child in &facts.children {
            keys.push(("ee", child.clone(), child_role));
        }
        record.parent = Some(parent);
        record.children = facts.children.clone();
    } else {
        let role = if facts.is_cycle_result() {
            Role::Result
        } else if facts.is_use() && facts.patient.is_some() {
            Role::Use
        } else if recall {
            Role::Recall
        } else {
            Role::Event
        };
        for epc in &facts.epcs {
            keys.push(("ee", epc.clone(), role));
        }
        match role {
            Role::Result => {
                if let Some(sterilizer) = &facts.sterilizer {
                    keys.push(("es", sterilizer.clone(), Role::Result));
                }
                record.sterilizer = facts.sterilizer.clone();
                record.biological = facts.biological;
                record.epcs = facts.epcs.clone();
            }
            Role::Use => {
                if let Some(patient) = &facts.patient {
                    keys.push(("ep", patient.clone(), Role::Use));
                }
                record.patient = facts.patient.clone();
                record.readers = std::iter::once(event.signer.to_string())
                    .chain(facts.readers.iter().cloned())
                    .collect();
                record.epcs = facts.epcs.clone();
            }
            Role::Recall => {
                for epc in &facts.epcs {
                    if let Some(lot) = epcis::lot_of(epc) {
                        let key = lot_recall_key(&lot);
                        if state.read(&key)?.is_none() && !mine.writes.contains_key(&key) {
                            mine.writes.insert(key, Some(leaf_bytes.clone()));
                        }
                    }
                }
                record.epcs = facts.epcs.clone();
            }
            _ => {}
        }
    }
    // A device or drug lot's timeline: every event naming one of its units (or the
    // lot), with the unit's role.
    let mut lots = Vec::new();
    for (space, subject, role) in &keys {
        if *space == "ee"
            && let Some(lot) = epcis::lot_of(subject)
        {
            lots.push(("el", lot, *role));
        }
    }
    keys.extend(lots);
    if keys.iter().any(|(space, _, _)| *space == "el") && record.epcs.is_empty() {
        record.epcs = facts.epcs.clone();
    }
    for (space, subject, role) in keys {
        mine.writes.insert(
            role_key(space, &subject, time, leaf, role),
            Some(Vec::new()),
        );
    }
    mine.writes.insert(record_key(leaf), Some(record.encode()));
    changes.merge(mine);
    Ok(())
}

/// Checks a capture whole against the index as it stands, before anything of it is
/// submitted: every event applies in order (its signer registered and active, its
/// `eventID` naming no other event, also within the capture). An event logged already
/// passes (its capture is answered with the existing receipt). Gives the position and
/// the refusal of the first event that would be refused.
fn check_capture(
    index: &crate::index::Index,
    events: &[SignedEvent],
) -> Result<(), (usize, OpError)> {
    let first = index.applied().map_err(|e| {
        (
            0,
            OpError::Invalid {
                pointer: String::new(),
                message: e.to_string(),
            },
        )
    })?;
    let mut changes = Changes::default();
    for (i, event) in events.iter().enumerate() {
        let mut mine = Changes::default();
        let view = crate::state::Overlay {
            base: index,
            changes: &changes,
        };
        match apply_event(&view, &mut mine, event, first + i as u64) {
            Ok(()) | Err(OpError::AlreadyLogged { .. }) => changes.merge(mine),
            Err(refusal) => return Err((i, refusal)),
        }
    }
    Ok(())
}

/// Checks a capture whole, as EPCIS 2.0's default capture error behaviour (`rollback`)
/// asks, and prepares its events for the sequencer: every event read and its signature
/// checked (one batch for the capture), each payload given to the event whose sealed
/// member it opens, then [`check_capture`]. The first refusal refuses the capture, with
/// the position of the event at fault (none for a payload that opens no event).
pub fn prepare_capture(
    index: &crate::index::Index,
    events: &[Value],
    payloads: &[RestrictedPayload],
) -> Result<Vec<crate::Prepared>, (Option<usize>, OpError)> {
    let read = events
        .iter()
        .map(|event| {
            if crate::is_event(event) {
                SignedEvent::read(event)
            } else {
                Err(OpError::Schema(crate::SchemaError {
                    pointer: "/type".into(),
                    message: "not an EPCIS event type".into(),
                }))
            }
        })
        .collect();
    let checked = crate::op::check_signatures(read)
        .into_iter()
        .enumerate()
        .map(|(i, event)| event.map_err(|e| (Some(i), e)))
        .collect::<Result<Vec<SignedEvent>, _>>()?;
    if let Some(extra) = payloads.iter().find(|p| {
        !checked
            .iter()
            .any(|e| e.facts.sealed.contains(&p.commitment))
    }) {
        let message = format!(
            "payload {} opens no event's sealed member",
            extra.commitment
        );
        return Err((None, OpError::Restricted(message)));
    }
    check_capture(index, &checked).map_err(|(i, e)| (Some(i), e))?;
    checked
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let mine = payloads
                .iter()
                .filter(|p| event.facts.sealed.contains(&p.commitment))
                .cloned()
                .collect();
            crate::Prepared::event(event, mine).map_err(|e| (Some(i), e))
        })
        .collect()
}

/// Indexes events straight into `index`, at ledger indexes from `first`, without
/// logging them: the index keys and patient links a node would hold after logging
/// them, through the same [`apply_event`] and commit. For measuring the trace engine
/// on histories too large to log on the machine at hand (`benches/events.rs`); a node
/// only ever indexes what it logged. Gives the first refusal, if any.
#[doc(hidden)]
pub fn index_without_ledger(
    index: &crate::index::Index,
    events: &[(SignedEvent, Option<RestrictedPayload>)],
    first: u64,
) -> Result<(), OpError> {
    let mut changes = Changes::default();
    let mut patients = Vec::new();
    for (i, (event, patient)) in events.iter().enumerate() {
        let mut mine = Changes::default();
        let view = crate::state::Overlay {
            base: index,
            changes: &changes,
        };
        apply_event(&view, &mut mine, event, first + i as u64)?;
        changes.merge(mine);
        patients.extend(patient.iter().cloned());
    }
    let failed = |e: crate::index::IndexError| OpError::Invalid {
        pointer: String::new(),
        message: e.to_string(),
    };
    index.link_patients(&patients).map_err(failed)?;
    index
        .commit(&changes, first + events.len() as u64)
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back() {
        let record = EventRecord {
            event_id: format!("{HASH_ID_PREFIX}{}{HASH_ID_SUFFIX}", "ab".repeat(32)),
            parent: Some("hdl:86.1000.23/LOAD-1".into()),
            children: vec![
                "hdl:86.1000.23/PACK-1".into(),
                "/01/09506000134352/10/L1/21/S".into(),
            ],
            epcs: vec![],
            sterilizer: Some("hdl:86.1000.23/STER-1".into()),
            biological: Some(Indicator::Fail),
            patient: None,
            readers: vec!["did:key:z6Mk".into()],
        };
        let bytes = record.encode();
        assert_eq!(bytes[2], 1, "a hash ID is kept as 32 bytes");
        assert_eq!(EventRecord::decode(&bytes), Some(record.clone()));
        let custom = EventRecord {
            event_id: "urn:uuid:1".into(),
            ..record
        };
        assert_eq!(EventRecord::decode(&custom.encode()), Some(custom));
        assert_eq!(EventRecord::decode(&bytes[..bytes.len() - 1]), None);
        // An upper-case hash ID is not medid's spelling: kept as text, read back as is.
        let upper = format!("{HASH_ID_PREFIX}{}{HASH_ID_SUFFIX}", "AB".repeat(32));
        let mut key = Vec::new();
        compact_id(&upper, &mut key);
        assert_eq!(key[0], 0);
    }

    #[test]
    fn keys_sort_by_time_and_read_back() {
        let early = role_key("ee", "hdl:1/A", -5, 9, Role::Use);
        let late = role_key("ee", "hdl:1/A", 3, 2, Role::Load);
        assert!(early < late);
        assert_eq!(key_position(&early), Some((-5, 9, Role::Use)));
        assert_eq!(key_position(&late), Some((3, 2, Role::Load)));
        assert_eq!(time_key_position(&time_key(-1, 4)), Some((-1, 4)));
        assert!(time_key(-1, 4) < time_key(0, 0));
    }
}
