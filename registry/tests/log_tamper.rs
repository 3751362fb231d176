//! Tamper detection on real files: alter one byte of a stored entry bundle, hash tile or
//! checkpoint behind the log's back, and `verify()` must name what is bad — the first
//! bad entry index, or the tile path and the first entry its wrong hash covers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::path::Path;

use ed25519_dalek::SigningKey;
use medid_registry::log::{CheckpointError, FsTileStore, Log, LogError};

const ORIGIN: &str = "medid.example.org/log";
/// Every entry is 12 bytes, so offsets inside bundles are easy to compute.
const ENTRY_LEN: usize = 12;

fn entry(i: u64) -> Vec<u8> {
    let e = format!("entry {i:06}").into_bytes();
    assert_eq!(e.len(), ENTRY_LEN);
    e
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

/// A log of 600 entries in `dir`, appended as 100 + 200 + 300.
fn log_in(dir: &Path) -> Log<FsTileStore> {
    let store = FsTileStore::open(dir).unwrap();
    let mut log = Log::open(store, ORIGIN.into(), key()).unwrap();
    for n in [100, 200, 300] {
        let old = log.size();
        let batch: Vec<_> = (old..old + n).map(entry).collect();
        log.append_batch(&batch).unwrap();
    }
    assert_eq!(log.verify().unwrap(), 600);
    log
}

/// XORs the byte at `offset` of `path` (relative to `dir`) with `mask`.
fn flip(dir: &Path, path: &str, offset: usize, mask: u8) {
    let file = dir.join(path);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[offset] ^= mask;
    std::fs::write(&file, bytes).unwrap();
}

/// Offset of the first data byte of entry `index` within its bundle.
fn data_offset(index: u64) -> usize {
    (index % 256) as usize * (2 + ENTRY_LEN) + 2
}

/// Runs `tamper` on a fresh log and returns what `verify()` says.
fn verify_after(tamper: impl FnOnce(&Path)) -> LogError {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    tamper(dir.path());
    log.verify().expect_err("tampering went unnoticed")
}

#[test]
fn untouched_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    assert_eq!(log.verify().unwrap(), 600);
    let cp = medid_registry::log::verify_log(log.store(), log.verifier_key()).unwrap();
    assert_eq!((cp.size, cp.root), (600, log.root()));
}

#[test]
fn altered_entry_in_a_full_bundle() {
    let err = verify_after(|d| flip(d, "tile/entries/001", data_offset(300) + 5, 0x20));
    assert!(
        matches!(&err, LogError::CorruptEntry { index: 300, path } if path == "tile/entries/001"),
        "{err:?}"
    );
    assert!(err.to_string().contains("entry 300"), "{err}");
}

#[test]
fn altered_entry_in_the_partial_bundle() {
    let err = verify_after(|d| flip(d, "tile/entries/002.p/88", data_offset(550), 1));
    assert!(
        matches!(err, LogError::CorruptEntry { index: 550, .. }),
        "{err:?}"
    );
}

#[test]
fn altered_length_prefix() {
    // Entry 300 now claims 13 bytes: it and everything after it in the bundle misparse.
    let err = verify_after(|d| flip(d, "tile/entries/001", data_offset(300) - 1, 0x01));
    assert!(
        matches!(err, LogError::CorruptEntry { index: 300, .. }),
        "{err:?}"
    );
}

#[test]
fn truncated_bundle() {
    let err = verify_after(|d| {
        let file = d.join("tile/entries/000");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
    });
    assert!(
        matches!(&err, LogError::MalformedBundle { index: 255, path } if path == "tile/entries/000"),
        "{err:?}"
    );
}

#[test]
fn altered_level_0_tile() {
    let err = verify_after(|d| flip(d, "tile/0/001", (260 - 256) * 32 + 7, 0x80));
    assert!(
        matches!(&err, LogError::CorruptTile { index: 260, path } if path == "tile/0/001"),
        "{err:?}"
    );
}

#[test]
fn altered_level_1_tile() {
    // Its second hash covers entries 256..512.
    let err = verify_after(|d| flip(d, "tile/1/000.p/2", 32 + 31, 0x01));
    assert!(
        matches!(&err, LogError::CorruptTile { index: 256, path } if path == "tile/1/000.p/2"),
        "{err:?}"
    );
}

#[test]
fn missing_tile() {
    let err = verify_after(|d| std::fs::remove_file(d.join("tile/0/001")).unwrap());
    assert!(
        matches!(&err, LogError::MissingFile { path } if path == "tile/0/001"),
        "{err:?}"
    );
}

#[test]
fn altered_checkpoint_signature() {
    let err = verify_after(|d| {
        let len = std::fs::metadata(d.join("checkpoint")).unwrap().len() as usize;
        // A base64 character of the signature, near the end of the note.
        flip(d, "checkpoint", len - 10, 0x01);
    });
    assert!(
        matches!(
            err,
            LogError::Checkpoint(CheckpointError::BadSignature(_) | CheckpointError::MalformedNote)
        ),
        "{err:?}"
    );
}

#[test]
fn rolled_back_checkpoint() {
    // An older checkpoint, validly signed, put back in place: the log notices.
    let dir = tempfile::tempdir().unwrap();
    let store = FsTileStore::open(dir.path()).unwrap();
    let mut log = Log::open(store, ORIGIN.into(), key()).unwrap();
    let batch: Vec<_> = (0..300).map(entry).collect();
    let old = log.append_batch(&batch).unwrap().checkpoint;
    let batch: Vec<_> = (300..400).map(entry).collect();
    log.append_batch(&batch).unwrap();
    std::fs::write(dir.path().join("checkpoint"), old).unwrap();
    let err = log.verify().unwrap_err();
    assert!(
        matches!(
            err,
            LogError::CheckpointChanged {
                stored: 300,
                expected: 400
            }
        ),
        "{err:?}"
    );
}

#[test]
fn reopening_a_tampered_right_edge_fails() {
    let dir = tempfile::tempdir().unwrap();
    drop(log_in(dir.path()));
    flip(dir.path(), "tile/entries/002.p/88", data_offset(599), 1);
    let store = FsTileStore::open(dir.path()).unwrap();
    let err = Log::open(store, ORIGIN.into(), key()).unwrap_err();
    assert!(
        matches!(err, LogError::CorruptEntry { index: 599, .. }),
        "{err:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    drop(log_in(dir.path()));
    flip(dir.path(), "tile/1/000.p/2", 0, 1);
    let store = FsTileStore::open(dir.path()).unwrap();
    let err = Log::open(store, ORIGIN.into(), key()).unwrap_err();
    assert!(
        matches!(err, LogError::RootMismatch { size: 600 }),
        "{err:?}"
    );
}
