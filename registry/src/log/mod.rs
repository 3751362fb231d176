//! The ledger: an append-only transparency log stored as C2SP tlog-tiles.
//!
//! Every accepted operation and event is an entry of one RFC 6962/9162 Merkle tree.
//! The tree lives in a [`TileStore`] as the static files of the tlog-tiles layout,
//! so any static file server can serve it and any tlog client can read it:
//!
//! ```text
//! checkpoint                    signed note: origin, size, base64 root (C2SP tlog-checkpoint)
//! tile/entries/<N>[.p/<W>]      entry bundles: u16 big-endian length-prefixed entries
//! tile/<L>/<N>[.p/<W>]          hash tiles of height 8 (256 hashes, 8192 bytes when full)
//! ```
//!
//! Main types and functions:
//!
//! - [`Log`] — the writer: [`Log::open`] recovers from the last checkpoint,
//!   [`Log::append_batch`] appends a batch of entries durably (group commit) and returns
//!   an [`AppendOutcome`]; reads of entries, proofs and roots; [`Log::verify`] re-proves
//!   the whole stored log.
//! - [`LogReader`] — a read-only view for other threads while the writer appends
//!   ([`LogSnapshot`]: one checkpoint's tree; [`TileResource`]: a strictly parsed
//!   tile or bundle path, for serving the files).
//! - [`TileStore`] — the storage contract; [`FsTileStore`] (files) and
//!   [`MemTileStore`] (memory, with crash injection for tests).
//! - [`Hash`](struct@Hash), [`leaf_hash`], [`node_hash`], [`tree_root`] — RFC 6962 hashing.
//! - [`verify_inclusion`], [`verify_consistency`] — proof checks (RFC 9162), pure.
//! - [`Checkpoint`], [`sign_checkpoint`], [`verify_checkpoint`], [`verifier_key`] —
//!   signed tree heads as C2SP signed notes with the node's Ed25519 key.
//! - [`verify_log`] — re-proves a stored log given only its verifier key (for auditors
//!   and mirrors).
//!
//! The commit point of an append is the write of `checkpoint`: tiles and bundles are
//! written (and fsynced) first, so a crash at any instant leaves a store whose
//! checkpoint describes a complete tree, and whatever lies beyond it was never
//! acknowledged and is overwritten by the next append.

mod checkpoint;
mod edge;
mod hash;
mod merkle;
mod prove;
mod reader;
mod store;
mod tiled_log;
mod tiles;
mod verify;
pub mod witness;

use std::io;

pub use checkpoint::{
    Checkpoint, CheckpointError, sign_checkpoint, verifier_key, verify_checkpoint,
};
pub use hash::{EMPTY_ROOT, HASH_LEN, Hash, HashError, leaf_hash, node_hash};
pub use merkle::{ProofError, tree_root, verify_consistency, verify_inclusion};
pub use reader::{LogReader, LogSnapshot, TileResource};
pub use store::{FsTileStore, MemTileStore, TileStore};
pub use tiled_log::{AppendOutcome, EntryIter, Log};
pub use tiles::{CHECKPOINT_PATH, MAX_ENTRY_LEN, TILE_HEIGHT, TILE_WIDTH, entries_path, tile_path};
pub use verify::verify_log;

/// Whether `origin` can be a checkpoint origin (and so a signed-note key name).
pub fn checkpoint_origin_is_valid(origin: &str) -> bool {
    checkpoint::origin_is_valid(origin)
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The tile store failed.
    #[error("storage error while {action}: {source}")]
    Store {
        /// What the log was doing.
        action: String,
        /// The store's error.
        #[source]
        source: io::Error,
    },
    /// `append_batch` was called with no entries.
    #[error("empty batch: append at least one entry")]
    EmptyBatch,
    /// An entry is longer than an entry bundle can hold.
    #[error("entry {position} of the batch has {len} bytes; an entry holds at most 65535")]
    EntryTooLarge {
        /// Position of the entry in the batch.
        position: usize,
        /// Its length.
        len: usize,
    },
    /// The log cannot count more entries.
    #[error("the log is full: it cannot hold more than 2^64-1 entries")]
    Full,
    /// The checkpoint could not be signed or verified.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The store has log tiles but no checkpoint; starting a new log would overwrite them.
    #[error(
        "the store holds log tiles but no checkpoint; refusing to start a new log over them \
         (restore the checkpoint file or use an empty directory)"
    )]
    MissingCheckpoint,
    /// A file the checkpoint's tree needs is missing.
    #[error("{path} is missing from the store")]
    MissingFile {
        /// The tlog-tiles path.
        path: String,
    },
    /// A hash tile does not have the length its path implies.
    #[error("{path} has {len} bytes, expected {expected}")]
    MalformedTile {
        /// The tile's path.
        path: String,
        /// Its length.
        len: usize,
        /// The length it must have.
        expected: usize,
    },
    /// An entry bundle cannot be split into the entries its path implies.
    #[error("entry bundle {path} is malformed at entry {index}")]
    MalformedBundle {
        /// The bundle's path.
        path: String,
        /// The first entry index that could not be read.
        index: u64,
    },
    /// A stored entry does not hash to the signed tree: the entry was altered.
    #[error("entry {index} in {path} does not match the signed tree")]
    CorruptEntry {
        /// The first bad entry index.
        index: u64,
        /// Its entry bundle.
        path: String,
    },
    /// A hash tile disagrees with the entries, which do match the signed root.
    #[error("hash tile {path} is corrupt: its hash covering entry {index} is wrong")]
    CorruptTile {
        /// The tile's path.
        path: String,
        /// The first entry index under the first wrong hash.
        index: u64,
    },
    /// The stored files do not reproduce the checkpoint's root, and no single entry or
    /// tile can be blamed.
    #[error("the stored tree does not hash to the root signed at size {size}")]
    RootMismatch {
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The stored checkpoint is not the one this log last wrote.
    #[error(
        "the stored checkpoint (size {stored}) is not the one this log wrote (size {expected})"
    )]
    CheckpointChanged {
        /// Size in the stored checkpoint.
        stored: u64,
        /// Size this log last committed.
        expected: u64,
    },
    /// An entry index beyond the tree.
    #[error("entry {index} does not exist in a tree of size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A tree size beyond the log's.
    #[error("tree size {requested} is larger than the log's size {size}")]
    SizeOutOfRange {
        /// The size asked for.
        requested: u64,
        /// The log's size.
        size: u64,
    },
    /// A proof that cannot exist was asked for.
    #[error("invalid proof request: {0}")]
    InvalidRequest(String),
    /// Stored tiles failed authentication against the checkpoint while reading hashes.
    #[error("stored tiles do not authenticate against the checkpoint: {0}")]
    InconsistentTiles(String),
    /// An earlier append failed after it started writing; the in-memory state may
    /// not match the store.
    #[error("an earlier append failed while writing; reopen the log to recover")]
    Poisoned,
}
