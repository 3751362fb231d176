//! The registry: records, signed operations, the verifiable ledger and its indexes.
//!
//! - [`id`] — the identifier syntaxes (handles, OIDs, GS1 keys) and prefixes.
//! - [`dnsname`] — the DNS name of every identifier and prefix under a node's zone.
//! - [`delegation`] — [`delegation::NodeDelegation`]: a prefix handed to another node.
//! - [`op`] — operations: the signed JSON documents that change the registry.
//! - [`log`] — the ledger: an RFC 6962 Merkle tree stored as C2SP tlog tiles, with
//!   signed checkpoints and proofs.
//! - [`Registry`] — a node's data directory: the write path (group commit) from a
//!   signed operation to the ledger and the index, `reindex` and `verify`.
//! - [`Sequencer`] — the thread that owns a [`Registry`] and commits what concurrent
//!   writers submit, together.
//! - [`event`] — lifecycle events (EPCIS 2.0): validation, CBV hash IDs, the trace
//!   engine.
//! - [`LedgerEntry`] — what the ledger holds: an operation or an event.
//! - [`Index`] — the sled index of records, prefixes and DIDs, derived from the ledger.
//!
//! This crate knows nothing of sockets or HTTP.

pub mod delegation;
pub mod dnsname;
mod entry;
pub mod event;
pub mod id;
mod index;
pub mod log;
mod node;
pub mod op;
mod parallel;
mod patient_links;
mod schema;
mod sequencer;
mod state;

pub use entry::{LedgerEntry, is_event};
pub use index::{Index, IndexError, PayloadPointer, prefix_end};
pub use node::{
    Committed, DEFAULT_CLOCK_WINDOW, InitOutcome, NodeConfig, Prepared, Receipt, Registry,
    RegistryError, read_payload,
};
pub use parallel::{parallel_batches, parallel_map};
pub use schema::SchemaError;
pub use sequencer::{Answer, CHECK_BATCH, MAX_GROUP, Sequencer, SequencerThread, SubmitError};
pub use state::{DidRecord, IdentifierRecord, PrefixRecord, StoredValue};
