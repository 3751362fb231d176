//! The log writer: [`Log`] appends batches of entries to a tiled Merkle tree in a
//! [`TileStore`], signs a checkpoint per batch, and reads entries and proofs back.
//!
//! - [`Log::open`] — recovers the state of the last checkpoint (or starts an empty log).
//! - [`Log::append_batch`] — group commit: one batch, one round of fsyncs, one
//!   checkpoint; returns an [`AppendOutcome`] once everything is durable.
//! - [`Log::entry`], [`Log::entries`] ([`EntryIter`]), [`Log::inclusion_proof`],
//!   [`Log::consistency_proof`], [`Log::root_at`] — reads.
//! - [`Log::verify`] — re-proves everything stored (see [`verify_log`](super::verify_log)).
//!
//! The writer keeps the right edge of the tree in memory, so an append costs hashing
//! the new entries plus writing the tiles they touch, never a re-read of the tree.
//! Proofs and old roots are computed by `tlog_tiles` from tiles read back from the store,
//! each tile authenticated against the current checkpoint.

use super::prove::StoredTree;
use std::fmt;
use std::ops::Range;

use ed25519_dalek::SigningKey;

use super::LogError;
use super::checkpoint::{
    CheckpointError, origin_is_valid, sign_checkpoint, verifier_key, verify_checkpoint,
};
use super::edge::{
    AppendRejected, MAX_LEVELS, RightEdge, hashes_at_level, partial_index, partial_width,
};
use super::hash::{EMPTY_ROOT, Hash, leaf_hash};
use super::store::TileStore;
use super::tiles::{CHECKPOINT_PATH, TILE_WIDTH, entries_path, parse_bundle, tile_path};
use super::verify::verify_log;

/// The result of a durable append: a receipt for each entry of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Leaf index of the batch's first entry; entry `i` of the batch has index
    /// `first_index + i`.
    pub first_index: u64,
    /// Leaf hash of each entry, in batch order.
    pub leaf_hashes: Vec<Hash>,
    /// Tree size after the batch.
    pub tree_size: u64,
    /// Root hash at `tree_size`.
    pub root: Hash,
    /// The signed checkpoint committing the batch (a C2SP signed note).
    pub checkpoint: Vec<u8>,
}

/// An append-only transparency log over a [`TileStore`] (see the module docs).
///
/// One `Log` must be the only writer of its store. Reads take `&self`; appends take
/// `&mut self`, so share a `Log` behind a lock.
pub struct Log<S: TileStore> {
    store: S,
    origin: String,
    key: SigningKey,
    vkey: String,
    /// Partial tiles and bundle at the committed size.
    edge: RightEdge,
    root: Hash,
    checkpoint: Vec<u8>,
    /// For each level, the widths of the partial tiles of the current rightmost tile
    /// committed by this process (plus the one found at open); deleted once that tile
    /// is written in full. Partial tiles of earlier processes, and leftovers of
    /// uncommitted appends, are not tracked and stay as unreferenced files.
    partial_widths: Vec<Vec<u32>>,
    /// Set by [`Log::defer_sync`]: appends do not fsync, [`Log::sync`] does.
    deferred: bool,
    /// Partial tiles superseded by full tiles, deleted once those are durable.
    superseded: Vec<String>,
    /// The size at the last [`Log::sync`] (or open): every file it needs is durable.
    synced: u64,
    /// Set while an append writes; left set if it failed midway.
    poisoned: bool,
}

impl<S: TileStore> fmt::Debug for Log<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("origin", &self.origin)
            .field("size", &self.size())
            .field("root", &self.root)
            .field("vkey", &self.vkey)
            .finish_non_exhaustive()
    }
}

/// A store error while `action`.
pub(crate) fn store_error(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> LogError {
    move |source| LogError::Store {
        action: action.into(),
        source,
    }
}

/// The state at a stored checkpoint: its signature must verify, and the partial tiles
/// and bundle at its size must reproduce its root.
fn at_checkpoint<S: TileStore>(
    store: &S,
    note: Vec<u8>,
    vkey: &str,
) -> Result<(RightEdge, Hash, Vec<u8>), LogError> {
    let cp = verify_checkpoint(&note, vkey)?;
    let edge = load_right_edge(store, cp.size)?;
    if edge.root() != cp.root {
        return Err(LogError::RootMismatch { size: cp.size });
    }
    Ok((edge, cp.root, note))
}

/// The files a log of size `new` needs that a log of size `old` did not: the full
/// tiles and bundles completed in between, and the partial ones at `new`.
fn written_between(old: u64, new: u64) -> Vec<String> {
    let mut paths = Vec::new();
    if new <= old {
        return paths;
    }
    for level in 0..MAX_LEVELS {
        let hashes = hashes_at_level(new, level);
        if hashes == 0 {
            break;
        }
        let first_new = hashes_at_level(old, level) / u64::from(TILE_WIDTH);
        let full = hashes / u64::from(TILE_WIDTH);
        for index in first_new..full {
            paths.push(tile_path(level as u8, index, TILE_WIDTH));
            if level == 0 {
                paths.push(entries_path(index, TILE_WIDTH));
            }
        }
        let width = partial_width(new, level);
        if width > 0 {
            paths.push(tile_path(level as u8, full, width));
            if level == 0 {
                paths.push(entries_path(full, width));
            }
        }
    }
    paths
}

/// Reads a file the current checkpoint requires.
pub(crate) fn get_required<S: TileStore + ?Sized>(
    store: &S,
    path: &str,
) -> Result<Vec<u8>, LogError> {
    store
        .get(path)
        .map_err(store_error(format!("reading {path}")))?
        .ok_or_else(|| LogError::MissingFile {
            path: path.to_owned(),
        })
}

/// Reads the hash tile at `path`, which must hold `width` hashes.
pub(crate) fn read_hash_tile<S: TileStore + ?Sized>(
    store: &S,
    path: &str,
    width: u32,
) -> Result<Vec<Hash>, LogError> {
    let data = get_required(store, path)?;
    let expected = width as usize * super::HASH_LEN;
    if data.len() != expected {
        return Err(LogError::MalformedTile {
            path: path.to_owned(),
            len: data.len(),
            expected,
        });
    }
    Ok(data
        .chunks_exact(super::HASH_LEN)
        .filter_map(|chunk| Hash::from_slice(chunk).ok())
        .collect())
}

impl<S: TileStore> Log<S> {
    /// Opens the log in `store`, named `origin` (the checkpoint origin line and the
    /// signing key's name, e.g. `medid.example.org/log`), signing with `signer`.
    ///
    /// With no checkpoint in the store, starts an empty log and writes its size-0
    /// checkpoint. Otherwise recovers the state of the stored checkpoint, which must
    /// verify under `signer`'s public key and `origin`: the partial tiles and bundle at
    /// its size are read back and must reproduce its root. Files beyond that size are
    /// leftovers of an append that never committed; they are ignored and overwritten.
    pub fn open(store: S, origin: String, signer: SigningKey) -> Result<Self, LogError> {
        if !origin_is_valid(&origin) {
            return Err(CheckpointError::InvalidOrigin(origin).into());
        }
        let vkey = verifier_key(&origin, &signer.verifying_key());
        let stored = store
            .get(CHECKPOINT_PATH)
            .map_err(store_error("reading the checkpoint"))?;
        let (edge, root, checkpoint) = match stored {
            None => {
                if any_tiles_present(&store)? {
                    return Err(LogError::MissingCheckpoint);
                }
                let note = sign_checkpoint(&origin, 0, &EMPTY_ROOT, &signer)?;
                // Write the empty tree's checkpoint. A crash before the rename leaves
                // no checkpoint and no tiles: the next open starts again from here.
                store
                    .put(CHECKPOINT_PATH, &note)
                    .map_err(store_error("writing the first checkpoint"))?;
                (RightEdge::empty(), EMPTY_ROOT, note)
            }
            Some(note) => at_checkpoint(&store, note, &vkey)?,
        };
        Ok(Self::with_state(
            store, origin, signer, vkey, edge, root, checkpoint,
        ))
    }

    /// Opens the log in `store` at the checkpoint `note` rather than the stored one:
    /// the files `note` needs must be durable (it was current at a [`Log::sync`]);
    /// anything written after it is ignored, and the next append overwrites it.
    pub fn open_at(
        store: S,
        origin: String,
        signer: SigningKey,
        note: Vec<u8>,
    ) -> Result<Self, LogError> {
        let vkey = verifier_key(&origin, &signer.verifying_key());
        let (edge, root, checkpoint) = at_checkpoint(&store, note, &vkey)?;
        Ok(Self::with_state(
            store, origin, signer, vkey, edge, root, checkpoint,
        ))
    }

    fn with_state(
        store: S,
        origin: String,
        key: SigningKey,
        vkey: String,
        edge: RightEdge,
        root: Hash,
        checkpoint: Vec<u8>,
    ) -> Self {
        let partial_widths = (0..MAX_LEVELS)
            .map(|level| match partial_width(edge.size(), level) {
                0 => Vec::new(),
                w => vec![w],
            })
            .collect();
        let synced = edge.size();
        Self {
            store,
            origin,
            key,
            vkey,
            edge,
            root,
            checkpoint,
            partial_widths,
            deferred: false,
            superseded: Vec::new(),
            synced,
            poisoned: false,
        }
    }

    /// Number of entries in the log (the size of the last checkpoint).
    pub fn size(&self) -> u64 {
        self.edge.size()
    }

    /// Root hash at [`size`](Self::size).
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The last checkpoint, a signed note: what `GET <prefix>/checkpoint` serves.
    pub fn checkpoint(&self) -> &[u8] {
        &self.checkpoint
    }

    /// The log's origin, also its key name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The signed-note verifier key of the checkpoints (see [`verifier_key`]).
    pub fn verifier_key(&self) -> &str {
        &self.vkey
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Appends `entries` (each at most [`MAX_ENTRY_LEN`](super::MAX_ENTRY_LEN) bytes) as one group commit,
    /// returning once they and a checkpoint covering them are durable.
    ///
    /// Refuses an empty batch or an oversized entry without writing anything. If a
    /// write fails the batch is not committed, and the log refuses further appends
    /// ([`LogError::Poisoned`]) until reopened, since the store's state is then unknown.
    pub fn append_batch<E: AsRef<[u8]>>(
        &mut self,
        entries: &[E],
    ) -> Result<AppendOutcome, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        if entries.is_empty() {
            return Err(LogError::EmptyBatch);
        }
        let old_size = self.size();
        let mut edge = self.edge.clone();
        let (leaf_hashes, files) = edge.append(entries).map_err(|e| match e {
            AppendRejected::TooLarge(t) => LogError::EntryTooLarge {
                position: t.position,
                len: t.len,
            },
            AppendRejected::Full => LogError::Full,
        })?;
        let new_size = edge.size();
        let root = edge.root();
        let note = sign_checkpoint(&self.origin, new_size, &root, &self.key)?;

        self.poisoned = true;
        // Step 1: write the full and partial entry bundles and hash tiles of the new
        // size, all fsynced before this returns. If the process dies here, the stored
        // checkpoint still has the old size: recovery reads the old right edge (never
        // modified: new partial tiles have new paths `.p/<W>`, full tiles new numbers)
        // and ignores the new files; the next append overwrites any with its own.
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|f| (f.path.as_str(), f.data.as_slice()))
            .collect();
        let written = if self.deferred {
            self.store.put_many_unsynced(&refs)
        } else {
            self.store.put_many(&refs)
        };
        written.map_err(store_error(format!(
            "writing tiles for tree size {new_size}"
        )))?;
        // Step 2, the commit point: replace the checkpoint (atomic rename, fsynced).
        // Dying before the rename: as in step 1, the old size is recovered. Dying after
        // it: recovery finds the new checkpoint, and every file it needs was made
        // durable in step 1; the batch is committed even though the caller got no reply.
        let written = if self.deferred {
            self.store.put_unsynced(CHECKPOINT_PATH, &note)
        } else {
            self.store.put(CHECKPOINT_PATH, &note)
        };
        written.map_err(store_error(format!(
            "writing the checkpoint for tree size {new_size}"
        )))?;
        self.poisoned = false;
        self.edge = edge;
        self.root = root;
        self.checkpoint = note.clone();
        // Step 3: delete partial tiles that full tiles have replaced. Best effort:
        // dying here, or a failed delete, only leaves files no checkpoint refers to.
        self.note_superseded_partials(old_size, new_size);
        if !self.deferred {
            self.remove_superseded();
        }

        Ok(AppendOutcome {
            first_index: old_size,
            leaf_hashes,
            tree_size: new_size,
            root,
            checkpoint: note,
        })
    }

    /// After the commit from `old_size` to `new_size`: forgets the partial tiles of
    /// every tile that is now full (tlog-tiles allows deleting a partial tile once its
    /// full tile is available), and remembers the new partial tiles.
    fn note_superseded_partials(&mut self, old_size: u64, new_size: u64) {
        for level in 0..MAX_LEVELS {
            if hashes_at_level(old_size, level) == hashes_at_level(new_size, level) {
                continue;
            }
            let Some(widths) = self.partial_widths.get_mut(level) else {
                break;
            };
            let old_index = partial_index(old_size, level);
            if partial_index(new_size, level) != old_index {
                for width in std::mem::take(widths) {
                    self.superseded
                        .push(tile_path(level as u8, old_index, width));
                    if level == 0 {
                        self.superseded.push(entries_path(old_index, width));
                    }
                }
            }
            let width = partial_width(new_size, level);
            if width > 0 {
                widths.push(width);
            }
        }
    }

    /// Defers durability to [`Log::sync`]: from now on, appends write the tiles and
    /// the checkpoint without waiting for the disk, and superseded partial tiles are
    /// kept until the next sync. For a caller that has made the entries durable
    /// elsewhere first (a write-ahead log) and, after a crash, reopens the log at its
    /// last synced checkpoint ([`Log::open_at`]) and appends them again.
    pub fn defer_sync(&mut self) {
        self.deferred = true;
    }

    /// Makes every file written since the last sync durable; then the current
    /// checkpoint can be reopened with [`Log::open_at`] after any crash. Deletes the
    /// partial tiles that the now durable full tiles supersede.
    pub fn sync(&mut self) -> Result<(), LogError> {
        let size = self.size();
        self.store
            .sync(&written_between(self.synced, size))
            .map_err(store_error("syncing the log to disk"))?;
        self.synced = size;
        self.remove_superseded();
        Ok(())
    }

    /// Deletes the partial tiles that full tiles have superseded (best effort: a file
    /// left behind is never referenced again).
    fn remove_superseded(&mut self) {
        for path in std::mem::take(&mut self.superseded) {
            let _ = self.store.delete(&path);
        }
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LogError> {
        let size = self.size();
        if index >= size {
            return Err(LogError::IndexOutOfRange { index, size });
        }
        let mut bundle = self.read_bundle(index / u64::from(TILE_WIDTH))?;
        let offset = (index % u64::from(TILE_WIDTH)) as usize;
        bundle
            .get_mut(offset)
            .map(std::mem::take)
            .ok_or(LogError::IndexOutOfRange { index, size })
    }

    /// The entries with indexes in `range`, in order, read one bundle at a time (e.g. to
    /// rebuild indexes). Each item is `(index, entry)`; iteration stops after an error.
    pub fn entries(&self, range: Range<u64>) -> Result<EntryIter<'_, S>, LogError> {
        let size = self.size();
        if range.end > size {
            return Err(LogError::SizeOutOfRange {
                requested: range.end,
                size,
            });
        }
        Ok(EntryIter {
            log: self,
            next: range.start,
            end: range.end.max(range.start),
            bundle: None,
            failed: false,
        })
    }

    /// The entries of bundle `index`: its full width, or the partial bundle's.
    fn read_bundle(&self, index: u64) -> Result<Vec<Vec<u8>>, LogError> {
        let size = self.size();
        let last = partial_index(size, 0);
        if index == last {
            let parsed = parse_bundle(self.edge.partial_bundle());
            return Ok(parsed.entries.into_iter().map(<[u8]>::to_vec).collect());
        }
        if index > last {
            return Err(LogError::IndexOutOfRange {
                index: index.saturating_mul(u64::from(TILE_WIDTH)),
                size,
            });
        }
        let path = entries_path(index, TILE_WIDTH);
        let data = get_required(&self.store, &path)?;
        let parsed = parse_bundle(&data);
        if parsed.truncated || parsed.entries.len() != TILE_WIDTH as usize {
            let read = parsed.entries.len().min(TILE_WIDTH as usize) as u64;
            return Err(LogError::MalformedBundle {
                path,
                index: index * u64::from(TILE_WIDTH) + read,
            });
        }
        Ok(parsed.entries.into_iter().map(<[u8]>::to_vec).collect())
    }

    /// The inclusion proof of entry `index` in the tree of size `tree_size`
    /// (RFC 6962 audit path), for [`verify_inclusion`](super::verify_inclusion).
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LogError> {
        self.stored().inclusion_proof(index, tree_size)
    }

    /// The consistency proof from the tree of size `old` to the tree of size `new`,
    /// for [`verify_consistency`](super::verify_consistency). Needs `1 <= old <= new`;
    /// empty when `old == new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.stored().consistency_proof(old, new)
    }

    /// The root hash of the tree of the first `tree_size` entries.
    pub fn root_at(&self, tree_size: u64) -> Result<Hash, LogError> {
        self.stored().root_at(tree_size)
    }

    /// The current tree over the store's hash tiles.
    fn stored(&self) -> StoredTree<impl Fn(u8, u64, u32) -> Result<Vec<u8>, LogError> + '_> {
        StoredTree {
            size: self.size(),
            root: self.root,
            read: |level, index, width| get_required(&self.store, &tile_path(level, index, width)),
        }
    }

    /// Re-reads every entry bundle and hash tile and the checkpoint, recomputes every
    /// hash and checks all of it against the signed root (see
    /// [`verify_log`](super::verify_log)). Returns the verified tree size, which must be
    /// this log's; on failure the error names the first bad entry index or tile path.
    pub fn verify(&self) -> Result<u64, LogError> {
        let cp = verify_log(&self.store, &self.vkey)?;
        if cp.size != self.size() || cp.root != self.root {
            return Err(LogError::CheckpointChanged {
                stored: cp.size,
                expected: self.size(),
            });
        }
        Ok(cp.size)
    }
}

/// Reads the right edge of the tree of `size` leaves back from the store: the partial
/// tile of each level and the partial entry bundle, checked against each other.
fn load_right_edge<S: TileStore>(store: &S, size: u64) -> Result<RightEdge, LogError> {
    let mut levels = Vec::new();
    for level in 0..MAX_LEVELS {
        if hashes_at_level(size, level) == 0 {
            break;
        }
        let width = partial_width(size, level);
        if width == 0 {
            levels.push(Vec::new());
            continue;
        }
        let path = tile_path(level as u8, partial_index(size, level), width);
        levels.push(read_hash_tile(store, &path, width)?);
    }
    let mut bundle = Vec::new();
    let width = partial_width(size, 0);
    if width > 0 {
        let index = partial_index(size, 0);
        let path = entries_path(index, width);
        bundle = get_required(store, &path)?;
        let parsed = parse_bundle(&bundle);
        let start = index * u64::from(TILE_WIDTH);
        for (i, entry) in parsed.entries.iter().take(width as usize).enumerate() {
            if levels.first().and_then(|tile| tile.get(i)) != Some(&leaf_hash(entry)) {
                return Err(LogError::CorruptEntry {
                    index: start + i as u64,
                    path,
                });
            }
        }
        if parsed.truncated || parsed.entries.len() != width as usize {
            let read = parsed.entries.len().min(width as usize) as u64;
            return Err(LogError::MalformedBundle {
                path,
                index: start + read,
            });
        }
    }
    RightEdge::from_parts(size, levels, bundle).ok_or(LogError::RootMismatch { size })
}

/// Whether the store holds the first tiles of a log (checked when it has no checkpoint).
fn any_tiles_present<S: TileStore>(store: &S) -> Result<bool, LogError> {
    let mut paths = vec![tile_path(0, 0, TILE_WIDTH), entries_path(0, TILE_WIDTH)];
    paths.extend((1..TILE_WIDTH).map(|w| tile_path(0, 0, w)));
    for path in paths {
        if store
            .get(&path)
            .map_err(store_error(format!("reading {path}")))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Iterator over a range of entries: `(index, entry)` (see [`Log::entries`]).
pub struct EntryIter<'a, S: TileStore> {
    log: &'a Log<S>,
    next: u64,
    end: u64,
    /// The bundle being read: its number and its entries.
    bundle: Option<(u64, Vec<Vec<u8>>)>,
    failed: bool,
}

impl<S: TileStore> fmt::Debug for EntryIter<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryIter")
            .field("next", &self.next)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<S: TileStore> Iterator for EntryIter<'_, S> {
    type Item = Result<(u64, Vec<u8>), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.end {
            return None;
        }
        let index = self.next;
        let number = index / u64::from(TILE_WIDTH);
        if self.bundle.as_ref().is_none_or(|(n, _)| *n != number) {
            match self.log.read_bundle(number) {
                Ok(entries) => self.bundle = Some((number, entries)),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        let offset = (index % u64::from(TILE_WIDTH)) as usize;
        let entry = self
            .bundle
            .as_mut()
            .and_then(|(_, entries)| entries.get_mut(offset))
            .map(std::mem::take);
        self.next += 1;
        match entry {
            Some(entry) => Some(Ok((index, entry))),
            None => {
                self.failed = true;
                Some(Err(LogError::IndexOutOfRange {
                    index,
                    size: self.log.size(),
                }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(left))
        }
    }
}
