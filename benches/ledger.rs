//! The ledger at scale: inclusion-proof generation (reading tiles from disk) and
//! verification at 1M and 10M entries, and consistency proofs.
//!
//! `cargo bench --bench ledger` (MEDID_BENCH_SIZES, comma-separated, default
//! `1000000,10000000`; the logs are built in a temporary directory first).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark

use std::time::{Duration, Instant};

use medid_did::KeyPair;
use medid_registry::log::{FsTileStore, Log, leaf_hash, verify_consistency, verify_inclusion};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    println!(
        "| {name} | mean {mean:>7.1} µs | p50 {:>7.1} µs | p99 {:>7.1} µs | {:>9.0} /s |",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        1e6 / mean
    );
}

fn run(size: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsTileStore::open(dir.path()).unwrap();
    let key = KeyPair::generate();
    let mut log = Log::open(
        store,
        "bench.medid.example".into(),
        key.signing_key().clone(),
    )
    .unwrap();
    let started = Instant::now();
    let batch = 20_000u64;
    let mut next = 0u64;
    while next < size {
        let n = batch.min(size - next);
        let entries: Vec<Vec<u8>> = (next..next + n)
            .map(|i| format!("{{\"entry\":{i:016}}}").into_bytes())
            .collect();
        log.append_batch(&entries).unwrap();
        next += n;
    }
    println!(
        "\n{size} entries appended in {:.1} s ({:.0} entries/s, batches of {batch})",
        started.elapsed().as_secs_f64(),
        size as f64 / started.elapsed().as_secs_f64()
    );
    let root = log.root();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let samples = 2_000;
    let (mut generate, mut verify) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let index = random() % size;
        let entry = format!("{{\"entry\":{index:016}}}").into_bytes();
        let t = Instant::now();
        let proof = log.inclusion_proof(index, size).unwrap();
        generate.push(t.elapsed());
        let t = Instant::now();
        verify_inclusion(index, size, &leaf_hash(&entry), &proof, &root.0).unwrap();
        verify.push(t.elapsed());
    }
    summary(&format!("inclusion proof, generate ({size})"), generate);
    summary(&format!("inclusion proof, verify ({size})"), verify);
    let mut generate = Vec::new();
    let mut verify = Vec::new();
    for _ in 0..200 {
        let old = 1 + random() % (size - 1);
        let old_root = log.root_at(old).unwrap();
        let t = Instant::now();
        let proof = log.consistency_proof(old, size).unwrap();
        generate.push(t.elapsed());
        let t = Instant::now();
        verify_consistency(old, size, &proof, &old_root.0, &root.0).unwrap();
        verify.push(t.elapsed());
    }
    summary(&format!("consistency proof, generate ({size})"), generate);
    summary(&format!("consistency proof, verify ({size})"), verify);
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` runs benchmarks in test mode: nothing to do.
    }
    let sizes = std::env::var("MEDID_BENCH_SIZES").unwrap_or_else(|_| "1000000,10000000".into());
    for size in sizes.split(',').filter_map(|s| s.trim().parse().ok()) {
        run(size);
    }
}
