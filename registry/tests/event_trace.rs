//! Events in the ledger and the trace engine on a real data directory: capture
//! (signatures, registered DIDs, idempotency, sealed patients), reindex and verify, and
//! forward, reverse, sterilizer-recall and lot traces checked against an independent
//! brute-force computation over random multi-cycle histories.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::collections::{BTreeMap, BTreeSet};

use medid_did::KeyPair;
use medid_registry::event::mirror::{Source, TraceMirror};
use medid_registry::event::scenario::{HistoryConfig, cssd_history};
use medid_registry::event::trace::{self, ItemStatus, Trace};
use medid_registry::event::{epcis::bizstep, seal_and_sign};
use medid_registry::op::{OpError, Submission, draft, sign};
use medid_registry::{Receipt, Registry};
use serde_json::{Value, json};

struct Node {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    registry: Registry,
    cssd: KeyPair,
    hospital: KeyPair,
}

fn register(registry: &mut Registry, key: &KeyPair, name: &str, role: &str) {
    let op = sign(
        &draft(
            "did.register",
            json!({"did": key.did().to_string(), "name": name, "role": role}),
        ),
        &[key],
    )
    .unwrap();
    registry
        .submit(&[Submission {
            operation: op,
            restricted: Vec::new(),
        }])
        .unwrap()
        .remove(0)
        .unwrap();
}

fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    let admin = KeyPair::generate();
    Registry::init(&path, "test.medid.example", Some(admin.did())).unwrap();
    let mut registry = Registry::open(&path).unwrap();
    let cssd = KeyPair::generate();
    let hospital = KeyPair::generate();
    register(&mut registry, &cssd, "CSSD", "sterilization-center");
    register(&mut registry, &hospital, "Hospital", "hospital");
    Node {
        _dir: dir,
        path,
        registry,
        cssd,
        hospital,
    }
}

fn is_use(event: &Value) -> bool {
    matches!(
        event["bizStep"].as_str(),
        Some(bizstep::USING | bizstep::IMPLANTING | bizstep::DISPENSING)
    )
}

impl Node {
    fn submission(&self, event: &Value) -> Submission {
        let key = if is_use(event) {
            &self.hospital
        } else {
            &self.cssd
        };
        let (signed, restricted) = seal_and_sign(event, key).unwrap();
        Submission {
            operation: signed,
            restricted,
        }
    }

    fn capture(&mut self, events: &[Value]) -> Vec<Result<Receipt, OpError>> {
        let mut answers = Vec::new();
        for chunk in events.chunks(500) {
            let batch: Vec<Submission> = chunk.iter().map(|e| self.submission(e)).collect();
            answers.extend(self.registry.submit(&batch).unwrap());
        }
        answers
    }

    fn patients(&self, trace: &Trace) -> BTreeSet<String> {
        trace
            .patients
            .keys()
            .map(|c| self.registry.index().patient_of(c).unwrap().unwrap())
            .collect()
    }
}

/// The history as the oracle sees it: plain facts in ledger order.
struct Fact {
    kind: String,
    step: String,
    epcs: Vec<String>,
    parent: Option<String>,
    children: Vec<String>,
    sterilizer: Option<String>,
    bi: Option<String>,
    patient: Option<String>,
}

fn plain(id: &Value) -> String {
    let s = id.as_str().unwrap();
    s.strip_prefix("hdl:").unwrap_or(s).to_owned()
}

fn facts(events: &[Value]) -> Vec<Fact> {
    events
        .iter()
        .map(|e| Fact {
            kind: e["type"].as_str().unwrap().to_owned(),
            step: e["bizStep"].as_str().unwrap_or_default().to_owned(),
            epcs: e["epcList"]
                .as_array()
                .map(|a| a.iter().map(plain).collect())
                .unwrap_or_default(),
            parent: e.get("parentID").map(plain),
            children: e["childEPCs"]
                .as_array()
                .map(|a| a.iter().map(plain).collect())
                .unwrap_or_default(),
            sterilizer: e.get("medid:sterilizer").map(plain),
            bi: e["medid:biologicalIndicator"].as_str().map(str::to_owned),
            patient: e["medid:patient"].as_str().map(str::to_owned),
        })
        .collect()
}

fn is_load(f: &Fact) -> bool {
    f.kind == "AggregationEvent" && f.step == bizstep::STERILIZING
}

/// Brute force: the patients a load reached.
fn oracle_forward(history: &[Fact], load: &str) -> BTreeSet<String> {
    let mut patients = BTreeSet::new();
    for (at, f) in history.iter().enumerate() {
        if !(is_load(f) && f.parent.as_deref() == Some(load)) {
            continue;
        }
        for pack in &f.children {
            for g in &history[at + 1..] {
                if is_load(g) && g.children.contains(pack) {
                    break;
                }
                if g.step == bizstep::USING && g.epcs.contains(pack) {
                    patients.insert(g.patient.clone().unwrap());
                }
            }
        }
    }
    patients
}

/// Brute force: the patients reached from a patient.
fn oracle_reverse(history: &[Fact], patient: &str) -> BTreeSet<String> {
    let mut patients = BTreeSet::new();
    for (at, f) in history.iter().enumerate() {
        if f.patient.as_deref() != Some(patient) {
            continue;
        }
        patients.insert(patient.to_owned());
        for item in &f.epcs {
            let last_load = history[..at]
                .iter()
                .rev()
                .find(|g| is_load(g) && g.children.contains(item));
            if let Some(load) = last_load {
                patients.extend(oracle_forward(history, load.parent.as_deref().unwrap()));
            }
        }
    }
    patients
}

/// Brute force: the loads a sterilizer's failed indicators recall.
fn oracle_recalled_loads(history: &[Fact], sterilizer: &str) -> Vec<String> {
    let mut order = Vec::new();
    let mut bi = BTreeMap::new();
    for f in history {
        if f.sterilizer.as_deref() != Some(sterilizer) {
            continue;
        }
        if is_load(f) {
            order.push(f.parent.clone().unwrap());
        } else if let Some(result) = &f.bi {
            bi.insert(f.epcs[0].clone(), result.clone());
        }
    }
    let mut recalled = Vec::new();
    let mut since_pass = Vec::new();
    for load in order {
        since_pass.push(load.clone());
        match bi.get(&load).map(String::as_str) {
            Some("pass") => since_pass.clear(),
            Some("fail") => recalled.append(&mut since_pass),
            _ => {}
        }
    }
    recalled
}

/// Forward traces from every load, reverse traces from every patient and recalls of
/// every sterilizer, read from `source`, give exactly what the brute-force oracle
/// computes from `history`; a recalled item no use has reached since reads `recalled`.
fn assert_traces_match_oracle(
    source: &dyn trace::TraceSource,
    node: &Node,
    history: &[Fact],
    config: &HistoryConfig,
    label: &str,
) {
    for load in 0..config.loads {
        let id = config.load(load);
        let trace = trace::forward_from_load(source, &id).unwrap();
        assert_eq!(
            node.patients(&trace),
            oracle_forward(history, &id),
            "{label}, forward from {id}"
        );
    }
    for patient in 0..config.patients {
        let id = config.patient(patient);
        let trace = trace::reverse_from_patient(source, &id).unwrap();
        assert_eq!(
            node.patients(&trace),
            oracle_reverse(history, &id),
            "{label}, reverse from {id}"
        );
    }
    for sterilizer in 0..config.sterilizers {
        let id = config.sterilizer(sterilizer);
        let trace = trace::recall_sterilizer(source, &id).unwrap();
        let recalled = oracle_recalled_loads(history, &id);
        let loads: BTreeSet<String> = trace.loads.keys().cloned().collect();
        assert_eq!(loads, recalled.iter().cloned().collect(), "{label}, {id}");
        let mut expected = BTreeSet::new();
        for load in &recalled {
            expected.extend(oracle_forward(history, load));
            assert!(trace.loads[load].recalled, "{load} is recalled");
        }
        assert_eq!(node.patients(&trace), expected, "{label}, recall {id}");
        // A recalled pack that has not been used since is `recalled`.
        for item in trace.items.values() {
            if item.status == ItemStatus::Recalled {
                let status = trace::item_status(source, &item.id).unwrap();
                assert_eq!(status, ItemStatus::Recalled);
            }
        }
    }
}

#[test]
fn traces_match_brute_force_on_random_histories() {
    for seed in 1..=3 {
        let config = HistoryConfig {
            seed,
            loads: 50,
            packs: 14 + seed as usize * 3,
            patients: 25,
            ..HistoryConfig::default()
        };
        let events = cssd_history(&config);
        let mut node = node();
        for answer in node.capture(&events) {
            answer.unwrap();
        }
        let history = facts(&events);
        let index = node.registry.index().clone();
        assert_traces_match_oracle(&index, &node, &history, &config, &format!("seed {seed}"));
        // Lots: every implanting and dispensing use of the lot, nothing else.
        for lot in 1..=3 {
            let lot_id = format!(
                "/01/{}/10/LOT{lot}",
                medid_registry::event::scenario::DEVICE_GTIN
            );
            let trace = trace::forward_from_lot(&index, &lot_id).unwrap();
            let expected: BTreeSet<String> = history
                .iter()
                .filter(|f| f.step == bizstep::IMPLANTING)
                .filter(|f| f.epcs[0].contains(&format!("/10/LOT{lot}/")))
                .map(|f| f.patient.clone().unwrap())
                .collect();
            assert_eq!(node.patients(&trace), expected, "seed {seed}, lot {lot}");
        }
        // The index is exactly what the ledger gives, and rebuilds to the same answers.
        node.registry.verify().unwrap();
        let before = trace::reverse_from_patient(&index, &config.patient(3)).unwrap();
        node.registry.reindex().unwrap();
        node.registry.verify().unwrap();
        let index = node.registry.index().clone();
        let after = trace::reverse_from_patient(&index, &config.patient(3)).unwrap();
        assert_eq!(before, after);
    }
}

#[test]
fn a_pack_reprocessed_many_times_keeps_its_cycles_apart() {
    // One pack, ten cycles, one patient per cycle: each load reaches exactly one.
    let config = HistoryConfig {
        packs: 1,
        packs_per_load: 1,
        loads: 10,
        patients: 1_000_000,
        device_uses_per_load: 0,
        failures_per_mille: 0,
        ..HistoryConfig::default()
    };
    let events = cssd_history(&config);
    let mut node = node();
    node.capture(&events);
    let history = facts(&events);
    let index = node.registry.index().clone();
    let mut reached = 0;
    for load in 0..config.loads {
        let expected = oracle_forward(&history, &config.load(load));
        let trace = trace::forward_from_load(&index, &config.load(load)).unwrap();
        assert_eq!(node.patients(&trace), expected);
        assert!(expected.len() <= 2, "{expected:?}");
        reached += expected.len();
        if !expected.is_empty() {
            let item = &trace.items[&config.pack(0)];
            assert_eq!(item.instruments.len(), config.instruments_per_pack);
        }
    }
    // Every use belongs to exactly one cycle: no load drags in another cycle's patient.
    let uses = history.iter().filter(|f| f.step == bizstep::USING).count();
    assert!(uses >= 2, "{uses}");
    assert_eq!(reached, uses);
}

fn cycle(cssd_prefix: &str) -> Vec<Value> {
    let t = |m: u32| format!("2026-03-01T10:{m:02}:00Z");
    vec![
        json!({"type": "AggregationEvent", "eventTime": t(0), "eventTimeZoneOffset": "+00:00",
               "parentID": format!("{cssd_prefix}/PKG-1"), "childEPCs": [format!("{cssd_prefix}/INSTR-1")],
               "action": "ADD", "bizStep": "packing"}),
        json!({"type": "AggregationEvent", "eventTime": t(1), "eventTimeZoneOffset": "+00:00",
               "parentID": format!("{cssd_prefix}/LOAD-1"), "childEPCs": [format!("{cssd_prefix}/PKG-1")],
               "action": "ADD", "bizStep": bizstep::STERILIZING,
               "medid:sterilizer": format!("{cssd_prefix}/ST-1")}),
        json!({"type": "ObjectEvent", "eventTime": t(2), "eventTimeZoneOffset": "+00:00",
               "epcList": [format!("{cssd_prefix}/LOAD-1")], "action": "OBSERVE",
               "bizStep": bizstep::STERILIZING, "medid:sterilizer": format!("{cssd_prefix}/ST-1"),
               "medid:biologicalIndicator": "pass", "medid:chemicalIndicator": "pass"}),
        json!({"type": "ObjectEvent", "eventTime": t(3), "eventTimeZoneOffset": "+00:00",
               "epcList": [format!("{cssd_prefix}/PKG-1")], "action": "OBSERVE",
               "bizStep": bizstep::USING, "medid:patient": "PAT-1", "medid:procedure": "hip"}),
    ]
}

#[test]
fn capture_checks_signers_and_is_idempotent() {
    let mut node = node();
    let events = cycle("86.1000.23");
    let first = node.capture(&events);
    let receipts: Vec<Receipt> = first.into_iter().map(Result::unwrap).collect();
    // The same events again (signed again, sealed again for the patient... the use is
    // a new commitment, so it is a new event; the others are the same events).
    let submission = node.submission(&events[1]);
    let again = node.registry.submit(&[submission]).unwrap().remove(0);
    match again {
        Err(OpError::AlreadyLogged { leaf, .. }) => assert_eq!(leaf, receipts[1].leaf_index),
        other => panic!("{other:?}"),
    }
    // An unregistered DID cannot record events.
    let stranger = KeyPair::generate();
    let (signed, restricted) = seal_and_sign(
        &json!({"type": "ObjectEvent", "eventTime": "2026-03-02T00:00:00Z",
                "eventTimeZoneOffset": "+00:00", "epcList": ["hdl:86.1000.23/PKG-9"],
                "action": "OBSERVE", "bizStep": bizstep::WASHING}),
        &stranger,
    )
    .unwrap();
    let err = node
        .registry
        .submit(&[Submission {
            operation: signed.clone(),
            restricted,
        }])
        .unwrap()
        .remove(0)
        .unwrap_err();
    assert_eq!(err.code(), "notFound", "{err}");
    // A tampered event fails its proof.
    let mut tampered = signed;
    tampered["epcList"] = json!(["hdl:86.1000.23/PKG-10"]);
    let err = node
        .registry
        .submit(&[Submission {
            operation: tampered,
            restricted: Vec::new(),
        }])
        .unwrap()
        .remove(0)
        .unwrap_err();
    assert_eq!(err.code(), "proof", "{err}");
    // A plaintext patient never reaches the ledger: refused.
    let mut plaintext = events[3].clone();
    plaintext["eventTime"] = json!("2026-03-01T11:00:00Z");
    let (mut signed, _) = seal_and_sign(&plaintext, &node.hospital).unwrap();
    signed["medid:patient"] = json!("PAT-1");
    let err = node
        .registry
        .submit(&[Submission {
            operation: signed,
            restricted: Vec::new(),
        }])
        .unwrap()
        .remove(0)
        .unwrap_err();
    assert!(err.code() == "invalid" || err.code() == "proof", "{err}");
    // A use without its patient payload is refused.
    let (signed, _) = seal_and_sign(&plaintext, &node.hospital).unwrap();
    let err = node
        .registry
        .submit(&[Submission {
            operation: signed,
            restricted: Vec::new(),
        }])
        .unwrap()
        .remove(0)
        .unwrap_err();
    assert_eq!(err.code(), "restricted", "{err}");
    // The ledger holds no patient identifier.
    let log = std::fs::read_dir(node.path.join("log")).unwrap().count();
    assert!(log > 0);
    for leaf in 0..node.registry.log().size() {
        let entry = node
            .registry
            .log()
            .entries(leaf..leaf + 1)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&entry.1).contains("PAT-1"));
    }
    node.registry.verify().unwrap();
}

#[test]
fn an_erased_patient_payload_drops_the_link_but_the_log_verifies() {
    // With the patient links read from the tree, and held in memory as `serve` holds them.
    for held in [false, true] {
        erase_a_patient_payload(held);
    }
}

fn erase_a_patient_payload(held: bool) {
    let mut node = node();
    let index = node.registry.index().clone();
    if held {
        assert_eq!(index.hold_patient_links().unwrap(), 0);
    }
    node.capture(&cycle("86.1000.23"));
    let trace = trace::reverse_from_patient(&index, "PAT-1").unwrap();
    assert_eq!(trace.patients.len(), 1);
    let commitment = trace.patients.keys().next().unwrap().clone();
    let stored = |node: &Node| {
        let mut all = Vec::new();
        for file in std::fs::read_dir(node.path.join("restricted")).unwrap() {
            all.extend(std::fs::read(file.unwrap().path()).unwrap());
        }
        String::from_utf8_lossy(&all).into_owned()
    };
    assert!(stored(&node).contains("PAT-1"));
    assert!(node.registry.erase_payload(&commitment).unwrap());
    // The payload's bytes are overwritten in its group file, not just unlinked.
    assert!(!stored(&node).contains("PAT-1"));
    assert!(!stored(&node).contains(commitment.trim_start_matches("sha256:")));
    assert!(node.registry.payload(&commitment).unwrap().is_none());
    assert!(
        !node.registry.erase_payload(&commitment).unwrap(),
        "erased already"
    );
    let trace = trace::reverse_from_patient(&index, "PAT-1").unwrap();
    assert!(trace.patients.is_empty());
    node.registry.verify().unwrap();
    node.registry.reindex().unwrap();
    let index = node.registry.index().clone();
    assert!(index.patient_commitments("PAT-1").unwrap().is_empty());
    // The use is still traced from its load, as a commitment nobody can open.
    let trace = trace::forward_from_load(&index, "86.1000.23/LOAD-1").unwrap();
    assert_eq!(trace.patients.len(), 1);
    assert_eq!(index.patient_of(&commitment).unwrap(), None);
}

#[test]
fn erasure_is_refused_within_the_retention_period() {
    let mut node = node();
    let now = time::OffsetDateTime::now_utc();
    let ago = |days: i64| {
        (now - time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let washing = |days: i64| {
        json!({"type": "ObjectEvent", "eventTime": ago(days), "eventTimeZoneOffset": "+00:00",
               "epcList": ["hdl:86.1000.23/PKG-1"], "action": "OBSERVE",
               "bizStep": bizstep::WASHING, "medid:operator": format!("operator {days}")})
    };
    let result = |days: i64| {
        json!({"type": "ObjectEvent", "eventTime": ago(days), "eventTimeZoneOffset": "+00:00",
               "epcList": ["hdl:86.1000.23/LOAD-1"], "action": "OBSERVE",
               "bizStep": bizstep::STERILIZING, "medid:biologicalIndicator": "pass",
               "medid:operator": format!("operator {days}")})
    };
    let events = [washing(30), washing(200), result(400), result(1200)];
    let mut commitments = Vec::new();
    for event in &events {
        let submission = node.submission(event);
        commitments.push(submission.restricted[0].commitment.clone());
        // The operator's name is sealed: off-log, erasable.
        assert!(!submission.operation.to_string().contains("operator "));
        node.registry
            .submit(&[submission])
            .unwrap()
            .remove(0)
            .unwrap();
    }
    let refused = |r: Result<bool, medid_registry::RegistryError>| match r {
        Err(medid_registry::RegistryError::Refused(e)) => e.code() == "retention",
        _ => false,
    };
    assert!(
        refused(node.registry.erase_payload(&commitments[0])),
        "washing, 30 days"
    );
    assert!(
        node.registry.erase_payload(&commitments[1]).unwrap(),
        "washing, 200 days"
    );
    assert!(
        refused(node.registry.erase_payload(&commitments[2])),
        "sterilization, 400 days"
    );
    assert!(
        node.registry.erase_payload(&commitments[3]).unwrap(),
        "sterilization, 1200 days"
    );
    assert!(node.registry.payload(&commitments[0]).unwrap().is_some());
    assert!(node.registry.payload(&commitments[1]).unwrap().is_none());
    node.registry.verify().unwrap();
}

#[test]
fn a_lot_recall_reaches_implanted_patients_and_recalls_unused_devices() {
    let mut node = node();
    let serial = |s: &str| format!("https://id.gs1.org/01/09506000134352/10/LOT9/21/{s}");
    let events = [
        json!({"type": "ObjectEvent", "eventTime": "2026-03-01T10:00:00Z", "eventTimeZoneOffset": "+00:00",
               "epcList": [serial("S1"), serial("S2")], "action": "OBSERVE", "bizStep": "receiving"}),
        json!({"type": "ObjectEvent", "eventTime": "2026-03-02T10:00:00Z", "eventTimeZoneOffset": "+00:00",
               "epcList": [serial("S2")], "action": "OBSERVE", "bizStep": bizstep::IMPLANTING,
               "medid:patient": "PAT-7"}),
        json!({"type": "ObjectEvent", "eventTime": "2026-03-03T10:00:00Z", "eventTimeZoneOffset": "+00:00",
               "epcList": ["https://id.gs1.org/01/09506000134352/10/LOT9"], "action": "OBSERVE",
               "disposition": "recalled"}),
    ];
    for answer in node.capture(&events) {
        answer.unwrap();
    }
    let index = node.registry.index().clone();
    let lot = "/01/09506000134352/10/LOT9";
    let trace = trace::forward_from_lot(&index, lot).unwrap();
    assert_eq!(node.patients(&trace), BTreeSet::from(["PAT-7".to_owned()]));
    let s1 = "/01/09506000134352/10/LOT9/21/S1";
    let s2 = "/01/09506000134352/10/LOT9/21/S2";
    assert_eq!(
        trace::item_status(&index, s1).unwrap(),
        ItemStatus::Recalled
    );
    assert_eq!(trace::item_status(&index, s2).unwrap(), ItemStatus::Used);
    assert_eq!(trace.items[s2].status, ItemStatus::Used);
    // The report lists the unit never used too, recalled: what is left to withdraw.
    assert_eq!(trace.items[s1].status, ItemStatus::Recalled);
    assert_eq!(
        trace.items.keys().collect::<Vec<_>>(),
        [s1, s2],
        "the units of the lot, not the lot itself"
    );
    // Reverse from the patient finds the implant.
    let reverse = trace::reverse_from_patient(&index, "PAT-7").unwrap();
    assert!(reverse.items.contains_key(s2));
}

/// Every key and value of the index but its bookkeeping (`m/`, `w/`).
fn index_contents(registry: &Registry) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    registry
        .index()
        .walk_range(b"", &[0xff; 8], false, &mut |k, v| {
            if !k.starts_with(b"m/") && !k.starts_with(b"w/") {
                all.push((k.to_vec(), v.to_vec()));
            }
            true
        })
        .unwrap();
    all
}

#[test]
fn reindex_rebuilds_the_event_index_byte_for_byte_and_verify_sees_an_edit() {
    let mut node = node();
    let config = HistoryConfig {
        packs: 6,
        packs_per_load: 3,
        loads: 8,
        patients: 5,
        ..HistoryConfig::default()
    };
    for answer in node.capture(&cssd_history(&config)) {
        answer.unwrap();
    }
    let before = index_contents(&node.registry);
    assert!(before.iter().any(|(k, _)| k.starts_with(b"ev/")));
    let patient = config.patient(1);
    let commitments = node.registry.index().patient_commitments(&patient).unwrap();
    assert!(!commitments.is_empty());
    let pointer = node
        .registry
        .index()
        .payload_pointer(&commitments[0])
        .unwrap();
    assert!(pointer.is_some());
    let traced = trace::reverse_from_patient(node.registry.index(), &patient).unwrap();
    node.registry.reindex().unwrap();
    assert_eq!(index_contents(&node.registry), before);
    let index = node.registry.index().clone();
    assert_eq!(index.patient_commitments(&patient).unwrap(), commitments);
    assert_eq!(index.payload_pointer(&commitments[0]).unwrap(), pointer);
    assert_eq!(
        trace::reverse_from_patient(&index, &patient).unwrap(),
        traced
    );
    node.registry.verify().unwrap();
    // An edited event record, and an extra key, are both named by verify.
    let (key, mut value) = before
        .iter()
        .find(|(k, _)| k.starts_with(b"ev/"))
        .cloned()
        .unwrap();
    let last = value.len() - 1;
    value[last] ^= 1;
    index.raw_insert(&key, &value).unwrap();
    let err = node.registry.verify().unwrap_err();
    assert!(
        matches!(&err, medid_registry::RegistryError::IndexMismatch { key, .. } if key.starts_with("ev/")),
        "{err}"
    );
    node.registry.reindex().unwrap();
    node.registry.verify().unwrap();
    let mut extra = b"ee/hdl:86.1000.23/PKG-X\0".to_vec();
    extra.extend_from_slice(&[0; 17]);
    index.raw_insert(&extra, b"").unwrap();
    let err = node.registry.verify().unwrap_err();
    assert!(
        matches!(&err, medid_registry::RegistryError::IndexMismatch { .. }),
        "{err}"
    );
}

/// `ev` with its event time moved back by `ms` (and a fresh identity).
fn backdated(event: &Value, ms: i64) -> Value {
    let mut event = event.clone();
    let time = time::OffsetDateTime::parse(
        event["eventTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let earlier = time - time::Duration::milliseconds(ms);
    event["eventTime"] = earlier
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .into();
    event
}

/// A node that captured the first half of `config`'s history, and the whole history.
fn half_captured(config: &HistoryConfig) -> (Node, Vec<Value>) {
    let events = cssd_history(config);
    let mut node = node();
    for answer in node.capture(&events[..events.len() / 2]) {
        answer.unwrap();
    }
    (node, events)
}

#[test]
fn the_trace_mirror_answers_as_the_index_and_follows_commits() {
    let config = HistoryConfig {
        seed: 5,
        loads: 60,
        packs: 12,
        patients: 20,
        ..HistoryConfig::default()
    };
    let (node, events) = half_captured(&config);
    let (early, late) = events.split_at(events.len() / 2);
    // Loaded before the node takes writes, then kept in step by the commit hook.
    let index = node.registry.index().clone();
    let mirror = std::sync::Arc::new(TraceMirror::load(&index).unwrap());
    let loaded = mirror.entries();
    assert!(loaded > 0);
    // Every captured event's record is held, by ledger index.
    assert_eq!(mirror.records().0, early.len());
    let submissions: Vec<Submission> = late.iter().map(|e| node.submission(e)).collect();
    // Events recorded late: uses and loads of packs with times inside their older
    // cycles, so that their entries fall in the middle of the timelines.
    let late_records: Vec<Submission> = early
        .iter()
        .filter(|e| is_use(e) || e["bizStep"] == bizstep::STERILIZING)
        .step_by(7)
        .map(|e| {
            let mut e = backdated(e, 1);
            e["medid:procedure"] = "recorded late".into();
            if let Some(patient) = e.get("medid:patient") {
                e["medid:patient"] = format!("{}-LATE", patient.as_str().unwrap()).into();
            }
            node.submission(&e)
        })
        .collect();
    let registry = node.registry;
    let hook = std::sync::Arc::clone(&mirror);
    let (sequencer, thread) =
        medid_registry::Sequencer::start_with_hook(registry, move |changed| {
            hook.apply(changed).unwrap();
        })
        .unwrap();
    for chunk in submissions.chunks(97).chain(late_records.chunks(5)) {
        let answers: Vec<_> = chunk.iter().map(|s| sequencer.submit(s)).collect();
        for answer in answers {
            answer.blocking_recv().unwrap().unwrap();
        }
    }
    drop(sequencer);
    let registry = thread.join().unwrap();
    let index = registry.index().clone();
    // The mirror kept in step holds what one loaded afresh holds, and more than before.
    let fresh = TraceMirror::load(&index).unwrap();
    assert!(mirror.entries() > loaded);
    assert_eq!(mirror.records().0, events.len() + late_records.len());
    assert_eq!(mirror.records(), fresh.records());
    assert!(mirror.matches(&fresh), "the mirror kept in step differs");
    // And every trace answers the same through it as from the index alone.
    for load in 0..config.loads {
        let id = config.load(load);
        let from_index = trace::forward_from_load(&index, &id).unwrap();
        assert!(!from_index.loads.is_empty(), "{id}");
        assert_eq!(trace::forward_from_load(&*mirror, &id).unwrap(), from_index);
    }
    for patient in 0..config.patients {
        for id in [
            config.patient(patient),
            format!("{}-LATE", config.patient(patient)),
        ] {
            let from_index = trace::reverse_from_patient(&index, &id).unwrap();
            assert_eq!(
                trace::reverse_from_patient(&*mirror, &id).unwrap(),
                from_index,
                "reverse from {id}"
            );
        }
    }
    for sterilizer in 0..config.sterilizers {
        let id = config.sterilizer(sterilizer);
        assert_eq!(
            trace::recall_sterilizer(&*mirror, &id).unwrap(),
            trace::recall_sterilizer(&index, &id).unwrap()
        );
    }
    for pack in 0..config.packs {
        let id = config.pack(pack);
        assert_eq!(
            trace::item_status(&*mirror, &id).unwrap(),
            trace::item_status(&index, &id).unwrap()
        );
        assert_eq!(
            trace::trace_from(&*mirror, &id, false, None, None).unwrap(),
            trace::trace_from(&index, &id, false, None, None).unwrap()
        );
    }
}

#[test]
fn traces_through_the_mirror_match_brute_force() {
    let config = HistoryConfig {
        seed: 9,
        loads: 50,
        packs: 17,
        patients: 25,
        ..HistoryConfig::default()
    };
    let events = cssd_history(&config);
    let (early, late) = events.split_at(events.len() / 2);
    let mut node = node();
    for answer in node.capture(early) {
        answer.unwrap();
    }
    // Patient links held in memory as `serve` holds them: read from the tree for the
    // first half of the history, kept in step for the second.
    let held = node.registry.index().hold_patient_links().unwrap();
    assert_eq!(held, early.iter().filter(|e| is_use(e)).count());
    for answer in node.capture(late) {
        answer.unwrap();
    }
    let history = facts(&events);
    let mirror = TraceMirror::load(node.registry.index()).unwrap();
    assert!(mirror.entries() > 0);
    assert_traces_match_oracle(&mirror, &node, &history, &config, "mirror");
}

#[test]
fn an_event_signed_before_the_node_gave_it_its_id_passes_verify_and_reindex() {
    let mut node = node();
    // A client that leaves `eventID` to the node signs the event without it.
    let event = json!({
        "type": "AggregationEvent", "eventTime": "2026-03-01T10:00:00Z",
        "eventTimeZoneOffset": "+00:00", "parentID": "hdl:86.1000.23/LOAD-9",
        "childEPCs": ["hdl:86.1000.23/PKG-9"], "action": "ADD",
        "bizStep": bizstep::STERILIZING, "medid:sterilizer": "hdl:86.1000.23/ST-9"
    });
    let mut signed = medid_did::add_proof(&event, &node.cssd, &medid_did::ProofOptions::now())
        .unwrap()
        .as_object()
        .unwrap()
        .clone();
    let proof = signed.remove("proof").unwrap();
    signed.insert("medid:proof".into(), proof);
    let answer = node
        .registry
        .submit(&[Submission {
            operation: Value::Object(signed),
            restricted: Vec::new(),
        }])
        .unwrap()
        .remove(0)
        .unwrap();
    let (_, logged) = node
        .registry
        .log()
        .entries(answer.leaf_index..answer.leaf_index + 1)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let logged: Value = serde_json::from_slice(&logged).unwrap();
    assert!(
        logged["eventID"]
            .as_str()
            .unwrap()
            .starts_with("ni:///sha-256;")
    );
    // The logged form carries the `eventID` the signature does not cover.
    node.registry.verify().unwrap();
    node.registry.reindex().unwrap();
    node.registry.verify().unwrap();
}

#[test]
fn a_snapshot_is_read_back_only_when_it_reflects_the_index() {
    let config = HistoryConfig {
        seed: 3,
        loads: 30,
        packs: 10,
        patients: 12,
        ..HistoryConfig::default()
    };
    let (mut node, events) = half_captured(&config);
    let (early, late) = events.split_at(events.len() / 2);
    let snapshot = node.path.join("trace-timelines");
    let loaded = TraceMirror::load(node.registry.index()).unwrap();
    assert!(loaded.entries() > 0 && loaded.records().0 == early.len());

    // Saved and read back: the same timelines and records, and the file is gone.
    loaded.save(&snapshot).unwrap();
    let (read, source) = TraceMirror::open(node.registry.index(), &snapshot).unwrap();
    assert_eq!(source, Source::Snapshot);
    assert!(read.matches(&loaded));
    assert_eq!(read.records(), loaded.records());
    assert!(!snapshot.exists());
    let (_, source) = TraceMirror::open(node.registry.index(), &snapshot).unwrap();
    assert_eq!(source, Source::Index("no snapshot".into()));
    for load in 0..config.loads {
        let id = config.load(load);
        assert_eq!(
            trace::forward_from_load(&read, &id).unwrap(),
            trace::forward_from_load(node.registry.index(), &id).unwrap()
        );
    }

    // A snapshot older than the index is left for the index.
    loaded.save(&snapshot).unwrap();
    for answer in node.capture(late) {
        answer.unwrap();
    }
    let (read, source) = TraceMirror::open(node.registry.index(), &snapshot).unwrap();
    assert!(
        matches!(&source, Source::Index(why) if why.contains("ledger size")),
        "{source:?}"
    );
    let fresh = TraceMirror::load(node.registry.index()).unwrap();
    assert!(read.matches(&fresh) && !read.matches(&loaded));
    assert_eq!(read.records().0, events.len());

    // A damaged one (any byte flipped, or cut short) too.
    fresh.save(&snapshot).unwrap();
    let good = std::fs::read(&snapshot).unwrap();
    for at in [0, 30, good.len() / 2, good.len() - 40, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&snapshot, &bad).unwrap();
        let (read, source) = TraceMirror::open(node.registry.index(), &snapshot).unwrap();
        assert!(
            matches!(&source, Source::Index(why) if why.contains("does not read back")),
            "byte {at}: {source:?}"
        );
        assert!(read.matches(&fresh));
    }
    std::fs::write(&snapshot, &good[..good.len() - 1]).unwrap();
    let (_, source) = TraceMirror::open(node.registry.index(), &snapshot).unwrap();
    assert!(matches!(source, Source::Index(_)), "{source:?}");
    std::fs::write(&snapshot, &good).unwrap();
    let (_, source) = TraceMirror::open(node.registry.index(), &snapshot).unwrap();
    assert_eq!(source, Source::Snapshot);
}
