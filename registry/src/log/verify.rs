//! Full verification of a stored log: [`verify_log`].
//!
//! Re-reads the checkpoint, every entry bundle and every hash tile the checkpoint's
//! tree consists of, recomputes every hash from the entries up, and checks the result
//! against the signed root. The signed root is the arbiter when entries and tiles
//! disagree: if the entries reproduce it, the disagreeing tile is corrupt
//! ([`LogError::CorruptTile`]); if they do not, the first entry whose hash differs from
//! its stored tile is ([`LogError::CorruptEntry`]).
//!
//! Memory: one bundle and tile at a time at level 0, plus one hash per 256 entries for
//! the levels above.

use super::LogError;
use super::checkpoint::{Checkpoint, verify_checkpoint};
use super::edge::{hashes_at_level, root_of_partial_tiles};
use super::hash::{Hash, leaf_hash};
use super::merkle::tree_root;
use super::store::TileStore;
use super::tiled_log::read_hash_tile;
use super::tiles::{CHECKPOINT_PATH, TILE_WIDTH, entries_path, parse_bundle, tile_path};

/// The first problem found, by entry index (ties: the one found first).
#[derive(Debug)]
struct FirstProblem(Option<(u64, LogError)>);

impl FirstProblem {
    fn note(&mut self, index: u64, error: impl FnOnce() -> LogError) {
        if self.0.as_ref().is_none_or(|(first, _)| index < *first) {
            self.0 = Some((index, error()));
        }
    }
}

/// Verifies everything stored for the log whose checkpoints verify under `vkey` (see
/// [`verifier_key`](super::verifier_key)) and returns its verified checkpoint.
///
/// Fails with the first problem: a missing or malformed file, the first entry that
/// does not match the signed tree, or the first tile hash that disagrees with entries
/// that do.
pub fn verify_log<S: TileStore + ?Sized>(store: &S, vkey: &str) -> Result<Checkpoint, LogError> {
    let note = store
        .get(CHECKPOINT_PATH)
        .map_err(|source| LogError::Store {
            action: "reading the checkpoint".into(),
            source,
        })?
        .ok_or_else(|| LogError::MissingFile {
            path: CHECKPOINT_PATH.into(),
        })?;
    let checkpoint = verify_checkpoint(&note, vkey)?;
    let size = checkpoint.size;
    let width_of = |count: u64, tile: u64| -> u32 {
        let left = count - tile * u64::from(TILE_WIDTH);
        // At most 256.
        left.min(u64::from(TILE_WIDTH)) as u32
    };

    // Problems with entries (blamed if the entries miss the signed root) and with
    // tiles (blamed if the entries reproduce it).
    let mut entry_problem = FirstProblem(None);
    let mut tile_problem = FirstProblem(None);
    let mut entries_readable = true;
    // Partial tile hashes derived from the entries, per level, for the root.
    let mut partials: Vec<Vec<Hash>> = Vec::new();

    // Level 0: entry bundles against leaf-hash tiles.
    let mut derived: Vec<Hash> = Vec::new(); // level-1 hashes derived from the entries
    partials.push(Vec::new());
    for number in 0..size.div_ceil(u64::from(TILE_WIDTH)) {
        let width = width_of(size, number);
        let start = number * u64::from(TILE_WIDTH);
        let tile_at = tile_path(0, number, width);
        let stored = read_hash_tile(store, &tile_at, width)?;
        let bundle_at = entries_path(number, width);
        let bundle = store
            .get(&bundle_at)
            .map_err(|source| LogError::Store {
                action: format!("reading {bundle_at}"),
                source,
            })?
            .ok_or_else(|| LogError::MissingFile {
                path: bundle_at.clone(),
            })?;
        let parsed = parse_bundle(&bundle);
        let mut hashes: Vec<Hash> = parsed
            .entries
            .iter()
            .take(width as usize)
            .map(|e| leaf_hash(e))
            .collect();
        for (i, (from_entry, from_tile)) in hashes.iter().zip(&stored).enumerate() {
            if from_entry != from_tile {
                let index = start + i as u64;
                entry_problem.note(index, || LogError::CorruptEntry {
                    index,
                    path: bundle_at.clone(),
                });
                tile_problem.note(index, || LogError::CorruptTile {
                    path: tile_at.clone(),
                    index,
                });
                break;
            }
        }
        if parsed.truncated || parsed.entries.len() != width as usize {
            let index = start + parsed.entries.len().min(width as usize) as u64;
            entry_problem.note(index, || LogError::MalformedBundle {
                path: bundle_at.clone(),
                index,
            });
            entries_readable = false;
            // Carry on with the stored hashes to find problems further on.
            hashes = stored;
        }
        if width == TILE_WIDTH {
            derived.push(tree_root(&hashes));
        } else {
            partials[0] = hashes;
        }
    }

    // Levels 1 and up: each stored hash against the hash derived from the level below.
    let mut level = 1;
    while hashes_at_level(size, level) > 0 {
        let count = hashes_at_level(size, level);
        let shift = 8 * level as u32;
        let mut next = Vec::new();
        partials.push(Vec::new());
        for number in 0..count.div_ceil(u64::from(TILE_WIDTH)) {
            let width = width_of(count, number);
            let at = tile_path(level as u8, number, width);
            let stored = read_hash_tile(store, &at, width)?;
            let first = (number * u64::from(TILE_WIDTH)) as usize;
            let Some(chunk) = derived.get(first..first + width as usize) else {
                return Err(LogError::RootMismatch { size });
            };
            if let Some(i) = chunk.iter().zip(&stored).position(|(d, s)| d != s) {
                let index = ((first + i) as u64) << shift;
                tile_problem.note(index, || LogError::CorruptTile {
                    path: at.clone(),
                    index,
                });
            }
            if width == TILE_WIDTH {
                next.push(tree_root(chunk));
            } else {
                partials[level] = chunk.to_vec();
            }
        }
        derived = next;
        level += 1;
    }

    let entries_match_root =
        entries_readable && root_of_partial_tiles(&partials) == checkpoint.root;
    if !entries_match_root {
        return Err(entry_problem
            .0
            .map_or(LogError::RootMismatch { size }, |(_, e)| e));
    }
    if let Some((_, e)) = tile_problem.0 {
        return Err(e);
    }
    Ok(checkpoint)
}
