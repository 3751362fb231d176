//! The DNS front end of a real node (a registry in a temporary directory, identifiers
//! registered by signed operations) on 127.0.0.1:0, queried over real UDP and TCP
//! sockets with packets built by hickory-proto: every answer and error, EDNS sizes,
//! truncation and TCP fallback, restricted values, garbage packets, TCP limits, rate
//! limiting, reads after writes and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod dns_support;

use std::io::{Read, Write};
use std::time::Duration;

use dns_support::{
    TestNode, TestServer, fqdn, long_text, query, render, tcp_connect, tcp_exchange, tcp_receive,
    tcp_send, udp_exchange,
};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use medid_registry::dnsname::identifier_name;
use medid_registry::id::Identifier;
use medid_resolver::dns::RateLimit;
use serde_json::json;

/// The name of an identifier in the test zone.
fn name_of(id: &str) -> String {
    fqdn(&identifier_name(&Identifier::parse(id).unwrap()))
}

fn udp(server: &TestServer, name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let packet = query(0x5151, name, qtype, edns);
    let response = udp_exchange(server.udp_addr(), &packet);
    let message = Message::from_vec(&response).unwrap();
    assert_eq!(message.metadata.id, 0x5151);
    message
}

/// The TXT strings of every answer, each record's strings joined.
fn texts(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[test]
fn every_kind_of_identifier_answers_over_udp() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let pkg = name_of("86.1000.23/pkg-1");
    assert_eq!(pkg, "pkg-1.23.1000.86.hdl.medid.example.");
    assert_eq!(
        render(&udp_exchange(
            server.udp_addr(),
            &query(1, &pkg, RecordType::TXT, None)
        )),
        "NoError aa rd\n\
         ? pkg-1.23.1000.86.hdl.medid.example. IN TXT\n\
         an pkg-1.23.1000.86.hdl.medid.example. 300 TXT \"1 URL https://cssd.example/packs/pkg-1\"\n\
         an pkg-1.23.1000.86.hdl.medid.example. 300 TXT \"2 DESC tray \\\"A\\\", 12 instruments\"\n"
    );
    assert_eq!(
        render(&udp_exchange(
            server.udp_addr(),
            &query(2, &pkg, RecordType::Unknown(256), Some(1232))
        )),
        "NoError aa rd edns=1232\n\
         ? pkg-1.23.1000.86.hdl.medid.example. IN URI\n\
         an pkg-1.23.1000.86.hdl.medid.example. 600 URI 10 1 \"https://cssd.example/packs/pkg-1\"\n"
    );
    // Upper case: another identifier, under a hashed label.
    let upper = name_of("86.1000.23/PKG-1");
    assert_eq!(
        upper,
        "h--o5tpsfbjaoqt7dlkbvgfeoq37y.23.1000.86.hdl.medid.example."
    );
    assert_eq!(
        texts(&udp(&server, &upper, RecordType::TXT, None)),
        ["1 URL https://cssd.example/packs/PKG-1"]
    );
    // The OID: TXT and NAPTR (its URL and the node's resolution URL).
    let oid = name_of("urn:oid:1.2.156.112604.1");
    assert_eq!(oid, "1.112604.156.2.1.oid.medid.example.");
    let naptr = render(&udp_exchange(
        server.udp_addr(),
        &query(3, &oid, RecordType::NAPTR, None),
    ));
    assert_eq!(
        naptr,
        "NoError aa rd\n\
         ? 1.112604.156.2.1.oid.medid.example. IN NAPTR\n\
         an 1.112604.156.2.1.oid.medid.example. 900 NAPTR 100 1 \"U\" \"ORS+UINF\" \"!^.*$!https://oid.example/1\\!x!\" .\n\
         an 1.112604.156.2.1.oid.medid.example. 900 NAPTR 100 65535 \"U\" \"ORS+UINF\" \"!^.*$!http://127.0.0.1:8080/api/handles/urn:oid:1.2.156.112604.1!\" .\n"
    );
    // The GS1 key, values hashed.
    let gs1 = name_of("/01/09506000134352/10/LOT7/21/S1");
    assert_eq!(
        gs1,
        "h--g2lk2wlxpye5l4w2vs2uiarnim.21.h--3ag7ibzk45n4ikszz2vzorr2ui.10.09506000134352.01.gs1.medid.example."
    );
    assert_eq!(
        texts(&udp(&server, &gs1, RecordType::TXT, None)),
        ["1 URL https://gs1.example/01/09506000134352"]
    );
    // A name that is an identifier's (86.1000/23) and a prefix's (86.1000.23).
    let both = udp(
        &server,
        "23.1000.86.hdl.medid.example.",
        RecordType::TXT,
        None,
    );
    assert_eq!(
        texts(&both),
        ["1 DESC the handle 86.1000/23", "prefix hdl:86.1000.23"]
    );
    assert!(
        both.answers.iter().all(|r| r.ttl == 500),
        "one TTL per RRset"
    );
    // ANY: every record of the name.
    let any = udp(&server, &oid, RecordType::ANY, Some(1232));
    let kinds: Vec<u16> = any
        .answers
        .iter()
        .map(|r| u16::from(r.record_type()))
        .collect();
    assert_eq!(kinds, [16, 16, 256, 35, 35]);
    // Every answer is authoritative.
    for message in [both, any] {
        assert!(message.metadata.authoritative);
    }
}

#[test]
fn the_apex_has_soa_and_ns_with_glue() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let serial = node.registry.index().applied().unwrap();
    assert_eq!(
        render(&udp_exchange(
            server.udp_addr(),
            &query(1, "medid.example.", RecordType::SOA, None)
        )),
        format!(
            "NoError aa rd\n? medid.example. IN SOA\nan medid.example. 3600 SOA ns.medid.example. \
             hostmaster.medid.example. {serial} 3600 600 604800 300\n"
        )
    );
    assert_eq!(
        render(&udp_exchange(
            server.udp_addr(),
            &query(2, "Medid.Example.", RecordType::NS, None)
        )),
        "NoError aa rd\n? Medid.Example. IN NS\nan Medid.Example. 3600 NS ns.medid.example.\n\
         ar ns.medid.example. 3600 A 127.0.0.1\n"
    );
    assert_eq!(
        render(&udp_exchange(
            server.udp_addr(),
            &query(3, "ns.medid.example.", RecordType::A, None)
        )),
        "NoError aa rd\n? ns.medid.example. IN A\nan ns.medid.example. 3600 A 127.0.0.1\n"
    );
}

#[test]
fn negative_answers_and_errors() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let code = |name: &str, qtype: RecordType| {
        let message = udp(&server, name, qtype, None);
        let soa = message
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA && r.ttl == 300);
        (
            message.metadata.response_code,
            message.answers.len(),
            soa,
            message.metadata.authoritative,
        )
    };
    let pkg = name_of("86.1000.23/pkg-1");
    // NXDOMAIN with the SOA.
    assert_eq!(
        code("unknown.23.1000.86.hdl.medid.example.", RecordType::TXT),
        (ResponseCode::NXDomain, 0, true, true)
    );
    assert_eq!(
        code(&format!("below.{pkg}"), RecordType::TXT),
        (ResponseCode::NXDomain, 0, true, true)
    );
    // NODATA: an existing name, another type; an empty non-terminal.
    assert_eq!(
        code(&pkg, RecordType::A),
        (ResponseCode::NoError, 0, true, true)
    );
    assert_eq!(
        code(&pkg, RecordType::MX),
        (ResponseCode::NoError, 0, true, true)
    );
    assert_eq!(
        code(&name_of("86.1000.23/pkg-1"), RecordType::NAPTR),
        (ResponseCode::NoError, 0, true, true)
    );
    assert_eq!(
        code("86.hdl.medid.example.", RecordType::TXT),
        (ResponseCode::NoError, 0, true, true)
    );
    assert_eq!(
        code("hdl.medid.example.", RecordType::TXT),
        (ResponseCode::NoError, 0, true, true)
    );
    assert_eq!(
        code(&name_of("86.1000.23/private"), RecordType::TXT),
        (ResponseCode::NoError, 0, true, true)
    );
    // REFUSED outside the zone, for zone transfers; no AA.
    assert_eq!(
        code("www.example.org.", RecordType::TXT),
        (ResponseCode::Refused, 0, false, false)
    );
    assert_eq!(
        code("example.", RecordType::SOA),
        (ResponseCode::Refused, 0, false, false)
    );
    assert_eq!(
        code("medid.example.", RecordType::AXFR),
        (ResponseCode::Refused, 0, false, false)
    );

    // FORMERR: no question, two questions; NOTIMP: another opcode.
    let valid = query(0x0707, &pkg, RecordType::TXT, None);
    let mut no_question = valid[..12].to_vec();
    no_question[5] = 0;
    let mut two_questions = valid.clone();
    two_questions[5] = 2;
    two_questions.extend_from_slice(&valid[12..]);
    let mut update = valid.clone();
    update[2] = 5 << 3;
    for (packet, expected) in [
        (no_question, ResponseCode::FormErr),
        (two_questions, ResponseCode::FormErr),
        (valid[..20].to_vec(), ResponseCode::FormErr),
        (update, ResponseCode::NotImp),
    ] {
        let answer = Message::from_vec(&udp_exchange(server.udp_addr(), &packet)).unwrap();
        assert_eq!(answer.metadata.id, 0x0707);
        assert_eq!(answer.metadata.response_code, expected);
        // The same over TCP.
        let answer = Message::from_vec(&tcp_exchange(server.tcp_addr(), &packet)).unwrap();
        assert_eq!(answer.metadata.response_code, expected);
    }
}

#[test]
fn edns_sizes_truncation_and_tcp_fallback() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let medium = name_of("86.1000.23/medium");
    let many = name_of("86.1000.23/many");
    let truncated = |m: &Message| (m.metadata.truncation, m.answers.len());

    // About 700 bytes: too large for 512, fits 1232.
    let plain = udp(&server, &medium, RecordType::TXT, None);
    assert_eq!(truncated(&plain), (true, 0));
    assert!(plain.edns.is_none());
    let edns = udp(&server, &medium, RecordType::TXT, Some(1232));
    assert_eq!(truncated(&edns), (false, 10));
    assert_eq!(edns.edns.as_ref().unwrap().max_payload(), 1232);
    let small = udp(&server, &medium, RecordType::TXT, Some(600));
    assert_eq!(
        truncated(&small),
        (true, 0),
        "the client's payload size is honoured"
    );
    assert!(small.edns.is_some());
    let large = udp(&server, &medium, RecordType::TXT, Some(65_000));
    assert_eq!(
        truncated(&large),
        (false, 10),
        "capped at the server's 1232, still fits"
    );

    // About 1.5 KB: truncated over UDP even with EDNS; complete over TCP.
    let udp_answer = udp_exchange(
        server.udp_addr(),
        &query(9, &many, RecordType::TXT, Some(4096)),
    );
    assert!(udp_answer.len() <= 1232);
    assert_eq!(
        truncated(&Message::from_vec(&udp_answer).unwrap()),
        (true, 0)
    );
    for edns in [None, Some(4096)] {
        let tcp = Message::from_vec(&tcp_exchange(
            server.tcp_addr(),
            &query(9, &many, RecordType::TXT, edns),
        ))
        .unwrap();
        assert_eq!(truncated(&tcp), (false, 25));
        assert_eq!(texts(&tcp).len(), 25);
    }
}

#[test]
fn long_values_are_split_into_character_strings() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let message = udp(
        &server,
        &name_of("86.1000.23/long"),
        RecordType::TXT,
        Some(1232),
    );
    let RData::TXT(txt) = &message.answers[0].data else {
        panic!("a TXT record");
    };
    let lengths: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
    assert_eq!(lengths, [255, 255, 197]);
    assert_eq!(texts(&message), [format!("1 DESC {}", long_text())]);
}

#[test]
fn restricted_values_never_appear() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let used = name_of("86.1000.23/used");
    for qtype in [RecordType::TXT, RecordType::ANY, RecordType::Unknown(256)] {
        let packet = query(4, &used, qtype, Some(1232));
        for response in [
            udp_exchange(server.udp_addr(), &packet),
            tcp_exchange(server.tcp_addr(), &packet),
        ] {
            let haystack = String::from_utf8_lossy(&response);
            assert!(!haystack.contains("SECRET"), "{qtype}: {haystack}");
            assert!(!haystack.contains("PATIENT"), "{qtype}: {haystack}");
        }
    }
    assert_eq!(
        texts(&udp(&server, &used, RecordType::TXT, None)),
        ["1 DESC used in theatre 3"]
    );
}

/// Random bytes from a fixed seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn garbage_packets_do_not_stop_the_server() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |config| config.udp_sockets = 1);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(dns_support::TIMEOUT)).unwrap();
    let pkg = name_of("86.1000.23/pkg-1");
    let mut answer = vec![0u8; 65_535];
    for round in 0..200u16 {
        // Garbage without a readable header gets no answer; garbage with a header
        // gets FORMERR (or NOTIMP); a response (QR set) gets nothing.
        let garbage = match round % 5 {
            0 => vec![0xff],
            1 => noise(u64::from(round), 11),
            2 => {
                let mut header = noise(u64::from(round), 12);
                header[2] &= 0x07; // a query, opcode QUERY
                header.extend(noise(u64::from(round) + 7, usize::from(round % 40)));
                header
            }
            3 => {
                let mut valid = query(1, &pkg, RecordType::TXT, None);
                valid[2] |= 0x80;
                valid
            }
            _ => noise(u64::from(round), usize::from(round)),
        };
        socket.send_to(&garbage, server.udp_addr()).unwrap();
        let id = 10_000 + round;
        socket
            .send_to(&query(id, &pkg, RecordType::TXT, None), server.udp_addr())
            .unwrap();
        // Answers come in order from the one socket: skip the garbage's, if any.
        loop {
            let (len, _) = socket
                .recv_from(&mut answer)
                .expect("the server still answers");
            let message = Message::from_vec(&answer[..len]).unwrap();
            if message.metadata.id == id {
                assert_eq!(message.answers.len(), 2);
                break;
            }
            assert_ne!(message.metadata.response_code, ResponseCode::NoError);
        }
    }
    // Over TCP: garbage frames, then a query on the same connection.
    let mut stream = tcp_connect(server.tcp_addr());
    tcp_send(&mut stream, &[0xff]);
    tcp_send(&mut stream, &noise(3, 30));
    tcp_send(&mut stream, &query(77, &pkg, RecordType::TXT, None));
    loop {
        let message = Message::from_vec(&tcp_receive(&mut stream)).unwrap();
        if message.metadata.id == 77 {
            assert_eq!(message.answers.len(), 2);
            break;
        }
    }
}

#[test]
fn tcp_pipelining_idle_timeout_and_connection_limit() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |config| {
        config.tcp_idle_timeout = Duration::from_millis(300);
        config.tcp_max_connections = 1;
    });
    let pkg = name_of("86.1000.23/pkg-1");
    let mut stream = tcp_connect(server.tcp_addr());
    // Three queries in one write: three answers.
    let mut batch = Vec::new();
    for id in 1..=3u16 {
        let packet = query(id, &pkg, RecordType::TXT, None);
        batch.extend_from_slice(&u16::try_from(packet.len()).unwrap().to_be_bytes());
        batch.extend_from_slice(&packet);
    }
    stream.write_all(&batch).unwrap();
    let ids: Vec<u16> = (0..3)
        .map(|_| {
            Message::from_vec(&tcp_receive(&mut stream))
                .unwrap()
                .metadata
                .id
        })
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    // The one connection slot is taken: a second connection is closed at once.
    let mut second = tcp_connect(server.tcp_addr());
    let mut byte = [0u8; 1];
    tcp_send(&mut second, &query(9, &pkg, RecordType::TXT, None));
    assert!(matches!(second.read(&mut byte), Ok(0) | Err(_)), "closed");
    // Idle past the timeout: the server closes the first connection.
    assert!(
        matches!(stream.read(&mut byte), Ok(0) | Err(_)),
        "closed when idle"
    );
    // Its slot is free again.
    assert_eq!(
        Message::from_vec(&tcp_exchange(
            server.tcp_addr(),
            &query(4, &pkg, RecordType::TXT, None)
        ))
        .unwrap()
        .metadata
        .id,
        4
    );
}

#[test]
fn rate_limiting_drops_and_slips() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |config| {
        config.udp_sockets = 1;
        config.rate_limit = RateLimit {
            responses_per_second: 1,
            slip: 2,
            ..RateLimit::default()
        };
    });
    let pkg = name_of("86.1000.23/pkg-1");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(dns_support::TIMEOUT)).unwrap();
    let mut answer = vec![0u8; 65_535];
    let mut receive = || {
        let (len, _) = socket.recv_from(&mut answer).unwrap();
        Message::from_vec(&answer[..len]).unwrap()
    };
    // The bucket holds one response: the first query is answered in full.
    socket
        .send_to(&query(1, &pkg, RecordType::TXT, None), server.udp_addr())
        .unwrap();
    let first = receive();
    assert_eq!((first.metadata.id, first.answers.len()), (1, 2));
    // Over the limit: the next is dropped, the one after slips (TC, no records).
    socket
        .send_to(&query(2, &pkg, RecordType::TXT, None), server.udp_addr())
        .unwrap();
    socket
        .send_to(&query(3, &pkg, RecordType::TXT, None), server.udp_addr())
        .unwrap();
    let slip = receive();
    assert_eq!(slip.metadata.id, 3, "query 2 was dropped");
    assert!(slip.metadata.truncation);
    assert!(slip.answers.is_empty());
    // TCP is not rate-limited.
    let tcp = Message::from_vec(&tcp_exchange(
        server.tcp_addr(),
        &query(4, &pkg, RecordType::TXT, None),
    ))
    .unwrap();
    assert_eq!(tcp.answers.len(), 2);
}

#[test]
fn cached_answers_get_the_query_id_case_and_flags() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let pkg = name_of("86.1000.23/pkg-1");
    let first = udp_exchange(
        server.udp_addr(),
        &query(100, &pkg, RecordType::TXT, Some(1232)),
    );
    let mixed = "PkG-1.23.1000.86.HDL.Medid.Example.";
    let mut packet = query(101, mixed, RecordType::TXT, Some(1232));
    packet[2] &= !0x01; // RD off
    let mut message = Message::from_vec(&packet).unwrap();
    message.edns.as_mut().unwrap().set_dnssec_ok(true);
    message.metadata.recursion_desired = false;
    let second = udp_exchange(server.udp_addr(), &message.to_vec().unwrap());
    assert_eq!(first.len(), second.len());
    let second = Message::from_vec(&second).unwrap();
    assert_eq!(second.metadata.id, 101);
    assert!(!second.metadata.recursion_desired);
    assert!(
        second.edns.as_ref().unwrap().flags().dnssec_ok,
        "DO is copied"
    );
    assert_eq!(second.queries[0].name().to_string(), mixed);
    assert_eq!(second.answers[0].name.to_string(), mixed);
}

#[test]
fn reads_after_writes_see_the_write() {
    let mut node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let cache = server.cache.clone();
    let pkg = name_of("86.1000.23/pkg-1");
    let fresh = fqdn("fresh.23.1000.86.hdl");
    // Cache an answer, a NXDOMAIN and an empty non-terminal's NODATA.
    assert_eq!(texts(&udp(&server, &pkg, RecordType::TXT, None)).len(), 2);
    assert_eq!(
        udp(&server, &fresh, RecordType::TXT, None)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    let deep = fqdn("x.new.23.1000.86.hdl");
    let parent = fqdn("new.23.1000.86.hdl");
    assert_eq!(
        udp(&server, &parent, RecordType::TXT, None)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );

    node.write_and_invalidate(
        "identifier.update",
        json!({"id": "86.1000.23/pkg-1", "version": 1, "set": [{"index": 1, "type": "URL", "data": "https://cssd.example/v2"}]}),
        &cache,
    );
    assert_eq!(
        texts(&udp(&server, &pkg, RecordType::TXT, None)),
        [
            "1 URL https://cssd.example/v2",
            "2 DESC tray \"A\", 12 instruments"
        ]
    );
    node.write_and_invalidate(
        "identifier.register",
        json!({"id": "86.1000.23/fresh", "values": [{"index": 1, "type": "DESC", "data": "new"}]}),
        &cache,
    );
    assert_eq!(
        texts(&udp(&server, &fresh, RecordType::TXT, None)),
        ["1 DESC new"]
    );
    // A prefix below: its parent turns from NXDOMAIN to an empty non-terminal.
    let _ = deep;
    node.write_and_invalidate(
        "prefix.delegate",
        json!({"prefix": "86.1000.23.new.x", "controllers": [node.cssd.did().to_string()]}),
        &cache,
    );
    let parent_answer = udp(&server, &parent, RecordType::TXT, None);
    assert_eq!(parent_answer.metadata.response_code, ResponseCode::NoError);
    assert!(parent_answer.answers.is_empty());
    node.write_and_invalidate(
        "identifier.delete",
        json!({"id": "86.1000.23/fresh", "version": 1}),
        &cache,
    );
    assert_eq!(
        udp(&server, &fresh, RecordType::TXT, None)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
}

#[test]
fn shutdown_closes_the_sockets() {
    let node = TestNode::new();
    let mut server = TestServer::start(&node, |config| {
        config.udp_sockets = 2;
        config.udp_threads_per_socket = 2;
    });
    let tcp = server.tcp_addr();
    let udp_addr = server.udp_addr();
    assert_eq!(udp_addr.port(), tcp.port(), "UDP and TCP share the port");
    let mut open = tcp_connect(tcp);
    // Both sockets answer (whichever the kernel picks for each client).
    for id in 0..20 {
        let packet = query(id, &name_of("86.1000.23/pkg-1"), RecordType::TXT, None);
        assert_eq!(
            Message::from_vec(&udp_exchange(udp_addr, &packet))
                .unwrap()
                .answers
                .len(),
            2
        );
    }
    let dns = server.server.take().unwrap();
    server.runtime.block_on(dns.shutdown());
    let mut byte = [0u8; 1];
    assert!(
        matches!(open.read(&mut byte), Ok(0) | Err(_)),
        "connections closed"
    );
    assert!(
        std::net::TcpStream::connect(tcp).is_err(),
        "listener closed"
    );
    // The UDP port is free again (no SO_REUSEPORT here).
    std::net::UdpSocket::bind(udp_addr).expect("UDP sockets closed");
}

#[test]
fn alias_keys_name_every_identifier_and_prefix() {
    let mut node = TestNode::new();
    let index = node.registry.index().clone();
    for id in [
        "86.1000.23/pkg-1",
        "86.1000.23/PKG-1",
        "urn:oid:1.2.156.112604.1",
        "/01/09506000134352/10/LOT7/21/S1",
        "86.1000/23",
    ] {
        let id = Identifier::parse(id).unwrap();
        assert_eq!(
            index.alias(&identifier_name(&id)).unwrap(),
            Some(id.to_string()),
            "{id}"
        );
    }
    // A name of an identifier and a prefix: the identifier first, the prefix beside it.
    assert_eq!(
        index.prefix_alias("23.1000.86.hdl").unwrap().as_deref(),
        Some("prefix:hdl:86.1000.23")
    );
    assert_eq!(
        index.alias("950600.gcp.gs1").unwrap().as_deref(),
        Some("prefix:gs1:950600")
    );
    for (name, below) in [
        ("", true),
        ("hdl", true),
        ("86.hdl", true),
        ("gs1", true),
        ("oid", true),
        ("pkg-1.23.1000.86.hdl", false),
        ("x.gs1", false),
        ("8.hdl", false),
    ] {
        assert_eq!(index.has_names_under(name).unwrap(), below, "{name}");
    }
    let names: Vec<(String, String)> = index.aliases().map(Result::unwrap).collect();
    assert!(names.contains(&("pkg-1.23.1000.86.hdl".into(), "86.1000.23/pkg-1".into())));
    assert!(names.contains(&("23.1000.86.hdl".into(), "prefix:hdl:86.1000.23".into())));
    // The index, aliases included, is what replaying the ledger gives.
    node.registry.verify().unwrap();
    let before = names.len();
    node.registry.reindex().unwrap();
    assert_eq!(node.registry.index().aliases().count(), before);
    let cache = medid_resolver::AnswerCache::new(10);
    node.write_and_invalidate(
        "identifier.delete",
        json!({"id": "86.1000.23/pkg-1", "version": 1}),
        &cache,
    );
    assert_eq!(
        node.registry.index().alias("pkg-1.23.1000.86.hdl").unwrap(),
        None
    );
    node.registry.verify().unwrap();
}
