//! The log end to end: append batches, read entries back, prove inclusion and
//! consistency and verify the proofs, sign and check checkpoints, reopen.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use medid_registry::log::{
    EMPTY_ROOT, FsTileStore, Hash, Log, LogError, MAX_ENTRY_LEN, MemTileStore, TileStore,
    leaf_hash, tree_root, verifier_key, verify_checkpoint, verify_consistency, verify_inclusion,
    verify_log,
};

const ORIGIN: &str = "medid.example.org/log";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i:06}").into_bytes()
}

/// Appends `batches` to a fresh log, checking each outcome; returns the log, all
/// leaf hashes, and the (size, root) after each batch.
fn build(batches: &[u64]) -> (Log<MemTileStore>, Vec<Hash>, Vec<(u64, Hash)>) {
    let mut log = Log::open(MemTileStore::new(), ORIGIN.into(), key(1)).unwrap();
    assert_eq!((log.size(), log.root()), (0, EMPTY_ROOT));
    let mut leaves = Vec::new();
    let mut sizes = Vec::new();
    for &n in batches {
        let old = log.size();
        let entries: Vec<_> = (old..old + n).map(entry).collect();
        let out = log.append_batch(&entries).unwrap();
        leaves.extend(entries.iter().map(|e| leaf_hash(e)));
        assert_eq!(out.first_index, old);
        assert_eq!(out.leaf_hashes, leaves[old as usize..]);
        assert_eq!(out.tree_size, old + n);
        assert_eq!(out.root, tree_root(&leaves));
        assert_eq!((log.size(), log.root()), (out.tree_size, out.root));
        assert_eq!(log.checkpoint(), out.checkpoint.as_slice());
        let cp = verify_checkpoint(&out.checkpoint, log.verifier_key()).unwrap();
        assert_eq!(
            (cp.origin.as_str(), cp.size, cp.root),
            (ORIGIN, out.tree_size, out.root)
        );
        sizes.push((out.tree_size, out.root));
    }
    (log, leaves, sizes)
}

/// Leaf indexes worth proving in a tree of `size`: all for small trees, else the
/// tile boundaries and a stride.
fn indexes(size: u64) -> Vec<u64> {
    if size <= 40 {
        return (0..size).collect();
    }
    let mut set: BTreeSet<u64> = (0..size).step_by(37).collect();
    for i in [0, 1, 2, 127, 128, 254, 255, 256, 257, 511, 512, 513] {
        if i < size {
            set.insert(i);
        }
    }
    set.extend([size - 2, size - 1]);
    set.into_iter().collect()
}

#[test]
fn proofs_round_trip_for_many_sizes() {
    // 600 entries in batches that cross level-0 tile boundaries and grow the
    // level-1 partial tile, with single-entry batches in between.
    let batches = [1, 1, 2, 3, 9, 17, 31, 64, 100, 27, 1, 255, 1, 88];
    assert_eq!(batches.iter().sum::<u64>(), 600);
    let (log, leaves, sizes) = build(&batches);
    assert_eq!(log.size(), 600);

    for &(size, root) in &sizes {
        assert_eq!(log.root_at(size).unwrap(), root);
        for index in indexes(size) {
            let proof = log.inclusion_proof(index, size).unwrap();
            verify_inclusion(index, size, &leaves[index as usize], &proof, &root.0)
                .unwrap_or_else(|e| panic!("inclusion {index} in {size}: {e}"));
            // A proof for one leaf does not prove another.
            let other = leaves[((index + 1) % size) as usize];
            if size > 1 {
                assert!(verify_inclusion(index, size, &other, &proof, &root.0).is_err());
            }
        }
        for &(old, old_root) in &sizes {
            if old > size {
                continue;
            }
            let proof = log.consistency_proof(old, size).unwrap();
            verify_consistency(old, size, &proof, &old_root.0, &root.0)
                .unwrap_or_else(|e| panic!("consistency {old} -> {size}: {e}"));
            if old < size {
                assert!(verify_consistency(old, size, &proof, &root.0, &old_root.0).is_err());
            }
        }
    }
    // Every entry, proved against the final tree.
    let root = log.root();
    for index in 0..600 {
        let proof = log.inclusion_proof(index, 600).unwrap();
        verify_inclusion(index, 600, &leaves[index as usize], &proof, &root.0).unwrap();
    }
    // Roots of sizes no checkpoint was made for.
    for size in [0, 5, 255, 256, 257, 300, 511, 512, 599] {
        assert_eq!(
            log.root_at(size).unwrap(),
            tree_root(&leaves[..size as usize])
        );
    }
    assert_eq!(log.verify().unwrap(), 600);
}

#[test]
fn entries_read_back() {
    let (log, _, _) = build(&[10, 300, 5]);
    for i in [0, 9, 10, 255, 256, 314] {
        assert_eq!(log.entry(i).unwrap(), entry(i));
    }
    let all: Vec<_> = log.entries(0..315).unwrap().map(Result::unwrap).collect();
    assert_eq!(all.len(), 315);
    for (i, (index, e)) in all.iter().enumerate() {
        assert_eq!((*index, e), (i as u64, &entry(i as u64)));
    }
    let middle: Vec<_> = log
        .entries(250..260)
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(middle, (250..260).collect::<Vec<_>>());
    assert_eq!(log.entries(7..7).unwrap().count(), 0);
    assert!(matches!(
        log.entry(315),
        Err(LogError::IndexOutOfRange {
            index: 315,
            size: 315
        })
    ));
    assert!(matches!(
        log.entries(0..316),
        Err(LogError::SizeOutOfRange { .. })
    ));
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let (log, _, _) = build(&[20]);
    assert!(matches!(
        log.inclusion_proof(20, 20),
        Err(LogError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        log.inclusion_proof(u64::MAX, 20),
        Err(LogError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        log.inclusion_proof(0, 21),
        Err(LogError::SizeOutOfRange { .. })
    ));
    assert!(matches!(
        log.consistency_proof(0, 10),
        Err(LogError::InvalidRequest(_))
    ));
    assert!(matches!(
        log.consistency_proof(11, 10),
        Err(LogError::InvalidRequest(_))
    ));
    assert!(matches!(
        log.consistency_proof(1, u64::MAX),
        Err(LogError::SizeOutOfRange { .. })
    ));
    assert_eq!(log.consistency_proof(10, 10).unwrap(), Vec::<Hash>::new());
    assert!(matches!(
        log.root_at(u64::MAX),
        Err(LogError::SizeOutOfRange { .. })
    ));
    assert!(matches!(
        log.entry(u64::MAX),
        Err(LogError::IndexOutOfRange { .. })
    ));
}

#[test]
fn batch_limits() {
    let store = MemTileStore::new();
    let mut log = Log::open(store.clone(), ORIGIN.into(), key(1)).unwrap();
    let puts = store.put_count();
    assert!(matches!(
        log.append_batch::<Vec<u8>>(&[]),
        Err(LogError::EmptyBatch)
    ));
    let batch = vec![b"ok".to_vec(), vec![0; MAX_ENTRY_LEN + 1]];
    assert!(matches!(
        log.append_batch(&batch),
        Err(LogError::EntryTooLarge {
            position: 1,
            len: 65_536
        })
    ));
    // Refused batches write nothing and leave the log usable.
    assert_eq!(store.put_count(), puts);
    assert_eq!(log.size(), 0);
    let out = log
        .append_batch(&[vec![7; MAX_ENTRY_LEN], Vec::new()])
        .unwrap();
    assert_eq!(out.tree_size, 2);
    assert_eq!(log.entry(0).unwrap(), vec![7; MAX_ENTRY_LEN]);
    assert_eq!(log.entry(1).unwrap(), Vec::<u8>::new());
    assert_eq!(log.verify().unwrap(), 2);
}

#[test]
fn checkpoints_verify_only_under_the_log_key() {
    let (log, _, _) = build(&[3]);
    let note = log.checkpoint();
    let text = std::str::from_utf8(note).unwrap();
    assert!(text.starts_with(&format!(
        "{ORIGIN}\n3\n{}\n\n\u{2014} {ORIGIN} ",
        log.root()
    )));
    assert_eq!(
        log.verifier_key(),
        verifier_key(ORIGIN, &key(1).verifying_key())
    );
    assert!(log.verifier_key().starts_with(&format!("{ORIGIN}+")));

    let cp = verify_checkpoint(note, log.verifier_key()).unwrap();
    assert_eq!((cp.size, cp.root), (3, log.root()));
    let other = verifier_key(ORIGIN, &key(2).verifying_key());
    assert!(verify_checkpoint(note, &other).is_err());
    assert!(verify_log(log.store(), &other).is_err());
    assert_eq!(verify_log(log.store(), log.verifier_key()).unwrap(), cp);
}

#[test]
fn reopen_recovers_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsTileStore::open(dir.path()).unwrap();
    let mut log = Log::open(store.clone(), ORIGIN.into(), key(1)).unwrap();
    for n in [5, 300, 40] {
        let old = log.size();
        let entries: Vec<_> = (old..old + n).map(entry).collect();
        log.append_batch(&entries).unwrap();
    }
    let (size, root, checkpoint) = (log.size(), log.root(), log.checkpoint().to_vec());
    drop(log);

    let mut log = Log::open(store.clone(), ORIGIN.into(), key(1)).unwrap();
    assert_eq!(
        (log.size(), log.root(), log.checkpoint()),
        (size, root, &checkpoint[..])
    );
    let all: Vec<_> = log
        .entries(0..size)
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect();
    assert_eq!(all, (0..size).map(entry).collect::<Vec<_>>());
    assert_eq!(log.verify().unwrap(), size);

    // It keeps growing from where it was, consistently with the old checkpoint.
    let entries: Vec<_> = (size..size + 250).map(entry).collect();
    log.append_batch(&entries).unwrap();
    let proof = log.consistency_proof(size, log.size()).unwrap();
    verify_consistency(size, log.size(), &proof, &root.0, &log.root().0).unwrap();
    assert_eq!(log.verify().unwrap(), size + 250);

    // Another key or another name cannot take the log over.
    assert!(matches!(
        Log::open(store.clone(), ORIGIN.into(), key(2)),
        Err(LogError::Checkpoint(_))
    ));
    assert!(matches!(
        Log::open(store.clone(), "medid.example.org/other".into(), key(1)),
        Err(LogError::Checkpoint(_))
    ));
    assert!(matches!(
        Log::open(store, "bad origin".into(), key(1)),
        Err(LogError::Checkpoint(_))
    ));
}

#[test]
fn tiles_without_checkpoint_are_not_overwritten() {
    let store = MemTileStore::new();
    let mut log = Log::open(store.clone(), ORIGIN.into(), key(1)).unwrap();
    log.append_batch(&[entry(0), entry(1)]).unwrap();
    drop(log);
    store.delete("checkpoint").unwrap();
    assert!(matches!(
        Log::open(store.clone(), ORIGIN.into(), key(1)),
        Err(LogError::MissingCheckpoint)
    ));
    assert_eq!(store.get("checkpoint").unwrap(), None);
}

#[test]
fn spec_layout_at_70000_entries() {
    // c2sp.org/tlog-tiles: "a tree of size 70,000 will be represented by 273 full
    // level 0 tiles, one partial level 0 tile of width 112, one full level 1 tile, one
    // partial level 1 tile of width 17, and one partial level 2 tile of width 1."
    let store = MemTileStore::new();
    let mut log = Log::open(store.clone(), ORIGIN.into(), key(1)).unwrap();
    let mut leaves = Vec::new();
    let mut checkpoints = Vec::new();
    // Batches of 999 so partial tiles at levels 0 and 1 are written and superseded.
    while log.size() < 70_000 {
        let old = log.size();
        let n = (70_000 - old).min(999);
        let entries: Vec<_> = (old..old + n).map(entry).collect();
        leaves.extend(entries.iter().map(|e| leaf_hash(e)));
        let out = log.append_batch(&entries).unwrap();
        checkpoints.push((out.tree_size, out.root));
    }
    let paths: BTreeSet<String> = store.paths().into_iter().collect();
    for want in [
        "tile/0/000",
        "tile/0/272",
        "tile/0/273.p/112",
        "tile/entries/000",
        "tile/entries/272",
        "tile/entries/273.p/112",
        "tile/1/000",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
        "checkpoint",
    ] {
        assert!(paths.contains(want), "missing {want}");
    }
    let full = |level: &str| {
        paths
            .iter()
            .filter(|p| p.starts_with(level) && !p.contains(".p/"))
            .count()
    };
    assert_eq!(full("tile/0/"), 273);
    assert_eq!(full("tile/entries/"), 273);
    assert_eq!(full("tile/1/"), 1);
    assert_eq!(full("tile/2/"), 0);
    assert!(!paths.iter().any(|p| p.starts_with("tile/3/")));
    // Partial tiles of tiles now full were deleted; those of the current rightmost
    // tiles (one per checkpoint made) are kept, as tlog-tiles requires.
    for p in paths.iter().filter(|p| p.contains(".p/")) {
        let tile = p.split(".p/").next().unwrap();
        assert!(
            ["tile/0/273", "tile/entries/273", "tile/1/001", "tile/2/000"].contains(&tile),
            "superseded partial tile left behind: {p}"
        );
    }
    for &(size, _) in &checkpoints {
        if size < 65_536 {
            continue;
        }
        let width = (size >> 8) % 256;
        assert!(
            paths.contains(&format!("tile/1/001.p/{width}")),
            "size {size}"
        );
    }
    assert_eq!(log.root(), tree_root(&leaves));
    assert_eq!(log.verify().unwrap(), 70_000);

    // Proofs across the level-1 and level-2 boundaries.
    let root = log.root();
    for index in [0, 255, 256, 65_535, 65_536, 69_887, 69_888, 69_999] {
        let proof = log.inclusion_proof(index, 70_000).unwrap();
        verify_inclusion(index, 70_000, &leaves[index as usize], &proof, &root.0).unwrap();
    }
    for &(old, old_root) in checkpoints.iter().step_by(7) {
        let proof = log.consistency_proof(old, 70_000).unwrap();
        verify_consistency(old, 70_000, &proof, &old_root.0, &root.0).unwrap();
        assert_eq!(log.root_at(old).unwrap(), old_root);
    }
    for size in [256, 65_536] {
        assert_eq!(
            log.root_at(size).unwrap(),
            tree_root(&leaves[..size as usize])
        );
    }
}

#[test]
fn size_256_is_a_full_tile_and_a_level_1_partial() {
    let store = MemTileStore::new();
    let mut log = Log::open(store.clone(), ORIGIN.into(), key(1)).unwrap();
    let entries: Vec<_> = (0..256).map(entry).collect();
    log.append_batch(&entries).unwrap();
    let tiles: Vec<_> = store
        .paths()
        .into_iter()
        .filter(|p| p.starts_with("tile/"))
        .collect();
    assert_eq!(tiles, ["tile/0/000", "tile/1/000.p/1", "tile/entries/000"]);
    let level1 = store.get("tile/1/000.p/1").unwrap().unwrap();
    assert_eq!(level1, log.root().0);
}
