//! Arbitrary bytes as a captured EPCIS event: never a panic. Whatever JSON object comes
//! in is validated, read and hashed; an event that checks (schema, profile, proof) reads
//! back from its ledger entry to the same hash ID and eventID, and its pre-hash string
//! does not depend on the order of its members.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use medid_registry::event::hash::{event_hash_id, pre_hash};
use medid_registry::event::{EventFacts, SignedEvent, validate_event};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = validate_event(&value);
    let Some(map) = value.as_object() else {
        return;
    };
    let _ = EventFacts::read(map);
    let namespaces = BTreeMap::new();
    let id = event_hash_id(map, &namespaces);
    let reversed: serde_json::Map<String, Value> =
        map.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(pre_hash(map, &namespaces), pre_hash(&reversed, &namespaces));
    if let Ok(event) = SignedEvent::from_json(&value) {
        assert_eq!(event.hash_id, id);
        let again = SignedEvent::from_entry(&event.entry).expect("a logged event reads back");
        assert_eq!((again.hash_id, again.event_id), (event.hash_id, event.event_id));
    }
});
