//! The request handler: one DNS query in, one response out, for every transport.
//!
//! [`respond`] is the pure core (no cache, no I/O): parse, answer from a [`ZoneIndex`],
//! encode. [`Responder`] is what the sockets call: the same core behind the
//! [`AnswerCache`], so that a repeated question costs a hash lookup, a copy and a
//! few byte patches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NAPTR, NS, NULL, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use medid_registry::delegation::NodeDelegation;
use medid_registry::id::Identifier;

use super::message::{
    self, CLASSIC_UDP_LIMIT, Echo, EdnsInfo, Parsed, ParsedQuery, Sections, TCP_LIMIT,
};
use super::records::{Data, NAPTR_FLAGS, NAPTR_SERVICES, NameRecords, Rr, URI_TYPE};
use super::zone::{SUBZONE_NS_LABEL, Zone, ZoneIndex, ZoneReadError};
use crate::cache::{AnswerCache, CacheKey};

/// The largest UDP payload medid sends (and advertises in its OPT record) unless
/// configured otherwise: the DNS Flag Day 2020 value, which avoids IP fragmentation.
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;

/// How a query arrived, which bounds its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: at most 512 bytes without EDNS, else the requestor's payload size capped at
    /// `max_payload`; a response that does not fit is cut to its question with TC set.
    Udp {
        /// The server's largest UDP payload ([`DEFAULT_MAX_UDP_PAYLOAD`]).
        max_payload: u16,
    },
    /// TCP: up to 65,535 bytes, never truncated below that.
    Tcp,
}

impl Transport {
    /// UDP with the default payload limit.
    pub const UDP: Transport = Transport::Udp {
        max_payload: DEFAULT_MAX_UDP_PAYLOAD,
    };

    /// The largest response for a query with `edns`.
    fn limit(self, edns: Option<EdnsInfo>) -> usize {
        match (self, edns) {
            (Transport::Tcp, _) => TCP_LIMIT,
            (Transport::Udp { .. }, None) => CLASSIC_UDP_LIMIT,
            (Transport::Udp { max_payload }, Some(info)) => usize::from(info.payload)
                .min(usize::from(max_payload))
                .max(CLASSIC_UDP_LIMIT),
        }
    }

    /// The payload size the response's OPT record advertises: the server's UDP limit,
    /// over either transport (`server` when the transport does not say).
    fn advertised(self, server: u16) -> u16 {
        match self {
            Transport::Udp { max_payload } => max_payload.max(512),
            Transport::Tcp => server.max(512),
        }
    }
}

/// Answers one DNS message (the pure core, without cache): the response to send, or
/// `None` when the message is dropped (shorter than a DNS header, or itself a
/// response). Never panics on any input.
pub fn respond(
    query: &[u8],
    zone: &Zone,
    index: &dyn ZoneIndex,
    transport: Transport,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    match message::parse(query) {
        Parsed::Drop => return None,
        error @ Parsed::Error { .. } => {
            encode_error(error, transport, DEFAULT_MAX_UDP_PAYLOAD, &mut out);
        }
        Parsed::Query(parsed) => {
            let mut relative = NameBuf::new();
            let computed = compute(zone, index, &parsed, &mut relative, index.serial());
            let advertised = transport.advertised(DEFAULT_MAX_UDP_PAYLOAD);
            encode_answer(&parsed, advertised, computed.sections, &mut out);
            fit(&mut out, transport, parsed.edns);
        }
    }
    Some(out)
}

/// Encodes the answer to a message that gets an error code alone.
fn encode_error(error: Parsed, transport: Transport, server_payload: u16, out: &mut Vec<u8>) {
    let Parsed::Error {
        id,
        op_code,
        recursion_desired,
        checking_disabled,
        code,
        query,
        edns,
    } = error
    else {
        return;
    };
    let echo = Echo {
        id,
        op_code,
        recursion_desired,
        checking_disabled,
    };
    let sections = Sections {
        code,
        ..Sections::default()
    };
    message::encode(
        echo,
        query.as_ref(),
        edns,
        transport.advertised(server_payload),
        sections,
        out,
    );
    fit(out, transport, edns);
}

/// Cuts a UDP response that is larger than the query allows.
fn fit(out: &mut Vec<u8>, transport: Transport, edns: Option<EdnsInfo>) {
    if out.len() > transport.limit(edns) {
        message::truncate(out);
    }
}

/// Encodes the answer to a parsed query.
fn encode_answer(parsed: &ParsedQuery, advertised: u16, sections: Sections, out: &mut Vec<u8>) {
    let echo = Echo {
        id: parsed.id,
        op_code: OpCode::Query,
        recursion_desired: parsed.recursion_desired,
        checking_disabled: parsed.checking_disabled,
    };
    message::encode(
        echo,
        Some(&parsed.query),
        parsed.edns,
        advertised,
        sections,
        out,
    );
}

/// An answer before encoding, with what the cache needs to keep it.
struct Computed {
    sections: Sections,
    /// The cache subject (see [`Responder`]); `None`: do not cache.
    subject: Option<String>,
    /// How long the answer may be kept.
    ttl: u32,
}

impl Computed {
    /// An answer that is not cached.
    fn uncached(code: ResponseCode) -> Self {
        Computed {
            sections: Sections {
                code,
                ..Sections::default()
            },
            subject: None,
            ttl: 0,
        }
    }
}

/// The query name relative to the zone, lower case, in a buffer on the stack.
struct NameBuf {
    bytes: [u8; 256],
    len: usize,
}

/// Where a query name lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Outside the zone.
    Outside,
    /// Inside: the relative name is in the [`NameBuf`]; `plain` when every label is
    /// made of `a-z 0-9 -` only (other names cannot exist in the zone).
    Inside { plain: bool },
}

impl NameBuf {
    fn new() -> Self {
        NameBuf {
            bytes: [0; 256],
            len: 0,
        }
    }

    /// The relative name (meaningful for a plain name).
    fn as_str(&self) -> &str {
        self.bytes
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// Writes `name` relative to `zone`, lower-cased.
    fn place(&mut self, zone: &Zone, name: &Name) -> Placement {
        let origin = zone.origin_labels();
        let labels = name.iter();
        let count = labels.len();
        if count < origin.len() {
            return Placement::Outside;
        }
        let in_zone = name
            .iter()
            .rev()
            .zip(origin.iter().rev())
            .all(|(label, expected)| label.eq_ignore_ascii_case(expected));
        if !in_zone {
            return Placement::Outside;
        }
        self.write_labels(name.iter().take(count - origin.len()))
    }

    /// Writes a name's own labels (those below the zone), lower-cased and joined by
    /// dots; a character other than `a-z 0-9 -` is written `?` and makes it not plain.
    fn write_labels<'a>(&mut self, labels: impl Iterator<Item = &'a [u8]>) -> Placement {
        self.len = 0;
        let mut plain = true;
        for (i, label) in labels.enumerate() {
            if i > 0 {
                self.push(b'.');
            }
            for &b in label {
                let b = b.to_ascii_lowercase();
                if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
                    self.push(b);
                } else {
                    plain = false;
                    self.push(b'?');
                }
            }
        }
        Placement::Inside { plain }
    }

    /// [`NameBuf::place`] for a name as on the wire (`labels` from
    /// [`message::quick_parse`]): the same placement and relative name.
    fn place_wire(&mut self, zone: &Zone, labels: &[u8]) -> Placement {
        // Label starts; a name of at most 255 bytes has at most 127 labels.
        let mut starts = [0usize; 128];
        let mut count = 0;
        let mut at = 0;
        while let Some(&len) = labels.get(at) {
            let Some(slot) = starts.get_mut(count) else {
                return Placement::Outside;
            };
            *slot = at;
            count += 1;
            at += 1 + usize::from(len);
        }
        let label = |i: usize| {
            let start = starts.get(i).copied().unwrap_or_default();
            let len = usize::from(labels.get(start).copied().unwrap_or_default());
            labels.get(start + 1..start + 1 + len).unwrap_or_default()
        };
        let origin = zone.origin_labels();
        let Some(own) = count.checked_sub(origin.len()) else {
            return Placement::Outside;
        };
        let in_zone = origin
            .iter()
            .enumerate()
            .all(|(i, expected)| label(own + i).eq_ignore_ascii_case(expected));
        if !in_zone {
            return Placement::Outside;
        }
        self.write_labels((0..own).map(label))
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }
}

/// The answer to a standard query.
///
/// `serial` is the index's serial read before (the SOA serial of the answer).
fn compute(
    zone: &Zone,
    index: &dyn ZoneIndex,
    parsed: &ParsedQuery,
    relative: &mut NameBuf,
    serial: Result<u64, ZoneReadError>,
) -> Computed {
    if parsed.edns.is_some_and(|e| e.version > 0) {
        return Computed::uncached(ResponseCode::BADVERS);
    }
    let query = &parsed.query;
    if query.query_class() != DNSClass::IN {
        return Computed::uncached(ResponseCode::Refused);
    }
    let Placement::Inside { plain } = relative.place(zone, query.name()) else {
        return Computed::uncached(ResponseCode::Refused);
    };
    if !zone.within_apex(relative.as_str()) {
        // Above or beside the sub-zone a parent delegated to this node: not ours.
        return Computed::uncached(ResponseCode::Refused);
    }
    if matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR) {
        // Zone transfers are not served: `export-zone` writes the zone file.
        return Computed::uncached(ResponseCode::Refused);
    }
    let answered = serial.and_then(|serial| {
        answer(
            zone,
            index,
            serial,
            relative.as_str(),
            plain,
            query.name(),
            query.query_type(),
        )
    });
    answered.unwrap_or_else(|_| Computed::uncached(ResponseCode::ServFail))
}

/// The answer for a name inside the zone.
#[allow(clippy::too_many_arguments)]
fn answer(
    zone: &Zone,
    index: &dyn ZoneIndex,
    serial: u64,
    relative: &str,
    plain: bool,
    qname: &Name,
    qtype: RecordType,
) -> Result<Computed, ZoneReadError> {
    if !plain {
        // A label with other characters than a-z 0-9 - is no name of the zone.
        let mut computed = negative(zone, serial, ResponseCode::NXDomain, None);
        computed.subject = None;
        return Ok(computed);
    }
    if relative.is_empty() {
        return Ok(apex(zone, serial, qname, qtype));
    }
    if relative == zone.apex_relative()
        && matches!(qtype, RecordType::SOA | RecordType::NS | RecordType::ANY)
    {
        return Ok(apex(zone, serial, qname, qtype));
    }
    if zone.ns_relative() == Some(relative) {
        return Ok(name_server(zone, serial, qname, qtype, relative));
    }
    if let Some((cut, node)) = delegation_above(zone, index, relative)? {
        return Ok(referral(zone, &cut, &node));
    }
    let Some(target) = index.alias(relative)? else {
        let code = if index.has_names_under(relative)? {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        return Ok(negative(zone, serial, code, Some(relative.to_owned())));
    };
    let (identifier, prefix) = match target.strip_prefix("prefix:") {
        Some(key) => (None, Some(key.to_owned())),
        None => {
            let prefix = index
                .prefix_alias(relative)?
                .and_then(|p| p.strip_prefix("prefix:").map(str::to_owned));
            (Some(target), prefix)
        }
    };
    let record = match identifier.as_deref().map(Identifier::parse) {
        Some(Ok(id)) => index.identifier(&id)?.map(|record| (id, record)),
        _ => None,
    };
    let records = NameRecords::build(
        zone,
        record.as_ref().map(|(id, record)| (id, record)),
        prefix.as_deref(),
    );
    let subject = match (identifier, prefix) {
        (Some(id), None) => Some(id),
        (None, Some(key)) => Some(format!("prefix:{key}")),
        // A name of an identifier and a prefix at once changes with either: not cached.
        _ => None,
    };
    let selected: Vec<&Rr> = match u16::from(qtype) {
        16 => records.txt.iter().collect(),
        URI_TYPE => records.uri.iter().collect(),
        35 => records.naptr.iter().collect(),
        255 => records
            .txt
            .iter()
            .chain(&records.uri)
            .chain(&records.naptr)
            .collect(),
        _ => Vec::new(),
    };
    if selected.is_empty() {
        return Ok(negative(zone, serial, ResponseCode::NoError, subject));
    }
    let answers: Vec<Record> = selected.iter().map(|rr| record_of(qname, rr)).collect();
    Ok(positive(answers, Vec::new(), subject))
}

/// The topmost prefix below the apex that lies at or above `relative` and is delegated
/// to another node: its name (relative to the zone) and the node.
fn delegation_above(
    zone: &Zone,
    index: &dyn ZoneIndex,
    relative: &str,
) -> Result<Option<(String, NodeDelegation)>, ZoneReadError> {
    let apex = zone.apex_relative();
    let mut found = None;
    let mut name = relative;
    while !name.is_empty() && name != apex {
        if let Some(target) = index.prefix_alias(name)?
            && let Some(key) = target.strip_prefix("prefix:")
            && let Some(node) = index.delegation(key)?
        {
            found = Some((name.to_owned(), node));
        }
        match name.split_once('.') {
            Some((_, parent)) => name = parent,
            None => break,
        }
    }
    Ok(found)
}

/// A referral to the node a prefix is delegated to, as an authoritative server gives
/// one (RFC 1034 §4.3.2): no answer, AA off, the cut's NS record (its name server
/// `h--ns.<cut>.<zone>`) in the authority section and the node's addresses as glue.
fn referral(zone: &Zone, cut: &str, node: &NodeDelegation) -> Computed {
    let ttl = zone.config().ttl;
    let (Ok(owner), Ok(server)) = (
        Name::from_ascii(format!("{cut}.{}.", zone.name())),
        Name::from_ascii(format!("{SUBZONE_NS_LABEL}.{cut}.{}.", zone.name())),
    ) else {
        return Computed::uncached(ResponseCode::ServFail);
    };
    let mut glue: Vec<Record> = Vec::new();
    for address in &node.dns {
        let data = match address.ip() {
            IpAddr::V4(a) => RData::A(A(a)),
            IpAddr::V6(a) => RData::AAAA(AAAA(a)),
        };
        let record = Record::from_rdata(server.clone(), ttl, data);
        if !glue.contains(&record) {
            glue.push(record);
        }
    }
    Computed {
        sections: Sections {
            code: ResponseCode::NoError,
            authoritative: false,
            answers: Vec::new(),
            authorities: vec![Record::from_rdata(owner, ttl, RData::NS(NS(server)))],
            additionals: glue,
        },
        subject: None,
        ttl: 0,
    }
}

/// A positive answer; it is kept for its smallest TTL.
fn positive(answers: Vec<Record>, additionals: Vec<Record>, subject: Option<String>) -> Computed {
    let ttl = answers
        .iter()
        .chain(&additionals)
        .map(|r| r.ttl)
        .min()
        .unwrap_or(0);
    Computed {
        sections: Sections {
            code: ResponseCode::NoError,
            authoritative: true,
            answers,
            authorities: Vec::new(),
            additionals,
        },
        subject,
        ttl,
    }
}

/// NXDOMAIN or NODATA: the SOA in the authority section, kept for the SOA MINIMUM
/// (RFC 2308).
fn negative(zone: &Zone, serial: u64, code: ResponseCode, subject: Option<String>) -> Computed {
    let negative_ttl = zone.config().negative_ttl;
    let soa = soa_record(
        zone,
        serial,
        zone.apex_name().clone(),
        zone.config().ttl.min(negative_ttl),
    );
    Computed {
        sections: Sections {
            code,
            authoritative: true,
            answers: Vec::new(),
            authorities: vec![soa],
            additionals: Vec::new(),
        },
        subject,
        ttl: negative_ttl,
    }
}

/// The zone apex: SOA and NS (with glue).
fn apex(zone: &Zone, serial: u64, qname: &Name, qtype: RecordType) -> Computed {
    let ttl = zone.config().ttl;
    let soa = || soa_record(zone, serial, qname.clone(), ttl);
    let ns = || Record::from_rdata(qname.clone(), ttl, RData::NS(NS(zone.ns().clone())));
    let (answers, additionals) = match qtype {
        RecordType::SOA => (vec![soa()], Vec::new()),
        RecordType::NS => (vec![ns()], glue(zone, zone.ns(), true, true)),
        RecordType::ANY => (vec![soa(), ns()], glue(zone, zone.ns(), true, true)),
        _ => (Vec::new(), Vec::new()),
    };
    if answers.is_empty() {
        return negative(zone, serial, ResponseCode::NoError, Some(String::new()));
    }
    positive(answers, additionals, Some(String::new()))
}

/// The name server's own name inside the zone: its addresses.
fn name_server(
    zone: &Zone,
    serial: u64,
    qname: &Name,
    qtype: RecordType,
    relative: &str,
) -> Computed {
    let answers = match qtype {
        RecordType::A => glue(zone, qname, true, false),
        RecordType::AAAA => glue(zone, qname, false, true),
        RecordType::ANY => glue(zone, qname, true, true),
        _ => Vec::new(),
    };
    if answers.is_empty() {
        return negative(
            zone,
            serial,
            ResponseCode::NoError,
            Some(relative.to_owned()),
        );
    }
    positive(answers, Vec::new(), Some(relative.to_owned()))
}

/// A and AAAA records of the name server (only when its name lies inside the zone).
fn glue(zone: &Zone, owner: &Name, v4: bool, v6: bool) -> Vec<Record> {
    if zone.ns_relative().is_none() {
        return Vec::new();
    }
    let ttl = zone.config().ttl;
    zone.config()
        .ns_addresses
        .iter()
        .filter_map(|address| match address {
            IpAddr::V4(a) if v4 => Some(RData::A(A(*a))),
            IpAddr::V6(a) if v6 => Some(RData::AAAA(AAAA(*a))),
            _ => None,
        })
        .map(|data| Record::from_rdata(owner.clone(), ttl, data))
        .collect()
}

/// The zone's SOA record; its serial is the index's serial modulo 2³².
fn soa_record(zone: &Zone, serial: u64, owner: Name, ttl: u32) -> Record {
    let config = zone.config();
    let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let soa = SOA::new(
        zone.ns().clone(),
        zone.hostmaster().clone(),
        (serial & 0xffff_ffff) as u32,
        clamp(config.refresh),
        clamp(config.retry),
        clamp(config.expire),
        config.negative_ttl,
    );
    Record::from_rdata(owner, ttl, RData::SOA(soa))
}

/// A record of a name, owned by the query name (its case, compressed to the question).
pub(crate) fn record_of(owner: &Name, rr: &Rr) -> Record {
    let data = match &rr.data {
        Data::Txt(strings) => {
            RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
        }
        Data::Uri {
            priority,
            weight,
            target,
        } => {
            let mut rdata = Vec::with_capacity(4 + target.len());
            rdata.extend_from_slice(&priority.to_be_bytes());
            rdata.extend_from_slice(&weight.to_be_bytes());
            rdata.extend_from_slice(target);
            RData::Unknown {
                code: RecordType::Unknown(URI_TYPE),
                rdata: NULL::with(rdata),
            }
        }
        Data::Naptr {
            order,
            preference,
            regexp,
        } => RData::NAPTR(NAPTR::new(
            *order,
            *preference,
            NAPTR_FLAGS.into(),
            NAPTR_SERVICES.into(),
            regexp.clone().into_boxed_slice(),
            Name::root(),
        )),
    };
    Record::from_rdata(owner.clone(), rr.ttl, data)
}

/// What a query name's answers are cached under.
#[derive(Debug, Clone)]
enum Memo {
    /// The cache subject.
    Subject(Arc<str>),
    /// Not cached (a name that is an identifier's and a prefix's at once).
    Uncached,
}

/// Which subject the answers about the name of an identifier or a prefix are cached
/// under (any other name is its own subject), shared by every thread: sharded
/// maps behind read-write locks, so that two threads rarely touch the same lock. A
/// shard that is full forgets all its names (they are learnt again on the next miss).
struct NameMemo {
    hasher: RandomState,
    shards: Vec<RwLock<HashMap<Box<str>, Memo>>>,
    per_shard: usize,
}

/// Number of shards of the [`NameMemo`].
const MEMO_SHARDS: usize = 64;

impl NameMemo {
    fn new(capacity: usize) -> Self {
        NameMemo {
            hasher: RandomState::new(),
            shards: (0..MEMO_SHARDS)
                .map(|_| RwLock::new(HashMap::new()))
                .collect(),
            per_shard: (capacity / MEMO_SHARDS).max(1),
        }
    }

    fn shard(&self, name: &str) -> Option<&RwLock<HashMap<Box<str>, Memo>>> {
        let hash = self.hasher.hash_one(name);
        self.shards.get((hash % MEMO_SHARDS as u64) as usize)
    }

    fn get(&self, name: &str) -> Option<Memo> {
        let shard = self.shard(name)?;
        let map = shard.read().unwrap_or_else(PoisonError::into_inner);
        map.get(name).cloned()
    }

    fn remove(&self, name: &str) {
        if let Some(shard) = self.shard(name) {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(name);
        }
    }

    fn insert(&self, name: &str, memo: Memo) {
        let Some(shard) = self.shard(name) else {
            return;
        };
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.per_shard && !map.contains_key(name) {
            map.clear();
        }
        map.insert(name.into(), memo);
    }
}

thread_local! {
    /// Variant strings, per thread: the hot path clones one without touching a
    /// reference count that other threads use.
    static VARIANTS: RefCell<HashMap<(u16, bool), Arc<str>>> = RefCell::new(HashMap::new());
}

/// The request handler the sockets share: [`respond`] behind the [`AnswerCache`].
///
/// Answers are cached, encoded, per *subject* and *variant*:
/// - the subject is what the answer says something about, so that a write can drop
///   it: the canonical identifier (as `Identifier`'s `Display` writes it) for the name
///   of an identifier, `prefix:<namespace key>` for the name of a prefix, and the name
///   relative to the zone for everything else — the apex (`""`), the name server,
///   empty non-terminals and NXDOMAIN. [`super::invalidation_subjects`] gives the
///   subjects a write changes.
/// - the variant is `dns:<qtype number>:e` for a query with EDNS and `dns:<qtype>:n`
///   without (`dns:16:e` for TXT with EDNS).
///
/// The full response is cached (up to 65,535 bytes) for the smallest TTL of its
/// records, a negative answer for the SOA MINIMUM. A cache hit gets the query's ID,
/// RD, CD and DO bits and the letter case of its question patched in, and is cut to
/// its question with TC set when it does not fit the UDP payload size.
///
/// Which subject the name of an identifier or prefix has is remembered (name →
/// subject; other names are their own subject, so unknown names queried at random
/// fill nothing but the cache) without any invalidation: the subject of a name only
/// changes when a write creates or removes the name, and that write drops the old
/// subject, so a stale memo only costs a cache miss, after which it is corrected.
pub struct Responder {
    zone: Zone,
    index: Arc<dyn ZoneIndex>,
    cache: AnswerCache,
    names: NameMemo,
    max_udp_payload: u16,
}

impl Responder {
    /// A responder for `zone` reading `index`, caching in `cache`; it advertises
    /// [`DEFAULT_MAX_UDP_PAYLOAD`] and remembers the subjects of about a million names.
    pub fn new(zone: Zone, index: Arc<dyn ZoneIndex>, cache: AnswerCache) -> Self {
        Self {
            zone,
            index,
            cache,
            names: NameMemo::new(1 << 20),
            max_udp_payload: DEFAULT_MAX_UDP_PAYLOAD,
        }
    }

    /// The UDP payload size advertised in OPT records (over UDP the
    /// [`Transport::Udp`] limit is advertised; this is for TCP and cached answers).
    pub fn with_max_udp_payload(mut self, bytes: u16) -> Self {
        self.max_udp_payload = bytes.max(512);
        self
    }

    /// Remembers the subjects of about `names` names (past that, some are forgotten
    /// and learnt again on their next query).
    pub fn with_name_capacity(mut self, names: u64) -> Self {
        self.names = NameMemo::new(usize::try_from(names).unwrap_or(usize::MAX));
        self
    }

    /// The zone.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// Answers `query` into `out` (cleared first). Returns whether there is something to
    /// send: `false` for a message that is dropped (see [`respond`]).
    pub fn respond(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        if self.respond_from_cache(query, transport, out) {
            return true;
        }
        let parsed = match message::parse(query) {
            Parsed::Drop => return false,
            Parsed::Query(parsed) => parsed,
            error @ Parsed::Error { .. } => {
                encode_error(error, transport, self.max_udp_payload, out);
                return true;
            }
        };
        let mut relative = NameBuf::new();
        let cacheable = parsed.edns.is_none_or(|e| e.version == 0)
            && parsed.query.query_class() == DNSClass::IN
            && relative.place(&self.zone, parsed.query.name())
                == (Placement::Inside { plain: true })
            && !matches!(
                parsed.query.query_type(),
                RecordType::AXFR | RecordType::IXFR
            );
        if !cacheable {
            let serial = self.index.serial();
            let computed = compute(
                &self.zone,
                self.index.as_ref(),
                &parsed,
                &mut relative,
                serial,
            );
            let advertised = transport.advertised(self.max_udp_payload);
            encode_answer(&parsed, advertised, computed.sections, out);
            fit(out, transport, parsed.edns);
            return true;
        }
        let variant = variant(u16::from(parsed.query.query_type()), parsed.edns.is_some());
        let memo = self.names.get(relative.as_str());
        if let Some(bytes) = self.cached(&relative, &memo, &variant) {
            out.clear();
            out.extend_from_slice(&bytes);
            message::patch(out, query, parsed.edns);
            fit(out, transport, parsed.edns);
            return true;
        }
        let before = self.index.serial();
        let before_value = before.as_ref().ok().copied();
        let computed = compute(
            &self.zone,
            self.index.as_ref(),
            &parsed,
            &mut relative,
            before,
        );
        // Only zone answers are kept, not SERVFAIL.
        let zone_answer = computed.sections.authoritative;
        // Cached answers serve both transports: they advertise the server's limit.
        encode_answer(&parsed, self.max_udp_payload, computed.sections, out);
        if zone_answer {
            let subject: Option<Arc<str>> = computed.subject.map(Arc::from);
            match &subject {
                Some(subject) if **subject == *relative.as_str() => {
                    if memo.is_some() {
                        self.names.remove(relative.as_str());
                    }
                }
                Some(subject) => self
                    .names
                    .insert(relative.as_str(), Memo::Subject(subject.clone())),
                None => self.names.insert(relative.as_str(), Memo::Uncached),
            }
            if let Some(subject) = subject
                && computed.ttl > 0
            {
                self.cache.insert(
                    CacheKey {
                        subject: subject.clone(),
                        variant,
                    },
                    Bytes::copy_from_slice(out),
                    Duration::from_secs(u64::from(computed.ttl)),
                );
                // A write that committed while this answer was computed may have
                // dropped the subject before the insert: drop it again.
                if self.index.serial().ok() != before_value {
                    self.cache.invalidate_subject(&subject);
                }
            }
        }
        fit(out, transport, parsed.edns);
        true
    }
}

impl Responder {
    /// Answers a common query from the cache without hickory-proto
    /// ([`message::quick_parse`]); `false` when the query is of another form or its
    /// answer is not cached, and the full path answers it.
    fn respond_from_cache(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        let Some(quick) = message::quick_parse(query) else {
            return false;
        };
        // What the full path answers without the cache: EDNS versions above 0, zone
        // transfers, questions for OPT.
        if quick.edns.is_some_and(|e| e.version > 0)
            || matches!(
                RecordType::from(quick.qtype),
                RecordType::AXFR | RecordType::IXFR | RecordType::OPT
            )
        {
            return false;
        }
        let mut relative = NameBuf::new();
        if relative.place_wire(&self.zone, quick.labels) != (Placement::Inside { plain: true }) {
            return false;
        }
        let variant = variant(quick.qtype, quick.edns.is_some());
        let memo = self.names.get(relative.as_str());
        let Some(bytes) = self.cached(&relative, &memo, &variant) else {
            return false;
        };
        out.clear();
        out.extend_from_slice(&bytes);
        message::patch(out, query, quick.edns);
        fit(out, transport, quick.edns);
        true
    }

    /// The cached answer for the name in `relative` (remembered as `memo`): names of
    /// identifiers and prefixes are remembered with their subject; any other name is
    /// its own subject.
    fn cached(&self, relative: &NameBuf, memo: &Option<Memo>, variant: &Arc<str>) -> Option<Bytes> {
        let subject = match memo {
            Some(Memo::Subject(subject)) => subject.clone(),
            Some(Memo::Uncached) => return None,
            None => Arc::from(relative.as_str()),
        };
        self.cache.get(&CacheKey {
            subject,
            variant: variant.clone(),
        })
    }
}

/// The cache variant of a query type with or without EDNS, from a per-thread table.
fn variant(qtype: u16, edns: bool) -> Arc<str> {
    let key = (qtype, edns);
    VARIANTS.with_borrow_mut(|variants| {
        variants
            .entry(key)
            .or_insert_with(|| variant_text(key))
            .clone()
    })
}

/// `dns:<qtype>:e` or `dns:<qtype>:n`.
fn variant_text((qtype, edns): (u16, bool)) -> Arc<str> {
    format!("dns:{qtype}:{}", if edns { 'e' } else { 'n' }).into()
}
