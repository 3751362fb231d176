//! The DNS front end: a node answers for its zone over UDP and TCP, so that ordinary
//! DNS tools and resolvers resolve medical identifiers.
//!
//! - [`Zone`] / [`ZoneConfig`] — the zone's name, name server, SOA and TTLs.
//! - [`ZoneIndex`] — where answers come from: the registry's sled [`medid_registry::Index`]
//!   in a node, [`MemoryIndex`] in tests.
//! - [`respond`] — the pure request handler (bytes in, bytes out, no I/O);
//!   [`Responder`] — the same behind the [`AnswerCache`](crate::AnswerCache).
//! - [`start`] / [`DnsServer`] — the sockets: one UDP socket per core (SO_REUSEPORT)
//!   and a TCP listener, with [`RateLimit`]ing on UDP.
//! - [`export_zone`] — the zone as a master file for NSD, Knot or BIND.
//! - [`invalidation_subjects`] — what a write makes stale in the cache.
//!
//! # Names
//!
//! An identifier's name is [`medid_registry::dnsname`]'s name below the zone: with the
//! zone `medid.example`, `86.1000.23/pkg-1` is `pkg-1.23.1000.86.hdl.medid.example.`,
//! `urn:oid:1.2.156.112604.1` is `1.112604.156.2.1.oid.medid.example.` and
//! `/01/09506000134352/10/lot7` is `lot7.10.09506000134352.01.gs1.medid.example.`.
//! Upper case, dots and other characters in a handle suffix or GS1 value give a hashed
//! label; see that module for the exact rules.
//!
//! # Answers
//!
//! | name | type | answer |
//! |---|---|---|
//! | the apex | SOA, NS | the SOA (MNAME the name server, serial the ledger size modulo 2³²) and the NS record, with the name server's A/AAAA as glue when it lies inside the zone |
//! | the name server (`ns.<zone>`) | A, AAAA | its configured addresses |
//! | an identifier | TXT | one record per **public** value: `<index> <TYPE> <data>`, as one text split into character-strings of at most 255 bytes (concatenate them) |
//! | an identifier | URI (256) | one record per public `URL` value: priority 10, weight 1, target the URL (RFC 7553) |
//! | an OID identifier or OID prefix | NAPTR | one record per public `URL` value: order 100, preference the value's index, flags `U`, service `ORS+UINF` (ITU-T X.672's URI information service), regexp `!^.*$!<URL>!`, replacement `.`; and, when [`ZoneConfig::resolution_url`] is set, one with preference 65535 pointing at the node's own resolution URL for the OID |
//! | a prefix | TXT | `prefix <namespace key>` (`prefix hdl:86.1000.23`) |
//! | any of these | ANY | all of its records |
//!
//! - Restricted values (a `commitment`, a read list) never appear.
//! - TTL: a record's TTL is its value's `ttl`, except that all records of one RRset take
//!   the smallest TTL among them (RFC 2181 §5.2); the zone's records use
//!   [`ZoneConfig::ttl`].
//! - A name that exists but has no record of the type asked: NODATA (NOERROR, no
//!   answer, the SOA in the authority section). Names with nothing of their own but
//!   names below them (`hdl.<zone>`, `86.hdl.<zone>` …) are empty non-terminals: NODATA.
//! - An unknown name: NXDOMAIN with the SOA. Negative answers may be cached for the SOA
//!   MINIMUM ([`ZoneConfig::negative_ttl`]), which is also the SOA's TTL there.
//! - Every answer from the zone has AA set.
//! - Errors: REFUSED for a name outside the zone, a class other than IN, and zone
//!   transfers (AXFR, IXFR: use [`export_zone`] and a secondary server); FORMERR for a
//!   malformed query, a question count other than 1, two OPT records or a query for
//!   type OPT; NOTIMP for an opcode other than QUERY; BADVERS for EDNS versions above
//!   0; SERVFAIL when the index cannot be read. A message shorter than a DNS header,
//!   or with QR set, gets no answer.
//!
//! # Sizes
//!
//! EDNS(0): a query with an OPT record gets one back (version 0, DO copied, payload
//! size [`DnsConfig::max_udp_payload`], 1232 by default). A UDP response is at most 512
//! bytes without EDNS, else the smaller of the client's payload size and the server's;
//! a response that does not fit is sent as its question alone with TC set, and the
//! client retries over TCP, where responses are complete up to 65,535 bytes.
//!
//! # TCP
//!
//! RFC 7766: each message has a two-byte length; a connection carries any number of
//! queries, answered in order (pipelined queries are answered together in one write).
//! A connection is closed after [`DnsConfig::tcp_idle_timeout`] without a complete
//! query; beyond [`DnsConfig::tcp_max_connections`] a new connection is closed at once.
//!
//! # Abuse
//!
//! UDP responses are rate-limited per source network ([`RateLimit`]): over the limit
//! they are dropped, except every `slip`-th, sent truncated (TC=1, no records) so that
//! a real client can retry over TCP. `0` responses per second turns this off (for
//! benchmarks).

mod message;
mod records;
mod responder;
mod rrl;
mod server;
mod zone;
mod zonefile;

pub use responder::{DEFAULT_MAX_UDP_PAYLOAD, Responder, Transport, respond};
pub use rrl::{RateLimit, RateLimiter, Verdict};
pub use server::{DnsConfig, DnsError, DnsServer, start};
pub use zone::{
    MemoryIndex, SUBZONE_NS_LABEL, Zone, ZoneConfig, ZoneConfigError, ZoneIndex, ZoneReadError,
};
pub use zonefile::{ExportError, ExportSummary, export_zone};

use medid_registry::dnsname::reversed_name;

/// The DNS cache subjects that index changes make stale, given the index keys a commit
/// changed (as the sequencer's commit hook reports them):
///
/// - `i/<identifier>` → the identifier (the subject of its name's answers);
/// - `p/<namespace key>` → `prefix:<namespace key>`;
/// - `a/<reversed name>` and `a/<reversed name> prefix` (a name appeared or went) →
///   the name relative to the zone and every name above it up to the apex (`""`): an
///   NXDOMAIN may now be an empty non-terminal or the reverse, and the SOA serial moved.
///
/// Other keys change nothing DNS says. Each subject is listed once.
pub fn invalidation_subjects<'a>(changed_keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut subjects: Vec<String> = Vec::new();
    let mut add = |subject: String| {
        if !subjects.contains(&subject) {
            subjects.push(subject);
        }
    };
    for key in changed_keys {
        if let Some(id) = key.strip_prefix("i/") {
            add(id.to_owned());
        } else if let Some(namespace) = key.strip_prefix("p/") {
            add(format!("prefix:{namespace}"));
        } else if let Some(reversed) = key.strip_prefix("a/") {
            let reversed = reversed.strip_suffix(" prefix").unwrap_or(reversed);
            let mut name = reversed_name(reversed);
            loop {
                add(name.clone());
                match name.split_once('.') {
                    Some((_, parent)) => name = parent.to_owned(),
                    None if name.is_empty() => break,
                    None => name.clear(),
                }
            }
        }
    }
    subjects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_name_makes_its_ancestors_stale() {
        let subjects = invalidation_subjects([
            "i/86.1000/PKG-1",
            "a/hdl.86.1000.pkg-1",
            "p/hdl:86.1000.23",
            "a/hdl.86.1000.23 prefix",
            "n/did:key:z6Mk 00",
        ]);
        assert_eq!(
            subjects,
            [
                "86.1000/PKG-1",
                "pkg-1.1000.86.hdl",
                "1000.86.hdl",
                "86.hdl",
                "hdl",
                "",
                "prefix:hdl:86.1000.23",
                "23.1000.86.hdl",
            ]
        );
    }
}
