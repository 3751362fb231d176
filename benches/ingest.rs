//! Durable signed-operation ingest through the sequencer (group commit), with 1, 8 and
//! 64 concurrent writers: operations per second, receipt latency p50/p99 and the
//! process's CPU time per operation (every thread: checkers, sequencer, sled, kernel). Then
//! `reindex` speed and disk bytes per registered identifier (ledger and sled apart,
//! with sled's space amplification measured against the bytes it holds).
//!
//! `cargo bench --bench ingest` (MEDID_BENCH_OPS sets the operations per run, default
//! 20000; MEDID_BENCH_WRITERS the writer counts, default `1,8,64`; MEDID_BENCH_REINDEX
//! the identifiers for the reindex run, default 200000, 0 to skip it). The nodes go
//! under `TMPDIR`. On ext4 without a journal, creating files is slow for minutes in a
//! block group where many files were just deleted (earlier runs' nodes), so give each
//! run a new directory there (see BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark

use std::time::{Duration, Instant};

use medid_did::KeyPair;
use medid_registry::op::{Submission, draft, sign};
use medid_registry::{Registry, Sequencer};
use serde_json::json;

/// The allocator the `medid` binary runs with, so that the figures are the node's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn node(dir: &std::path::Path, controller: &KeyPair) -> Registry {
    let admin = KeyPair::generate();
    Registry::init(dir, "bench.medid.example", Some(admin.did())).unwrap();
    let mut registry = Registry::open(dir).unwrap();
    let create = sign(
        &draft(
            "prefix.create",
            json!({"prefix": "86.1000.23", "controllers": [controller.did().to_string()]}),
        ),
        &[&admin],
    )
    .unwrap();
    let answer = registry
        .submit(&[Submission {
            operation: create,
            restricted: vec![],
        }])
        .unwrap();
    assert!(answer[0].is_ok());
    registry
}

/// Signed registrations of `n` identifiers (signing is the client's work, done first).
fn operations(controller: &KeyPair, n: usize, tag: &str) -> Vec<Submission> {
    (0..n)
        .map(|i| Submission {
            operation: sign(
                &draft(
                    "identifier.register",
                    json!({"id": format!("86.1000.23/{tag}-{i:07}"), "values": [
                        {"index": 1, "type": "URL", "data": format!("https://cssd.example-hospital.org/packs/{i}")},
                        {"index": 2, "type": "DESC", "data": "instrument pack, basic laparotomy"}
                    ]}),
                ),
                &[controller],
            )
            .unwrap(),
            restricted: vec![],
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// CPU time the whole process has used (user and system, every thread), from
/// `/proc/self/stat` (clock ticks of 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Runs `ops` operations through `writers` writers; gives back the node's directory,
/// for the caller to remove after every run (removing thousands of files frees their
/// inodes, which makes creating files slower for minutes on ext4 without a journal).
fn ingest(writers: usize, ops: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let controller = KeyPair::generate();
    let registry = node(dir.path(), &controller);
    let submissions = operations(&controller, ops, "W");
    let (sequencer, thread) = Sequencer::start(registry).unwrap();
    let started = Instant::now();
    let cpu = process_cpu();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = submissions
            .chunks(ops.div_ceil(writers))
            .map(|share| {
                let sequencer = sequencer.clone();
                scope.spawn(move || {
                    share
                        .iter()
                        .map(|s| {
                            let t = Instant::now();
                            sequencer.submit_blocking(s).expect("accepted");
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    let cpu = process_cpu() - cpu;
    drop(sequencer);
    let registry = thread.join().unwrap();
    assert_eq!(registry.log().size(), ops as u64 + 1);
    latencies.sort_unstable();
    println!(
        "| {writers:>2} writers | {ops} | {:>8.0} ops/s | p50 {:>7.2} ms | p99 {:>7.2} ms | {:>5.0} µs |",
        ops as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / ops as f64,
    );
    dir
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_bytes(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn reindex_and_space(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let controller = KeyPair::generate();
    let mut registry = node(dir.path(), &controller);
    for chunk in operations(&controller, n, "R").chunks(4096) {
        assert!(registry.submit(chunk).unwrap().iter().all(Result::is_ok));
    }
    let started = Instant::now();
    let entries = registry.reindex().unwrap();
    let elapsed = started.elapsed();
    println!(
        "reindex: {entries} entries in {:.2} s = {:.0} entries/s",
        elapsed.as_secs_f64(),
        entries as f64 / elapsed.as_secs_f64()
    );
    drop(registry);
    // Reopen so sled has written everything out, then measure.
    let registry = Registry::open(dir.path()).unwrap();
    let log = dir_bytes(&dir.path().join("log"));
    let index = dir_bytes(&dir.path().join("index"));
    let logical = registry.index().logical_bytes().unwrap();
    println!(
        "disk per identifier ({n}): ledger {:.0} B, sled index {:.0} B (sled holds {:.0} B of keys+values per identifier: space amplification {:.2}x)",
        log as f64 / n as f64,
        index as f64 / n as f64,
        logical as f64 / n as f64,
        index as f64 / logical as f64
    );
}

/// What checking one operation costs on one core, and how much of it is the signature.
fn prepare_cost() {
    let controller = KeyPair::generate();
    let submissions = operations(&controller, 2000, "P");
    let now = time::OffsetDateTime::now_utc();
    let started = Instant::now();
    for s in &submissions {
        medid_registry::Prepared::new(s, now, 300).unwrap();
    }
    let prepare = started.elapsed().as_secs_f64() / submissions.len() as f64;
    let started = Instant::now();
    for batch in submissions.chunks(medid_registry::CHECK_BATCH) {
        let checked = medid_registry::Prepared::all(batch, now, 300);
        assert!(checked.iter().all(Result::is_ok));
    }
    let batched = started.elapsed().as_secs_f64() / submissions.len() as f64;
    let started = Instant::now();
    for s in &submissions {
        medid_did::verify_proofs(&s.operation).unwrap();
    }
    let verify = started.elapsed().as_secs_f64() / submissions.len() as f64;
    println!(
        "checking one operation (schema, JCS, signature, payloads): {:.1} µs, of which the Data Integrity proof {:.1} µs; {:.1} µs each in batches of {}",
        prepare * 1e6,
        verify * 1e6,
        batched * 1e6,
        medid_registry::CHECK_BATCH,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` runs benchmarks in test mode: nothing to do.
    }
    prepare_cost();
    let ops = env("MEDID_BENCH_OPS", 20_000);
    println!(
        "| writers | operations | throughput | receipt latency | | process CPU per operation |"
    );
    let writers_list: Vec<usize> = std::env::var("MEDID_BENCH_WRITERS")
        .ok()
        .map(|v| v.split(',').filter_map(|w| w.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 64]);
    let nodes: Vec<_> = writers_list
        .into_iter()
        // One writer waits for every commit alone: fewer operations keep the run short.
        .map(|writers| ingest(writers, if writers == 1 { ops / 10 } else { ops }))
        .collect();
    let reindex = env("MEDID_BENCH_REINDEX", 200_000);
    if reindex > 0 {
        reindex_and_space(reindex);
    }
    drop(nodes);
}
