//! Realistic CSSD histories, generated from a seed: reusable packs going round the
//! sterilization cycle many times (wash → pack → load → cycle result → dispatch → use on
//! a patient → back), on several sterilizers, with failed biological indicators, and
//! implants and drugs from lots. Used by tests (as input to a brute-force oracle), the
//! benchmark and `medid demo`. Events come out unsigned, in time order (so ledger order
//! is time order), with plaintext `medid:patient` for `seal_and_sign` to seal.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::epcis::bizstep;

/// The shape of a generated history.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// Handle prefix of the CSSD's identifiers (`86.1000.23`).
    pub prefix: String,
    /// Number of sterilizers.
    pub sterilizers: usize,
    /// Number of reusable packs.
    pub packs: usize,
    /// Instruments per pack.
    pub instruments_per_pack: usize,
    /// Number of sterilizer loads.
    pub loads: usize,
    /// Packs per load, at most.
    pub packs_per_load: usize,
    /// Number of distinct (pseudonymous) patients.
    pub patients: usize,
    /// Biological indicator failures per thousand cycles.
    pub failures_per_mille: u32,
    /// Implants and dispensed drug units, per load.
    pub device_uses_per_load: usize,
    /// Time of the first event, ms since the epoch.
    pub start_ms: i64,
    /// Milliseconds between consecutive events.
    pub step_ms: i64,
    /// The seed.
    pub seed: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            prefix: "86.1000.23".into(),
            sterilizers: 3,
            packs: 24,
            instruments_per_pack: 4,
            loads: 60,
            packs_per_load: 6,
            patients: 30,
            failures_per_mille: 80,
            device_uses_per_load: 1,
            // 2026-01-01T00:00:00Z
            start_ms: 1_767_225_600_000,
            step_ms: 60_000,
            seed: 1,
        }
    }
}

/// GTIN of the generated implants (GS1's example GTIN, valid check digit).
pub const DEVICE_GTIN: &str = "09506000134352";
/// GTIN of the generated drugs.
pub const DRUG_GTIN: &str = "09506000134369";

/// Identifiers of a history's objects.
impl HistoryConfig {
    /// The identifier of pack `n`.
    pub fn pack(&self, n: usize) -> String {
        format!("{}/PKG-{n}", self.prefix)
    }
    /// The identifier of load `n`.
    pub fn load(&self, n: usize) -> String {
        format!("{}/LOAD-{n}", self.prefix)
    }
    /// The identifier of sterilizer `n`.
    pub fn sterilizer(&self, n: usize) -> String {
        format!("{}/STERILIZER-{n}", self.prefix)
    }
    /// The identifier of instrument `i` of pack `n`.
    pub fn instrument(&self, n: usize, i: usize) -> String {
        format!("{}/INSTR-{n}-{i}", self.prefix)
    }
    /// The pseudonymous identifier of patient `n`.
    pub fn patient(&self, n: usize) -> String {
        format!("PAT-{n:06}")
    }
}

fn time_text(ms: i64) -> String {
    super::hash::utc_millis_text(
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

struct Clock {
    now: i64,
    step: i64,
}

impl Clock {
    fn tick(&mut self) -> String {
        self.now += self.step;
        time_text(self.now)
    }
}

fn base(kind: &str, time: String) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), kind.into());
    map.insert("eventTime".into(), time.into());
    map.insert("eventTimeZoneOffset".into(), "+00:00".into());
    map
}

fn hdl(id: &str) -> Value {
    Value::String(format!("hdl:{id}"))
}

/// Generates a history: unsigned events in time order.
pub fn cssd_history(config: &HistoryConfig) -> Vec<Value> {
    CssdHistory::new(config).collect()
}

/// [`cssd_history`] one load's events at a time, for histories too large to hold.
pub struct CssdHistory {
    config: HistoryConfig,
    rng: StdRng,
    clock: Clock,
    /// Packs ready for processing.
    dirty: Vec<usize>,
    /// Packs in use, with the load after which they come back.
    out: Vec<(usize, usize)>,
    serial: usize,
    load: usize,
    ready: std::collections::VecDeque<Value>,
}

impl CssdHistory {
    /// A history of the shape `config` gives.
    pub fn new(config: &HistoryConfig) -> Self {
        Self {
            config: config.clone(),
            rng: StdRng::seed_from_u64(config.seed),
            clock: Clock {
                now: config.start_ms,
                step: config.step_ms.max(1),
            },
            dirty: (0..config.packs).collect(),
            out: Vec::new(),
            serial: 0,
            load: 0,
            ready: std::collections::VecDeque::new(),
        }
    }
}

impl Iterator for CssdHistory {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        while self.ready.is_empty() && self.load < self.config.loads {
            let load = self.load;
            self.load += 1;
            self.generate(load);
        }
        self.ready.pop_front()
    }
}

impl CssdHistory {
    /// The events around load `load`: the uses of the packs due back, the implants
    /// and drugs, then washing, packing, the load, its result and the dispatch.
    fn generate(&mut self, load: usize) {
        let config = &self.config;
        let rng = &mut self.rng;
        let clock = &mut self.clock;
        let events = &mut self.ready;
        let dirty = &mut self.dirty;
        let serial = &mut self.serial;
        let sterilizer = load % config.sterilizers.max(1);
        // Packs whose use is due come back dirty, after their use events.
        let (due, later): (Vec<_>, Vec<_>) = self.out.drain(..).partition(|(_, at)| *at <= load);
        self.out = later;
        for (pack, _) in due {
            let uses = if rng.gen_ratio(1, 10) { 2 } else { 1 };
            for _ in 0..uses {
                let patient = config.patient(rng.gen_range(0..config.patients.max(1)));
                let mut e = base("ObjectEvent", clock.tick());
                e.insert("epcList".into(), json!([hdl(&config.pack(pack))]));
                e.insert("action".into(), "OBSERVE".into());
                e.insert("bizStep".into(), bizstep::USING.into());
                e.insert("medid:patient".into(), patient.into());
                e.insert("medid:procedure".into(), "appendectomy".into());
                events.push_back(Value::Object(e));
            }
            dirty.push(pack);
        }
        for _ in 0..config.device_uses_per_load {
            *serial += 1;
            let (gtin, step) = if rng.gen_bool(0.5) {
                (DEVICE_GTIN, bizstep::IMPLANTING)
            } else {
                (DRUG_GTIN, bizstep::DISPENSING)
            };
            let lot = rng.gen_range(1..=3);
            let patient = config.patient(rng.gen_range(0..config.patients.max(1)));
            let mut e = base("ObjectEvent", clock.tick());
            e.insert(
                "epcList".into(),
                json!([format!(
                    "https://id.gs1.org/01/{gtin}/10/LOT{lot}/21/S{serial}"
                )]),
            );
            e.insert("action".into(), "OBSERVE".into());
            e.insert("bizStep".into(), step.into());
            e.insert("medid:patient".into(), patient.into());
            events.push_back(Value::Object(e));
        }
        if dirty.is_empty() {
            return;
        }
        let take = config.packs_per_load.min(dirty.len()).max(1);
        let mut packs = Vec::new();
        for _ in 0..take {
            let i = rng.gen_range(0..dirty.len());
            packs.push(dirty.swap_remove(i));
        }
        for &pack in &packs {
            let mut e = base("ObjectEvent", clock.tick());
            e.insert("epcList".into(), json!([hdl(&config.pack(pack))]));
            e.insert("action".into(), "OBSERVE".into());
            e.insert("bizStep".into(), bizstep::WASHING.into());
            e.insert(
                "medid:washer".into(),
                hdl(&format!("{}/WASHER-1", config.prefix)),
            );
            e.insert("medid:program".into(), "instruments-93C".into());
            events.push_back(Value::Object(e));
            let mut e = base("AggregationEvent", clock.tick());
            e.insert("parentID".into(), hdl(&config.pack(pack)));
            let children: Vec<Value> = (0..config.instruments_per_pack)
                .map(|i| hdl(&config.instrument(pack, i)))
                .collect();
            e.insert("childEPCs".into(), Value::Array(children));
            e.insert("action".into(), "ADD".into());
            e.insert("bizStep".into(), "packing".into());
            events.push_back(Value::Object(e));
        }
        let mut e = base("AggregationEvent", clock.tick());
        e.insert("parentID".into(), hdl(&config.load(load)));
        e.insert(
            "childEPCs".into(),
            Value::Array(packs.iter().map(|&p| hdl(&config.pack(p))).collect()),
        );
        e.insert("action".into(), "ADD".into());
        e.insert("bizStep".into(), bizstep::STERILIZING.into());
        e.insert(
            "medid:sterilizer".into(),
            hdl(&config.sterilizer(sterilizer)),
        );
        events.push_back(Value::Object(e));
        let failed = rng.gen_range(0..1000) < config.failures_per_mille;
        let mut e = base("ObjectEvent", clock.tick());
        e.insert("epcList".into(), json!([hdl(&config.load(load))]));
        e.insert("action".into(), "OBSERVE".into());
        e.insert("bizStep".into(), bizstep::STERILIZING.into());
        e.insert(
            "medid:sterilizer".into(),
            hdl(&config.sterilizer(sterilizer)),
        );
        e.insert(
            "sensorElementList".into(),
            json!([{
                "sensorMetadata": {"time": time_text(clock.now)},
                "sensorReport": [
                    {"type": "Temperature", "value": 134.2, "uom": "CEL"},
                    {"type": "Pressure", "value": 304, "uom": "KPA"},
                    {"type": "Time", "value": 5.5, "uom": "MIN"}
                ]
            }]),
        );
        e.insert("medid:chemicalIndicator".into(), "pass".into());
        e.insert(
            "medid:biologicalIndicator".into(),
            if failed { "fail" } else { "pass" }.into(),
        );
        e.insert("medid:operator".into(), "operator-7".into());
        events.push_back(Value::Object(e));
        let mut e = base("ObjectEvent", clock.tick());
        e.insert(
            "epcList".into(),
            Value::Array(packs.iter().map(|&p| hdl(&config.pack(p))).collect()),
        );
        e.insert("action".into(), "OBSERVE".into());
        e.insert("bizStep".into(), "shipping".into());
        events.push_back(Value::Object(e));
        for pack in packs {
            self.out.push((pack, load + rng.gen_range(1..=4)));
        }
    }
}
