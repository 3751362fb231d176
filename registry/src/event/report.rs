//! Trace answers as JSON ([`TraceReport`]): the patients a viewer may see (the others
//! counted), the items with their status, the loads, and for each the events it rests
//! on; optionally each event's inclusion proof to one signed checkpoint, which
//! [`verify_report`] checks offline from the node's verifier key alone.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::trace::{EventRef, Trace, TracedItem, TracedLoad};
use crate::log::{Hash, leaf_hash, verify_checkpoint, verify_inclusion};

/// Who is asking, for patient privacy.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// The node's operator (local data directory): sees every patient.
    Operator,
    /// DIDs proven by the request's HTTP message signature (possibly none).
    Dids(Vec<String>),
}

/// A patient as a report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedPatient {
    /// The pseudonymous patient identifier.
    pub patient: String,
    /// The items used on them that the trace followed.
    pub items: BTreeSet<String>,
    /// The use events.
    pub events: BTreeSet<EventRef>,
}

/// An event's proof of inclusion in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventProof {
    /// The ledger entry (the logged event, canonical JSON), base64.
    pub entry: String,
    /// The inclusion proof to the report's checkpoint.
    pub inclusion_proof: Vec<Hash>,
}

/// The answer of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceReport {
    /// What the trace started from.
    pub from: String,
    /// `forward` or `reverse`.
    pub direction: String,
    /// What `from` is: `load`, `sterilizer`, `lot`, `patient`, `item`, `recall`.
    pub kind: String,
    /// The patients the viewer may see.
    pub patients: Vec<ReportedPatient>,
    /// How many distinct patients the trace reached in all.
    pub patient_count: usize,
    /// How many of them the viewer may not see.
    pub hidden_patients: usize,
    /// Items with their status now.
    pub items: Vec<TracedItem>,
    /// Sterilizer loads.
    pub loads: Vec<TracedLoad>,
    /// With `proofs`: the signed checkpoint the proofs lead to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// With `proofs`: each event's entry and inclusion proof, by ledger index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proofs: BTreeMap<u64, EventProof>,
}

impl TraceReport {
    /// The report of `trace` for `viewer`; `patient_of` opens a commitment (the
    /// node's payload store; `None` once erased).
    pub fn new(
        trace: &Trace,
        from: &str,
        direction: &str,
        kind: &str,
        viewer: &Viewer,
        patient_of: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let mut shown: BTreeMap<String, ReportedPatient> = BTreeMap::new();
        let mut all: BTreeSet<String> = BTreeSet::new();
        let mut visible: BTreeSet<String> = BTreeSet::new();
        for (commitment, traced) in &trace.patients {
            // An erased payload leaves the commitment: still a patient, nameless.
            let patient = patient_of(commitment);
            let key = patient.clone().unwrap_or_else(|| commitment.clone());
            all.insert(key.clone());
            let allowed = match viewer {
                Viewer::Operator => true,
                Viewer::Dids(dids) => dids.iter().any(|d| traced.readers.contains(d)),
            };
            if let (true, Some(patient)) = (allowed, patient) {
                visible.insert(key);
                let entry = shown
                    .entry(patient.clone())
                    .or_insert_with(|| ReportedPatient {
                        patient,
                        items: BTreeSet::new(),
                        events: BTreeSet::new(),
                    });
                entry.items.extend(traced.items.iter().cloned());
                entry.events.extend(traced.events.iter().cloned());
            }
        }
        Self {
            from: from.to_owned(),
            direction: direction.to_owned(),
            kind: kind.to_owned(),
            patients: shown.into_values().collect(),
            patient_count: all.len(),
            hidden_patients: all.len() - visible.len(),
            items: trace.items.values().cloned().collect(),
            loads: trace.loads.values().cloned().collect(),
            checkpoint: None,
            proofs: BTreeMap::new(),
        }
    }

    /// Every ledger index the report rests on.
    pub fn event_indexes(&self) -> BTreeSet<u64> {
        let patients = self.patients.iter().flat_map(|p| &p.events);
        let items = self.items.iter().flat_map(|i| &i.events);
        let loads = self.loads.iter().flat_map(|l| &l.events);
        patients
            .chain(items)
            .chain(loads)
            .map(|e| e.log_index)
            .collect()
    }

    /// Every event reference of the report.
    fn event_refs(&self) -> impl Iterator<Item = &EventRef> {
        let patients = self.patients.iter().flat_map(|p| &p.events);
        let items = self.items.iter().flat_map(|i| &i.events);
        let loads = self.loads.iter().flat_map(|l| &l.events);
        patients.chain(items).chain(loads)
    }

    /// Adds each event's entry and inclusion proof to the checkpoint `note`.
    pub fn attach_proofs<E>(
        &mut self,
        note: &[u8],
        mut prove: impl FnMut(u64) -> Result<(Vec<u8>, Vec<Hash>), E>,
    ) -> Result<(), E> {
        for index in self.event_indexes() {
            let (entry, proof) = prove(index)?;
            self.proofs.insert(
                index,
                EventProof {
                    entry: BASE64.encode(entry),
                    inclusion_proof: proof,
                },
            );
        }
        self.checkpoint = Some(String::from_utf8_lossy(note).into_owned());
        Ok(())
    }
}

/// Checks a saved report offline: its checkpoint is signed by `verifier_key`, every
/// event it rests on has an entry whose inclusion proof leads to that checkpoint, and
/// the entry is the event named (same `eventID`). Returns the number of events proven.
pub fn verify_report(report: &Value, verifier_key: &str) -> Result<usize, String> {
    let report: TraceReport = serde_json::from_value(report.clone())
        .map_err(|e| format!("not a medid trace report: {e}"))?;
    let note = report
        .checkpoint
        .as_deref()
        .ok_or("the report carries no proofs (trace it again with proofs)")?;
    let checkpoint =
        verify_checkpoint(note.as_bytes(), verifier_key).map_err(|e| format!("checkpoint: {e}"))?;
    // Each ledger index once: its entry's eventID, once the proof checks.
    let mut proven: BTreeMap<u64, String> = BTreeMap::new();
    for event in report.event_refs() {
        let index = event.log_index;
        let event_id = &event.event_id;
        if let std::collections::btree_map::Entry::Vacant(slot) = proven.entry(index) {
            let proof = report
                .proofs
                .get(&index)
                .ok_or_else(|| format!("event {event_id} (ledger index {index}) has no proof"))?;
            let entry = BASE64
                .decode(&proof.entry)
                .map_err(|e| format!("ledger index {index}: the entry is not base64: {e}"))?;
            verify_inclusion(
                index,
                checkpoint.size,
                &leaf_hash(&entry),
                &proof.inclusion_proof,
                checkpoint.root.as_ref(),
            )
            .map_err(|e| format!("ledger index {index}: the inclusion proof fails: {e}"))?;
            let logged: Value = serde_json::from_slice(&entry)
                .map_err(|e| format!("ledger index {index}: the entry is not JSON: {e}"))?;
            let logged_id = logged
                .get("eventID")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            slot.insert(logged_id);
        }
        if proven.get(&index) != Some(event_id) {
            return Err(format!(
                "ledger index {index} holds another event than {event_id}"
            ));
        }
    }
    Ok(proven.len())
}
