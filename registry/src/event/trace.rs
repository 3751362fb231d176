//! The trace engine: time-aware forward and reverse tracing over the event index.
//!
//! Tracing is about time, not only links (DESIGN.md, "Lifecycle events and tracing"):
//! - **forward** from a load L: the packs in L; each pack's uses after L and before that
//!   pack's next load; those patients; the instruments in the pack at the time of L;
//! - **reverse** from a patient P: the packs used on P; for each, the last load before
//!   that use; then forward from that load;
//! - forward from a sterilizer (its loads in a time range), from a device or drug lot
//!   (its uses), and recall reports.
//!
//! Every step is a bounded range scan over keys `ee/<epc>\0 T L R` (and `es/`, `el/`,
//! `ep/`), walked from a known position forwards or backwards until the next load,
//! deciding on the role `R` in the key; only the events kept are read (`ev/L`, once per
//! trace). The cost grows with the size of the answer, not with the history of a pack.
//! The engine reads through [`TraceSource`]; it has no I/O of its own.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::epcis::lot_of;
use super::{
    EventRecord, Indicator, Role, key_position, lot_recall_key, position_key, record_key,
    subject_prefix,
};
use crate::index::{Index, IndexError};

/// A position in time: (event time in ms, ledger index).
pub type Position = (i64, u64);

/// What the trace engine reads.
pub trait TraceSource {
    /// Walks the keys in `[start, end)`, ascending (or descending when `backward`),
    /// while `visit` returns true.
    fn walk(
        &self,
        start: &[u8],
        end: &[u8],
        backward: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), IndexError>;

    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError>;

    /// The commitments of a patient's uses (from the erasable payload store).
    fn patient_commitments(&self, patient: &str) -> Result<Vec<String>, IndexError>;

    /// Walks the entries under the subject prefix `prefix` (`ee/<item>\0`) strictly
    /// after (or before, when `backward`) `from` (`None`: from the start, or from the
    /// end) while `visit` returns true, from memory, leaving out [`Role::Event`]
    /// entries; `None` when this source holds no such timelines (the engine then walks
    /// the index's keys). [`TraceMirror`](super::mirror::TraceMirror) holds them.
    fn walk_roles(
        &self,
        prefix: &[u8],
        from: Option<Position>,
        backward: bool,
        visit: &mut dyn FnMut(Position, Role) -> bool,
    ) -> Option<Result<(), IndexError>> {
        let _ = (prefix, from, backward, visit);
        None
    }
}

impl TraceSource for Index {
    fn walk(
        &self,
        start: &[u8],
        end: &[u8],
        backward: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), IndexError> {
        self.walk_range(start, end, backward, visit)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        self.get_raw(key)
    }

    fn patient_commitments(&self, patient: &str) -> Result<Vec<String>, IndexError> {
        Index::patient_commitments(self, patient)
    }
}

/// An event a trace rests on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRef {
    /// The event's `eventID`.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// Its ledger index.
    pub log_index: u64,
}

/// A patient a trace reached, by the commitment of a use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracedPatient {
    /// The use's commitment to the patient's pseudonymous identifier.
    pub commitment: String,
    /// The DIDs that may see who the patient is (the recorder and its readers).
    pub readers: BTreeSet<String>,
    /// The items used on the patient that the trace followed.
    pub items: BTreeSet<String>,
    /// The use events.
    pub events: BTreeSet<EventRef>,
}

/// The status of an item now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemStatus {
    /// Sterilized in a load that passed (or is not yet tested), not used since.
    Sterile,
    /// Used on a patient since its last load.
    Used,
    /// Sterilized in a recalled load, or of a recalled lot, and not used since.
    Recalled,
    /// Never loaded into a sterilizer (devices, drugs, instruments).
    Unprocessed,
}

/// An item a trace reached: a pack, a device or a drug unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracedItem {
    /// The item's identifier.
    pub id: String,
    /// Its status now.
    pub status: ItemStatus,
    /// The instruments in the pack at the time of the traced load.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub instruments: BTreeSet<String>,
    /// The events the item's place in the trace rests on.
    pub events: BTreeSet<EventRef>,
}

/// A sterilizer load a trace reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracedLoad {
    /// The load's identifier.
    pub id: String,
    /// The sterilizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sterilizer: Option<String>,
    /// The biological indicator of its cycle, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biological_indicator: Option<Indicator>,
    /// Whether the load is recalled (its own or a later load's indicator failed).
    pub recalled: bool,
    /// The load event and its cycle results.
    pub events: BTreeSet<EventRef>,
    /// When it was loaded.
    #[serde(skip)]
    loaded: Option<Position>,
}

/// The answer of a trace, before patients are shown or counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// Patients by use commitment.
    pub patients: BTreeMap<String, TracedPatient>,
    /// Items by identifier.
    pub items: BTreeMap<String, TracedItem>,
    /// Loads by identifier.
    pub loads: BTreeMap<String, TracedLoad>,
}

/// The source of a trace, the event records it has read (each read once) and the
/// loads whose recall it has decided.
struct Reader<'a> {
    source: &'a dyn TraceSource,
    records: RefCell<HashMap<u64, Rc<EventRecord>>>,
    recalled: RefCell<HashMap<(String, String, Position), bool>>,
}

impl<'a> Reader<'a> {
    fn new(source: &'a dyn TraceSource) -> Self {
        Self {
            source,
            records: RefCell::default(),
            recalled: RefCell::default(),
        }
    }

    /// The record of the event at ledger index `leaf` (empty if it does not read back;
    /// `verify` names such a value).
    fn record(&self, leaf: u64) -> Result<Rc<EventRecord>, IndexError> {
        if let Some(record) = self.records.borrow().get(&leaf) {
            return Ok(Rc::clone(record));
        }
        let record = Rc::new(
            self.source
                .get(&record_key(leaf))?
                .and_then(|v| EventRecord::decode(&v))
                .unwrap_or_default(),
        );
        self.records.borrow_mut().insert(leaf, Rc::clone(&record));
        Ok(record)
    }

    /// Walks the timeline of `subject` in `space` strictly after (or before, when
    /// `backward`) `from` (`None`: from the start, or from the end), while `visit`
    /// returns true. [`Role::Event`] entries may be left out (from memory, see
    /// [`TraceSource::walk_roles`]): no walk here decides on them.
    fn walk(
        &self,
        space: &str,
        subject: &str,
        from: Option<Position>,
        backward: bool,
        visit: &mut dyn FnMut(Position, Role) -> bool,
    ) -> Result<(), IndexError> {
        let prefix = subject_prefix(space, subject);
        if let Some(walked) = self.source.walk_roles(&prefix, from, backward, visit) {
            return walked;
        }
        let (start, end) = match (from, backward) {
            (None, _) => (prefix, end_of(space, subject)),
            (Some(p), false) => {
                let mut start = key_at(space, subject, p);
                // Past every role at that position.
                start.push(u8::MAX);
                (start, end_of(space, subject))
            }
            (Some(p), true) => (prefix, key_at(space, subject, p)),
        };
        self.source.walk(&start, &end, backward, &mut |key, _| {
            match key_position(key) {
                Some((time, leaf, role)) => visit((time, leaf), role),
                // A key that does not parse is skipped here; `verify` names it.
                None => true,
            }
        })
    }

    /// The whole timeline of `subject` in `space`, in time order.
    fn timeline(&self, space: &str, subject: &str) -> Result<Vec<(Position, Role)>, IndexError> {
        let mut all = Vec::new();
        self.walk(space, subject, None, false, &mut |p, r| {
            all.push((p, r));
            true
        })?;
        Ok(all)
    }
}

fn reference(record: &EventRecord, position: Position) -> EventRef {
    EventRef {
        event_id: record.event_id.clone(),
        log_index: position.1,
    }
}

fn key_at(space: &str, subject: &str, position: Position) -> Vec<u8> {
    position_key(space, subject, position.0, position.1)
}

fn end_of(space: &str, subject: &str) -> Vec<u8> {
    crate::index::prefix_end(&subject_prefix(space, subject))
}

impl Trace {
    fn add_patient(&mut self, record: &EventRecord, position: Position, item: &str) {
        let Some(commitment) = &record.patient else {
            return;
        };
        let patient = self
            .patients
            .entry(commitment.clone())
            .or_insert_with(|| TracedPatient {
                commitment: commitment.clone(),
                ..TracedPatient::default()
            });
        patient.readers.extend(record.readers.iter().cloned());
        patient.items.insert(item.to_owned());
        patient.events.insert(reference(record, position));
    }

    fn item(&mut self, id: &str) -> &mut TracedItem {
        self.items
            .entry(id.to_owned())
            .or_insert_with(|| TracedItem {
                id: id.to_owned(),
                status: ItemStatus::Unprocessed,
                instruments: BTreeSet::new(),
                events: BTreeSet::new(),
            })
    }

    /// Fills each item's current status and each load's recall state.
    fn finish(&mut self, reader: &Reader<'_>) -> Result<(), IndexError> {
        for item in self.items.values_mut() {
            item.status = status_of(reader, &item.id)?;
        }
        for load in self.loads.values_mut() {
            if let (Some(sterilizer), Some(position)) = (&load.sterilizer, load.loaded) {
                load.recalled = load_recalled(reader, sterilizer, &load.id, position)?;
            }
        }
        Ok(())
    }
}

/// Forward from a load: its packs, their uses in the window after the load and before
/// each pack's next load, the patients, the instruments.
pub fn forward_from_load(source: &dyn TraceSource, load: &str) -> Result<Trace, IndexError> {
    let reader = Reader::new(source);
    let mut trace = Trace::default();
    follow_load(&reader, load, &mut trace)?;
    trace.finish(&reader)?;
    Ok(trace)
}

fn follow_load(reader: &Reader<'_>, load: &str, trace: &mut Trace) -> Result<(), IndexError> {
    for (position, role) in reader.timeline("ee", load)? {
        match role {
            Role::LoadParent => {
                let record = reader.record(position.1)?;
                let entry = trace.loads.entry(load.to_owned()).or_default();
                entry.id = load.to_owned();
                entry.sterilizer = record.sterilizer.clone();
                entry.loaded = Some(position);
                entry.events.insert(reference(&record, position));
                for pack in &record.children {
                    follow_pack_window(reader, pack, position, &record, trace)?;
                }
            }
            Role::Result => {
                let record = reader.record(position.1)?;
                let entry = trace.loads.entry(load.to_owned()).or_default();
                entry.id = load.to_owned();
                if record.biological.is_some() {
                    entry.biological_indicator = record.biological;
                }
                entry.events.insert(reference(&record, position));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A pack from the load at `loaded` until its next load.
fn follow_pack_window(
    reader: &Reader<'_>,
    pack: &str,
    loaded: Position,
    load: &EventRecord,
    trace: &mut Trace,
) -> Result<(), IndexError> {
    trace.item(pack).events.insert(reference(load, loaded));
    let mut uses = Vec::new();
    reader.walk("ee", pack, Some(loaded), false, &mut |p, role| {
        match role {
            // Only a later load ends the window (the load event itself is not after).
            Role::Load => return false,
            Role::Use => uses.push(p),
            _ => {}
        }
        true
    })?;
    for p in uses {
        let record = reader.record(p.1)?;
        trace.item(pack).events.insert(reference(&record, p));
        trace.add_patient(&record, p, pack);
    }
    // The instruments in the pack when it was loaded: its last packing before.
    let mut packed = None;
    reader.walk("ee", pack, Some(loaded), true, &mut |p, role| match role {
        Role::Pack => {
            packed = Some(p);
            false
        }
        Role::Unpack => false,
        _ => true,
    })?;
    if let Some(p) = packed {
        let record = reader.record(p.1)?;
        let item = trace.item(pack);
        item.instruments.extend(record.children.iter().cloned());
        item.events.insert(reference(&record, p));
    }
    Ok(())
}

/// The load (its identifier) of the last load event of `item` strictly before `before`.
fn last_load_before(
    reader: &Reader<'_>,
    item: &str,
    before: Position,
) -> Result<Option<String>, IndexError> {
    let mut found = None;
    reader.walk("ee", item, Some(before), true, &mut |p, role| {
        if role == Role::Load {
            found = Some(p);
            false
        } else {
            true
        }
    })?;
    match found {
        Some(p) => Ok(reader.record(p.1)?.parent.clone()),
        None => Ok(None),
    }
}

/// Reverse from a patient (their pseudonymous identifier) or from a use commitment.
pub fn reverse_from_patient(source: &dyn TraceSource, patient: &str) -> Result<Trace, IndexError> {
    let reader = Reader::new(source);
    let mut commitments = source.patient_commitments(patient)?;
    if commitments.is_empty() && patient.starts_with("sha256:") {
        commitments.push(patient.to_owned());
    }
    let mut trace = Trace::default();
    let mut loads = BTreeSet::new();
    for commitment in &commitments {
        for (position, _) in reader.timeline("ep", commitment)? {
            let record = reader.record(position.1)?;
            for item in &record.epcs {
                trace.add_patient(&record, position, item);
                trace.item(item).events.insert(reference(&record, position));
                if let Some(load) = last_load_before(&reader, item, position)? {
                    loads.insert(load);
                }
            }
        }
    }
    for load in loads {
        follow_load(&reader, &load, &mut trace)?;
    }
    trace.finish(&reader)?;
    Ok(trace)
}

/// Reverse from an item: each of its uses, the last load before it, forward from there.
pub fn reverse_from_item(source: &dyn TraceSource, item: &str) -> Result<Trace, IndexError> {
    let reader = Reader::new(source);
    let mut trace = Trace::default();
    let mut loads = BTreeSet::new();
    for (position, role) in reader.timeline("ee", item)? {
        if role != Role::Use {
            continue;
        }
        let record = reader.record(position.1)?;
        trace.add_patient(&record, position, item);
        trace.item(item).events.insert(reference(&record, position));
        if let Some(load) = last_load_before(&reader, item, position)? {
            loads.insert(load);
        }
    }
    for load in loads {
        follow_load(&reader, &load, &mut trace)?;
    }
    trace.finish(&reader)?;
    Ok(trace)
}

/// The loads of `sterilizer` with a load time in `[since, until)` (ms).
fn sterilizer_loads(
    reader: &Reader<'_>,
    sterilizer: &str,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<BTreeSet<String>, IndexError> {
    let start = since
        .map(|t| key_at("es", sterilizer, (t, 0)))
        .unwrap_or_else(|| subject_prefix("es", sterilizer));
    let end = until
        .map(|t| key_at("es", sterilizer, (t, 0)))
        .unwrap_or_else(|| end_of("es", sterilizer));
    let mut positions = Vec::new();
    reader.source.walk(&start, &end, false, &mut |key, _| {
        if let Some((time, leaf, Role::Load)) = key_position(key) {
            positions.push((time, leaf));
        }
        true
    })?;
    let mut loads = BTreeSet::new();
    for p in positions {
        if let Some(load) = reader.record(p.1)?.parent.clone() {
            loads.insert(load);
        }
    }
    Ok(loads)
}

/// Forward from a sterilizer: its loads with a load time in `[since, until)` (ms).
pub fn forward_from_sterilizer(
    source: &dyn TraceSource,
    sterilizer: &str,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Trace, IndexError> {
    let reader = Reader::new(source);
    let mut trace = Trace::default();
    for load in sterilizer_loads(&reader, sterilizer, since, until)? {
        follow_load(&reader, &load, &mut trace)?;
    }
    trace.finish(&reader)?;
    Ok(trace)
}

/// Forward from a device or drug lot (`/01/{gtin}/10/{lot}`): its uses and patients,
/// and every other unit of the lot an event named (unused units included, with their
/// status: a lot recall lists what is still to be withdrawn).
pub fn forward_from_lot(source: &dyn TraceSource, lot: &str) -> Result<Trace, IndexError> {
    let reader = Reader::new(source);
    let mut trace = Trace::default();
    let of_lot = |epc: &String| epc != lot && lot_of(epc).as_deref() == Some(lot);
    for (position, role) in reader.timeline("el", lot)? {
        let record = reader.record(position.1)?;
        let named = record
            .epcs
            .iter()
            .chain(&record.children)
            .chain(&record.parent)
            .filter(|epc| of_lot(epc));
        for item in named {
            if role == Role::Use {
                trace.add_patient(&record, position, item);
                trace.item(item).events.insert(reference(&record, position));
            } else {
                trace.item(item);
            }
        }
    }
    trace.finish(&reader)?;
    Ok(trace)
}

/// The recall report of a sterilizer: every load since its last passing biological
/// indicator up to each failing one, forward.
pub fn recall_sterilizer(source: &dyn TraceSource, sterilizer: &str) -> Result<Trace, IndexError> {
    let reader = Reader::new(source);
    let mut pending: Vec<String> = Vec::new();
    let mut tested: BTreeMap<String, Indicator> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (position, role) in reader.timeline("es", sterilizer)? {
        let record = reader.record(position.1)?;
        match role {
            Role::Load => order.extend(record.parent.iter().cloned()),
            Role::Result => {
                if let Some(bi) = record.biological {
                    for load in &record.epcs {
                        tested.insert(load.clone(), bi);
                    }
                }
            }
            _ => {}
        }
    }
    let mut recalled = Vec::new();
    for load in order {
        pending.push(load.clone());
        match tested.get(&load) {
            Some(Indicator::Pass) => pending.clear(),
            Some(Indicator::Fail) => recalled.append(&mut pending),
            None => {}
        }
    }
    let mut trace = Trace::default();
    for load in recalled {
        follow_load(&reader, &load, &mut trace)?;
    }
    trace.finish(&reader)?;
    Ok(trace)
}

/// Whether the load `load` (loaded at `loaded` on `sterilizer`) is recalled: the first
/// biologically tested load at or after it, in load order, failed. Decided once per
/// trace.
fn load_recalled(
    reader: &Reader<'_>,
    sterilizer: &str,
    load: &str,
    loaded: Position,
) -> Result<bool, IndexError> {
    let memo = (sterilizer.to_owned(), load.to_owned(), loaded);
    if let Some(answer) = reader.recalled.borrow().get(&memo) {
        return Ok(*answer);
    }
    // Loads from this one on; the first result of one of them decides.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut started = false;
    let mut answer = false;
    let mut failed: Option<IndexError> = None;
    // From `loaded` on, every role at it included: strictly after the position just
    // before (from the start when there is none).
    let from = match loaded {
        (time, 0) => time.checked_sub(1).map(|t| (t, u64::MAX)),
        (time, leaf) => Some((time, leaf - 1)),
    };
    reader.walk("es", sterilizer, from, false, &mut |position, role| {
        if !matches!(role, Role::Load | Role::Result) || (role == Role::Result && !started) {
            return true;
        }
        let record = match reader.record(position.1) {
            Ok(record) => record,
            Err(e) => {
                failed = Some(e);
                return false;
            }
        };
        if role == Role::Load {
            if let Some(parent) = &record.parent {
                if parent == load {
                    started = true;
                }
                if started {
                    seen.insert(parent.clone());
                }
            }
            return true;
        }
        if !record.epcs.iter().any(|e| seen.contains(e)) {
            return true;
        }
        match record.biological {
            Some(Indicator::Fail) => {
                answer = true;
                false
            }
            Some(Indicator::Pass) => false,
            None => true,
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    reader.recalled.borrow_mut().insert(memo, answer);
    Ok(answer)
}

/// An item's status now: used since its last load, recalled (its load or its lot),
/// sterile, or never processed.
pub fn item_status(source: &dyn TraceSource, item: &str) -> Result<ItemStatus, IndexError> {
    status_of(&Reader::new(source), item)
}

fn status_of(reader: &Reader<'_>, item: &str) -> Result<ItemStatus, IndexError> {
    let mut used = false;
    let mut last_load = None;
    reader.walk("ee", item, None, true, &mut |p, role| {
        match role {
            Role::Use => used = true,
            Role::Load => {
                last_load = Some(p);
                return false;
            }
            _ => {}
        }
        true
    })?;
    if used {
        return Ok(ItemStatus::Used);
    }
    if let Some(lot) = lot_of(item)
        && reader.source.get(&lot_recall_key(&lot))?.is_some()
    {
        return Ok(ItemStatus::Recalled);
    }
    match last_load {
        None => Ok(ItemStatus::Unprocessed),
        Some(position) => {
            let record = reader.record(position.1)?;
            let (Some(sterilizer), Some(load)) = (&record.sterilizer, &record.parent) else {
                return Ok(ItemStatus::Sterile);
            };
            if load_recalled(reader, sterilizer, load, position)? {
                Ok(ItemStatus::Recalled)
            } else {
                Ok(ItemStatus::Sterile)
            }
        }
    }
}

fn has_entries(source: &dyn TraceSource, space: &str, subject: &str) -> Result<bool, IndexError> {
    let mut found = false;
    source.walk(
        &subject_prefix(space, subject),
        &end_of(space, subject),
        false,
        &mut |_, _| {
            found = true;
            false
        },
    )?;
    Ok(found)
}

/// Traces from any starting point, deciding what `from` is: forward from a lot
/// (`/01/{gtin}/10/{lot}`), a sterilizer (loads with a load time in `[since, until)`),
/// a load, or an item; reverse from a patient (pseudonymous identifier or use
/// commitment) or an item. Gives the trace and what `from` was, or `None` when no
/// event names it.
pub fn trace_from(
    source: &dyn TraceSource,
    from: &str,
    forward: bool,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Option<(Trace, &'static str)>, IndexError> {
    if !forward {
        if from.starts_with("sha256:") || !source.patient_commitments(from)?.is_empty() {
            return Ok(Some((reverse_from_patient(source, from)?, "patient")));
        }
        let Ok(item) = super::normalise_epc(from) else {
            return Ok(None);
        };
        if has_entries(source, "ee", &item)? {
            return Ok(Some((reverse_from_item(source, &item)?, "item")));
        }
        return Ok(None);
    }
    let Ok(id) = super::normalise_epc(from) else {
        return Ok(None);
    };
    if has_entries(source, "el", &id)? {
        return Ok(Some((forward_from_lot(source, &id)?, "lot")));
    }
    if has_entries(source, "es", &id)? {
        let trace = forward_from_sterilizer(source, &id, since, until)?;
        return Ok(Some((trace, "sterilizer")));
    }
    if has_entries(source, "ee", &id)? {
        let trace = forward_from_load(source, &id)?;
        if !trace.loads.is_empty() {
            return Ok(Some((trace, "load")));
        }
        // An item: forward from each of its loads.
        let reader = Reader::new(source);
        let mut trace = Trace::default();
        for (position, role) in reader.timeline("ee", &id)? {
            if role == Role::Load
                && let Some(load) = reader.record(position.1)?.parent.clone()
            {
                follow_load(&reader, &load, &mut trace)?;
            }
        }
        trace.finish(&reader)?;
        return Ok(Some((trace, "item")));
    }
    Ok(None)
}
