//! Walking the hierarchy: from the root node, follow referrals to the node that answers.
//!
//! The logic is pure (bytes and JSON in, a [`DnsStep`] or [`HttpStep`] out) so that
//! every walker shares it: the resolving proxy ([`crate::proxy`], async, cached) and
//! `medid resolve --root` (blocking, one request per hop).
//!
//! - DNS ([`dns_query`], [`classify_dns`]): a node answers a name under a prefix it
//!   delegated with a referral (no answer, AA off, the cut's NS in the authority section,
//!   the child's addresses as glue); the walker asks the glue addresses next.
//! - HTTP ([`classify_handle`]): a node answers Handle `responseCode` 301 with a
//!   `referral` naming the child node ([`NodeDelegation`]) and the ledger index of the
//!   delegation; the walker asks the child's HTTP URL next.
//! - [`verify`]: checks a walk from the root's checkpoint key down (the delegation's
//!   inclusion in the parent's log, the child's checkpoint under the delegated key,
//!   the answer's inclusion in the child's log).

pub mod verify;

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use medid_registry::delegation::NodeDelegation;
use serde_json::Value;

/// The most referrals a walk follows before it gives up (a loop, or a misconfigured
/// hierarchy).
pub const MAX_HOPS: usize = 8;

/// Why a step of a walk failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The node's answer is not a DNS response to the question.
    #[error("not a DNS response to the question: {0}")]
    BadResponse(String),
    /// A referral without any glue address.
    #[error("a referral to {0} without glue addresses")]
    NoGlue(String),
    /// A referral that does not lead below the current node's cut.
    #[error("a referral to {cut} does not lead closer to {name}")]
    Lame {
        /// The cut referred to.
        cut: String,
        /// The name asked.
        name: String,
    },
    /// The node answered an error.
    #[error("the node answered {0}")]
    Failed(String),
    /// More than [`MAX_HOPS`] referrals.
    #[error("more than {MAX_HOPS} referrals")]
    TooManyHops,
}

/// A DNS query for `name`/`qtype` with ID `id`, recursion not desired (a walker asks
/// authoritative servers), with EDNS(0) for 1232 bytes.
pub fn dns_query(id: u16, name: &Name, qtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), qtype));
    let mut edns = hickory_proto::op::Edns::new();
    edns.set_max_payload(1232);
    message.edns = Some(edns);
    message.to_vec().unwrap_or_default()
}

/// What a node said to a walker's DNS query.
#[derive(Debug, Clone, PartialEq)]
pub enum DnsStep {
    /// An authoritative answer (NOERROR with records, NODATA or NXDOMAIN): the end of
    /// the walk. `ttl` is how long it may be kept: the smallest answer TTL, or for a
    /// negative answer the SOA MINIMUM (RFC 2308).
    Final {
        /// The response code.
        code: ResponseCode,
        /// The number of answer records.
        answers: usize,
        /// How long it may be cached, in seconds.
        ttl: u32,
    },
    /// A referral to a child zone.
    Referral {
        /// The cut: the name of the delegated zone (lower case, no trailing dot).
        cut: String,
        /// The glue addresses of its name servers.
        servers: Vec<IpAddr>,
        /// The NS record's TTL.
        ttl: u32,
    },
}

/// Reads a node's DNS response to `query_id`: the end of the walk, a referral, or why
/// not (SERVFAIL, REFUSED, a lame referral). `current_cut` is the cut of the node asked
/// (`""` for the root); a referral must lead strictly below it, toward `name`.
pub fn classify_dns(
    response: &[u8],
    query_id: u16,
    name: &Name,
    current_cut: &str,
) -> Result<DnsStep, WalkError> {
    let message = Message::from_vec(response).map_err(|e| WalkError::BadResponse(e.to_string()))?;
    if message.metadata.id != query_id || message.metadata.message_type != MessageType::Response {
        return Err(WalkError::BadResponse(
            "wrong ID or not a response".to_owned(),
        ));
    }
    let code = message.metadata.response_code;
    if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
        return Err(WalkError::Failed(code.to_string()));
    }
    let ns = message.authorities.iter().find_map(|r| match &r.data {
        RData::NS(ns) => Some((r.name.clone(), ns.0.clone(), r.ttl)),
        _ => None,
    });
    if message.answers.is_empty()
        && !message.metadata.authoritative
        && code == ResponseCode::NoError
        && let Some((owner, server, ttl)) = ns
    {
        let cut = lower(&owner);
        let below = current_cut.is_empty() || cut.ends_with(&format!(".{current_cut}"));
        if !below || !owner.zone_of(name) {
            return Err(WalkError::Lame {
                cut,
                name: lower(name),
            });
        }
        let servers: Vec<IpAddr> = message
            .additionals
            .iter()
            .filter(|r| r.name == server)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        if servers.is_empty() {
            return Err(WalkError::NoGlue(cut));
        }
        return Ok(DnsStep::Referral { cut, servers, ttl });
    }
    let ttl = if message.answers.is_empty() {
        message
            .authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.minimum.min(r.ttl)),
                _ => None,
            })
            .unwrap_or(0)
    } else {
        message.answers.iter().map(|r| r.ttl).min().unwrap_or(0)
    };
    Ok(DnsStep::Final {
        code,
        answers: message.answers.len(),
        ttl,
    })
}

/// A name in lower case without its trailing dot.
pub fn lower(name: &Name) -> String {
    let text = name.to_ascii().to_ascii_lowercase();
    text.strip_suffix('.').unwrap_or(&text).to_owned()
}

/// What a node said to a walker's `GET /api/handles/{id}`.
// A step lives for one hop; boxing the delegation would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum HttpStep {
    /// The record (`responseCode` 1 or 200), the end of the walk; `ttl` is the smallest
    /// value TTL, in seconds.
    Found {
        /// The smallest `ttl` of the values.
        ttl: u32,
    },
    /// Not found (`responseCode` 100) at the node responsible: the end of the walk.
    NotFound,
    /// Another node answers for the identifier.
    Referral {
        /// The delegated prefix (namespace key, `hdl:86.1000.23`).
        prefix: String,
        /// The node it is delegated to.
        node: NodeDelegation,
        /// The ledger index of the delegation at the referring node.
        log_index: u64,
    },
    /// A child node's answer for identifiers outside its prefixes: ask its parent.
    Parent(String),
    /// `responseCode` 301 without a referral: no node of the hierarchy covers the
    /// identifier (the root's final word).
    NotResponsible,
}

/// Reads a node's Handle answer.
pub fn classify_handle(status: u16, body: &Value) -> Result<HttpStep, WalkError> {
    let code = body["responseCode"].as_u64();
    match code {
        Some(1 | 200) if status == 200 => Ok(HttpStep::Found {
            ttl: body["values"]
                .as_array()
                .and_then(|values| values.iter().filter_map(|v| v["ttl"].as_u64()).min())
                .map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX)),
        }),
        Some(100) => Ok(HttpStep::NotFound),
        Some(301) => {
            let referral = &body["referral"];
            if let Some(parent) = referral["parent"].as_str() {
                return Ok(HttpStep::Parent(parent.to_owned()));
            }
            if referral.is_null() {
                return Ok(HttpStep::NotResponsible);
            }
            let node: NodeDelegation =
                serde_json::from_value(referral["node"].clone()).map_err(|e| {
                    WalkError::BadResponse(format!("responseCode 301 without a referral: {e}"))
                })?;
            node.check()
                .map_err(|e| WalkError::BadResponse(format!("referral: {e}")))?;
            Ok(HttpStep::Referral {
                prefix: referral["prefix"].as_str().unwrap_or_default().to_owned(),
                node,
                log_index: referral["logIndex"].as_u64().unwrap_or_default(),
            })
        }
        _ => Err(WalkError::Failed(format!(
            "HTTP {status}: {}",
            body["message"].as_str().unwrap_or("no message")
        ))),
    }
}
