//! The right edge of the tiled Merkle tree, kept in memory by the writer.
//!
//! [`RightEdge`] holds, for a tree of `size` leaves, the hashes of the partial tile at
//! every level and the partial entry bundle. That is all an append needs: new leaves
//! extend the level-0 partial tile; a tile that fills up is emitted as a full tile and
//! its subtree hash moves up one level. The root of the whole tree is also a function
//! of the partial tiles alone, since every full tile is summarised by a hash one level
//! up. So appends never read the tree back from storage.
//!
//! Pure: [`RightEdge::append`] returns the files to write ([`TileFile`]); writing them
//! is the caller's business.

use super::hash::{EMPTY_ROOT, Hash, leaf_hash, node_hash};
use super::merkle::tree_root;
use super::tiles::{TILE_HEIGHT, TILE_WIDTH, encode_entry, entries_path, tile_path};

/// Tile levels a tree of up to `u64::MAX` leaves can have (8 bits per level).
pub(crate) const MAX_LEVELS: usize = 8;

/// One file of the tiled log: its path and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TileFile {
    /// The path, as tlog-tiles names it.
    pub(crate) path: String,
    /// The bytes.
    pub(crate) data: Vec<u8>,
}

/// An entry that cannot go into an entry bundle: at this position in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryTooLarge {
    /// Position of the entry in the batch.
    pub(crate) position: usize,
    /// Its length in bytes.
    pub(crate) len: usize,
}

/// The partial tiles and partial entry bundle of a tree (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RightEdge {
    size: u64,
    /// `levels[l]` holds the `(size >> 8l) % 256` hashes of the partial tile at level
    /// `l`; the vector has at least one element, trailing levels may be empty.
    levels: Vec<Vec<Hash>>,
    /// The encoded entries of the partial bundle: `size % 256` of them.
    bundle: Vec<u8>,
}

/// The number of hashes tile level `level` has in a tree of `size` leaves.
pub(crate) fn hashes_at_level(size: u64, level: usize) -> u64 {
    u32::try_from(level * usize::from(TILE_HEIGHT))
        .ok()
        .and_then(|shift| size.checked_shr(shift))
        .unwrap_or(0)
}

/// Width of the partial tile at `level` in a tree of `size` leaves (0: none).
pub(crate) fn partial_width(size: u64, level: usize) -> u32 {
    // The remainder is below 256, so it fits.
    (hashes_at_level(size, level) % u64::from(TILE_WIDTH)) as u32
}

/// Index within its level of the rightmost (partial or next) tile at `level`.
pub(crate) fn partial_index(size: u64, level: usize) -> u64 {
    hashes_at_level(size, level) / u64::from(TILE_WIDTH)
}

impl RightEdge {
    /// The edge of the empty tree.
    pub(crate) fn empty() -> Self {
        Self {
            size: 0,
            levels: vec![Vec::new()],
            bundle: Vec::new(),
        }
    }

    /// An edge from its parts, read back from storage. Returns `None` unless
    /// `levels[l]` has exactly [`partial_width`]`(size, l)` hashes for every level and
    /// `levels` covers every level that has any.
    pub(crate) fn from_parts(
        size: u64,
        mut levels: Vec<Vec<Hash>>,
        bundle: Vec<u8>,
    ) -> Option<Self> {
        if levels.len() > MAX_LEVELS {
            return None;
        }
        for level in 0..MAX_LEVELS {
            let have = levels.get(level).map_or(0, Vec::len);
            if u64::try_from(have).ok()? != u64::from(partial_width(size, level)) {
                return None;
            }
        }
        if levels.is_empty() {
            levels.push(Vec::new());
        }
        Some(Self {
            size,
            levels,
            bundle,
        })
    }

    /// Number of leaves in the tree.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Hashes of the partial tile at `level`.
    #[cfg(test)]
    pub(crate) fn partial_hashes(&self, level: usize) -> &[Hash] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// The encoded partial entry bundle.
    pub(crate) fn partial_bundle(&self) -> &[u8] {
        &self.bundle
    }

    /// The Merkle tree hash of the whole tree.
    ///
    /// The tree splits into perfect subtrees, one per set bit of `size`, largest first;
    /// the bits `8l..8l+8` of `size` are the width of the partial tile at level `l`, so
    /// each such subtree is a power-of-two run of that tile's hashes. Folding them from
    /// the right gives the RFC 6962 MTH.
    pub(crate) fn root(&self) -> Hash {
        root_of_partial_tiles(&self.levels)
    }

    /// Appends `entries`, returning their leaf hashes and the tiles and bundles that
    /// must be written for the new size: every tile and bundle that became full, and the
    /// partial tile of every level (and the partial bundle) that changed.
    ///
    /// On error (an entry too large, or more leaves than a `u64` counts) the edge is
    /// left unchanged.
    pub(crate) fn append<E: AsRef<[u8]>>(
        &mut self,
        entries: &[E],
    ) -> Result<(Vec<Hash>, Vec<TileFile>), AppendRejected> {
        if let Some((position, entry)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.as_ref().len() > super::tiles::MAX_ENTRY_LEN)
        {
            return Err(AppendRejected::TooLarge(EntryTooLarge {
                position,
                len: entry.as_ref().len(),
            }));
        }
        let added = u64::try_from(entries.len()).map_err(|_| AppendRejected::Full)?;
        let new_size = self.size.checked_add(added).ok_or(AppendRejected::Full)?;
        let old_size = self.size;

        let mut leaf_hashes = Vec::with_capacity(entries.len());
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            let hash = leaf_hash(entry);
            leaf_hashes.push(hash);
            // Checked above: no entry is too long.
            encode_entry(&mut self.bundle, entry);
            self.size += 1;
            self.push(0, hash, &mut files);
        }
        debug_assert_eq!(self.size, new_size);

        // The partial tile of every level whose hash count changed, and the bundle.
        for level in 0..self.levels.len() {
            let width = partial_width(new_size, level);
            if width == 0 || hashes_at_level(old_size, level) == hashes_at_level(new_size, level) {
                continue;
            }
            let index = partial_index(new_size, level);
            files.push(TileFile {
                path: tile_path(level_u8(level), index, width),
                data: concat(&self.levels[level]),
            });
            if level == 0 {
                files.push(TileFile {
                    path: entries_path(index, width),
                    data: self.bundle.clone(),
                });
            }
        }
        Ok((leaf_hashes, files))
    }

    /// Adds `hash` to the partial tile at `level`, emitting tiles that fill up and
    /// carrying their subtree hashes upward.
    fn push(&mut self, mut level: usize, mut hash: Hash, files: &mut Vec<TileFile>) {
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let tile = &mut self.levels[level];
            tile.push(hash);
            if tile.len() < TILE_WIDTH as usize {
                return;
            }
            // The tile at `level` is full: it is the last full one at that level.
            let index = partial_index(self.size, level).saturating_sub(1);
            let hashes = std::mem::take(tile);
            hash = tree_root(&hashes);
            files.push(TileFile {
                path: tile_path(level_u8(level), index, TILE_WIDTH),
                data: concat(&hashes),
            });
            if level == 0 {
                files.push(TileFile {
                    path: entries_path(index, TILE_WIDTH),
                    data: std::mem::take(&mut self.bundle),
                });
            }
            level += 1;
        }
    }
}

/// Why [`RightEdge::append`] refused a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendRejected {
    /// An entry is longer than a bundle can hold.
    TooLarge(EntryTooLarge),
    /// The tree would have more than `u64::MAX` leaves.
    Full,
}

/// The root of a tree given the hashes of its partial tiles, level by level (see
/// [`RightEdge::root`]).
pub(crate) fn root_of_partial_tiles(levels: &[Vec<Hash>]) -> Hash {
    let mut subtrees = Vec::new();
    for hashes in levels.iter().rev() {
        let mut offset = 0;
        for bit in (0..TILE_HEIGHT).rev() {
            let run = 1usize << bit;
            if hashes.len() & run != 0 {
                subtrees.push(tree_root(&hashes[offset..offset + run]));
                offset += run;
            }
        }
    }
    let mut from_right = subtrees.iter().rev();
    let Some(mut root) = from_right.next().copied() else {
        return EMPTY_ROOT;
    };
    for left in from_right {
        root = node_hash(left, &root);
    }
    root
}

/// Levels are below [`MAX_LEVELS`], so they fit a `u8`.
fn level_u8(level: usize) -> u8 {
    u8::try_from(level).unwrap_or(u8::MAX)
}

/// The bytes of a tile: its hashes, concatenated.
pub(crate) fn concat(hashes: &[Hash]) -> Vec<u8> {
    let mut data = Vec::with_capacity(hashes.len() * 32);
    for h in hashes {
        data.extend_from_slice(h.as_bytes());
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(i: u64) -> Vec<u8> {
        format!("entry {i}").into_bytes()
    }

    #[test]
    fn root_matches_tree_root_at_every_size() {
        let mut edge = RightEdge::empty();
        let mut leaves = Vec::new();
        assert_eq!(edge.root(), EMPTY_ROOT);
        for i in 0..1100 {
            let (hashes, _) = edge.append(&[entry(i)]).unwrap();
            leaves.extend(hashes);
            assert_eq!(edge.root(), tree_root(&leaves), "size {}", i + 1);
        }
    }

    #[test]
    fn emitted_files_are_the_tlog_tiles_set() {
        // Batches of awkward sizes; after each, the tiles written must be exactly
        // those tlog_tiles::Tile::new_tiles names, with the bytes Tile::read_data gives.
        struct Stored(Vec<tlog_tiles::Hash>);
        impl tlog_tiles::HashReader for Stored {
            fn read_hashes(&self, idx: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
                Ok(idx.iter().map(|&i| self.0[i as usize]).collect())
            }
        }
        let mut stored = Stored(Vec::new());
        let mut edge = RightEdge::empty();
        let mut all_entries = Vec::new();
        for batch in [1u64, 2, 253, 1, 255, 256, 300, 1, 511, 64, 3000] {
            let old = edge.size();
            let entries: Vec<_> = (old..old + batch).map(entry).collect();
            let (hashes, files) = edge.append(&entries).unwrap();
            for (i, h) in hashes.iter().enumerate() {
                let n = old + i as u64;
                let new =
                    tlog_tiles::stored_hashes_for_record_hash(n, h.to_tlog(), &stored).unwrap();
                stored.0.extend(new);
            }
            all_entries.extend(entries);
            let files: BTreeMap<_, _> = files.into_iter().map(|f| (f.path, f.data)).collect();
            let mut want = BTreeMap::new();
            for tile in tlog_tiles::Tile::new_tiles(TILE_HEIGHT, old, edge.size()) {
                let path = tile_path(tile.level(), tile.level_index(), tile.width());
                want.insert(path, tile.read_data(&stored).unwrap());
                if tile.level() == 0 {
                    let start = (tile.level_index() * 256) as usize;
                    let mut bundle = Vec::new();
                    for e in &all_entries[start..start + tile.width() as usize] {
                        encode_entry(&mut bundle, e);
                    }
                    want.insert(entries_path(tile.level_index(), tile.width()), bundle);
                }
            }
            assert_eq!(files, want, "batch {old}..{}", edge.size());
            let root = tlog_tiles::tree_hash(edge.size(), &stored).unwrap();
            assert_eq!(edge.root(), Hash::from_tlog(root));
        }
    }

    #[test]
    fn from_parts_checks_widths() {
        let mut edge = RightEdge::empty();
        let entries: Vec<_> = (0..300).map(entry).collect();
        edge.append(&entries).unwrap();
        let levels = vec![
            edge.partial_hashes(0).to_vec(),
            edge.partial_hashes(1).to_vec(),
        ];
        let bundle = edge.partial_bundle().to_vec();
        let back = RightEdge::from_parts(300, levels.clone(), bundle.clone()).unwrap();
        assert_eq!(back.root(), edge.root());
        assert!(RightEdge::from_parts(301, levels.clone(), bundle.clone()).is_none());
        assert!(RightEdge::from_parts(300, levels[..1].to_vec(), bundle).is_none());
    }

    #[test]
    fn oversized_entry_leaves_edge_unchanged() {
        let mut edge = RightEdge::empty();
        edge.append(&[entry(0)]).unwrap();
        let before = edge.clone();
        let batch = vec![entry(1), vec![0; 70_000]];
        assert_eq!(
            edge.append(&batch),
            Err(AppendRejected::TooLarge(EntryTooLarge {
                position: 1,
                len: 70_000
            }))
        );
        assert_eq!(edge, before);
    }
}
