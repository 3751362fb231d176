//! Trust from the root down: the checks a client makes on each hop of a walk, given only
//! the root node's checkpoint verifier key. No I/O: the caller fetches the proof
//! bundles (`/api/log/bundle/{index}?extra=entry`) and passes their bytes.
//!
//! - [`ProofBundle::parse`] reads a C2SP `tlog-proof` bundle; [`ProofBundle::check`]
//!   verifies its checkpoint under the node's key (and counts cosignatures by the
//!   witnesses the client trusts) and the entry's inclusion in that checkpoint.
//! - [`check_delegation`]: the entry is the parent's `prefix.delegate` of the prefix to
//!   the node the referral names — so the child's key is the one the parent delegated.
//! - [`check_answer`]: the entry is the operation that last changed the identifier,
//!   and the values it set are the answer's.

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use medid_registry::delegation::NodeDelegation;
use medid_registry::id::Identifier;
use medid_registry::log::{Checkpoint, Hash, leaf_hash, verify_checkpoint, verify_inclusion};
use medid_registry::op::{Operation, SignedOperation, Target};

/// Why a hop failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bundle is not a `c2sp.org/tlog-proof@v1` bundle with an entry.
    #[error("malformed proof bundle: {0}")]
    Bundle(String),
    /// The checkpoint does not verify under the expected key.
    #[error("the checkpoint does not verify under {vkey}: {reason}")]
    Checkpoint {
        /// The key expected.
        vkey: String,
        /// Why.
        reason: String,
    },
    /// The entry is not in the checkpoint's tree.
    #[error("entry {index} is not included in the checkpoint (size {size}): {reason}")]
    Inclusion {
        /// The entry's index.
        index: u64,
        /// The checkpoint's size.
        size: u64,
        /// Why.
        reason: String,
    },
    /// The entry does not say what the answer claims.
    #[error("entry {index}: {reason}")]
    Entry {
        /// The entry's index.
        index: u64,
        /// What does not match.
        reason: String,
    },
    /// Too few cosignatures by trusted witnesses.
    #[error(
        "the checkpoint carries {found} cosignature(s) by trusted witnesses; {required} required"
    )]
    Cosignatures {
        /// Valid cosignatures found.
        found: usize,
        /// Required.
        required: usize,
    },
}

/// A C2SP `tlog-proof` bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// The `extra` data (here: the entry).
    pub extra: Option<Vec<u8>>,
    /// The entry's index.
    pub index: u64,
    /// The inclusion proof.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note (with any cosignatures).
    pub checkpoint: Vec<u8>,
}

impl ProofBundle {
    /// Reads a bundle.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        let bad = |m: &str| VerifyError::Bundle(m.to_owned());
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.lines();
        if lines.next() != Some("c2sp.org/tlog-proof@v1") {
            return Err(bad("first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let mut extra = None;
        if let Some(data) = line.strip_prefix("extra ") {
            extra = Some(
                BASE64
                    .decode(data)
                    .map_err(|_| bad("extra is not base64"))?,
            );
            line = lines.next().ok_or_else(|| bad("no index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("no `index N` line"))?;
        let proof = lines
            .map(|l| Hash::from_str(l).map_err(|_| bad("a proof line is not a base64 hash")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            extra,
            index,
            proof,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }

    /// Verifies the checkpoint under `vkey`, and the inclusion of the entry (the
    /// `extra` data) at `index`; requires `min_cosignatures` valid cosignatures among
    /// `witnesses` (tlog-cosignature verifier keys). Returns the checkpoint and the entry.
    pub fn check(
        &self,
        vkey: &str,
        witnesses: &[String],
        min_cosignatures: usize,
    ) -> Result<(Checkpoint, &[u8]), VerifyError> {
        let checkpoint =
            verify_checkpoint(&self.checkpoint, vkey).map_err(|e| VerifyError::Checkpoint {
                vkey: vkey.to_owned(),
                reason: e.to_string(),
            })?;
        let entry = self
            .extra
            .as_deref()
            .ok_or_else(|| VerifyError::Bundle("no entry in the extra line".into()))?;
        verify_inclusion(
            self.index,
            checkpoint.size,
            &leaf_hash(entry),
            &self.proof,
            checkpoint.root.as_ref(),
        )
        .map_err(|e| VerifyError::Inclusion {
            index: self.index,
            size: checkpoint.size,
            reason: e.to_string(),
        })?;
        if min_cosignatures > 0 {
            let found =
                medid_registry::log::witness::count_cosignatures(&self.checkpoint, witnesses);
            if found < min_cosignatures {
                return Err(VerifyError::Cosignatures {
                    found,
                    required: min_cosignatures,
                });
            }
        }
        Ok((checkpoint, entry))
    }
}

fn entry_op(entry: &[u8], index: u64) -> Result<SignedOperation, VerifyError> {
    SignedOperation::from_entry(entry).map_err(|e| VerifyError::Entry {
        index,
        reason: format!("not a valid signed operation: {e}"),
    })
}

/// Checks that `entry` (at `index` of the parent's log) delegates `prefix` (namespace
/// key) to exactly `node`.
pub fn check_delegation(
    entry: &[u8],
    index: u64,
    prefix: &str,
    node: &NodeDelegation,
) -> Result<(), VerifyError> {
    let op = entry_op(entry, index)?;
    let mismatch = |reason: String| VerifyError::Entry { index, reason };
    match &op.op {
        Operation::PrefixDelegate {
            prefix: delegated,
            node: Some(logged),
            ..
        } => {
            if delegated.namespace_key() != prefix {
                return Err(mismatch(format!(
                    "it delegates {}, not {prefix}",
                    delegated.namespace_key()
                )));
            }
            if logged != node {
                return Err(mismatch(format!(
                    "it delegates {prefix} to {} ({}), not to {} ({})",
                    logged.name, logged.did, node.name, node.did
                )));
            }
            Ok(())
        }
        _ => Err(mismatch("it is not a delegation to a node".into())),
    }
}

/// Checks that `entry` (at `index` of the child's log) is an operation on `id`, and
/// that every public value it sets (a registration's values, an update's `set`) is in
/// the Handle answer `values` with the same index, type and data.
pub fn check_answer(
    entry: &[u8],
    index: u64,
    id: &Identifier,
    values: &serde_json::Value,
) -> Result<(), VerifyError> {
    let op = entry_op(entry, index)?;
    let set: &[medid_registry::op::RecordValue] = match &op.op {
        Operation::IdentifierRegister { values, .. } => values,
        Operation::IdentifierUpdate { set, .. } => set,
        _ => &[],
    };
    for value in set {
        let Some(data) = &value.data else { continue };
        let shown = values.as_array().is_some_and(|answer| {
            answer.iter().any(|v| {
                v["index"].as_u64() == Some(u64::from(value.index))
                    && v["type"].as_str() == Some(value.kind.as_str())
                    && v["data"]["value"].as_str() == Some(data.as_str())
            })
        });
        if !shown {
            return Err(VerifyError::Entry {
                index,
                reason: format!(
                    "it sets value {} ({}) to {data:?}, which the answer does not show",
                    value.index, value.kind
                ),
            });
        }
    }
    let about = match &op.op {
        Operation::IdentifierRegister { id, .. }
        | Operation::IdentifierUpdate { id, .. }
        | Operation::IdentifierDelete { id, .. } => Some(id),
        Operation::ControllersChange {
            target: Target::Identifier(id),
            ..
        } => Some(id),
        _ => None,
    };
    match about {
        Some(logged) if logged == id => Ok(()),
        Some(logged) => Err(VerifyError::Entry {
            index,
            reason: format!("it changes {logged}, not {id}"),
        }),
        None => Err(VerifyError::Entry {
            index,
            reason: format!("it is not an operation on {id}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::Engine as _;
    use medid_did::KeyPair;
    use medid_registry::log::{sign_checkpoint, tree_root, verifier_key};
    use medid_registry::op::{draft, sign};
    use serde_json::json;

    use super::*;

    fn node(did: &KeyPair) -> NodeDelegation {
        NodeDelegation {
            did: did.did(),
            name: "maker.medid.test".into(),
            dns: vec!["127.0.0.4:53".parse().unwrap()],
            http: "http://127.0.0.4:8080".into(),
        }
    }

    /// A signed delegation of 86.1000.23 to `to`, as its ledger entry.
    fn delegation_entry(to: &NodeDelegation) -> Vec<u8> {
        let signer = KeyPair::generate();
        let document = draft(
            "prefix.delegate",
            json!({"prefix": "86.1000.23", "controllers": [signer.did().to_string()], "node": to}),
        );
        SignedOperation::from_json(&sign(&document, &[&signer]).unwrap())
            .unwrap()
            .entry
    }

    /// A bundle proving `entries[1]` in a log of two entries signed by `key`.
    fn bundle(entries: &[Vec<u8>; 2], key: &KeyPair) -> Vec<u8> {
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        let note = sign_checkpoint(
            "parent.medid.test",
            2,
            &tree_root(&leaves),
            key.signing_key(),
        )
        .unwrap();
        let mut text = format!(
            "c2sp.org/tlog-proof@v1\nextra {}\nindex 1\n{}\n\n",
            BASE64.encode(&entries[1]),
            leaves[0]
        )
        .into_bytes();
        text.extend_from_slice(&note);
        text
    }

    #[test]
    fn each_hop_is_checked_against_the_key_its_parent_delegated() {
        let parent = KeyPair::generate();
        let child = node(&KeyPair::generate());
        let entries = [b"first".to_vec(), delegation_entry(&child)];
        let bytes = bundle(&entries, &parent);
        let vkey = verifier_key("parent.medid.test", &parent.verifying_key());

        let parsed = ProofBundle::parse(&bytes).unwrap();
        let (checkpoint, entry) = parsed.check(&vkey, &[], 0).unwrap();
        assert_eq!(checkpoint.size, 2);
        check_delegation(entry, 1, "hdl:86.1000.23", &child).unwrap();

        // Another key than the parent's: refused.
        let other = verifier_key("parent.medid.test", &KeyPair::generate().verifying_key());
        assert!(matches!(
            parsed.check(&other, &[], 0),
            Err(VerifyError::Checkpoint { .. })
        ));
        // A referral naming another node than the logged delegation: refused.
        let impostor = node(&KeyPair::generate());
        let refused = check_delegation(entry, 1, "hdl:86.1000.23", &impostor).unwrap_err();
        assert!(
            refused.to_string().contains("not to maker.medid.test"),
            "{refused}"
        );
        assert!(check_delegation(entry, 1, "hdl:86.1000.24", &child).is_err());
        // An entry that is not the one logged: its inclusion fails.
        let mut forged = parsed.clone();
        forged.extra = Some(delegation_entry(&impostor));
        assert!(matches!(
            forged.check(&vkey, &[], 0),
            Err(VerifyError::Inclusion { .. })
        ));
        // Cosignatures required but none present.
        assert!(matches!(
            parsed.check(&vkey, &[], 1),
            Err(VerifyError::Cosignatures {
                found: 0,
                required: 1
            })
        ));
        // Not a bundle.
        assert!(ProofBundle::parse(b"hello\n\nworld").is_err());
    }
}
