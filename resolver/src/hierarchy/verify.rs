//! Trust from the root down: the checks a client makes on each hop of a walk, given only
//! the root node's checkpoint verifier key. No I/O: the caller fetches the proof
//! bundles (`/api/log/bundle/{index}?extra=entry`) and passes their bytes.
//!
//! - [`ProofBundle::parse`] reads a C2SP `tlog-proof` bundle; [`ProofBundle::check`]
//!   verifies its checkpoint under the node's key (and counts cosignatures by the
//!   witnesses the client trusts) and the entry's inclusion in that checkpoint.
//! - [`check_delegation`]: the entry is the parent's `prefix.delegate` of the prefix to
//!   the node the referral names — so the child's key is the one the parent delegated.
//! - [`check_answer`]: the entry is the operation that last changed the identifier.

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

/// Checks that `entry` (at `index` of the child's log) is an operation on `id`.
pub fn check_answer(entry: &[u8], index: u64, id: &Identifier) -> Result<(), VerifyError> {
    let op = entry_op(entry, index)?;
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
