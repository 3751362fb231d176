//! The in-memory mirror of the index answers every DNS question exactly as the sled
//! index does: after loading, and after each write, deletion and new name applied to
//! it as the commit hook applies them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod dns_support;

use dns_support::{TestNode, ZONE, fqdn, query};
use hickory_proto::rr::RecordType;
use medid_resolver::IndexMirror;
use medid_resolver::dns::{Transport, Zone, ZoneConfig, ZoneIndex, respond};
use serde_json::json;

/// Every name the index holds, every name above them, and names that do not exist.
fn names(index: &dyn ZoneIndex) -> Vec<String> {
    let mut all = vec![String::new(), "nothing-here".to_owned(), "x.hdl".to_owned()];
    for item in index.names() {
        let (name, _) = item.unwrap();
        let mut at = name.as_str();
        loop {
            if !all.iter().any(|n| n == at) {
                all.push(at.to_owned());
            }
            match at.split_once('.') {
                Some((_, parent)) => at = parent,
                None => break,
            }
        }
        all.push(format!("missing.{name}"));
    }
    all
}

/// The mirror and the index give the same bytes for every name and type.
fn check_same(zone: &Zone, node: &TestNode, mirror: &IndexMirror) {
    let index = node.registry.index();
    for name in names(index) {
        for qtype in [
            RecordType::TXT,
            RecordType::Unknown(256),
            RecordType::NAPTR,
            RecordType::ANY,
            RecordType::A,
            RecordType::SOA,
            RecordType::NS,
        ] {
            let packet = query(7, &fqdn(&name), qtype, Some(1232));
            let from_index = respond(&packet, zone, index, Transport::Tcp);
            let from_mirror = respond(&packet, zone, mirror, Transport::Tcp);
            assert_eq!(from_mirror, from_index, "{name} {qtype}");
        }
    }
}

#[test]
fn the_mirror_answers_as_the_index_after_every_write() {
    let mut node = TestNode::new();
    let zone = Zone::new(ZoneConfig::new(ZONE)).unwrap();
    let mirror = IndexMirror::load(node.registry.index()).unwrap();
    check_same(&zone, &node, &mirror);

    let cssd = node.cssd.did().to_string();
    let writes = [
        (
            "identifier.register",
            json!({"id": "86.1000.23/fresh", "values": [{"index": 1, "type": "URL", "data": "https://new.example/1"}]}),
        ),
        (
            "identifier.update",
            json!({"id": "86.1000.23/fresh", "version": 1, "set": [{"index": 1, "type": "URL", "data": "https://new.example/2"}]}),
        ),
        (
            "identifier.register",
            json!({"id": "86.1000.23/other", "values": [{"index": 1, "type": "DESC", "data": "other"}]}),
        ),
        // A prefix below a name that did not exist: an empty non-terminal appears.
        (
            "prefix.delegate",
            json!({"prefix": "86.1000.23.new.x", "controllers": [cssd]}),
        ),
        (
            "identifier.delete",
            json!({"id": "86.1000.23/fresh", "version": 2}),
        ),
    ];
    for (op, fields) in writes {
        let changed = node.write_reporting(op, fields);
        mirror.apply(&changed).unwrap();
        check_same(&zone, &node, &mirror);
    }
    // A mirror loaded now holds what the one kept up to date holds.
    check_same(
        &zone,
        &node,
        &IndexMirror::load(node.registry.index()).unwrap(),
    );
}
