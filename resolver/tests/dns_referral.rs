//! Referrals and delegated sub-zones in the pure DNS handler (`dns::respond`): a parent
//! refers names under a prefix delegated to another node (NS and glue, AA off), a child
//! whose apex is the delegated name answers there and refuses the rest; the walker's
//! `classify_dns` reads both.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod dns_support;

use dns_support::{query, render};
use hickory_proto::rr::{Name, RecordType};
use medid_registry::delegation::NodeDelegation;
use medid_registry::id::Namespace;
use medid_resolver::dns::{MemoryIndex, Transport, Zone, ZoneConfig, respond};
use medid_resolver::hierarchy::{DnsStep, classify_dns};

fn zone(apex: &str) -> Zone {
    let mut config = ZoneConfig::new("medid.test");
    config.ns_addresses = vec!["192.0.2.2".parse().unwrap()];
    config.apex = apex.into();
    Zone::new(config).unwrap()
}

fn parent() -> MemoryIndex {
    let mut index = MemoryIndex::new();
    index.insert_prefix(&Namespace::from_key("hdl:86").unwrap());
    index.insert_delegation(
        &Namespace::from_key("hdl:86.1000").unwrap(),
        NodeDelegation {
            did: medid_did::KeyPair::generate().did(),
            name: "industry.medid.test".into(),
            dns: vec![
                "192.0.2.3:53".parse().unwrap(),
                "[2001:db8::3]:53".parse().unwrap(),
            ],
            http: "http://192.0.2.3:8080".into(),
        },
    );
    index
}

fn check(zone: &Zone, index: &MemoryIndex, name: &str, qtype: RecordType, expected: &str) {
    let response = respond(&query(7, name, qtype, None), zone, index, Transport::UDP).unwrap();
    assert_eq!(render(&response), expected, "{name} {qtype}");
}

#[test]
fn a_parent_refers_names_under_a_delegated_prefix() {
    let (zone, index) = (zone(""), parent());
    let referral = "NoError rd\n\
        ? pump-7.23.1000.86.hdl.medid.test. IN TXT\n\
        ns 1000.86.hdl.medid.test. 3600 NS h--ns.1000.86.hdl.medid.test.\n\
        ar h--ns.1000.86.hdl.medid.test. 3600 A 192.0.2.3\n\
        ar h--ns.1000.86.hdl.medid.test. 3600 AAAA 2001:db8::3\n";
    check(
        &zone,
        &index,
        "pump-7.23.1000.86.hdl.medid.test.",
        RecordType::TXT,
        referral,
    );
    // The cut itself is referred too; names above it are the parent's.
    let response = respond(
        &query(7, "1000.86.hdl.medid.test.", RecordType::A, None),
        &zone,
        &index,
        Transport::UDP,
    )
    .unwrap();
    assert!(render(&response).contains("ns 1000.86.hdl.medid.test. 3600 NS"));
    let above = respond(
        &query(7, "86.hdl.medid.test.", RecordType::TXT, None),
        &zone,
        &index,
        Transport::UDP,
    )
    .unwrap();
    assert!(
        render(&above).starts_with("NoError aa"),
        "{}",
        render(&above)
    );

    let name = Name::from_ascii("pump-7.23.1000.86.hdl.medid.test.").unwrap();
    let response = respond(
        &query(
            7,
            "pump-7.23.1000.86.hdl.medid.test.",
            RecordType::TXT,
            None,
        ),
        &zone,
        &index,
        Transport::UDP,
    )
    .unwrap();
    match classify_dns(&response, 7, &name, "").unwrap() {
        DnsStep::Referral { cut, servers, ttl } => {
            assert_eq!(cut, "1000.86.hdl.medid.test");
            assert_eq!(servers.len(), 2);
            assert_eq!(ttl, 3600);
        }
        other => panic!("{other:?}"),
    }
    // A referral that does not lead below the node asked is lame.
    assert!(classify_dns(&response, 7, &name, "23.1000.86.hdl.medid.test").is_err());
}

#[test]
fn a_child_answers_for_its_sub_zone_only() {
    let zone = zone("1000.86.hdl");
    let mut index = MemoryIndex::new();
    index.insert_prefix(&Namespace::from_key("hdl:86.1000").unwrap());
    check(
        &zone,
        &index,
        "1000.86.hdl.medid.test.",
        RecordType::NS,
        "NoError aa rd\n\
         ? 1000.86.hdl.medid.test. IN NS\n\
         an 1000.86.hdl.medid.test. 3600 NS h--ns.1000.86.hdl.medid.test.\n\
         ar h--ns.1000.86.hdl.medid.test. 3600 A 192.0.2.2\n",
    );
    check(
        &zone,
        &index,
        "h--ns.1000.86.hdl.medid.test.",
        RecordType::A,
        "NoError aa rd\n\
         ? h--ns.1000.86.hdl.medid.test. IN A\n\
         an h--ns.1000.86.hdl.medid.test. 3600 A 192.0.2.2\n",
    );
    let missing = respond(
        &query(7, "none.1000.86.hdl.medid.test.", RecordType::TXT, None),
        &zone,
        &index,
        Transport::UDP,
    )
    .unwrap();
    let text = render(&missing);
    assert!(text.starts_with("NXDomain aa"), "{text}");
    assert!(
        text.contains("ns 1000.86.hdl.medid.test. 300 SOA"),
        "the SOA is the sub-zone's: {text}"
    );
    for outside in [
        "medid.test.",
        "86.hdl.medid.test.",
        "x.2000.86.hdl.medid.test.",
    ] {
        let response = respond(
            &query(7, outside, RecordType::SOA, None),
            &zone,
            &index,
            Transport::UDP,
        )
        .unwrap();
        assert!(
            render(&response).starts_with("Refused"),
            "{outside}: {}",
            render(&response)
        );
    }
}
