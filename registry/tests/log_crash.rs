//! Crash safety: a simulated crash at every single write of an append.
//!
//! For each scenario (a log with some history, then one batch), the batch is first run
//! without fault to count its writes and learn the committed result. Then, for every
//! k, a copy of the history's store crashes at the k-th write of the batch. After a
//! restart and reopen, the log must be exactly the last committed state (the old one
//! if the crash came before the checkpoint was written, the new one after), `verify()`
//! must pass, and the log must accept further appends that verify too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use ed25519_dalek::SigningKey;
use medid_registry::log::{Hash, Log, LogError, MemTileStore, leaf_hash, tree_root};

const ORIGIN: &str = "medid.example.org/log";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// Entry `i` of a run; `run` distinguishes batches that replace a crashed one.
fn entry(run: u8, i: u64) -> Vec<u8> {
    format!("run {run} entry {i}").into_bytes()
}

fn open(store: &MemTileStore) -> Result<Log<MemTileStore>, LogError> {
    Log::open(store.clone(), ORIGIN.into(), key())
}

#[derive(Debug, Clone, PartialEq)]
struct State {
    size: u64,
    root: Hash,
    checkpoint: Vec<u8>,
    entries: Vec<Vec<u8>>,
}

fn state(log: &Log<MemTileStore>) -> State {
    State {
        size: log.size(),
        root: log.root(),
        checkpoint: log.checkpoint().to_vec(),
        entries: log
            .entries(0..log.size())
            .unwrap()
            .map(|r| r.unwrap().1)
            .collect(),
    }
}

/// A store holding a log of `history` entries, appended in batches of at most 1000.
fn history(history: u64) -> MemTileStore {
    let store = MemTileStore::new();
    let mut log = open(&store).unwrap();
    while log.size() < history {
        let old = log.size();
        let n = (history - old).min(1000);
        let batch: Vec<_> = (old..old + n).map(|i| entry(0, i)).collect();
        log.append_batch(&batch).unwrap();
    }
    store
}

fn crash_everywhere(history_size: u64, batch_size: u64) {
    let base = history(history_size);
    let before = state(&open(&base).unwrap());
    let batch: Vec<_> = (history_size..history_size + batch_size)
        .map(|i| entry(1, i))
        .collect();

    // Dry run: how many writes, and what the commit looks like.
    let dry = base.fork();
    let mut log = open(&dry).unwrap();
    let (puts0, writes0) = (dry.put_count(), dry.write_count());
    log.append_batch(&batch).unwrap();
    let after = state(&log);
    let puts = dry.put_count() - puts0;
    let writes = dry.write_count() - writes0;
    assert!(
        puts >= 3,
        "bundle, tile and checkpoint at least; got {puts}"
    );
    let mut all = before.entries.clone();
    all.extend(batch.iter().cloned());
    assert_eq!(after.entries, all);

    for k in 0..=writes {
        let store = base.fork();
        let mut log = open(&store).unwrap();
        store.crash_at_write(k);
        let result = log.append_batch(&batch);
        // The checkpoint is the last put: a crash before it fails the append.
        let committed = k >= puts;
        assert_eq!(
            result.is_ok(),
            committed,
            "history {history_size}, batch {batch_size}, crash at write {k}: {result:?}"
        );
        if !committed {
            assert!(matches!(result, Err(LogError::Store { .. })), "{result:?}");
            assert!(matches!(log.append_batch(&batch), Err(LogError::Poisoned)));
        }
        drop(log);

        // Restart: the log is the last committed state, and whole.
        store.restart();
        let mut log =
            open(&store).unwrap_or_else(|e| panic!("reopen after crash at write {k}: {e}"));
        let want = if committed { &after } else { &before };
        assert_eq!(&state(&log), want, "crash at write {k}");
        assert_eq!(log.verify().unwrap(), want.size, "crash at write {k}");

        // It goes on: first a different, smaller batch over the crashed one's leftovers,
        // then enough to fill the tiles those leftovers sit in.
        let size = log.size();
        let next: Vec<_> = (size..size + 7).map(|i| entry(2, i)).collect();
        log.append_batch(&next).unwrap();
        let fill: Vec<_> = (size + 7..size + 7 + batch_size + 300)
            .map(|i| entry(3, i))
            .collect();
        log.append_batch(&fill).unwrap();
        let mut expected = want.entries.clone();
        expected.extend(next);
        expected.extend(fill);
        let reopened = open(&store).unwrap();
        assert_eq!(state(&reopened).entries, expected);
        assert_eq!(reopened.root(), log.root());
        // Re-proving 65k entries per crash point is slow in debug builds; the small
        // scenarios check the continuation in full, the large one after the loop.
        if expected.len() < 10_000 {
            assert_eq!(log.verify().unwrap(), expected.len() as u64);
            let leaves: Vec<_> = expected.iter().map(|e| leaf_hash(e)).collect();
            assert_eq!(log.root(), tree_root(&leaves), "crash at write {k}");
        } else if k == writes {
            assert_eq!(log.verify().unwrap(), expected.len() as u64);
        }
    }
}

#[test]
fn crash_during_the_first_batch() {
    crash_everywhere(0, 1);
    crash_everywhere(0, 300);
}

#[test]
fn crash_while_filling_level_0_tiles() {
    // Partial to partial, partial to full plus partial, and many full tiles at once.
    crash_everywhere(10, 20);
    crash_everywhere(10, 246);
    crash_everywhere(250, 600);
}

#[test]
fn crash_while_filling_a_level_1_tile() {
    // 65,400 + 300 crosses 65,536: a full level-1 tile and a first level-2 partial.
    crash_everywhere(65_400, 300);
}

#[test]
fn crash_while_opening_a_new_log() {
    let store = MemTileStore::new();
    store.crash_at_write(0);
    assert!(matches!(open(&store), Err(LogError::Store { .. })));
    store.restart();
    let mut log = open(&store).unwrap();
    assert_eq!(log.size(), 0);
    log.append_batch(&[entry(0, 0)]).unwrap();
    assert_eq!(log.verify().unwrap(), 1);
}
