//! EPCIS events: GS1's example events validate against the vendored schemas, and the
//! CBV 2.0 event hash IDs match the values GS1's reference implementation gives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::collections::BTreeMap;
use std::path::Path;

use medid_registry::event::hash::{collect_namespaces, event_hash_id, pre_hash};
use medid_registry::event::validate_event;
use serde_json::{Value, json};

fn check(event: Value, context: Value, expected_pre_hash: &str, expected_hash: &str) {
    let mut namespaces = BTreeMap::new();
    collect_namespaces(&context, &mut namespaces);
    let map = event.as_object().unwrap();
    assert_eq!(pre_hash(map, &namespaces), expected_pre_hash);
    assert_eq!(event_hash_id(map, &namespaces), expected_hash);
    validate_event(&event).unwrap();
}

#[test]
fn object_event_with_user_extensions() {
    check(
        json!({
            "type": "ObjectEvent",
            "eventTime": "2020-03-04T11:00:30.000+01:00",
            "eventTimeZoneOffset": "+01:00",
            "recordTime": "2020-03-04T11:00:30.999+01:00",
            "epcList": [
                "urn:epc:id:sscc:4012345.0000000333",
                "urn:epc:id:sscc:4012345.0000000111",
                "urn:epc:id:sscc:4012345.0000000222"
            ],
            "action": "OBSERVE",
            "bizStep": "departing",
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00011.987"},
            "example:myField1": {"example:mySubField1": "2", "example:mySubField2": "5"},
            "example:myField2": "0",
            "example:myField3": {"example:mySubField3": ["3", "1"]}
        }),
        json!([{"example": "https://ns.example.com/epcis/"}]),
        "eventType=ObjectEventeventTime=2020-03-04T10:00:30.000ZeventTimeZoneOffset=+01:00\
         epcListepc=https://id.gs1.org/00/040123450000001112epc=https://id.gs1.org/00/040123450000002225\
         epc=https://id.gs1.org/00/040123450000003338action=OBSERVE\
         bizStep=https://ref.gs1.org/cbv/BizStep-departing\
         readPointid=https://id.gs1.org/414/4012345000115/254/987\
         {https://ns.example.com/epcis/}myField1{https://ns.example.com/epcis/}mySubField1=2\
         {https://ns.example.com/epcis/}mySubField2=5{https://ns.example.com/epcis/}myField2=0\
         {https://ns.example.com/epcis/}myField3{https://ns.example.com/epcis/}mySubField3=1\
         {https://ns.example.com/epcis/}mySubField3=3",
        "ni:///sha-256;6ae96341e0acc6d7a261364751f60e68278a81cdf51da0abb6b4e617014e39d7?ver=CBV2.0",
    );
}

#[test]
fn object_event_with_sensor_data() {
    check(
        json!({
            "type": "ObjectEvent",
            "eventTime": "2020-04-01T15:00:00+01:00",
            "eventTimeZoneOffset": "+01:00",
            "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"],
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00005.0"},
            "sensorElementList": [{
                "sensorMetadata": {
                    "deviceID": "urn:epc:id:giai:4000001.111",
                    "deviceMetadata": "https://id.gs1.org/8004/4000001111"
                },
                "sensorReport": [
                    {"type": "Temperature", "value": 26, "sDev": 0.1, "uom": "CEL"},
                    {"type": "AbsoluteHumidity", "value": 12.1, "uom": "A93"},
                    {"type": "Dimensionless",
                     "microorganism": "https://www.ncbi.nlm.nih.gov/taxonomy/1126011",
                     "value": 0.05, "uom": "C35"},
                    {"type": "Dimensionless",
                     "chemicalSubstance": "https://identifiers.org/inchikey:CZMRCDWAGMRECN-UGDNZRGBSA-N",
                     "value": 0.18, "uom": "C35"}
                ]
            }]
        }),
        json!([{"gs1": "https://gs1.org/voc/"}]),
        "eventType=ObjectEventeventTime=2020-04-01T14:00:00.000ZeventTimeZoneOffset=+01:00\
         epcListepc=https://id.gs1.org/01/04012345111118/21/9876action=OBSERVE\
         bizStep=https://ref.gs1.org/cbv/BizStep-inspecting\
         readPointid=https://id.gs1.org/414/4012345000054\
         sensorElementListsensorElementsensorMetadatadeviceID=https://id.gs1.org/8004/4000001111\
         deviceMetadata=https://id.gs1.org/8004/4000001111\
         sensorReporttype=https://gs1.org/voc/AbsoluteHumidityvalue=12.1uom=A93\
         sensorReporttype=https://gs1.org/voc/DimensionlesschemicalSubstance=https://identifiers.org/inchikey:CZMRCDWAGMRECN-UGDNZRGBSA-Nvalue=0.18uom=C35\
         sensorReporttype=https://gs1.org/voc/Dimensionlessmicroorganism=https://www.ncbi.nlm.nih.gov/taxonomy/1126011value=0.05uom=C35\
         sensorReporttype=https://gs1.org/voc/Temperaturevalue=26sDev=0.1uom=CEL",
        "ni:///sha-256;49b13037c36e84ad9307c531671b00e901318c3957e4b1151f816ec49eb668da?ver=CBV2.0",
    );
}

#[test]
fn object_event_with_transactions_sources_and_destinations() {
    check(
        json!({
            "type": "ObjectEvent",
            "eventTime": "2020-03-04T11:00:30+01:00",
            "eventTimeZoneOffset": "+01:00",
            "epcList": ["urn:epc:id:sgtin:0614141.011111.987"],
            "action": "OBSERVE",
            "bizStep": "departing",
            "disposition": "in_transit",
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00011.0", "example:myField1": "AB-12"},
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epc:id:gdti:4012345.11111.123"}],
            "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:4012345.00000"}],
            "destinationList": [{"type": "owning_party", "destination": "urn:epc:id:pgln:0614141.00000"}],
            "example:userExt": "CD-34"
        }),
        json!([{"example": "https://ns.example.com/epcis/"}]),
        "eventType=ObjectEventeventTime=2020-03-04T10:00:30.000ZeventTimeZoneOffset=+01:00\
         epcListepc=https://id.gs1.org/01/00614141111114/21/987action=OBSERVE\
         bizStep=https://ref.gs1.org/cbv/BizStep-departing\
         disposition=https://ref.gs1.org/cbv/Disp-in_transit\
         readPointid=https://id.gs1.org/414/4012345000115{https://ns.example.com/epcis/}myField1=AB-12\
         bizTransactionListtype=https://ref.gs1.org/cbv/BTT-pobizTransaction=https://id.gs1.org/253/4012345111118123\
         destinationListtype=https://ref.gs1.org/cbv/SDT-owning_partydestination=https://id.gs1.org/417/0614141000005\
         sourceListtype=https://ref.gs1.org/cbv/SDT-owning_partysource=https://id.gs1.org/417/4012345000009\
         {https://ns.example.com/epcis/}userExt=CD-34",
        "ni:///sha-256;a13cbe6c8bb6df3710b3edaeff760a1365ec8fd69ca1f4d7e0c10eb5189a883a?ver=CBV2.0",
    );
}

#[test]
fn the_hash_ignores_event_id_record_time_and_the_proof() {
    let base = json!({
        "type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"], "action": "OBSERVE"
    });
    let mut other = base.clone();
    other["eventID"] = json!("urn:uuid:1");
    other["recordTime"] = json!("2024-02-01T00:00:00Z");
    other["medid:proof"] = json!({"type": "DataIntegrityProof"});
    let none = BTreeMap::new();
    assert_eq!(
        event_hash_id(base.as_object().unwrap(), &none),
        event_hash_id(other.as_object().unwrap(), &none)
    );
    other["action"] = json!("ADD");
    assert_ne!(
        event_hash_id(base.as_object().unwrap(), &none),
        event_hash_id(other.as_object().unwrap(), &none)
    );
}

/// Every event of GS1's EPCIS 2.0 JSON examples validates, and hashes to a CBV 2.0 ID.
#[test]
fn gs1_example_events_validate_and_hash() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/epcis/JSON");
    let mut events = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let document: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut namespaces = BTreeMap::new();
        collect_namespaces(&document["@context"], &mut namespaces);
        for event in document["epcisBody"]["eventList"].as_array().unwrap() {
            validate_event(event).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let id = event_hash_id(event.as_object().unwrap(), &namespaces);
            assert!(id.starts_with("ni:///sha-256;") && id.ends_with("?ver=CBV2.0"));
            events += 1;
        }
    }
    assert!(events >= 6, "{events} events in {}", dir.display());
}

#[test]
fn schema_errors_name_the_pointer() {
    let event = json!({
        "type": "ObjectEvent", "eventTime": "not a time", "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"], "action": "OBSERVE"
    });
    let error = validate_event(&event).unwrap_err();
    assert_eq!(error.pointer, "/eventTime", "{error}");
    let event = json!({
        "type": "ObjectEvent", "eventTime": "2024-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"], "action": "SHOUT"
    });
    assert_eq!(validate_event(&event).unwrap_err().pointer, "/action");
}
