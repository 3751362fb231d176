//! Delegation of a prefix to another node: [`NodeDelegation`], the part of a
//! `prefix.delegate` operation that names the child node which answers for the prefix.
//!
//! A plain `prefix.delegate` hands a sub-prefix to other controllers *at this node*. With
//! a `node` object it hands the prefix to another node: the parent stops answering for
//! anything under it and refers clients there (DNS: an NS referral with glue; HTTP:
//! Handle `responseCode` 301 with the delegation). The delegation names the child's
//! checkpoint key (its DID and its log's origin), so that a client that trusts the
//! parent's log can check the child's checkpoints, and the child's endpoints.

use std::net::SocketAddr;

use ed25519_dalek::VerifyingKey;
use medid_did::DidKey;
use serde::{Deserialize, Serialize};

use crate::log::verifier_key;

/// Most DNS addresses a delegation lists.
pub const MAX_DNS_ADDRESSES: usize = 4;

/// The node a prefix is delegated to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDelegation {
    /// The node's DID: the Ed25519 key that signs its checkpoints.
    pub did: DidKey,
    /// The node's name: the origin of its checkpoints (the signed-note key name).
    pub name: String,
    /// Where the node answers DNS (`IP:port`; DNS referrals carry the addresses as glue,
    /// so resolvers that cannot be told a port need port 53).
    pub dns: Vec<SocketAddr>,
    /// The node's HTTP base URL (`http://host:port`).
    pub http: String,
}

/// Why a [`NodeDelegation`] is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelegationError {
    /// The node's name cannot be a checkpoint origin.
    #[error("node name `{0}` is not a valid checkpoint origin (no spaces, no `+`)")]
    Name(String),
    /// No DNS address, or too many.
    #[error("a delegation lists 1 to {MAX_DNS_ADDRESSES} DNS addresses, not {0}")]
    DnsCount(usize),
    /// The HTTP URL is not `http(s)://host[:port]`.
    #[error("`{0}` is not an http:// or https:// base URL without a path")]
    Http(String),
}

impl NodeDelegation {
    /// Checks the fields an operation's schema cannot check.
    pub fn check(&self) -> Result<(), DelegationError> {
        if !crate::log::checkpoint_origin_is_valid(&self.name) {
            return Err(DelegationError::Name(self.name.clone()));
        }
        if self.dns.is_empty() || self.dns.len() > MAX_DNS_ADDRESSES {
            return Err(DelegationError::DnsCount(self.dns.len()));
        }
        let rest = self
            .http
            .strip_prefix("http://")
            .or_else(|| self.http.strip_prefix("https://"))
            .ok_or_else(|| DelegationError::Http(self.http.clone()))?;
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            return Err(DelegationError::Http(self.http.clone()));
        }
        Ok(())
    }

    /// The signed-note verifier key of the node's checkpoints.
    pub fn verifier_key(&self) -> String {
        let key: &VerifyingKey = self.did.verifying_key();
        verifier_key(&self.name, key)
    }

    /// The HTTP base URL without a trailing `/`.
    pub fn http_base(&self) -> &str {
        self.http.strip_suffix('/').unwrap_or(&self.http)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn delegation() -> NodeDelegation {
        NodeDelegation {
            did: medid_did::KeyPair::generate().did(),
            name: "industry.medid.test".into(),
            dns: vec!["127.0.0.3:53".parse().unwrap()],
            http: "http://127.0.0.3:8080".into(),
        }
    }

    #[test]
    fn a_delegation_is_checked() {
        assert_eq!(delegation().check(), Ok(()));
        let mut bad = delegation();
        bad.dns.clear();
        assert_eq!(bad.check(), Err(DelegationError::DnsCount(0)));
        let mut bad = delegation();
        bad.http = "ftp://x".into();
        assert!(matches!(bad.check(), Err(DelegationError::Http(_))));
        let mut bad = delegation();
        bad.http = "http://x/path".into();
        assert!(matches!(bad.check(), Err(DelegationError::Http(_))));
        let mut bad = delegation();
        bad.name = "a b".into();
        assert!(matches!(bad.check(), Err(DelegationError::Name(_))));
    }

    #[test]
    fn its_verifier_key_names_the_node() {
        let d = delegation();
        assert!(d.verifier_key().starts_with("industry.medid.test+"));
    }
}
