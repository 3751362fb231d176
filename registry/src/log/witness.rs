//! Witnessing other logs: C2SP `tlog-witness` (`add-checkpoint`) and `tlog-cosignature`
//! (Ed25519, `cosignature/v1`).
//!
//! A [`Witness`] knows the logs it witnesses (origin → checkpoint verifier key) and the
//! latest checkpoint it cosigned for each (size and root, in a JSON file written
//! durably before it answers). [`Witness::add_checkpoint`] takes an `add-checkpoint`
//! request body and returns the cosignature line, or a [`WitnessError`] whose
//! [`WitnessError::status`] is the HTTP status the spec requires: a checkpoint whose
//! old size is not the one cosigned before is 409 (with that size), one that is not
//! consistent with it 422 — a forked log is refused either way.
//!
//! [`cosign`] and [`count_cosignatures`] are the signing and the client's check;
//! [`cosigner_vkey`] writes a witness's key as a vkey with signature type 0x04.
//! Written by hand: the `signed_note` crate verifies note signatures but knows nothing
//! of the timestamped cosignature message.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{EMPTY_ROOT, Hash, verify_checkpoint, verify_consistency};

/// The signature type byte of Ed25519 `cosignature/v1` keys.
const COSIGNATURE_V1: u8 = 0x04;
/// The most consistency proof lines a request may carry.
const MAX_PROOF_LINES: usize = 63;

/// Why a checkpoint was not cosigned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The request body is malformed, or the old size exceeds the checkpoint's (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The witness does not know the checkpoint's origin (404).
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// No valid signature by the log's key (403).
    #[error("the checkpoint is not signed by the log's key: {0}")]
    Forbidden(String),
    /// The old size is not the size the witness cosigned last (409).
    #[error("old size {given} is not the size of the latest cosigned checkpoint, {size}")]
    Conflict {
        /// The size the witness cosigned last.
        size: u64,
        /// The old size of the request.
        given: u64,
    },
    /// The checkpoint is not consistent with the one cosigned before (422).
    #[error("inconsistent with the checkpoint cosigned before: {0}")]
    Inconsistent(String),
    /// The state could not be stored (500).
    #[error("storing the witness state in {path}: {source}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl WitnessError {
    /// The HTTP status `tlog-witness` requires for this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::UnknownOrigin(_) => 404,
            Self::Forbidden(_) => 403,
            Self::Conflict { .. } => 409,
            Self::Inconsistent(_) => 422,
            Self::Storage { .. } => 500,
        }
    }
}

/// The key ID of an Ed25519 cosigner: `SHA-256(name ‖ "\n" ‖ 0x04 ‖ key)[:4]`.
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([COSIGNATURE_V1]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The cosigner's verifier key: `<name>+<hex key ID>+<base64(0x04 ‖ key)>`.
pub fn cosigner_vkey(name: &str, key: &VerifyingKey) -> String {
    let mut material = vec![COSIGNATURE_V1];
    material.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex::encode(key_id(name, key)),
        BASE64.encode(material)
    )
}

/// The message a `cosignature/v1` signs.
fn message(body: &[u8], timestamp: u64) -> Vec<u8> {
    let mut out = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// The body of a note: its text up to and including the newline before the empty line.
fn note_body(note: &[u8]) -> Option<&[u8]> {
    let end = note.windows(2).position(|w| w == b"\n\n")?;
    note.get(..=end)
}

/// A cosignature line (`— <name> base64(key ID ‖ timestamp ‖ signature)\n`) on the
/// checkpoint whose note body is `body`.
pub fn cosign(name: &str, key: &SigningKey, body: &[u8], timestamp: u64) -> String {
    let signature = key.sign(&message(body, timestamp));
    let mut blob = key_id(name, &key.verifying_key()).to_vec();
    blob.extend_from_slice(&timestamp.to_be_bytes());
    blob.extend_from_slice(&signature.to_bytes());
    format!("\u{2014} {name} {}\n", BASE64.encode(blob))
}

/// Parses a cosigner vkey into its name and key.
fn parse_cosigner(vkey: &str) -> Option<(&str, VerifyingKey)> {
    let mut parts = vkey.splitn(3, '+');
    let name = parts.next()?;
    let _id = parts.next()?;
    let material = BASE64.decode(parts.next()?).ok()?;
    let (&kind, key) = material.split_first()?;
    let key: [u8; 32] = key.try_into().ok()?;
    (kind == COSIGNATURE_V1)
        .then(|| VerifyingKey::from_bytes(&key).ok())
        .flatten()
        .map(|key| (name, key))
}

/// How many of the cosigners `vkeys` (as [`cosigner_vkey`] writes them) have a valid
/// cosignature on the checkpoint `note`; lines by other keys are ignored.
pub fn count_cosignatures(note: &[u8], vkeys: &[String]) -> usize {
    let Some(body) = note_body(note) else {
        return 0;
    };
    let signatures = String::from_utf8_lossy(&note[body.len() + 1..]).into_owned();
    vkeys
        .iter()
        .filter_map(|vkey| parse_cosigner(vkey))
        .filter(|(name, key)| {
            let id = key_id(name, key);
            signatures.lines().any(|line| {
                let Some(rest) = line.strip_prefix("\u{2014} ") else {
                    return false;
                };
                let Some((line_name, blob)) = rest.split_once(' ') else {
                    return false;
                };
                let Ok(blob) = BASE64.decode(blob) else {
                    return false;
                };
                if line_name != *name || blob.len() != 4 + 8 + 64 || blob[..4] != id {
                    return false;
                }
                let mut timestamp = [0u8; 8];
                timestamp.copy_from_slice(&blob[4..12]);
                let Ok(signature) = Signature::from_slice(&blob[12..]) else {
                    return false;
                };
                key.verify(&message(body, u64::from_be_bytes(timestamp)), &signature)
                    .is_ok()
            })
        })
        .count()
}

/// An `add-checkpoint` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The old size.
    pub old: u64,
    /// The consistency proof from the old size.
    pub proof: Vec<Hash>,
    /// The checkpoint note.
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// Reads a request body.
    pub fn parse(body: &[u8]) -> Result<Self, WitnessError> {
        let bad = |m: &str| WitnessError::BadRequest(m.to_owned());
        let split = body
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let head = std::str::from_utf8(&body[..split]).map_err(|_| bad("not UTF-8"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("the first line is not `old N`"))?;
        let proof = lines
            .map(|l| {
                l.parse::<Hash>()
                    .map_err(|_| bad("a proof line is not a base64 hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad("more than 63 proof lines"));
        }
        Ok(Self {
            old,
            proof,
            checkpoint: body[split + 2..].to_vec(),
        })
    }

    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old);
        for hash in &self.proof {
            out.push_str(&format!("{hash}\n"));
        }
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// What a witness remembers of a log: the latest checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cosigned {
    size: u64,
    root: Hash,
}

/// A witness: its name and key, the logs it witnesses, and its durable state.
pub struct Witness {
    name: String,
    key: SigningKey,
    /// Origin → the log's checkpoint verifier key.
    logs: BTreeMap<String, String>,
    path: PathBuf,
    state: Mutex<BTreeMap<String, Cosigned>>,
}

impl Witness {
    /// A witness named `name` signing with `key`, for the logs whose verifier keys are
    /// `log_vkeys`, keeping its state in `path` (read if it exists).
    pub fn open(
        path: &Path,
        name: &str,
        key: SigningKey,
        log_vkeys: &[String],
    ) -> Result<Self, WitnessError> {
        let state = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| WitnessError::Storage {
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(WitnessError::Storage {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let logs = log_vkeys
            .iter()
            .map(|vkey| {
                let origin = vkey.split('+').next().unwrap_or_default().to_owned();
                (origin, vkey.clone())
            })
            .collect();
        Ok(Self {
            name: name.to_owned(),
            key,
            logs,
            path: path.to_owned(),
            state: Mutex::new(state),
        })
    }

    /// The witness's cosigner verifier key.
    pub fn vkey(&self) -> String {
        cosigner_vkey(&self.name, &self.key.verifying_key())
    }

    /// Handles an `add-checkpoint` body at time `now` (POSIX seconds): the
    /// cosignature line, after the new state is durable.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, WitnessError> {
        let request = AddCheckpoint::parse(body)?;
        let origin = std::str::from_utf8(&request.checkpoint)
            .ok()
            .and_then(|t| t.lines().next())
            .unwrap_or_default()
            .to_owned();
        let vkey = self
            .logs
            .get(&origin)
            .ok_or_else(|| WitnessError::UnknownOrigin(origin.clone()))?;
        let checkpoint = verify_checkpoint(&request.checkpoint, vkey)
            .map_err(|e| WitnessError::Forbidden(e.to_string()))?;
        if request.old > checkpoint.size {
            return Err(WitnessError::BadRequest(format!(
                "old size {} exceeds the checkpoint's size {}",
                request.old, checkpoint.size
            )));
        }
        if checkpoint.size == 0 && checkpoint.root != EMPTY_ROOT {
            return Err(WitnessError::Inconsistent(
                "a checkpoint of size 0 must have the empty tree's root".into(),
            ));
        }
        // Check and update under one lock: two requests cannot roll the state back.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let known = state.get(&origin).cloned();
        let known_size = known.as_ref().map_or(0, |c| c.size);
        if request.old != known_size {
            return Err(WitnessError::Conflict {
                size: known_size,
                given: request.old,
            });
        }
        match &known {
            None => {
                if !request.proof.is_empty() {
                    return Err(WitnessError::Inconsistent(
                        "a proof from size 0 must be empty".into(),
                    ));
                }
            }
            Some(known) if known.size == checkpoint.size => {
                if known.root != checkpoint.root {
                    return Err(WitnessError::Inconsistent(format!(
                        "size {} was cosigned with another root hash",
                        known.size
                    )));
                }
            }
            Some(known) => verify_consistency(
                known.size,
                checkpoint.size,
                &request.proof,
                known.root.as_ref(),
                checkpoint.root.as_ref(),
            )
            .map_err(|e| WitnessError::Inconsistent(e.to_string()))?,
        }
        let mut next = state.clone();
        next.insert(
            origin,
            Cosigned {
                size: checkpoint.size,
                root: checkpoint.root,
            },
        );
        self.store(&next)?;
        *state = next;
        let body = note_body(&request.checkpoint)
            .ok_or_else(|| WitnessError::BadRequest("the checkpoint has no body".into()))?;
        Ok(cosign(&self.name, &self.key, body, now.max(1)))
    }

    /// Writes the state durably (temporary file, fsync, rename, fsync of the directory):
    /// if the process dies before the rename, the old state stands and nothing was
    /// cosigned.
    fn store(&self, state: &BTreeMap<String, Cosigned>) -> Result<(), WitnessError> {
        let storage = |source| WitnessError::Storage {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        let tmp = self.path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(storage)?;
        file.write_all(&bytes).map_err(storage)?;
        file.sync_all().map_err(storage)?;
        fs::rename(&tmp, &self.path).map_err(storage)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(storage)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::log::{sign_checkpoint, tree_root, verifier_key};

    /// RFC 6962 §2.1.2 PROOF(m, D[n]), from the definition.
    fn consistency_proof(d: &[Hash], m: usize) -> Vec<Hash> {
        crate::log::merkle::tests::subproof(m, d, true)
    }

    fn leaves(n: u8, fork: bool) -> Vec<Hash> {
        (0..n)
            .map(|i| crate::log::leaf_hash(&[i, u8::from(fork && i > 1)]))
            .collect()
    }

    #[test]
    fn a_witness_cosigns_consistent_checkpoints_and_refuses_a_fork() {
        let dir = tempfile::tempdir().unwrap();
        let log_key = SigningKey::from_bytes(&[7; 32]);
        let vkey = verifier_key("log.example", &log_key.verifying_key());
        let witness_key = SigningKey::from_bytes(&[9; 32]);
        let witness = Witness::open(
            &dir.path().join("witness.json"),
            "witness.example",
            witness_key,
            std::slice::from_ref(&vkey),
        )
        .unwrap();
        let checkpoint = |hashes: &[Hash]| {
            sign_checkpoint(
                "log.example",
                hashes.len() as u64,
                &tree_root(hashes),
                &log_key,
            )
            .unwrap()
        };
        let four = leaves(4, false);
        let request = AddCheckpoint {
            old: 0,
            proof: Vec::new(),
            checkpoint: checkpoint(&four[..2]),
        };
        let line = witness
            .add_checkpoint(&request.to_bytes(), 1_700_000_000)
            .unwrap();
        let mut note = request.checkpoint.clone();
        note.extend_from_slice(line.as_bytes());
        assert_eq!(count_cosignatures(&note, &[witness.vkey()]), 1);
        assert_eq!(
            count_cosignatures(&request.checkpoint, &[witness.vkey()]),
            0
        );

        // The same log, grown: a consistency proof from 2 to 4.
        let proof = consistency_proof(&four, 2);
        let grown = AddCheckpoint {
            old: 2,
            proof,
            checkpoint: checkpoint(&four),
        };
        witness
            .add_checkpoint(&grown.to_bytes(), 1_700_000_001)
            .unwrap();

        // A fork of the log: 4 entries, then 6, with entries 2 and 3 different.
        let fork = leaves(6, true);
        let stale = AddCheckpoint {
            old: 2,
            proof: Vec::new(),
            checkpoint: checkpoint(&fork),
        };
        let refused = witness
            .add_checkpoint(&stale.to_bytes(), 1_700_000_002)
            .unwrap_err();
        assert_eq!(refused.status(), 409, "{refused}");
        assert!(matches!(refused, WitnessError::Conflict { size: 4, .. }));
        let forked = AddCheckpoint {
            old: 4,
            proof: consistency_proof(&fork, 4),
            checkpoint: checkpoint(&fork),
        };
        let refused = witness
            .add_checkpoint(&forked.to_bytes(), 1_700_000_003)
            .unwrap_err();
        assert_eq!(refused.status(), 422, "{refused}");

        // The state survives a restart.
        let again = Witness::open(
            &dir.path().join("witness.json"),
            "witness.example",
            SigningKey::from_bytes(&[9; 32]),
            &[vkey],
        )
        .unwrap();
        let refused = again
            .add_checkpoint(&stale.to_bytes(), 1_700_000_004)
            .unwrap_err();
        assert_eq!(refused.status(), 409);
    }
}
