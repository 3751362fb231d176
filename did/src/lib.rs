//! Self-sovereign identity for medid: the actors' keys and what they sign.
//!
//! - [`KeyPair`] — an Ed25519 key pair and its key file (written with mode 0600; the
//!   secret never appears in `Debug` output or logs).
//! - [`DidKey`] — a `did:key` identifier for an Ed25519 public key, encoded with the
//!   multicodec `0xed01` and multibase base58btc, decoded strictly ([`DidKeyError`]
//!   names each failure as the did:key specification does).
//! - [`did_document`] — the DID document a `did:key` expands to ([`KeyFormat`]).
//! - [`add_proof`] / [`verify_proofs`] ([`read_proofs`] and [`verify_all`] to check many
//!   documents' signatures as one batch) — JSON documents signed with a Data Integrity
//!   proof of the `eddsa-jcs-2022` cryptosuite (RFC 8785 canonical JSON + Ed25519);
//!   [`canonical_json`] is the RFC 8785 serialisation they rest on.
//!
//! Everything here is a pure function of its inputs except key generation (the OS
//! random source) and the key-file functions (the file system).

mod didkey;
mod document;
mod jcs;
mod key;
mod proof;

pub use didkey::{DidKey, DidKeyError};
pub use document::{KeyFormat, did_document};
pub use jcs::canonical_json;
pub use key::{KeyFileError, KeyPair};
pub use proof::{
    PendingSignatures, ProofError, ProofOptions, VerifiedProof, add_proof, read_proofs, verify_all,
    verify_proofs,
};
