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
//! Every step is a bounded range scan over keys `ee/<epc>\0T\0L` (and `es/`, `el/`,
//! `ep/`), walked from a known position forwards or backwards until the next load:
//! the cost grows with the size of the answer, not with the history of a pack.
//! The engine reads through [`TraceSource`]; it has no I/O of its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::epcis::lot_of;
use super::{EpcFact, Indicator, key_position, leaf_key, subject_prefix, time_key};
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

    /// The commitments of a patient's uses (from the erasable payload store).
    fn patient_commitments(&self, patient: &str) -> Result<Vec<String>, IndexError>;
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

fn reference(fact: &EpcFact, position: Position) -> EventRef {
    EventRef {
        event_id: fact.event_id.clone(),
        log_index: position.1,
    }
}

fn key_at(space: &str, subject: &str, position: Position) -> Vec<u8> {
    let mut key = subject_prefix(space, subject);
    key.extend_from_slice(time_key(position.0).as_bytes());
    key.push(0);
    key.extend_from_slice(leaf_key(position.1).as_bytes());
    key
}

fn end_of(space: &str, subject: &str) -> Vec<u8> {
    let mut key = subject_prefix(space, subject);
    if let Some(last) = key.last_mut() {
        *last = 1;
    }
    key
}

/// Walks the timeline of `subject` in `space` strictly after (or before, when
/// `backward`) `from` (`None`: from the start, or from the end), while `visit` returns
/// true.
fn walk_timeline(
    source: &dyn TraceSource,
    space: &str,
    subject: &str,
    from: Option<Position>,
    backward: bool,
    visit: &mut dyn FnMut(Position, EpcFact) -> bool,
) -> Result<(), IndexError> {
    let prefix = subject_prefix(space, subject);
    let (start, end) = match (from, backward) {
        (None, _) => (prefix, end_of(space, subject)),
        (Some(p), false) => {
            let mut start = key_at(space, subject, p);
            start.push(0);
            (start, end_of(space, subject))
        }
        (Some(p), true) => (prefix, key_at(space, subject, p)),
    };
    source.walk(&start, &end, backward, &mut |key, value| {
        match (key_position(key), serde_json::from_slice::<EpcFact>(value)) {
            (Some(position), Ok(fact)) => visit(position, fact),
            // A value that does not parse is skipped here; `verify` names it.
            _ => true,
        }
    })
}

fn timeline(
    source: &dyn TraceSource,
    space: &str,
    subject: &str,
) -> Result<Vec<(Position, EpcFact)>, IndexError> {
    let mut all = Vec::new();
    walk_timeline(source, space, subject, None, false, &mut |p, f| {
        all.push((p, f));
        true
    })?;
    Ok(all)
}

impl Trace {
    fn add_patient(&mut self, fact: &EpcFact, position: Position, item: &str) {
        let Some(commitment) = &fact.patient else {
            return;
        };
        let patient = self
            .patients
            .entry(commitment.clone())
            .or_insert_with(|| TracedPatient {
                commitment: commitment.clone(),
                ..TracedPatient::default()
            });
        patient.readers.extend(fact.readers.iter().cloned());
        patient.items.insert(item.to_owned());
        patient.events.insert(reference(fact, position));
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
    fn finish(&mut self, source: &dyn TraceSource) -> Result<(), IndexError> {
        for item in self.items.values_mut() {
            item.status = item_status(source, &item.id)?;
        }
        for load in self.loads.values_mut() {
            if let (Some(sterilizer), Some(position)) = (&load.sterilizer, load.loaded) {
                load.recalled = load_recalled(source, sterilizer, &load.id, position)?;
            }
        }
        Ok(())
    }
}

/// Forward from a load: its packs, their uses in the window after the load and before
/// each pack's next load, the patients, the instruments.
pub fn forward_from_load(source: &dyn TraceSource, load: &str) -> Result<Trace, IndexError> {
    let mut trace = Trace::default();
    follow_load(source, load, &mut trace)?;
    trace.finish(source)?;
    Ok(trace)
}

fn follow_load(source: &dyn TraceSource, load: &str, trace: &mut Trace) -> Result<(), IndexError> {
    for (position, fact) in timeline(source, "ee", load)? {
        match fact.role.as_str() {
            "loadParent" => {
                let entry = trace.loads.entry(load.to_owned()).or_default();
                entry.id = load.to_owned();
                entry.sterilizer = fact.sterilizer.clone();
                entry.loaded = Some(position);
                entry.events.insert(reference(&fact, position));
                for pack in &fact.children {
                    follow_pack_window(source, pack, position, &fact, trace)?;
                }
            }
            "result" => {
                let entry = trace.loads.entry(load.to_owned()).or_default();
                entry.id = load.to_owned();
                if fact.biological.is_some() {
                    entry.biological_indicator = fact.biological;
                }
                entry.events.insert(reference(&fact, position));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A pack from the load at `loaded` until its next load.
fn follow_pack_window(
    source: &dyn TraceSource,
    pack: &str,
    loaded: Position,
    load_fact: &EpcFact,
    trace: &mut Trace,
) -> Result<(), IndexError> {
    trace.item(pack).events.insert(reference(load_fact, loaded));
    let mut uses = Vec::new();
    walk_timeline(source, "ee", pack, Some(loaded), false, &mut |p, fact| {
        match fact.role.as_str() {
            // Only a later load ends the window (the load event itself is not after).
            "load" => return false,
            "use" => uses.push((p, fact)),
            _ => {}
        }
        true
    })?;
    for (p, fact) in uses {
        trace.item(pack).events.insert(reference(&fact, p));
        trace.add_patient(&fact, p, pack);
    }
    // The instruments in the pack when it was loaded: its last packing before.
    let mut instruments = None;
    walk_timeline(
        source,
        "ee",
        pack,
        Some(loaded),
        true,
        &mut |p, fact| match fact.role.as_str() {
            "pack" => {
                instruments = Some((p, fact));
                false
            }
            "unpack" => false,
            _ => true,
        },
    )?;
    if let Some((p, fact)) = instruments {
        let item = trace.item(pack);
        item.instruments.extend(fact.children.iter().cloned());
        item.events.insert(reference(&fact, p));
    }
    Ok(())
}

/// The last load of `item` strictly before `before`, with the load fact.
fn last_load_before(
    source: &dyn TraceSource,
    item: &str,
    before: Position,
) -> Result<Option<(Position, EpcFact)>, IndexError> {
    let mut found = None;
    walk_timeline(source, "ee", item, Some(before), true, &mut |p, fact| {
        if fact.role == "load" {
            found = Some((p, fact));
            false
        } else {
            true
        }
    })?;
    Ok(found)
}

/// Reverse from a patient (their pseudonymous identifier) or from a use commitment.
pub fn reverse_from_patient(source: &dyn TraceSource, patient: &str) -> Result<Trace, IndexError> {
    let mut commitments = source.patient_commitments(patient)?;
    if commitments.is_empty() && patient.starts_with("sha256:") {
        commitments.push(patient.to_owned());
    }
    let mut trace = Trace::default();
    let mut loads = BTreeSet::new();
    for commitment in &commitments {
        for (position, fact) in timeline(source, "ep", commitment)? {
            let Some(item) = fact.subject.clone() else {
                continue;
            };
            trace.add_patient(&fact, position, &item);
            trace.item(&item).events.insert(reference(&fact, position));
            if let Some((_, load)) = last_load_before(source, &item, position)?
                && let Some(load) = load.subject
            {
                loads.insert(load);
            }
        }
    }
    for load in loads {
        follow_load(source, &load, &mut trace)?;
    }
    trace.finish(source)?;
    Ok(trace)
}

/// Reverse from an item: each of its uses, the last load before it, forward from there.
pub fn reverse_from_item(source: &dyn TraceSource, item: &str) -> Result<Trace, IndexError> {
    let mut trace = Trace::default();
    let mut loads = BTreeSet::new();
    for (position, fact) in timeline(source, "ee", item)? {
        if fact.role != "use" {
            continue;
        }
        trace.add_patient(&fact, position, item);
        trace.item(item).events.insert(reference(&fact, position));
        if let Some((_, load)) = last_load_before(source, item, position)?
            && let Some(load) = load.subject
        {
            loads.insert(load);
        }
    }
    for load in loads {
        follow_load(source, &load, &mut trace)?;
    }
    trace.finish(source)?;
    Ok(trace)
}

/// Forward from a sterilizer: its loads with a load time in `[since, until)` (ms).
pub fn forward_from_sterilizer(
    source: &dyn TraceSource,
    sterilizer: &str,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Trace, IndexError> {
    let mut loads = BTreeSet::new();
    let start = since.map(|t| (t, 0)).map(|p| key_at("es", sterilizer, p));
    let end = until
        .map(|t| (t, 0))
        .map(|p| key_at("es", sterilizer, p))
        .unwrap_or_else(|| end_of("es", sterilizer));
    let start = start.unwrap_or_else(|| subject_prefix("es", sterilizer));
    source.walk(&start, &end, false, &mut |_, value| {
        if let Ok(fact) = serde_json::from_slice::<EpcFact>(value)
            && fact.role == "load"
            && let Some(load) = fact.subject
        {
            loads.insert(load);
        }
        true
    })?;
    let mut trace = Trace::default();
    for load in loads {
        follow_load(source, &load, &mut trace)?;
    }
    trace.finish(source)?;
    Ok(trace)
}

/// Forward from a device or drug lot (`/01/{gtin}/10/{lot}`): its uses and patients.
pub fn forward_from_lot(source: &dyn TraceSource, lot: &str) -> Result<Trace, IndexError> {
    let mut trace = Trace::default();
    for (position, fact) in timeline(source, "el", lot)? {
        if fact.role != "use" {
            continue;
        }
        let Some(item) = fact.subject.clone() else {
            continue;
        };
        trace.add_patient(&fact, position, &item);
        trace.item(&item).events.insert(reference(&fact, position));
    }
    trace.finish(source)?;
    Ok(trace)
}

/// The recall report of a sterilizer: every load since its last passing biological
/// indicator up to each failing one, forward.
pub fn recall_sterilizer(source: &dyn TraceSource, sterilizer: &str) -> Result<Trace, IndexError> {
    let mut pending: Vec<String> = Vec::new();
    let mut tested: BTreeMap<String, Indicator> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (_, fact) in timeline(source, "es", sterilizer)? {
        match (fact.role.as_str(), fact.subject) {
            ("load", Some(load)) => order.push(load),
            ("result", Some(load)) => {
                if let Some(bi) = fact.biological {
                    tested.insert(load, bi);
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
        follow_load(source, &load, &mut trace)?;
    }
    trace.finish(source)?;
    Ok(trace)
}

/// Whether the load `load` (loaded at `loaded` on `sterilizer`) is recalled: the first
/// biologically tested load at or after it, in load order, failed.
fn load_recalled(
    source: &dyn TraceSource,
    sterilizer: &str,
    load: &str,
    loaded: Position,
) -> Result<bool, IndexError> {
    // Loads from this one on; the first result of one of them decides.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut started = false;
    let mut answer = false;
    let start = key_at("es", sterilizer, loaded);
    source.walk(&start, &end_of("es", sterilizer), false, &mut |_, value| {
        let Ok(fact) = serde_json::from_slice::<EpcFact>(value) else {
            return true;
        };
        let Some(subject) = fact.subject.clone() else {
            return true;
        };
        match fact.role.as_str() {
            "load" => {
                if subject == load {
                    started = true;
                }
                if started {
                    seen.insert(subject);
                }
                true
            }
            "result" if started && seen.contains(&subject) => match fact.biological {
                Some(Indicator::Fail) => {
                    answer = true;
                    false
                }
                Some(Indicator::Pass) => false,
                None => true,
            },
            _ => true,
        }
    })?;
    Ok(answer)
}

/// An item's status now: used since its last load, recalled (its load or its lot),
/// sterile, or never processed.
pub fn item_status(source: &dyn TraceSource, item: &str) -> Result<ItemStatus, IndexError> {
    let mut used = false;
    let mut last_load = None;
    walk_timeline(source, "ee", item, None, true, &mut |p, fact| {
        match fact.role.as_str() {
            "use" => used = true,
            "load" => {
                last_load = Some((p, fact));
                return false;
            }
            _ => {}
        }
        true
    })?;
    if used {
        return Ok(ItemStatus::Used);
    }
    if let Some(lot) = lot_of(item) {
        let mut recalled = false;
        walk_timeline(source, "el", &lot, None, false, &mut |_, fact| {
            recalled |= fact.role == "recall";
            !recalled
        })?;
        if recalled {
            return Ok(ItemStatus::Recalled);
        }
    }
    match last_load {
        None => Ok(ItemStatus::Unprocessed),
        Some((position, fact)) => {
            let (Some(sterilizer), Some(load)) = (&fact.sterilizer, &fact.subject) else {
                return Ok(ItemStatus::Sterile);
            };
            if load_recalled(source, sterilizer, load, position)? {
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
        let mut trace = Trace::default();
        for (_, fact) in timeline(source, "ee", &id)? {
            if fact.role == "load"
                && let Some(load) = fact.subject
            {
                follow_load(source, &load, &mut trace)?;
            }
        }
        trace.finish(source)?;
        return Ok(Some((trace, "item")));
    }
    Ok(None)
}
