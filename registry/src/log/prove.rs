//! Proofs over a tree whose hash tiles are read back from storage: the one
//! implementation behind both the writer's [`Log`](super::Log) and a reader's
//! [`LogSnapshot`](super::LogSnapshot).

use std::cell::RefCell;

use tlog_tiles::{Tile, TileHashReader, TileReader};

use super::LogError;
use super::hash::{EMPTY_ROOT, Hash};
use super::tiles::TILE_HEIGHT;

/// The tree of `size` entries with root `root`; `read(level, index, width)` gives the
/// bytes of a stored hash tile. Every tile read is authenticated against the root.
pub(crate) struct StoredTree<F> {
    pub(crate) size: u64,
    pub(crate) root: Hash,
    pub(crate) read: F,
}

impl<F: Fn(u8, u64, u32) -> Result<Vec<u8>, LogError>> StoredTree<F> {
    /// The inclusion proof of entry `index` in the tree of `tree_size` entries.
    pub(crate) fn inclusion_proof(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<Vec<Hash>, LogError> {
        self.check_size(tree_size)?;
        if index >= tree_size {
            return Err(LogError::IndexOutOfRange {
                index,
                size: tree_size,
            });
        }
        self.with_hash_reader(|reader| tlog_tiles::prove_record(tree_size, index, reader))
            .map(|proof| proof.into_iter().map(Hash::from_tlog).collect())
    }

    /// The consistency proof from the tree of `old` entries to the tree of `new`
    /// entries; needs `1 <= old <= new`, empty when `old == new`.
    pub(crate) fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(new)?;
        if old == 0 || old > new {
            return Err(LogError::InvalidRequest(format!(
                "a consistency proof from size {old} to size {new} needs 1 <= old <= new"
            )));
        }
        if old == new {
            return Ok(Vec::new());
        }
        self.with_hash_reader(|reader| tlog_tiles::prove_tree(new, old, reader))
            .map(|proof| proof.into_iter().map(Hash::from_tlog).collect())
    }

    /// The root hash of the first `tree_size` entries.
    pub(crate) fn root_at(&self, tree_size: u64) -> Result<Hash, LogError> {
        self.check_size(tree_size)?;
        if tree_size == self.size {
            return Ok(self.root);
        }
        if tree_size == 0 {
            return Ok(EMPTY_ROOT);
        }
        self.with_hash_reader(|reader| tlog_tiles::tree_hash(tree_size, reader))
            .map(Hash::from_tlog)
    }

    fn check_size(&self, tree_size: u64) -> Result<(), LogError> {
        if tree_size > self.size {
            return Err(LogError::SizeOutOfRange {
                requested: tree_size,
                size: self.size,
            });
        }
        Ok(())
    }

    /// Runs `f` with a `tlog_tiles` hash reader over the stored tiles.
    fn with_hash_reader<T>(
        &self,
        f: impl FnOnce(&TileHashReader<'_>) -> Result<T, tlog_tiles::Error>,
    ) -> Result<T, LogError> {
        let tiles = Tiles {
            read: &self.read,
            error: RefCell::new(None),
        };
        let hashes = TileHashReader::new(self.size, self.root.to_tlog(), &tiles);
        let result = f(&hashes);
        match (result, tiles.error.into_inner()) {
            (Ok(value), _) => Ok(value),
            (Err(_), Some(store_error)) => Err(store_error),
            (Err(e), None) => Err(LogError::InconsistentTiles(e.to_string())),
        }
    }
}

/// Stored hash tiles as a `tlog_tiles::TileReader`. `tlog_tiles` errors cannot carry
/// a storage error, so the first one is kept aside here.
struct Tiles<'a, F> {
    read: &'a F,
    error: RefCell<Option<LogError>>,
}

impl<F: Fn(u8, u64, u32) -> Result<Vec<u8>, LogError>> TileReader for Tiles<'_, F> {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let mut out = Vec::with_capacity(tiles.len());
        for tile in tiles {
            if tile.is_data() {
                return Err(tlog_tiles::Error::InvalidTile);
            }
            match (self.read)(tile.level(), tile.level_index(), tile.width()) {
                Ok(data) => out.push(data),
                Err(e) => {
                    self.error.borrow_mut().get_or_insert(e);
                    return Err(tlog_tiles::Error::InvalidTile);
                }
            }
        }
        Ok(out)
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}
