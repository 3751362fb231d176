//! Lifecycle events at scale: a generated CSSD history (50 sterilizers, 30 packs per
//! load, packs reused many times, uses on patients, implants and drugs) captured
//! durably through the sequencer (schema, proof and hash checked, group commit), then
//! trace latency p50/p99 forward from random loads and reverse from random patients.
//!
//! `cargo bench --bench events` (MEDID_BENCH_EVENTS sets the number of events, default
//! 1000000; MEDID_BENCH_TRACES the traces per direction, default 1000; MEDID_BENCH_DIR
//! where the node goes). With MEDID_BENCH_INDEX_ONLY set, the history is not captured:
//! the index alone is built by the node's indexing code, for trace latency on
//! histories too large to log on the machine at hand; MEDID_BENCH_CHUNK sets its
//! events per index commit (default 20000), MEDID_BENCH_CACHE_MB the index's page
//! cache (default sled's 1024), and MEDID_BENCH_NODE a node directory that is kept
//! and, once built, only traced again (MEDID_BENCH_NO_DISK_REPORT skips its disk
//! report). MEDID_BENCH_MIRROR traces through a `TraceMirror` (as `medid serve` does):
//! read from the node's snapshot when one reflects the index, else from the index, and
//! saved to the snapshot afterwards; the patient links are held in memory too
//! (MEDID_BENCH_LINKS_IN_SLED leaves them in sled). MEDID_BENCH_COUNT also prints the
//! index reads per trace; MEDID_BENCH_ROUNDS repeats the timed traces (default once),
//! each round from other random loads and patients. Each trace is timed alone and as
//! the whole answer an anonymous viewer gets (the report, every commitment opened, and
//! its JSON). An answer slower than 50 ms is printed with its time, to set beside
//! `vmstat -t`. MEDID_BENCH_KEEP keeps a captured node (not with MEDID_BENCH_INDEX_ONLY),
//! for `medid serve --data` and `benches/bench_client.py trace-series`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use medid_did::KeyPair;
use medid_registry::event::epcis::bizstep;
use medid_registry::event::mirror::TraceMirror;
use medid_registry::event::report::{TraceReport, Viewer};
use medid_registry::event::scenario::{CssdHistory, HistoryConfig};
use medid_registry::event::trace;
use medid_registry::event::{
    EventFacts, SignedEvent, event_hash_id, index_without_ledger, seal_and_sign,
};
use medid_registry::op::RestrictedPayload;
use medid_registry::op::{Submission, draft, sign};
use medid_registry::{Registry, Sequencer, parallel_map};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The allocator the `medid` binary runs with, so that the figures are the node's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn register(registry: &mut Registry, key: &KeyPair, role: &str) {
    let op = sign(
        &draft(
            "did.register",
            json!({"did": key.did().to_string(), "name": role, "role": role}),
        ),
        &[key],
    )
    .unwrap();
    let answer = registry
        .submit(&[Submission {
            operation: op,
            restricted: vec![],
        }])
        .unwrap();
    assert!(answer[0].is_ok());
}

/// The generated history in chunks of `size` events, generated as they are taken.
fn chunks(mut history: CssdHistory, size: usize) -> impl Iterator<Item = Vec<Value>> {
    std::iter::from_fn(move || {
        let chunk: Vec<Value> = history.by_ref().take(size).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let events_wanted = env("MEDID_BENCH_EVENTS", 1_000_000);
    let traces = env("MEDID_BENCH_TRACES", 1000);
    // About 96 events per load (30 washes, 30 packings, the load, its result, the
    // dispatch, ~33 uses, 2 implants or drugs).
    let config = HistoryConfig {
        sterilizers: 50,
        packs: 3000,
        instruments_per_pack: 8,
        loads: (events_wanted / 96).max(1),
        packs_per_load: 30,
        // About three uses per patient.
        patients: (events_wanted / 96 * 33 / 3).max(100),
        failures_per_mille: 10,
        device_uses_per_load: 2,
        step_ms: 1000,
        ..HistoryConfig::default()
    };
    println!(
        "history: {} loads on {} sterilizers, {} packs (~{} cycles each), generated as captured",
        config.loads,
        config.sterilizers,
        config.packs,
        config.loads * config.packs_per_load / config.packs,
    );
    // MEDID_BENCH_DIR puts the node on another disk than the system's temporary folder.
    let dir = match std::env::var_os("MEDID_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let index_only = std::env::var_os("MEDID_BENCH_INDEX_ONLY").is_some();
    // MEDID_BENCH_NODE (with MEDID_BENCH_INDEX_ONLY): a node directory that is kept, so
    // that traces can be measured again on an index built once.
    let kept = std::env::var_os("MEDID_BENCH_NODE")
        .filter(|_| index_only)
        .map(std::path::PathBuf::from);
    let path = kept.clone().unwrap_or_else(|| dir.path().join("node"));
    if let Some(path) = &kept {
        let built = path.join(format!("built-{events_wanted}"));
        if built.exists() {
            let index = open_index(path);
            let count: usize = std::fs::read_to_string(&built)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            println!("index only, kept in {}: {count} events", path.display());
            // MEDID_BENCH_NO_DISK_REPORT: skip the disk report, which reads the whole
            // index (tens of minutes at 10M events).
            if std::env::var_os("MEDID_BENCH_NO_DISK_REPORT").is_none() {
                report_disk(path, &index, count);
            }
            run_traces(&config, &index, path, traces);
            return;
        }
        assert!(
            !path.exists(),
            "{} exists but holds no finished build",
            path.display()
        );
    }
    let admin = KeyPair::generate();
    Registry::init(&path, "bench.medid.example", Some(admin.did())).unwrap();
    let mut registry = Registry::open(&path).unwrap();
    let (cssd, hospital) = (KeyPair::generate(), KeyPair::generate());
    register(&mut registry, &cssd, "sterilization-center");
    register(&mut registry, &hospital, "hospital");
    if index_only {
        // The index alone, built by the node's own indexing code (`apply_event`, the
        // index commit, the patient links) without checking, logging or payload files:
        // for trace latency on histories too large to log here. Not a capture figure.
        let first = registry.log().size();
        drop(registry);
        let index = open_index(&path);
        let started = Instant::now();
        let mut count = 0usize;
        // MEDID_BENCH_CHUNK: events per index commit (fewer, larger commits write
        // fewer pages of the growing tree again).
        let size = env("MEDID_BENCH_CHUNK", 20_000).max(1);
        for chunk in chunks(CssdHistory::new(&config), size) {
            let prepared = parallel_map(&chunk, |event| unsigned(event, &cssd, &hospital));
            index_without_ledger(&index, &prepared, first + count as u64).unwrap();
            count += chunk.len();
        }
        println!(
            "index only (not logged, not checked): {count} events indexed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if let Some(path) = &kept {
            std::fs::write(
                path.join(format!("built-{events_wanted}")),
                count.to_string(),
            )
            .unwrap();
        }
        report_disk(&path, &index, count);
        run_traces(&config, &index, &path, traces);
        return;
    }
    let (sequencer, thread) = Sequencer::start(registry).unwrap();

    // Where the node's time goes, per event on one core: schema validation alone, then
    // the whole check (schema, profile, proof, hash ID).
    let sample: Vec<Submission> = CssdHistory::new(&config)
        .take(2000)
        .map(|event| {
            let (operation, restricted) = seal_and_sign(&event, &cssd).unwrap();
            Submission {
                operation,
                restricted,
            }
        })
        .collect();
    let start = Instant::now();
    for s in &sample {
        medid_registry::event::validate_event(&s.operation).unwrap();
    }
    let schema = start.elapsed() / sample.len() as u32;
    let start = Instant::now();
    for s in &sample {
        medid_registry::Prepared::new(s, time::OffsetDateTime::now_utc(), 300).unwrap();
    }
    let check = start.elapsed() / sample.len() as u32;
    println!(
        "check per event, one core: schema {:.0} µs, whole check (schema, profile, proof, hash) {:.0} µs",
        schema.as_secs_f64() * 1e6,
        check.as_secs_f64() * 1e6
    );
    drop(sample);

    // Capture in chunks: the client signs a chunk (not timed), the node checks and
    // commits it (timed: submit to the last durable receipt).
    let mut captured = Duration::ZERO;
    let mut count = 0usize;
    for chunk in chunks(CssdHistory::new(&config), 20_000) {
        let submissions = parallel_map(&chunk, |event| {
            let step = event["bizStep"].as_str().unwrap_or_default();
            let key = if matches!(
                step,
                bizstep::USING | bizstep::IMPLANTING | bizstep::DISPENSING
            ) {
                &hospital
            } else {
                &cssd
            };
            let (operation, restricted) = seal_and_sign(event, key).unwrap();
            Submission {
                operation,
                restricted,
            }
        });
        let start = Instant::now();
        let answers: Vec<_> = submissions.iter().map(|s| sequencer.submit(s)).collect();
        for answer in answers {
            answer.blocking_recv().unwrap().unwrap();
        }
        captured += start.elapsed();
        count += chunk.len();
    }
    println!(
        "capture: {count} events in {:.1} s = {:.0} events/s (durable: checked, logged, indexed, flushed)",
        captured.as_secs_f64(),
        count as f64 / captured.as_secs_f64()
    );
    let index = sequencer.index().clone();
    drop(sequencer);
    let registry = thread.join().unwrap();
    report_disk(&path, &index, count);
    run_traces(&config, &index, &path, traces);
    drop(registry);
    // MEDID_BENCH_KEEP: the captured node is kept, a node `medid serve --data` opens.
    if std::env::var_os("MEDID_BENCH_KEEP").is_some() {
        println!("node kept in {}", dir.keep().join("node").display());
    }
}

/// The node's index alone, with a page cache of MEDID_BENCH_CACHE_MB (default sled's).
fn open_index(node: &std::path::Path) -> medid_registry::Index {
    let cache = env("MEDID_BENCH_CACHE_MB", 1024) as u64 * 1024 * 1024;
    println!("index page cache: {} MB", cache / 1024 / 1024);
    medid_registry::Index::open_with_cache(&node.join("index"), cache).unwrap()
}

/// An event sealed as a client would, but unsigned, made into what the node indexes.
fn unsigned(
    event: &Value,
    cssd: &KeyPair,
    hospital: &KeyPair,
) -> (SignedEvent, Option<RestrictedPayload>) {
    let mut map = event.as_object().unwrap().clone();
    let patient = map
        .get("medid:patient")
        .and_then(Value::as_str)
        .map(RestrictedPayload::seal);
    if let Some(payload) = &patient {
        map.insert(
            "medid:patient".into(),
            json!({"commitment": payload.commitment}),
        );
    }
    if let Some(operator) = map.get("medid:operator").and_then(Value::as_str) {
        let sealed = RestrictedPayload::seal(operator);
        map.insert(
            "medid:operator".into(),
            json!({"commitment": sealed.commitment}),
        );
    }
    let facts = EventFacts::read(&map).unwrap();
    let hash_id = event_hash_id(&map, &BTreeMap::new());
    let signer = if facts.is_use() { hospital } else { cssd }.did();
    let event = SignedEvent {
        event_id: hash_id.clone(),
        hash_id,
        signer,
        facts,
        entry: Vec::new(),
    };
    (event, patient)
}

fn report_disk(path: &std::path::Path, index: &medid_registry::Index, count: usize) {
    let logical = index.logical_bytes().unwrap();
    let on_disk = dir_size(&path.join("index"));
    println!(
        "disk: ledger + index + payloads {:.0} MB; index {:.0} MB on disk = {:.0} bytes/event ({:.0} bytes/event of keys and values); payloads {:.0} MB",
        dir_size(path) as f64 / 1e6,
        on_disk as f64 / 1e6,
        on_disk as f64 / count as f64,
        logical as f64 / count as f64,
        dir_size(&path.join("restricted")) as f64 / 1e6,
    );
}

/// Trace latency, from the index alone, or with MEDID_BENCH_MIRROR set through a
/// [`TraceMirror`] loaded from it (as `medid serve` does).
/// The mirror is read from the node's snapshot when one reflects the index, and
/// saved to it afterwards (as `medid serve` does when it stops).
fn run_traces(
    config: &HistoryConfig,
    index: &medid_registry::Index,
    node: &std::path::Path,
    traces: usize,
) {
    if std::env::var_os("MEDID_BENCH_MIRROR").is_some() {
        // What `medid serve` reads for resolution at its start, beside the trace mirror,
        // and holds while it runs.
        let started = Instant::now();
        let _resolution = medid_resolver::IndexMirror::load(index).unwrap();
        println!(
            "resolution mirror (medid serve's other start-up read): {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let snapshot = node.join("trace-timelines");
        let started = Instant::now();
        let (mirror, source) = TraceMirror::open(index, &snapshot).unwrap();
        let (records, bytes) = mirror.records();
        println!(
            "trace mirror: {} timeline entries and {records} event records ({:.0} MB) read in {:.1} s from {source:?}",
            mirror.entries(),
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        // And the patient links, which the reports open (as `medid serve` does), unless
        // MEDID_BENCH_LINKS_IN_SLED leaves them in the index's tree.
        if std::env::var_os("MEDID_BENCH_LINKS_IN_SLED").is_none() {
            let (started, before) = (Instant::now(), resident_bytes());
            let links = index.hold_patient_links().unwrap();
            println!(
                "patient links: {links} held in {:.1} s, {:.0} MB more resident",
                started.elapsed().as_secs_f64(),
                (resident_bytes() - before) as f64 / 1e6
            );
        }
        on_a_thread_of_their_own(|| time_traces(config, &mirror, index, traces));
        let started = Instant::now();
        mirror.save(&snapshot).unwrap();
        println!(
            "trace mirror: snapshot of {:.0} MB written in {:.1} s",
            std::fs::metadata(&snapshot).unwrap().len() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    } else {
        on_a_thread_of_their_own(|| time_traces(config, index, index, traces));
    }
}

/// The process's resident memory (`VmRSS`), in bytes.
fn resident_bytes() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs the timed traces on a thread other than the one that read the mirrors, as
/// `medid serve` answers on its runtime's threads. The allocator keeps a heap per
/// thread and now and then walks every page of the heap it allocates from: traced on
/// the reading thread, that walk covers the millions of small allocations of the
/// resolution mirror and lands on single traces (tens of milliseconds each).
fn on_a_thread_of_their_own(traces: impl FnOnce() + Send) {
    std::thread::scope(|scope| scope.spawn(traces).join().unwrap());
}

fn time_traces(
    config: &HistoryConfig,
    source: &dyn trace::TraceSource,
    index: &medid_registry::Index,
    traces: usize,
) {
    for round in 0..env("MEDID_BENCH_ROUNDS", 1).max(1) {
        time_round(config, source, index, traces, round as u64);
    }
    // After the timed traces, so that counting warms no cache for them.
    if std::env::var_os("MEDID_BENCH_COUNT").is_some() {
        count_reads(config, source, traces.min(200));
    }
}

/// Times `traces` traces each way from random loads and patients: the trace alone,
/// and the whole answer as `GET /api/trace` gives it to an anonymous viewer (the trace,
/// its report with every commitment opened to count patients, and the JSON bytes).
fn time_round(
    config: &HistoryConfig,
    source: &dyn trace::TraceSource,
    index: &medid_registry::Index,
    traces: usize,
    round: u64,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7 + round);
    let anonymous = Viewer::Dids(Vec::new());
    for (direction, pick) in [("forward from a load", 0), ("reverse from a patient", 1)] {
        let mut times = Vec::with_capacity(traces);
        let mut answers = Vec::with_capacity(traces);
        let (mut uses, mut patients) = (0usize, 0usize);
        for _ in 0..traces {
            let start = Instant::now();
            let from = if pick == 0 {
                config.load(rng.gen_range(0..config.loads))
            } else {
                config.patient(rng.gen_range(0..config.patients))
            };
            let trace = if pick == 0 {
                trace::forward_from_load(source, &from)
            } else {
                trace::reverse_from_patient(source, &from)
            }
            .unwrap();
            let took = start.elapsed();
            let report = TraceReport::new(&trace, &from, direction, "bench", &anonymous, |c| {
                index.patient_of(c).ok().flatten()
            });
            let bytes = serde_json::to_vec(&report).unwrap();
            let answered = start.elapsed();
            if answered > Duration::from_millis(50) {
                println!(
                    "  slow answer: {:.1} ms ({} bytes), at {} s since the epoch",
                    answered.as_secs_f64() * 1e3,
                    bytes.len(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs())
                );
            }
            times.push(took);
            answers.push(answered);
            uses += trace.patients.len();
            patients += report.patient_count;
        }
        times.sort();
        answers.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "round {round}: trace {direction}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; with the report: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({:.1} uses, {:.1} patients per answer, {traces} traces)",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap()),
            ms(percentile(&answers, 0.5)),
            ms(percentile(&answers, 0.99)),
            ms(*answers.last().unwrap()),
            uses as f64 / traces as f64,
            patients as f64 / traces as f64
        );
    }
}

/// The index, counting what a trace reads of it.
struct Counted<'a> {
    index: &'a dyn trace::TraceSource,
    walks: std::cell::Cell<usize>,
    keys: std::cell::Cell<usize>,
    gets: std::cell::Cell<usize>,
    got: std::cell::RefCell<std::collections::HashSet<Vec<u8>>>,
    /// Value reads by key space (`ev/`, `er/`, …), and patient lookups.
    spaces: std::cell::RefCell<BTreeMap<String, usize>>,
    /// Time spent in patient lookups.
    patient_time: std::cell::Cell<Duration>,
}

impl trace::TraceSource for Counted<'_> {
    fn walk(
        &self,
        start: &[u8],
        end: &[u8],
        backward: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), medid_registry::IndexError> {
        self.walks.set(self.walks.get() + 1);
        self.index.walk(start, end, backward, &mut |k, v| {
            self.keys.set(self.keys.get() + 1);
            visit(k, v)
        })
    }

    fn walk_roles(
        &self,
        prefix: &[u8],
        from: Option<trace::Position>,
        backward: bool,
        visit: &mut dyn FnMut(trace::Position, medid_registry::event::Role) -> bool,
    ) -> Option<Result<(), medid_registry::IndexError>> {
        self.index.walk_roles(prefix, from, backward, visit)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, medid_registry::IndexError> {
        self.gets.set(self.gets.get() + 1);
        self.got.borrow_mut().insert(key.to_vec());
        let space = String::from_utf8_lossy(&key[..key.len().min(3)]).into_owned();
        *self.spaces.borrow_mut().entry(space).or_default() += 1;
        self.index.get(key)
    }

    fn patient_commitments(
        &self,
        patient: &str,
    ) -> Result<Vec<String>, medid_registry::IndexError> {
        *self
            .spaces
            .borrow_mut()
            .entry("patient lookups".into())
            .or_default() += 1;
        let started = Instant::now();
        let commitments = self.index.patient_commitments(patient);
        self.patient_time
            .set(self.patient_time.get() + started.elapsed());
        commitments
    }
}

/// What a trace reads, on average over `n` traces: range walks, keys visited, value
/// reads, distinct value reads.
fn count_reads(config: &HistoryConfig, index: &dyn trace::TraceSource, n: usize) {
    // Other loads and patients than the timed traces', whose pages those warmed.
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    for (direction, pick) in [("forward", 0), ("reverse", 1)] {
        let counted = Counted {
            index,
            walks: Default::default(),
            keys: Default::default(),
            gets: Default::default(),
            got: Default::default(),
            spaces: Default::default(),
            patient_time: Default::default(),
        };
        let started = Instant::now();
        let mut distinct = 0;
        for _ in 0..n {
            if pick == 0 {
                trace::forward_from_load(&counted, &config.load(rng.gen_range(0..config.loads)))
            } else {
                trace::reverse_from_patient(
                    &counted,
                    &config.patient(rng.gen_range(0..config.patients)),
                )
            }
            .unwrap();
            distinct += counted.got.borrow_mut().drain().count();
        }
        println!(
            "reads per trace {direction}: {:.1} walks visiting {:.1} keys, {:.1} value reads ({:.1} distinct)",
            counted.walks.get() as f64 / n as f64,
            counted.keys.get() as f64 / n as f64,
            counted.gets.get() as f64 / n as f64,
            distinct as f64 / n as f64,
        );
        for (space, count) in counted.spaces.borrow().iter() {
            println!("  {space}: {:.2} per trace", *count as f64 / n as f64);
        }
        println!(
            "  {:.3} ms per trace, of which patient lookups {:.3} ms",
            started.elapsed().as_secs_f64() * 1e3 / n as f64,
            counted.patient_time.get().as_secs_f64() * 1e3 / n as f64
        );
    }
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            let meta = entry.metadata().unwrap();
            total += if meta.is_dir() {
                dir_size(&entry.path())
            } else {
                meta.len()
            };
        }
    }
    total
}
