//! Arbitrary bytes as a DNS query to the pure request handler, over an in-memory zone:
//! never a panic; every response parses back, is a response, carries the query's ID and
//! fits the transport (UDP: 512 bytes without EDNS, 1232 with).
#![no_main]

use std::sync::LazyLock;

use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;
use medid_registry::id::{Identifier, Namespace};
use medid_registry::op::{ReadPermission, RecordValue};
use medid_registry::{IdentifierRecord, StoredValue};
use medid_resolver::dns::{MemoryIndex, Transport, Zone, ZoneConfig, respond};

fn value(index: u32, kind: &str, data: &str) -> StoredValue {
    StoredValue {
        value: RecordValue {
            index,
            kind: kind.into(),
            data: Some(data.into()),
            commitment: None,
            ttl: 300,
            read: ReadPermission::Public,
        },
        timestamp: "2026-01-01T00:00:00Z".into(),
    }
}

fn record(id: &str, values: Vec<StoredValue>) -> IdentifierRecord {
    IdentifierRecord {
        id: Identifier::parse(id)
            .expect("a valid identifier")
            .to_string(),
        values,
        controllers: None,
        version: 1,
        created: "2026-01-01T00:00:00Z".into(),
        updated: "2026-01-01T00:00:00Z".into(),
        log_index: 1,
    }
}

static ZONE: LazyLock<(Zone, MemoryIndex)> = LazyLock::new(|| {
    let mut config = ZoneConfig::new("medid.example");
    config.ns_addresses = vec!["192.0.2.53".parse().expect("an address")];
    config.resolution_url = Some("https://node.example/api/handles/{id}".into());
    let zone = Zone::new(config).expect("a valid zone");
    let mut index = MemoryIndex::new();
    for prefix in ["hdl:86.1000.23", "oid:1.2.156", "gs1:950600"] {
        index.insert_prefix(&Namespace::from_key(prefix).expect("a namespace key"));
    }
    let many: Vec<StoredValue> = (1..=40)
        .map(|i| {
            value(
                i,
                "DESC",
                &format!("value {i} {}", "x".repeat(i as usize * 3)),
            )
        })
        .collect();
    for (id, values) in [
        (
            "86.1000.23/pkg-1",
            vec![value(1, "URL", "https://a.example/1")],
        ),
        (
            "86.1000.23/PKG-1",
            vec![value(1, "DESC", &"long ".repeat(120))],
        ),
        ("86.1000.23/many", many),
        (
            "urn:oid:1.2.156.1",
            vec![value(1, "URL", "https://o.example/!\\")],
        ),
        (
            "/01/09506000134352/10/LOT7",
            vec![value(1, "URL", "https://g.example")],
        ),
    ] {
        index
            .insert_identifier(record(id, values))
            .expect("a valid record");
    }
    (zone, index)
});

fuzz_target!(|data: &[u8]| {
    let (zone, index) = &*ZONE;
    for transport in [Transport::UDP, Transport::Tcp] {
        let Some(response) = respond(data, zone, index, transport) else {
            continue;
        };
        let message = Message::from_vec(&response).expect("every response parses back");
        assert_eq!(message.metadata.message_type, MessageType::Response);
        assert_eq!(
            response.get(..2),
            data.get(..2),
            "the response has the query's ID"
        );
        if transport == Transport::UDP {
            let limit = if message.edns.is_some() { 1232 } else { 512 };
            assert!(response.len() <= limit, "{} bytes over UDP", response.len());
        }
    }
});
