//! The DNS request handler without sockets: golden answers of the pure core
//! (`dns::respond`) over an in-memory index, the cached `Responder` (patched hits,
//! invalidation), malformed messages, and the zone file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod dns_support;

use std::sync::Arc;

use dns_support::{query, render};
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::RecordType;
use medid_registry::id::{Identifier, Namespace};
use medid_registry::op::{ReadPermission, RecordValue};
use medid_registry::{IdentifierRecord, StoredValue};
use medid_resolver::AnswerCache;
use medid_resolver::dns::{
    MemoryIndex, Responder, Transport, Zone, ZoneConfig, ZoneIndex, export_zone, respond,
};

fn stored(index: u32, kind: &str, data: &str, ttl: u32) -> StoredValue {
    StoredValue {
        value: RecordValue {
            index,
            kind: kind.into(),
            data: Some(data.into()),
            commitment: None,
            ttl,
            read: ReadPermission::Public,
        },
        timestamp: "2026-01-01T00:00:00Z".into(),
    }
}

fn record(id: &str, values: Vec<StoredValue>) -> IdentifierRecord {
    IdentifierRecord {
        id: Identifier::parse(id).unwrap().to_string(),
        values,
        controllers: None,
        version: 1,
        created: "2026-01-01T00:00:00Z".into(),
        updated: "2026-01-01T00:00:00Z".into(),
        log_index: 1,
    }
}

fn zone() -> Zone {
    let mut config = ZoneConfig::new("Medid.Example.");
    config.ns_addresses = vec![
        "192.0.2.53".parse().unwrap(),
        "2001:db8::53".parse().unwrap(),
    ];
    config.resolution_url = Some("https://node.example/api/handles/{id}".into());
    Zone::new(config).unwrap()
}

fn index() -> MemoryIndex {
    let mut index = MemoryIndex::new();
    for prefix in ["hdl:86.1000.23", "oid:1.2.156.112604"] {
        index.insert_prefix(&Namespace::from_key(prefix).unwrap());
    }
    index
        .insert_identifier(record(
            "86.1000.23/pkg-1",
            vec![
                stored(1, "URL", "https://cssd.example/packs/pkg-1", 600),
                stored(2, "DESC", "tray 1", 300),
            ],
        ))
        .unwrap();
    let mut secret = stored(3, "PATIENT", "", 60);
    secret.value.data = None;
    secret.value.commitment = Some(format!("sha256:{}", "0".repeat(64)));
    secret.value.read = ReadPermission::Restricted(Vec::new());
    index
        .insert_identifier(record(
            "86.1000.23/PKG-1",
            vec![stored(1, "DESC", "upper case", 120), secret],
        ))
        .unwrap();
    index
        .insert_identifier(record(
            "urn:oid:1.2.156.112604.1",
            vec![stored(1, "URL", "https://oid.example/1", 900)],
        ))
        .unwrap();
    index
}

/// The pure core's answer to a question, rendered.
fn ask(index: &MemoryIndex, name: &str, qtype: RecordType, edns: Option<u16>) -> String {
    let response = respond(&query(7, name, qtype, edns), &zone(), index, Transport::UDP).unwrap();
    render(&response)
}

#[test]
fn golden_answers() {
    let index = index();
    let check = |name: &str, qtype: RecordType, expected: &str| {
        assert_eq!(ask(&index, name, qtype, None), expected, "{name} {qtype}");
    };
    check(
        "pkg-1.23.1000.86.hdl.medid.example.",
        RecordType::TXT,
        "NoError aa rd\n\
         ? pkg-1.23.1000.86.hdl.medid.example. IN TXT\n\
         an pkg-1.23.1000.86.hdl.medid.example. 300 TXT \"1 URL https://cssd.example/packs/pkg-1\"\n\
         an pkg-1.23.1000.86.hdl.medid.example. 300 TXT \"2 DESC tray 1\"\n",
    );
    check(
        "pkg-1.23.1000.86.hdl.medid.example.",
        RecordType::Unknown(256),
        "NoError aa rd\n\
         ? pkg-1.23.1000.86.hdl.medid.example. IN URI\n\
         an pkg-1.23.1000.86.hdl.medid.example. 600 URI 10 1 \"https://cssd.example/packs/pkg-1\"\n",
    );
    // The restricted value of PKG-1 is absent; its name is a hashed label.
    check(
        "h--o5tpsfbjaoqt7dlkbvgfeoq37y.23.1000.86.hdl.medid.example.",
        RecordType::TXT,
        "NoError aa rd\n\
         ? h--o5tpsfbjaoqt7dlkbvgfeoq37y.23.1000.86.hdl.medid.example. IN TXT\n\
         an h--o5tpsfbjaoqt7dlkbvgfeoq37y.23.1000.86.hdl.medid.example. 120 TXT \"1 DESC upper case\"\n",
    );
    check(
        "1.112604.156.2.1.oid.medid.example.",
        RecordType::NAPTR,
        "NoError aa rd\n\
         ? 1.112604.156.2.1.oid.medid.example. IN NAPTR\n\
         an 1.112604.156.2.1.oid.medid.example. 900 NAPTR 100 1 \"U\" \"ORS+UINF\" \"!^.*$!https://oid.example/1!\" .\n\
         an 1.112604.156.2.1.oid.medid.example. 900 NAPTR 100 65535 \"U\" \"ORS+UINF\" \"!^.*$!https://node.example/api/handles/urn:oid:1.2.156.112604.1!\" .\n",
    );
    check(
        "112604.156.2.1.oid.medid.example.",
        RecordType::NAPTR,
        "NoError aa rd\n\
         ? 112604.156.2.1.oid.medid.example. IN NAPTR\n\
         an 112604.156.2.1.oid.medid.example. 3600 NAPTR 100 65535 \"U\" \"ORS+UINF\" \"!^.*$!https://node.example/api/handles/urn:oid:1.2.156.112604!\" .\n",
    );
    check(
        "23.1000.86.hdl.medid.example.",
        RecordType::TXT,
        "NoError aa rd\n\
         ? 23.1000.86.hdl.medid.example. IN TXT\n\
         an 23.1000.86.hdl.medid.example. 3600 TXT \"prefix hdl:86.1000.23\"\n",
    );
    let serial = index.serial().unwrap();
    let soa = format!(
        "medid.example. 300 SOA ns.medid.example. hostmaster.medid.example. {serial} 3600 600 604800 300"
    );
    check(
        "medid.example.",
        RecordType::SOA,
        &format!(
            "NoError aa rd\n? medid.example. IN SOA\nan {}\n",
            soa.replace(" 300 SOA", " 3600 SOA")
        ),
    );
    check(
        "MEDID.example.",
        RecordType::NS,
        "NoError aa rd\n\
         ? MEDID.example. IN NS\n\
         an MEDID.example. 3600 NS ns.medid.example.\n\
         ar ns.medid.example. 3600 A 192.0.2.53\n\
         ar ns.medid.example. 3600 AAAA 2001:db8::53\n",
    );
    check(
        "ns.medid.example.",
        RecordType::A,
        "NoError aa rd\n? ns.medid.example. IN A\nan ns.medid.example. 3600 A 192.0.2.53\n",
    );
    // NXDOMAIN and NODATA carry the SOA, with the negative TTL.
    check(
        "nope.23.1000.86.hdl.medid.example.",
        RecordType::TXT,
        &format!("NXDomain aa rd\n? nope.23.1000.86.hdl.medid.example. IN TXT\nns {soa}\n"),
    );
    check(
        "pkg-1.23.1000.86.hdl.medid.example.",
        RecordType::A,
        &format!("NoError aa rd\n? pkg-1.23.1000.86.hdl.medid.example. IN A\nns {soa}\n"),
    );
    for empty_non_terminal in [
        "1000.86.hdl.medid.example.",
        "hdl.medid.example.",
        "oid.medid.example.",
    ] {
        check(
            empty_non_terminal,
            RecordType::TXT,
            &format!("NoError aa rd\n? {empty_non_terminal} IN TXT\nns {soa}\n"),
        );
    }
    check(
        "gs1.medid.example.",
        RecordType::TXT,
        &format!("NXDomain aa rd\n? gs1.medid.example. IN TXT\nns {soa}\n"),
    );
    check(
        "a_b.hdl.medid.example.",
        RecordType::TXT,
        &format!("NXDomain aa rd\n? a_b.hdl.medid.example. IN TXT\nns {soa}\n"),
    );
    check(
        "example.org.",
        RecordType::TXT,
        "Refused rd\n? example.org. IN TXT\n",
    );
    check(
        "medid.example.",
        RecordType::AXFR,
        "Refused rd\n? medid.example. IN AXFR\n",
    );
}

#[test]
fn edns_is_answered_with_edns() {
    let index = index();
    let text = ask(
        &index,
        "pkg-1.23.1000.86.hdl.medid.example.",
        RecordType::TXT,
        Some(4096),
    );
    assert!(text.starts_with("NoError aa rd edns=1232\n"), "{text}");
    let mut bad_version = Message::from_vec(&query(
        9,
        "pkg-1.23.1000.86.hdl.medid.example.",
        RecordType::TXT,
        Some(1232),
    ))
    .unwrap();
    bad_version.edns.as_mut().unwrap().set_version(1);
    let response = respond(
        &bad_version.to_vec().unwrap(),
        &zone(),
        &index,
        Transport::UDP,
    )
    .unwrap();
    let message = Message::from_vec(&response).unwrap();
    // BADVERS is 16 (hickory-proto reads 16 as its alias BADSIG).
    assert_eq!(u16::from(message.metadata.response_code), 16);
    assert!(message.answers.is_empty());
}

#[test]
fn malformed_messages_get_formerr_notimp_or_nothing() {
    let index = index();
    let zone = zone();
    let valid = query(
        0x4242,
        "pkg-1.23.1000.86.hdl.medid.example.",
        RecordType::TXT,
        None,
    );
    let code = |bytes: &[u8]| {
        respond(bytes, &zone, &index, Transport::UDP)
            .map(|r| {
                let m = Message::from_vec(&r).unwrap();
                assert_eq!(m.metadata.id, u16::from_be_bytes([bytes[0], bytes[1]]));
                assert_eq!(m.metadata.message_type, MessageType::Response);
                format!("{:?}", m.metadata.response_code)
            })
            .unwrap_or_else(|| "dropped".into())
    };
    assert_eq!(code(&valid), "NoError");
    assert_eq!(code(&valid[..11]), "dropped", "no header");
    assert_eq!(code(&[]), "dropped");
    assert_eq!(code(&[0]), "dropped");
    assert_eq!(code(&valid[..14]), "FormErr", "cut inside the question");
    let mut no_question = valid[..12].to_vec();
    no_question[5] = 0;
    assert_eq!(code(&no_question), "FormErr", "QDCOUNT 0");
    let mut two = valid.clone();
    two[5] = 2;
    two.extend_from_slice(&valid[12..]);
    assert_eq!(code(&two), "FormErr", "QDCOUNT 2");
    let mut extra_answers = valid.clone();
    extra_answers[7] = 3;
    assert_eq!(code(&extra_answers), "FormErr", "ANCOUNT without records");
    let mut response = valid.clone();
    response[2] |= 0x80;
    assert_eq!(code(&response), "dropped", "QR set");
    for opcode in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let mut other = valid.clone();
        other[2] = (other[2] & 0x87) | (u8::from(opcode) << 3);
        assert_eq!(code(&other), "NotImp", "{opcode:?}");
    }
    let mut chaos = valid.clone();
    let len = chaos.len();
    chaos[len - 1] = 3; // class CH
    assert_eq!(code(&chaos), "Refused");
    let opt_question = query(5, "medid.example.", RecordType::OPT, None);
    assert_eq!(code(&opt_question), "FormErr");
    let mut two_opts = query(6, "medid.example.", RecordType::SOA, Some(1232));
    two_opts[11] = 2;
    two_opts.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
    assert_eq!(code(&two_opts), "FormErr");
}

#[test]
fn arbitrary_bytes_never_panic_and_answers_parse() {
    let index = index();
    let zone = zone();
    let seeds = [
        query(
            1,
            "pkg-1.23.1000.86.hdl.medid.example.",
            RecordType::TXT,
            Some(1232),
        ),
        query(2, "medid.example.", RecordType::NS, None),
        query(
            3,
            "1.112604.156.2.1.oid.medid.example.",
            RecordType::ANY,
            Some(512),
        ),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..50_000 {
        let mut packet = seeds[round % seeds.len()].clone();
        match next() % 4 {
            0 => {
                let len = (next() % 80) as usize;
                packet = (0..len).map(|_| next() as u8).collect();
            }
            1 => {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % packet.len();
                    packet[at] = next() as u8;
                }
            }
            2 => packet.truncate((next() as usize) % packet.len()),
            _ => packet.extend((0..next() % 20).map(|_| next() as u8)),
        }
        for transport in [Transport::UDP, Transport::Tcp] {
            if let Some(response) = respond(&packet, &zone, &index, transport) {
                let message = Message::from_vec(&response)
                    .unwrap_or_else(|e| panic!("{packet:?} gave an unreadable response: {e}"));
                assert_eq!(&response[..2], &packet[..2]);
                assert_eq!(message.metadata.message_type, MessageType::Response);
                if transport == Transport::UDP {
                    assert!(response.len() <= 1232);
                }
            }
        }
    }
}

#[test]
fn cache_hits_are_patched_and_writes_invalidate() {
    let mut memory = index();
    let cache = AnswerCache::new(1000);
    let shared: Arc<std::sync::RwLock<MemoryIndex>> =
        Arc::new(std::sync::RwLock::new(memory.clone()));
    let responder = Responder::new(zone(), Arc::new(Shared(shared.clone())), cache.clone());
    let answer = |id: u16, name: &str, edns: Option<u16>| {
        let mut out = Vec::new();
        assert!(responder.respond(
            &query(id, name, RecordType::TXT, edns),
            Transport::UDP,
            &mut out
        ));
        out
    };
    let first = answer(1, "pkg-1.23.1000.86.hdl.medid.example.", Some(1232));
    let second = answer(2, "PKG-1.23.1000.86.HDL.medid.EXAMPLE.", Some(1232));
    // The second is a cache hit: the same bytes but the ID and the question's case.
    assert_eq!(first.len(), second.len());
    let message = Message::from_vec(&second).unwrap();
    assert_eq!(message.metadata.id, 2);
    assert_eq!(
        message.queries[0].name().to_string(),
        "PKG-1.23.1000.86.HDL.medid.EXAMPLE."
    );
    assert_eq!(
        message.answers[0].name.to_string(),
        "PKG-1.23.1000.86.HDL.medid.EXAMPLE."
    );
    assert_eq!(message.answers.len(), 2);
    // Without EDNS: another variant, without OPT.
    let plain = Message::from_vec(&answer(3, "pkg-1.23.1000.86.hdl.medid.example.", None)).unwrap();
    assert!(plain.edns.is_none());

    // A write changes the value; invalidating the identifier's subject shows it.
    memory
        .insert_identifier(record(
            "86.1000.23/pkg-1",
            vec![stored(1, "URL", "https://cssd.example/new", 600)],
        ))
        .unwrap();
    *shared.write().unwrap() = memory.clone();
    let stale = render(&answer(
        4,
        "pkg-1.23.1000.86.hdl.medid.example.",
        Some(1232),
    ));
    assert!(stale.contains("packs/pkg-1"), "still cached: {stale}");
    cache.invalidate_subject("86.1000.23/pkg-1");
    let fresh = render(&answer(
        5,
        "pkg-1.23.1000.86.hdl.medid.example.",
        Some(1232),
    ));
    assert!(fresh.contains("cssd.example/new"), "{fresh}");

    // A cached NXDOMAIN goes when the name's subject (the relative name) is dropped.
    let missing = render(&answer(6, "new.23.1000.86.hdl.medid.example.", None));
    assert!(missing.starts_with("NXDomain"), "{missing}");
    memory
        .insert_identifier(record(
            "86.1000.23/new",
            vec![stored(1, "DESC", "now here", 60)],
        ))
        .unwrap();
    *shared.write().unwrap() = memory.clone();
    for subject in
        medid_resolver::dns::invalidation_subjects(["a/hdl.86.1000.23.new", "i/86.1000.23/new"])
    {
        cache.invalidate_subject(&subject);
    }
    let found = render(&answer(7, "new.23.1000.86.hdl.medid.example.", None));
    assert!(found.contains("now here"), "{found}");
    // And the identifier's own subject now holds it.
    memory.remove_identifier(&Identifier::parse("86.1000.23/new").unwrap());
    *shared.write().unwrap() = memory.clone();
    cache.invalidate_subject("86.1000.23/new");
    let gone = render(&answer(8, "new.23.1000.86.hdl.medid.example.", None));
    assert!(gone.starts_with("NXDomain"), "{gone}");
}

/// A [`MemoryIndex`] that a test can change under a running responder.
struct Shared(Arc<std::sync::RwLock<MemoryIndex>>);

impl ZoneIndex for Shared {
    fn serial(&self) -> Result<u64, medid_resolver::dns::ZoneReadError> {
        self.0.read().unwrap().serial()
    }
    fn alias(&self, name: &str) -> Result<Option<String>, medid_resolver::dns::ZoneReadError> {
        self.0.read().unwrap().alias(name)
    }
    fn prefix_alias(
        &self,
        name: &str,
    ) -> Result<Option<String>, medid_resolver::dns::ZoneReadError> {
        self.0.read().unwrap().prefix_alias(name)
    }
    fn has_names_under(&self, name: &str) -> Result<bool, medid_resolver::dns::ZoneReadError> {
        self.0.read().unwrap().has_names_under(name)
    }
    fn identifier(
        &self,
        id: &Identifier,
    ) -> Result<Option<IdentifierRecord>, medid_resolver::dns::ZoneReadError> {
        self.0.read().unwrap().identifier(id)
    }
    fn names(
        &self,
    ) -> Box<dyn Iterator<Item = Result<(String, String), medid_resolver::dns::ZoneReadError>> + '_>
    {
        let all: Vec<_> = self.0.read().unwrap().names().collect();
        Box::new(all.into_iter())
    }
}

#[test]
fn the_zone_file_parses_back_to_the_same_records() {
    let index = index();
    let mut text = Vec::new();
    let summary = export_zone(&zone(), &index, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert_eq!(summary.names, 5, "{text}");
    assert!(text.contains("$ORIGIN medid.example.\n"), "{text}");
    assert!(
        text.contains(
            "pkg-1.23.1000.86.hdl 600 IN URI 10 1 \"https://cssd.example/packs/pkg-1\"\n"
        ),
        "{text}"
    );
    assert!(
        !text.contains("PATIENT"),
        "restricted values stay out: {text}"
    );
    // hickory-proto's zone parser knows every type but URI.
    let without_uri: String = text
        .lines()
        .filter(|line| !line.contains(" IN URI "))
        .map(|line| format!("{line}\n"))
        .collect();
    let (origin, records) = hickory_proto::serialize::txt::Parser::new(without_uri, None, None)
        .parse()
        .unwrap();
    assert_eq!(origin.to_string(), "medid.example.");
    let count: usize = records
        .values()
        .map(|set| set.records_without_rrsigs().count())
        .sum();
    let uri_lines = text
        .lines()
        .filter(|line| line.contains(" IN URI "))
        .count();
    assert_eq!(count + uri_lines, usize::try_from(summary.records).unwrap());
    // Each record equals what the server answers.
    for (key, set) in &records {
        let name = key.name.to_string();
        let response = respond(
            &query(1, &name, key.record_type, None),
            &zone(),
            &index,
            Transport::Tcp,
        )
        .unwrap();
        let answered = Message::from_vec(&response).unwrap();
        let mut served: Vec<String> = answered
            .answers
            .iter()
            .map(dns_support::record_text)
            .collect();
        let mut written: Vec<String> = set
            .records_without_rrsigs()
            .map(dns_support::record_text)
            .collect();
        served.sort();
        written.sort();
        assert_eq!(served, written, "{name} {}", key.record_type);
    }
}
