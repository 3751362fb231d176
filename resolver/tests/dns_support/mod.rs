//! Shared by the DNS tests: a real node with identifiers of every kind, a DNS server on
//! loopback, DNS packets built and read with hickory-proto, and a dig-like rendering of
//! responses for golden comparisons.

#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use medid_did::KeyPair;
use medid_registry::op::{
    InputValue, ReadPermission, RestrictedPayload, Submission, draft, seal_values, sign,
};
use medid_registry::{Prepared, Registry};
use medid_resolver::AnswerCache;
use medid_resolver::dns::{DnsConfig, DnsServer, RateLimit, ZoneIndex, invalidation_subjects};
use serde_json::{Value, json};

/// The zone of every test node.
pub(crate) const ZONE: &str = "medid.example";
/// How long a test waits for an answer before it fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// A node in a temporary directory: prefixes `86.1000` (with `86.1000.23` delegated
/// below it), `urn:oid:1.2.156.112604` and `gs1:950600`, and identifiers of every kind.
pub(crate) struct TestNode {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
    pub(crate) registry: Registry,
    pub(crate) admin: KeyPair,
    pub(crate) cssd: KeyPair,
}

/// A public value.
pub(crate) fn value(index: u32, kind: &str, data: &str, ttl: u32) -> InputValue {
    InputValue {
        index,
        kind: kind.into(),
        data: data.into(),
        ttl,
        read: ReadPermission::Public,
    }
}

/// The data of the long value (more than 255 bytes: several character-strings).
pub(crate) fn long_text() -> String {
    (0..100).map(|i| format!("part{i:02} ")).collect()
}

/// The values of `86.1000.23/many`: 25 values, about 1.5 KB of TXT.
pub(crate) fn many_values() -> Vec<InputValue> {
    (1..=25)
        .map(|i| {
            value(
                i,
                "DESC",
                &format!("instrument {i:02} of the tray, stainless steel, reusable"),
                3600,
            )
        })
        .collect()
}

/// The values of `86.1000.23/medium`: about 700 bytes of TXT, more than 512 and less
/// than 1232.
pub(crate) fn medium_values() -> Vec<InputValue> {
    (1..=10)
        .map(|i| {
            value(
                i,
                "DESC",
                &format!("medium value {i:02} {}", "x".repeat(40)),
                3600,
            )
        })
        .collect()
}

impl TestNode {
    /// A node with every kind of identifier.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        let admin = KeyPair::generate();
        let cssd = KeyPair::generate();
        Registry::init(&path, "dns.test.medid.example", Some(admin.did())).unwrap();
        let registry = Registry::open(&path).unwrap();
        let mut node = TestNode {
            dir,
            path,
            registry,
            admin,
            cssd,
        };
        let cssd_did = node.cssd.did().to_string();
        let admin = node.admin.clone();
        for prefix in ["86.1000", "urn:oid:1.2.156.112604", "gs1:950600"] {
            node.op(
                "prefix.create",
                json!({"prefix": prefix, "controllers": [cssd_did]}),
                &[&admin],
            );
        }
        let cssd = node.cssd.clone();
        node.op(
            "prefix.delegate",
            json!({"prefix": "86.1000.23", "controllers": [cssd_did]}),
            &[&cssd],
        );
        node.register(
            "86.1000.23/pkg-1",
            &[
                value(1, "URL", "https://cssd.example/packs/pkg-1", 600),
                value(2, "DESC", "tray \"A\", 12 instruments", 300),
            ],
        );
        node.register(
            "86.1000.23/PKG-1",
            &[value(1, "URL", "https://cssd.example/packs/PKG-1", 600)],
        );
        node.register(
            "urn:oid:1.2.156.112604.1",
            &[
                value(1, "URL", "https://oid.example/1!x", 900),
                value(2, "DESC", "an OID node", 900),
            ],
        );
        node.register(
            "/01/09506000134352/10/LOT7/21/S1",
            &[value(
                1,
                "URL",
                "https://gs1.example/01/09506000134352",
                1200,
            )],
        );
        node.register("86.1000.23/long", &[value(1, "DESC", &long_text(), 3600)]);
        node.register("86.1000.23/many", &many_values());
        node.register("86.1000.23/medium", &medium_values());
        node.register(
            "86.1000/23",
            &[value(1, "DESC", "the handle 86.1000/23", 500)],
        );
        let restricted = InputValue {
            index: 2,
            kind: "PATIENT".into(),
            data: "patient-pseudonym-SECRET-7f3a".into(),
            ttl: 60,
            read: ReadPermission::Restricted(vec![node.cssd.did()]),
        };
        node.register(
            "86.1000.23/used",
            &[
                value(1, "DESC", "used in theatre 3", 60),
                restricted.clone(),
            ],
        );
        node.register("86.1000.23/private", &[restricted]);
        node
    }

    /// Signs and submits an operation; it must be accepted.
    pub(crate) fn op(&mut self, op: &str, fields: Value, keys: &[&KeyPair]) {
        self.submit(op, fields, keys, Vec::new());
    }

    fn submit(
        &mut self,
        op: &str,
        fields: Value,
        keys: &[&KeyPair],
        restricted: Vec<RestrictedPayload>,
    ) {
        let operation = sign(&draft(op, fields), keys).unwrap();
        let answers = self
            .registry
            .submit(&[Submission {
                operation,
                restricted,
            }])
            .unwrap();
        for answer in answers {
            answer.unwrap_or_else(|e| panic!("{op}: {e}"));
        }
    }

    /// Registers `id` with `values`, signed by the CSSD.
    pub(crate) fn register(&mut self, id: &str, values: &[InputValue]) {
        let (values, payloads) = seal_values(values);
        let cssd = self.cssd.clone();
        self.submit(
            "identifier.register",
            json!({"id": id, "values": values}),
            &[&cssd],
            payloads,
        );
    }

    /// Submits an operation signed by the CSSD as the HTTP front end does: through the
    /// group commit, then drops from `cache` what the commit made stale.
    pub(crate) fn write_and_invalidate(&mut self, op: &str, fields: Value, cache: &AnswerCache) {
        for subject in
            invalidation_subjects(self.write_reporting(op, fields).iter().map(String::as_str))
        {
            cache.invalidate_subject(&subject);
        }
    }

    /// Submits an operation signed by the CSSD through the group commit; the index keys
    /// the commit changed (what the sequencer's commit hook gets).
    pub(crate) fn write_reporting(&mut self, op: &str, fields: Value) -> Vec<String> {
        let operation = sign(&draft(op, fields), &[&self.cssd]).unwrap();
        let prepared = Prepared::new(
            &Submission {
                operation,
                restricted: Vec::new(),
            },
            time::OffsetDateTime::now_utc(),
            300,
        )
        .unwrap();
        let medid_registry::Committed { answers, changed } = self
            .registry
            .sequence_reporting(vec![Ok(prepared)])
            .unwrap();
        for answer in answers {
            answer.unwrap();
        }
        changed
    }

    /// The index, as the DNS front end reads it.
    pub(crate) fn index(&self) -> Arc<dyn ZoneIndex> {
        Arc::new(self.registry.index().clone())
    }
}

/// A DNS front end on 127.0.0.1:0, with its own runtime; stopped on drop.
pub(crate) struct TestServer {
    pub(crate) server: Option<DnsServer>,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) cache: AnswerCache,
}

impl TestServer {
    /// Starts the front end of `node` with `configure` applied to the defaults (rate
    /// limiting off unless configured).
    pub(crate) fn start(node: &TestNode, configure: impl FnOnce(&mut DnsConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = DnsConfig::new("127.0.0.1:0".parse().unwrap(), ZONE);
        config.rate_limit = RateLimit::OFF;
        config.zone.resolution_url = Some("http://127.0.0.1:8080/api/handles/{id}".into());
        configure(&mut config);
        let cache = AnswerCache::new(10_000);
        let server = runtime
            .block_on(medid_resolver::dns::start(
                config,
                node.index(),
                cache.clone(),
            ))
            .unwrap();
        TestServer {
            server: Some(server),
            runtime,
            cache,
        }
    }

    pub(crate) fn udp_addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().udp_addr()
    }

    pub(crate) fn tcp_addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().tcp_addr()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// The fully qualified name of `relative` in the test zone.
pub(crate) fn fqdn(relative: &str) -> String {
    if relative.is_empty() {
        format!("{ZONE}.")
    } else {
        format!("{relative}.{ZONE}.")
    }
}

/// A query for `name` (fully qualified) and `qtype`, with EDNS advertising `edns` bytes
/// when given.
pub(crate) fn query(id: u16, name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    let mut question = Query::query(Name::from_ascii(name).unwrap(), qtype);
    question.set_query_class(DNSClass::IN);
    message.add_query(question);
    if let Some(payload) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(payload);
        message.set_edns(opt);
    }
    message.to_vec().unwrap()
}

/// Sends `packet` over UDP and waits for one answer.
pub(crate) fn udp_exchange(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    socket.send_to(packet, addr).unwrap();
    let mut buffer = vec![0u8; 65_535];
    let (len, _) = socket.recv_from(&mut buffer).expect("an answer over UDP");
    buffer.truncate(len);
    buffer
}

/// A TCP connection to the server.
pub(crate) fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Writes one length-prefixed message.
pub(crate) fn tcp_send(stream: &mut TcpStream, packet: &[u8]) {
    let mut framed = u16::try_from(packet.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).unwrap();
}

/// Reads one length-prefixed message.
pub(crate) fn tcp_receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).expect("an answer over TCP");
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message).unwrap();
    message
}

/// Sends `packet` over a new TCP connection and reads the answer.
pub(crate) fn tcp_exchange(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let mut stream = tcp_connect(addr);
    tcp_send(&mut stream, packet);
    tcp_receive(&mut stream)
}

/// A response in a dig-like text form: a header line, then one line per question and
/// record, by section.
pub(crate) fn render(bytes: &[u8]) -> String {
    let message = Message::from_vec(bytes).unwrap();
    let meta = &message.metadata;
    let mut flags = Vec::new();
    for (set, name) in [
        (meta.authoritative, "aa"),
        (meta.truncation, "tc"),
        (meta.recursion_desired, "rd"),
        (meta.recursion_available, "ra"),
    ] {
        if set {
            flags.push(name);
        }
    }
    let mut out = format!("{:?} {}", meta.response_code, flags.join(" "));
    if let Some(edns) = &message.edns {
        out.push_str(&format!(
            " edns={}{}",
            edns.max_payload(),
            if edns.flags().dnssec_ok { " do" } else { "" }
        ));
    }
    out.push('\n');
    for q in &message.queries {
        out.push_str(&format!(
            "? {} {} {}\n",
            q.name(),
            q.query_class(),
            type_text(q.query_type())
        ));
    }
    for (section, records) in [
        ("an", &message.answers),
        ("ns", &message.authorities),
        ("ar", &message.additionals),
    ] {
        for record in records {
            out.push_str(&format!("{section} {}\n", record_text(record)));
        }
    }
    out
}

/// One record as text; TXT character-strings quoted one by one, URI decoded.
pub(crate) fn record_text(record: &Record) -> String {
    let data = match &record.data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| format!("{:?}", String::from_utf8_lossy(s)))
            .collect::<Vec<_>>()
            .join(" "),
        RData::Unknown { code, rdata } if u16::from(*code) == 256 => {
            let bytes = &rdata.anything;
            format!(
                "{} {} \"{}\"",
                u16::from_be_bytes([bytes[0], bytes[1]]),
                u16::from_be_bytes([bytes[2], bytes[3]]),
                String::from_utf8_lossy(&bytes[4..])
            )
        }
        other => other.to_string(),
    };
    let kind = type_text(record.record_type());
    format!("{} {} {kind} {data}", record.name, record.ttl)
}

/// A record type's name; URI (which hickory-proto does not know) by its name too.
pub(crate) fn type_text(kind: RecordType) -> String {
    match kind {
        RecordType::Unknown(256) => "URI".to_owned(),
        RecordType::Unknown(other) => format!("TYPE{other}"),
        other => other.to_string(),
    }
}
