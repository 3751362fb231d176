//! A read-only view of a log whose writer runs at the same time: [`LogReader`].
//!
//! The writer ([`Log`](super::Log)) lives on the node's sequencer thread; front ends
//! (HTTP, mirrors) read the same store from other threads without a lock. That is safe
//! because of how the writer uses its [`TileStore`]:
//!
//! - the `checkpoint` file is replaced atomically, and only after every tile and bundle
//!   of its tree is durable, so any checkpoint a reader sees describes a complete tree;
//! - tiles and bundles are immutable once the checkpoint that covers them is written;
//! - the one deletion: once a full tile (or bundle) exists, the writer deletes the
//!   partial ones of the same number. A reader holding an older checkpoint may then
//!   miss the partial `…/N.p/W` it needs; the full `…/N` exists (it was written before
//!   the partial was deleted) and its first `W` hashes (or entries) are the partial's,
//!   so the reader falls back to it. The reverse never happens: a full tile is never
//!   deleted, and a partial one is only missing when its full tile exists.
//!
//! Main types:
//!
//! - [`LogReader`] — reads and verifies the current checkpoint on demand (the last one
//!   is remembered, so a checkpoint is verified once), and answers each call against it.
//! - [`LogSnapshot`] — one checkpoint, to answer several questions about the same tree
//!   (a proof, the root it leads to and the checkpoint that signs it).
//! - [`TileResource`] — a strictly parsed tlog-tiles resource path, for serving tiles
//!   and entry bundles exactly at their paths.
//!
//! Proofs and roots are computed by `tlog_tiles` from stored tiles, every tile
//! authenticated against the checkpoint's root, as the writer does.

use super::prove::StoredTree;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use super::LogError;
use super::checkpoint::{Checkpoint, CheckpointError, verify_checkpoint};
use super::edge::{hashes_at_level, partial_index};
use super::hash::{HASH_LEN, Hash};
use super::store::TileStore;
use super::tiled_log::{get_required, store_error};
use super::tiles::{CHECKPOINT_PATH, TILE_WIDTH, entries_path, parse_bundle, tile_path};

/// A read-only view of the log in a [`TileStore`] that a [`Log`](super::Log) may be
/// appending to concurrently (see the module docs). Cheap to share: `&self` everywhere.
pub struct LogReader<S: TileStore> {
    store: S,
    vkey: String,
    /// The last checkpoint read and verified, to skip verifying it again.
    last: Mutex<Option<LogCheckpoint>>,
}

/// A verified checkpoint: its note and its body.
#[derive(Clone)]
struct LogCheckpoint {
    note: Vec<u8>,
    body: Checkpoint,
}

impl<S: TileStore> fmt::Debug for LogReader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("vkey", &self.vkey)
            .finish_non_exhaustive()
    }
}

impl<S: TileStore> LogReader<S> {
    /// A reader of the log in `store` whose checkpoints verify under `vkey` (the
    /// signed-note verifier key, see [`verifier_key`](super::verifier_key)).
    pub fn new(store: S, vkey: &str) -> Result<Self, LogError> {
        signed_note::StandardVerifier::new(vkey).map_err(|e| {
            LogError::Checkpoint(CheckpointError::InvalidVerifierKey {
                vkey: vkey.to_owned(),
                reason: e.to_string(),
            })
        })?;
        Ok(Self {
            store,
            vkey: vkey.to_owned(),
            last: Mutex::new(None),
        })
    }

    /// The verifier key the checkpoints are checked with.
    pub fn verifier_key(&self) -> &str {
        &self.vkey
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Reads and verifies the current checkpoint, for several reads of the same tree.
    pub fn snapshot(&self) -> Result<LogSnapshot<'_, S>, LogError> {
        let note = get_required(&self.store, CHECKPOINT_PATH)?;
        let mut last = self.last();
        let checkpoint = match last.as_ref() {
            Some(known) if known.note == note => known.clone(),
            _ => {
                let body = verify_checkpoint(&note, &self.vkey)?;
                let checkpoint = LogCheckpoint { note, body };
                *last = Some(checkpoint.clone());
                checkpoint
            }
        };
        drop(last);
        Ok(LogSnapshot {
            reader: self,
            checkpoint,
        })
    }

    /// The current checkpoint: a signed note, what `GET <prefix>/checkpoint` serves.
    pub fn checkpoint(&self) -> Result<Vec<u8>, LogError> {
        Ok(self.snapshot()?.checkpoint.note)
    }

    /// The size of the current checkpoint.
    pub fn size(&self) -> Result<u64, LogError> {
        Ok(self.snapshot()?.size())
    }

    /// The entry at `index`, which must lie in the current checkpoint's tree.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LogError> {
        self.snapshot()?.entry(index)
    }

    /// The inclusion proof of entry `index` in the tree of `tree_size` entries, which
    /// must not exceed the current checkpoint's size (see
    /// [`Log::inclusion_proof`](super::Log::inclusion_proof)).
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LogError> {
        self.snapshot()?.inclusion_proof(index, tree_size)
    }

    /// The consistency proof from size `old` to size `new` (at most the current
    /// checkpoint's size; see [`Log::consistency_proof`](super::Log::consistency_proof)).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.snapshot()?.consistency_proof(old, new)
    }

    /// The root hash of the first `tree_size` entries (at most the current checkpoint's
    /// size).
    pub fn root_at(&self, tree_size: u64) -> Result<Hash, LogError> {
        self.snapshot()?.root_at(tree_size)
    }

    fn last(&self) -> MutexGuard<'_, Option<LogCheckpoint>> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the hash tile (`level`, `index`) of `width` hashes: the file at its own
    /// path or, for a partial tile deleted since, the first hashes of the full tile.
    /// `None` if neither exists.
    fn read_tile_bytes(
        &self,
        level: u8,
        index: u64,
        width: u32,
    ) -> Result<Option<Vec<u8>>, LogError> {
        let path = tile_path(level, index, width);
        let expected = width as usize * HASH_LEN;
        let found = match self.get(&path)? {
            Some(data) => Some((path, data)),
            None if width < TILE_WIDTH => {
                let full = tile_path(level, index, TILE_WIDTH);
                self.get(&full)?.map(|data| (full, data))
            }
            None => None,
        };
        let Some((path, mut data)) = found else {
            return Ok(None);
        };
        let stored_width = if path.contains(".p/") {
            width
        } else {
            TILE_WIDTH
        };
        if data.len() != stored_width as usize * HASH_LEN {
            return Err(LogError::MalformedTile {
                path,
                len: data.len(),
                expected: stored_width as usize * HASH_LEN,
            });
        }
        data.truncate(expected);
        Ok(Some(data))
    }

    /// Reads entry bundle `index` of `width` entries, with the same fallback as
    /// [`Self::read_tile_bytes`]: the encoded bundle (exactly its `width` entries) and
    /// its entries. `None` if neither the bundle nor its full bundle exists.
    fn read_bundle_bytes(&self, index: u64, width: u32) -> Result<Option<Vec<u8>>, LogError> {
        let path = entries_path(index, width);
        let found = match self.get(&path)? {
            Some(data) => Some((path, data)),
            None if width < TILE_WIDTH => {
                let full = entries_path(index, TILE_WIDTH);
                self.get(&full)?.map(|data| (full, data))
            }
            None => None,
        };
        let Some((path, data)) = found else {
            return Ok(None);
        };
        let parsed = parse_bundle(&data);
        let wanted = width as usize;
        let stored_width = if path.contains(".p/") {
            wanted
        } else {
            TILE_WIDTH as usize
        };
        if parsed.truncated || parsed.entries.len() != stored_width {
            let read = parsed.entries.len().min(stored_width) as u64;
            return Err(LogError::MalformedBundle {
                path,
                index: index * u64::from(TILE_WIDTH) + read,
            });
        }
        // The encoded length of the first `width` entries.
        let len: usize = parsed
            .entries
            .iter()
            .take(wanted)
            .map(|e| e.len() + 2)
            .sum();
        let mut data = data;
        data.truncate(len);
        Ok(Some(data))
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, LogError> {
        self.store
            .get(path)
            .map_err(store_error(format!("reading {path}")))
    }
}

/// One verified checkpoint of a [`LogReader`]'s log, and reads against its tree.
pub struct LogSnapshot<'a, S: TileStore> {
    reader: &'a LogReader<S>,
    checkpoint: LogCheckpoint,
}

impl<S: TileStore> fmt::Debug for LogSnapshot<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSnapshot")
            .field("checkpoint", &self.checkpoint.body)
            .finish_non_exhaustive()
    }
}

impl<S: TileStore> LogSnapshot<'_, S> {
    /// The signed checkpoint note, verbatim.
    pub fn note(&self) -> &[u8] {
        &self.checkpoint.note
    }

    /// The checkpoint's body: origin, size and root.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint.body
    }

    /// The number of entries in the checkpoint's tree.
    pub fn size(&self) -> u64 {
        self.checkpoint.body.size
    }

    /// The root hash of the checkpoint's tree.
    pub fn root(&self) -> Hash {
        self.checkpoint.body.root
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LogError> {
        let size = self.size();
        if index >= size {
            return Err(LogError::IndexOutOfRange { index, size });
        }
        let number = index / u64::from(TILE_WIDTH);
        let width = bundle_width(size, number);
        let path = entries_path(number, width);
        let data = self
            .reader
            .read_bundle_bytes(number, width)?
            .ok_or(LogError::MissingFile { path })?;
        let offset = (index % u64::from(TILE_WIDTH)) as usize;
        parse_bundle(&data)
            .entries
            .get(offset)
            .map(|entry| entry.to_vec())
            .ok_or(LogError::IndexOutOfRange { index, size })
    }

    /// The inclusion proof of entry `index` in the tree of `tree_size` entries.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LogError> {
        self.stored().inclusion_proof(index, tree_size)
    }

    /// The consistency proof from the tree of `old` entries to the tree of `new`
    /// entries; needs `1 <= old <= new`, empty when `old == new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.stored().consistency_proof(old, new)
    }

    /// The root hash of the first `tree_size` entries.
    pub fn root_at(&self, tree_size: u64) -> Result<Hash, LogError> {
        self.stored().root_at(tree_size)
    }

    /// This checkpoint's tree over the reader's hash tiles (a partial tile that is
    /// gone is read from its full tile).
    fn stored(&self) -> StoredTree<impl Fn(u8, u64, u32) -> Result<Vec<u8>, LogError> + '_> {
        StoredTree {
            size: self.size(),
            root: self.root(),
            read: |level, index, width| {
                self.reader
                    .read_tile_bytes(level, index, width)?
                    .ok_or_else(|| LogError::MissingFile {
                        path: tile_path(level, index, width),
                    })
            },
        }
    }

    /// The bytes of a tile or entry bundle, exactly as tlog-tiles serves them at
    /// `resource`'s path; `None` when the resource is not part of this checkpoint's tree
    /// (or is a partial tile that no longer exists and whose full tile does not yet).
    pub fn resource(&self, resource: &TileResource) -> Result<Option<Vec<u8>>, LogError> {
        let size = self.size();
        let (level, index, width) = match *resource {
            TileResource::Hashes {
                level,
                index,
                width,
            } => (level, index, width),
            TileResource::Entries { index, width } => (0, index, width),
        };
        let count = hashes_at_level(size, usize::from(level));
        let covered = index
            .checked_mul(u64::from(TILE_WIDTH))
            .and_then(|start| start.checked_add(u64::from(width)))
            .is_some_and(|end| end <= count);
        if !covered {
            return Ok(None);
        }
        match resource {
            TileResource::Hashes { .. } => self.reader.read_tile_bytes(level, index, width),
            TileResource::Entries { .. } => self.reader.read_bundle_bytes(index, width),
        }
    }
}

/// Width of entry bundle `number` in a tree of `size` entries.
fn bundle_width(size: u64, number: u64) -> u32 {
    if number < partial_index(size, 0) {
        TILE_WIDTH
    } else {
        // Below 256: the partial bundle's width.
        (size % u64::from(TILE_WIDTH)) as u32
    }
}

/// A tlog-tiles resource path, parsed strictly: `tile/<L>/<N>[.p/<W>]` (a hash tile)
/// or `tile/entries/<N>[.p/<W>]` (an entry bundle), exactly as
/// [`tile_path`](super::tile_path) and [`entries_path`](super::entries_path) write
/// them (`<L>` from 0 to 63 and `<W>` from 1 to 255 without leading zeroes, `<N>` in
/// 3-digit groups, all but the last prefixed with `x`, with no leading `x000/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileResource {
    /// A hash tile.
    Hashes {
        /// Tile level, 0 to 63.
        level: u8,
        /// Tile number within the level.
        index: u64,
        /// Number of hashes: 256 for a full tile, 1 to 255 for a partial one.
        width: u32,
    },
    /// An entry bundle.
    Entries {
        /// Bundle number.
        index: u64,
        /// Number of entries: 256 for a full bundle, 1 to 255 for a partial one.
        width: u32,
    },
}

impl TileResource {
    /// Parses a resource path (`tile/…`); `None` unless it is exactly a path the
    /// tlog-tiles grammar allows, in its one spelling.
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("tile/")?;
        let (kind, rest) = rest.split_once('/')?;
        let (number, width) = match rest.split_once(".p/") {
            Some((number, width)) => (number, parse_decimal(width, 3)?),
            None => (rest, u64::from(TILE_WIDTH)),
        };
        let width = u32::try_from(width)
            .ok()
            .filter(|w| (1..=TILE_WIDTH).contains(w))?;
        let mut index: u64 = 0;
        let groups: Vec<&str> = number.split('/').collect();
        let last = groups.len().checked_sub(1)?;
        for (i, group) in groups.iter().enumerate() {
            let digits = if i < last {
                group.strip_prefix('x')?
            } else {
                group
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let value: u64 = digits.parse().ok()?;
            index = index.checked_mul(1000)?.checked_add(value)?;
        }
        let resource = if kind == "entries" {
            Self::Entries { index, width }
        } else {
            let level = u8::try_from(parse_decimal(kind, 2)?)
                .ok()
                .filter(|l| *l < 64)?;
            Self::Hashes {
                level,
                index,
                width,
            }
        };
        // One spelling only: `.p/256`, leading zero groups and the like are refused.
        (resource.path() == path).then_some(resource)
    }

    /// The resource's path.
    pub fn path(&self) -> String {
        match *self {
            Self::Hashes {
                level,
                index,
                width,
            } => tile_path(level, index, width),
            Self::Entries { index, width } => entries_path(index, width),
        }
    }

    /// Whether the tile or bundle is full (256 wide).
    pub fn is_full(&self) -> bool {
        match *self {
            Self::Hashes { width, .. } | Self::Entries { width, .. } => width == TILE_WIDTH,
        }
    }
}

/// A decimal of at most `max_digits` digits without leading zeroes.
fn parse_decimal(text: &str, max_digits: usize) -> Option<u64> {
    let ok = !text.is_empty()
        && text.len() <= max_digits
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if ok { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::log::EMPTY_ROOT;
    use crate::log::{
        FsTileStore, Log, MemTileStore, leaf_hash, verify_consistency, verify_inclusion,
    };

    const ORIGIN: &str = "medid.example.org/log";

    fn entry(i: u64) -> Vec<u8> {
        format!("entry {i:06}").into_bytes()
    }

    fn append(log: &mut Log<impl TileStore>, n: u64) {
        let old = log.size();
        let entries: Vec<_> = (old..old + n).map(entry).collect();
        log.append_batch(&entries).unwrap();
    }

    #[test]
    fn resource_paths_parse_strictly() {
        let good = [
            (
                "tile/0/000",
                TileResource::Hashes {
                    level: 0,
                    index: 0,
                    width: 256,
                },
            ),
            (
                "tile/0/273.p/112",
                TileResource::Hashes {
                    level: 0,
                    index: 273,
                    width: 112,
                },
            ),
            (
                "tile/63/x001/x234/067.p/1",
                TileResource::Hashes {
                    level: 63,
                    index: 1_234_067,
                    width: 1,
                },
            ),
            (
                "tile/entries/999",
                TileResource::Entries {
                    index: 999,
                    width: 256,
                },
            ),
            (
                "tile/entries/x001/000.p/255",
                TileResource::Entries {
                    index: 1000,
                    width: 255,
                },
            ),
            (
                "tile/0/x018/x446/x744/x073/x709/x551/615",
                TileResource::Hashes {
                    level: 0,
                    index: u64::MAX,
                    width: 256,
                },
            ),
        ];
        for (path, resource) in good {
            assert_eq!(TileResource::parse(path), Some(resource), "{path}");
            assert_eq!(resource.path(), path);
        }
        for bad in [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "tile/0/00",
            "tile/0/0000",
            "tile/00/000",
            "tile/64/000",
            "tile/-1/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/01",
            "tile/0/000.p/",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x1/002",
            "tile/0/abc",
            "tile/data/000",
            "tile/entries/000.p/300",
            "tile/entries/",
            "checkpoint",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/000/",
            "tile/0/000.p/1/",
            "tile/8/0/000",
            "/tile/0/000",
            "tile/0/+00",
            "tile/0/x-01/000",
        ] {
            assert_eq!(TileResource::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_reader_falls_back_to_the_full_tile_once_the_partial_is_gone() {
        let store = MemTileStore::new();
        let mut log = Log::open(
            store.clone(),
            ORIGIN.into(),
            SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap();
        let reader = LogReader::new(store.clone(), log.verifier_key()).unwrap();
        append(&mut log, 100);
        let snapshot = reader.snapshot().unwrap();
        assert_eq!(snapshot.size(), 100);
        let partial = TileResource::Hashes {
            level: 0,
            index: 0,
            width: 100,
        };
        let bundle = TileResource::Entries {
            index: 0,
            width: 100,
        };
        let tile_before = snapshot.resource(&partial).unwrap().unwrap();
        let bundle_before = snapshot.resource(&bundle).unwrap().unwrap();
        assert_eq!(
            store.get("tile/0/000.p/100").unwrap().as_ref(),
            Some(&tile_before)
        );
        let proof_before = snapshot.inclusion_proof(42, 100).unwrap();

        // The writer fills the tile: the partial files of size 100 are deleted.
        append(&mut log, 200);
        assert_eq!(store.get("tile/0/000.p/100").unwrap(), None);
        assert_eq!(store.get("tile/entries/000.p/100").unwrap(), None);
        // The old snapshot still answers, from the full tile and bundle.
        assert_eq!(snapshot.resource(&partial).unwrap().unwrap(), tile_before);
        assert_eq!(snapshot.resource(&bundle).unwrap().unwrap(), bundle_before);
        assert_eq!(snapshot.inclusion_proof(42, 100).unwrap(), proof_before);
        assert_eq!(snapshot.entry(99).unwrap(), entry(99));
        assert_eq!(snapshot.root_at(100).unwrap(), snapshot.root());
        // Beyond the snapshot's tree: nothing, even though the files exist now.
        assert_eq!(
            snapshot
                .resource(&TileResource::Hashes {
                    level: 0,
                    index: 0,
                    width: 256
                })
                .unwrap(),
            None
        );
        assert_eq!(
            snapshot
                .resource(&TileResource::Hashes {
                    level: 0,
                    index: 0,
                    width: 101
                })
                .unwrap(),
            None
        );
        assert!(matches!(
            snapshot.entry(100),
            Err(LogError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            snapshot.inclusion_proof(1, 101),
            Err(LogError::SizeOutOfRange { .. })
        ));

        // A new snapshot sees the new tree; its full tile is served as is.
        let now = reader.snapshot().unwrap();
        assert_eq!(now.size(), 300);
        let full = now
            .resource(&TileResource::Hashes {
                level: 0,
                index: 0,
                width: 256,
            })
            .unwrap()
            .unwrap();
        assert_eq!(full.len(), 8192);
        assert_eq!(&full[..tile_before.len()], tile_before.as_slice());
        assert_eq!(now.note(), log.checkpoint());
        assert_eq!(
            now.resource(&TileResource::Hashes {
                level: 1,
                index: 0,
                width: 1
            })
            .unwrap()
            .unwrap()
            .len(),
            32
        );
        assert_eq!(
            now.resource(&TileResource::Hashes {
                level: 1,
                index: 0,
                width: 2
            })
            .unwrap(),
            None
        );
        assert_eq!(
            now.resource(&TileResource::Hashes {
                level: 2,
                index: 0,
                width: 1
            })
            .unwrap(),
            None
        );
    }

    #[test]
    fn a_reader_refuses_a_checkpoint_it_cannot_verify() {
        let store = MemTileStore::new();
        let log = Log::open(
            store.clone(),
            ORIGIN.into(),
            SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap();
        assert!(LogReader::new(store.clone(), "not a key").is_err());
        let other =
            crate::log::verifier_key(ORIGIN, &SigningKey::from_bytes(&[2; 32]).verifying_key());
        let reader = LogReader::new(store.clone(), &other).unwrap();
        assert!(matches!(reader.snapshot(), Err(LogError::Checkpoint(_))));
        let reader = LogReader::new(store, log.verifier_key()).unwrap();
        assert_eq!(reader.size().unwrap(), 0);
        assert_eq!(reader.root_at(0).unwrap(), EMPTY_ROOT);
        assert!(
            LogReader::new(MemTileStore::new(), log.verifier_key())
                .unwrap()
                .snapshot()
                .is_err()
        );
    }

    /// Proofs read while the writer appends on another thread verify against the
    /// reader's checkpoints, and equal the writer's once it has stopped.
    #[test]
    fn proofs_read_during_appends_verify_and_match_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = Log::open(
            FsTileStore::open(&path).unwrap(),
            ORIGIN.into(),
            SigningKey::from_bytes(&[3; 32]),
        )
        .unwrap();
        let reader = LogReader::new(FsTileStore::open(&path).unwrap(), log.verifier_key()).unwrap();
        append(&mut log, 1);
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                // Batches of uneven sizes cross tile boundaries at levels 0 and 1.
                for n in [3, 250, 7, 1, 300, 64, 255, 2, 500, 129, 17, 1, 256, 90] {
                    append(&mut log, n);
                }
                done.store(true, Ordering::SeqCst);
                log
            })
        };
        let mut checked = 0;
        let mut previous: Option<(u64, Hash)> = None;
        loop {
            let finished = done.load(Ordering::SeqCst);
            let snapshot = reader.snapshot().unwrap();
            let (size, root) = (snapshot.size(), snapshot.root());
            for index in [0, size / 3, size / 2, size - 1] {
                let proof = snapshot.inclusion_proof(index, size).unwrap();
                let leaf = leaf_hash(&snapshot.entry(index).unwrap());
                assert_eq!(leaf, leaf_hash(&entry(index)));
                verify_inclusion(index, size, &leaf, &proof, root.as_bytes()).unwrap();
            }
            if let Some((old, old_root)) = previous {
                assert_eq!(snapshot.root_at(old).unwrap(), old_root);
                if old > 0 {
                    let proof = snapshot.consistency_proof(old, size).unwrap();
                    verify_consistency(old, size, &proof, old_root.as_bytes(), root.as_bytes())
                        .unwrap();
                }
            }
            previous = Some((size, root));
            checked += 1;
            if finished {
                break;
            }
        }
        let log = writer.join().unwrap();
        assert!(checked >= 1);
        let size = log.size();
        assert_eq!(reader.size().unwrap(), size);
        assert_eq!(reader.checkpoint().unwrap(), log.checkpoint());
        for tree_size in [1, 2, 4, 255, 256, 257, 511, 1000, 1024, size - 1, size] {
            for index in [0, 1, tree_size / 2, tree_size - 1] {
                if index >= tree_size {
                    continue;
                }
                assert_eq!(
                    reader.inclusion_proof(index, tree_size).unwrap(),
                    log.inclusion_proof(index, tree_size).unwrap(),
                    "inclusion of {index} in {tree_size}"
                );
            }
            assert_eq!(
                reader.root_at(tree_size).unwrap(),
                log.root_at(tree_size).unwrap()
            );
            for old in [1, 3, 256, tree_size / 2, tree_size] {
                if (1..=tree_size).contains(&old) {
                    assert_eq!(
                        reader.consistency_proof(old, tree_size).unwrap(),
                        log.consistency_proof(old, tree_size).unwrap(),
                        "consistency {old} → {tree_size}"
                    );
                }
            }
        }
        for index in 0..size {
            assert_eq!(reader.entry(index).unwrap(), log.entry(index).unwrap());
        }
    }
}
