//! DNS messages on the wire: reading a query once (hickory-proto's decoder, section by
//! section), writing responses (hickory-proto's encoder), and the byte-level edits a
//! cached response gets — a new ID, the query's flags and letter case, truncation.

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

/// Size of the DNS header.
pub(crate) const HEADER_LEN: usize = 12;
/// Size of the OPT record medid writes: root name, type, class, TTL, empty RDATA.
const OPT_LEN: usize = 11;
/// Largest UDP response without EDNS (RFC 1035).
pub(crate) const CLASSIC_UDP_LIMIT: usize = 512;
/// Largest message over TCP.
pub(crate) const TCP_LIMIT: usize = 65_535;

/// EDNS of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EdnsInfo {
    /// The requestor's UDP payload size.
    pub(crate) payload: u16,
    /// The DNSSEC OK bit.
    pub(crate) dnssec_ok: bool,
    /// The EDNS version.
    pub(crate) version: u8,
}

/// A query, read once.
#[derive(Debug, Clone)]
pub(crate) struct ParsedQuery {
    pub(crate) id: u16,
    pub(crate) recursion_desired: bool,
    pub(crate) checking_disabled: bool,
    pub(crate) query: Query,
    pub(crate) edns: Option<EdnsInfo>,
}

/// What a received message is.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Not answerable: no header, or a response. Dropped silently.
    Drop,
    /// Answered by an error code alone (FORMERR, NOTIMP), with the header fields echoed.
    Error {
        id: u16,
        op_code: OpCode,
        recursion_desired: bool,
        checking_disabled: bool,
        code: ResponseCode,
        /// The question, when it could be read (echoed in the answer).
        query: Option<Query>,
        edns: Option<EdnsInfo>,
    },
    /// A standard query with one question.
    Query(ParsedQuery),
}

/// Reads a query: header, the one question, and the OPT record of the additional
/// section. Records in the answer and authority sections are read (to check them) and
/// ignored.
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
    let mut decoder = BinDecoder::new(bytes);
    let Ok(header) = Header::read(&mut decoder) else {
        return Parsed::Drop;
    };
    if header.metadata.message_type == MessageType::Response {
        return Parsed::Drop;
    }
    let error = |code: ResponseCode, query: Option<Query>, edns: Option<EdnsInfo>| Parsed::Error {
        id: header.metadata.id,
        op_code: header.metadata.op_code,
        recursion_desired: header.metadata.recursion_desired,
        checking_disabled: header.metadata.checking_disabled,
        code,
        query,
        edns,
    };
    if header.metadata.op_code != OpCode::Query {
        return error(ResponseCode::NotImp, None, None);
    }
    if header.counts.queries != 1 {
        return error(ResponseCode::FormErr, None, None);
    }
    let Ok(query) = Query::read(&mut decoder) else {
        return error(ResponseCode::FormErr, None, None);
    };
    let others = u32::from(header.counts.answers) + u32::from(header.counts.authorities);
    for _ in 0..others {
        if Record::read(&mut decoder).is_err() {
            return error(ResponseCode::FormErr, Some(query), None);
        }
    }
    let mut edns = None;
    for _ in 0..header.counts.additionals {
        let Ok(record) = Record::read(&mut decoder) else {
            return error(ResponseCode::FormErr, Some(query), None);
        };
        if record.record_type() == RecordType::OPT {
            if edns.is_some() || !record.name.is_root() {
                // RFC 6891 §6.1.1: one OPT at most, owned by the root.
                return error(ResponseCode::FormErr, Some(query), None);
            }
            edns = Some(EdnsInfo {
                payload: u16::from(record.dns_class),
                dnssec_ok: record.ttl & 0x8000 != 0,
                version: ((record.ttl >> 16) & 0xff) as u8,
            });
        }
    }
    if query.query_type() == RecordType::OPT {
        return error(ResponseCode::FormErr, Some(query), edns);
    }
    Parsed::Query(ParsedQuery {
        id: header.metadata.id,
        recursion_desired: header.metadata.recursion_desired,
        checking_disabled: header.metadata.checking_disabled,
        query,
        edns,
    })
}

/// The one question of a common query, read by [`quick_parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuickQuery<'a> {
    /// The question's name as on the wire: its labels, each after its length byte,
    /// without the final root label.
    pub(crate) labels: &'a [u8],
    /// The question's type.
    pub(crate) qtype: u16,
    /// The query's OPT record.
    pub(crate) edns: Option<EdnsInfo>,
}

/// Reads the query almost every client sends without hickory-proto: QR 0, opcode
/// QUERY, one question whose name is not compressed, class IN, no answer or authority
/// records, and either no additional record or one OPT record owned by the root with
/// no options, nothing after it. Any other message gives `None` and is read by
/// [`parse`], which answers it the same way (this reads a subset of what [`parse`]
/// accepts, to the same values).
pub(crate) fn quick_parse(bytes: &[u8]) -> Option<QuickQuery<'_>> {
    let header = bytes.get(..HEADER_LEN)?;
    // QR 0 and opcode 0 (QUERY); one question, no answers, no authorities, at most
    // one additional record.
    if header[2] & 0xf8 != 0 || header[4..10] != [0, 1, 0, 0, 0, 0] || header[10] != 0 {
        return None;
    }
    let additionals = header[11];
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*bytes.get(at)?);
        if len == 0 {
            break;
        }
        // A compression pointer or a reserved label type.
        if len > 63 {
            return None;
        }
        at += 1 + len;
        // At most 255 bytes with the root label.
        if at - HEADER_LEN >= 255 {
            return None;
        }
    }
    let labels = bytes.get(HEADER_LEN..at)?;
    let question = bytes.get(at + 1..at + 5)?;
    let qtype = u16::from_be_bytes([question[0], question[1]]);
    if question[2..4] != [0, 1] {
        return None;
    }
    let rest = bytes.get(at + 5..)?;
    let edns = match (additionals, rest) {
        (0, []) => None,
        // Root name, type OPT, class (payload), TTL (extended RCODE, version, DO),
        // RDLENGTH 0.
        (1, [0, 0, 41, p0, p1, _rcode, version, flags, _, 0, 0]) => Some(EdnsInfo {
            payload: u16::from_be_bytes([*p0, *p1]).max(512),
            dnssec_ok: flags & 0x80 != 0,
            version: *version,
        }),
        _ => return None,
    };
    Some(QuickQuery {
        labels,
        qtype,
        edns,
    })
}

/// The sections of a response.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    pub(crate) code: ResponseCode,
    pub(crate) authoritative: bool,
    pub(crate) answers: Vec<Record>,
    pub(crate) authorities: Vec<Record>,
    pub(crate) additionals: Vec<Record>,
}

/// Header fields a response echoes from its query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Echo {
    pub(crate) id: u16,
    pub(crate) op_code: OpCode,
    pub(crate) recursion_desired: bool,
    pub(crate) checking_disabled: bool,
}

/// Writes a response into `out` (cleared first), at most [`TCP_LIMIT`] bytes: records
/// that do not fit are left out and TC is set. With `edns`, the response has an OPT
/// record (last in the message, without options) advertising `max_payload`.
pub(crate) fn encode(
    echo: Echo,
    query: Option<&Query>,
    edns: Option<EdnsInfo>,
    max_payload: u16,
    sections: Sections,
    out: &mut Vec<u8>,
) {
    let mut message = Message::response(echo.id, echo.op_code);
    message.metadata.authoritative = sections.authoritative;
    message.metadata.recursion_desired = echo.recursion_desired;
    message.metadata.checking_disabled = echo.checking_disabled;
    message.metadata.response_code = sections.code;
    if let Some(query) = query {
        message.add_query(query.clone());
    }
    message.answers = sections.answers;
    message.authorities = sections.authorities;
    message.additionals = sections.additionals;
    if let Some(info) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(max_payload.max(512));
        opt.set_version(0);
        opt.set_dnssec_ok(info.dnssec_ok);
        message.set_edns(opt);
    }
    out.clear();
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(TCP_LIMIT as u16);
    if message.emit(&mut encoder).is_err() {
        // Only the header and question can fail to fit (they cannot: a question is
        // at most 259 bytes); answer with the bare header then.
        out.clear();
        let mut header = Message::error_msg(echo.id, echo.op_code, ResponseCode::ServFail);
        header.metadata.recursion_desired = echo.recursion_desired;
        let mut encoder = BinEncoder::new(out);
        let _ = header.emit(&mut encoder);
    }
}

/// The end of the question section of a message written by [`encode`]: after the
/// header when it has no question, else after the first (uncompressed) name, type and
/// class.
pub(crate) fn question_end(message: &[u8]) -> Option<usize> {
    let qdcount = u16::from_be_bytes([*message.get(4)?, *message.get(5)?]);
    if qdcount == 0 {
        return Some(HEADER_LEN);
    }
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*message.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    let end = at + 4;
    (end <= message.len()).then_some(end)
}

/// Whether `message` ends with the OPT record [`encode`] writes.
fn has_trailing_opt(message: &[u8], question_end: usize) -> bool {
    let len = message.len();
    len >= question_end + OPT_LEN
        && message.get(len - OPT_LEN..len - OPT_LEN + 3) == Some(&[0, 0, 41][..])
        && message.get(len - 2..) == Some(&[0, 0][..])
}

/// Turns a cached response into the answer to `query`: its ID, RD and CD bits, the
/// letter case of its question (and so of every owner name compressed to it), and its
/// DNSSEC OK bit. `query` asked the same question, modulo case.
pub(crate) fn patch(response: &mut [u8], query: &[u8], edns: Option<EdnsInfo>) {
    let (Some(head), Some(query_head)) = (response.get_mut(..HEADER_LEN), query.get(..HEADER_LEN))
    else {
        return;
    };
    head[0] = query_head[0];
    head[1] = query_head[1];
    head[2] = (head[2] & !0x01) | (query_head[2] & 0x01);
    head[3] = (head[3] & !0x10) | (query_head[3] & 0x10);
    if let Some(end) = question_end(response) {
        let name = HEADER_LEN..end - 4;
        if let (Some(theirs), Some(ours)) = (query.get(name.clone()), response.get_mut(name))
            && theirs.eq_ignore_ascii_case(ours)
        {
            ours.copy_from_slice(theirs);
        }
        if let Some(info) = edns
            && has_trailing_opt(response, end)
        {
            let flags = response.len() - 4;
            if let Some(byte) = response.get_mut(flags) {
                *byte = (*byte & 0x7f) | if info.dnssec_ok { 0x80 } else { 0 };
            }
        }
    }
}

/// Cuts `message` down to its header, question and OPT record, with TC set: the answer
/// to a UDP query whose response does not fit, or a rate-limited "slip".
pub(crate) fn truncate(message: &mut Vec<u8>) {
    let Some(end) = question_end(message) else {
        return;
    };
    let mut opt = [0u8; OPT_LEN];
    let has_opt = has_trailing_opt(message, end);
    if has_opt && let Some(tail) = message.get(message.len() - OPT_LEN..) {
        opt.copy_from_slice(tail);
    }
    message.truncate(end);
    if let Some(head) = message.get_mut(..HEADER_LEN) {
        head[2] |= 0x02;
        head[6..12].copy_from_slice(&[0, 0, 0, 0, 0, u8::from(has_opt)]);
    }
    if has_opt {
        message.extend_from_slice(&opt);
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::Name;

    use super::*;

    fn query_bytes(name: &str, edns: bool) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = 0x1234;
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(
            Name::from_ascii(name).unwrap(),
            RecordType::TXT,
        ));
        if edns {
            let mut opt = Edns::new();
            opt.set_max_payload(4096);
            opt.set_dnssec_ok(true);
            message.set_edns(opt);
        }
        message.to_vec().unwrap()
    }

    #[test]
    fn reads_a_query_and_its_edns() {
        let Parsed::Query(q) = parse(&query_bytes("a.example.", true)) else {
            panic!("a query");
        };
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.query.query_type(), RecordType::TXT);
        let edns = q.edns.unwrap();
        assert_eq!(
            (edns.payload, edns.dnssec_ok, edns.version),
            (4096, true, 0)
        );
        assert!(matches!(parse(&[1, 2, 3]), Parsed::Drop));
    }

    /// `quick_parse` reads a subset of what `parse` reads, to the same values.
    fn check_quick(bytes: &[u8], quick: bool) {
        let read = quick_parse(bytes);
        assert_eq!(read.is_some(), quick, "{bytes:?}");
        let Some(read) = read else { return };
        let Parsed::Query(full) = parse(bytes) else {
            panic!("parse reads what quick_parse reads: {bytes:?}");
        };
        assert_eq!(read.qtype, u16::from(full.query.query_type()));
        assert_eq!(read.edns, full.edns);
        let mut name = Vec::new();
        for label in full.query.name().iter() {
            name.push(label.len() as u8);
            name.extend_from_slice(label);
        }
        assert_eq!(read.labels, &name[..]);
    }

    #[test]
    fn quick_parse_agrees_with_parse() {
        check_quick(&query_bytes("a.Example.", false), true);
        check_quick(&query_bytes("a.example.", true), true);
        let mut small = query_bytes("a.example.", true);
        // A payload size under 512 counts as 512.
        let len = small.len();
        small[len - 8..len - 6].copy_from_slice(&100u16.to_be_bytes());
        check_quick(&small, true);
        // An OPT with an option, trailing bytes, a compressed name, a response, two
        // questions, another class: the full path.
        let mut cookie = Message::query();
        cookie.add_query(Query::query(
            Name::from_ascii("a.example.").unwrap(),
            RecordType::TXT,
        ));
        let mut opt = Edns::new();
        opt.options_mut()
            .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                10,
                vec![1; 8],
            ));
        cookie.set_edns(opt);
        check_quick(&cookie.to_vec().unwrap(), false);
        let mut trailing = query_bytes("a.example.", false);
        trailing.push(0);
        check_quick(&trailing, false);
        let mut compressed = query_bytes("a.example.", false);
        compressed.truncate(HEADER_LEN);
        compressed.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1]);
        check_quick(&compressed, false);
        let mut response = query_bytes("a.example.", false);
        response[2] |= 0x80;
        check_quick(&response, false);
        let mut chaos = query_bytes("a.example.", false);
        let len = chaos.len();
        chaos[len - 1] = 3;
        check_quick(&chaos, false);
        check_quick(&[0; 5], false);
        check_quick(&query_bytes(".", false), true);
    }

    #[test]
    fn patch_and_truncate() {
        let Parsed::Query(q) = parse(&query_bytes("A.Example.", true)) else {
            panic!("a query");
        };
        let mut response = Vec::new();
        let echo = Echo {
            id: 1,
            op_code: OpCode::Query,
            recursion_desired: false,
            checking_disabled: false,
        };
        let lower = Query::query(Name::from_ascii("a.example.").unwrap(), RecordType::TXT);
        let edns = Some(EdnsInfo {
            payload: 4096,
            dnssec_ok: false,
            version: 0,
        });
        encode(
            echo,
            Some(&lower),
            edns,
            1232,
            Sections::default(),
            &mut response,
        );
        let query = query_bytes("A.Example.", true);
        patch(&mut response, &query, q.edns);
        let message = Message::from_vec(&response).unwrap();
        assert_eq!(message.metadata.id, 0x1234);
        assert!(message.metadata.recursion_desired);
        assert_eq!(message.queries[0].name().to_string(), "A.Example.");
        assert!(message.edns.as_ref().unwrap().flags().dnssec_ok);
        truncate(&mut response);
        let message = Message::from_vec(&response).unwrap();
        assert!(message.metadata.truncation);
        assert_eq!(message.edns.unwrap().max_payload(), 1232);
    }
}
