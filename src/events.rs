//! Lifecycle events from the command line: `medid capture` (seal, sign, submit EPCIS
//! events), `medid trace` (forward and reverse traces, as JSON, text or Graphviz dot),
//! `medid trace verify` (a saved trace with proofs, offline) and `medid demo`.

#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use axum::http::HeaderMap;
use clap::{Args, Subcommand, ValueEnum};
use medid_did::KeyPair;
use medid_registry::event::report::{TraceReport, Viewer, verify_report};
use medid_registry::event::seal_and_sign;
use medid_registry::event::trace::trace_from;
use medid_registry::op::RestrictedPayload;
use medid_resolver::http::signature::{Message, sign_with_did};
use serde_json::{Value, json};

use crate::client;
use crate::identity::print_json;
use crate::ledger::{DataDir, open};

/// `medid capture`
#[derive(Args)]
pub(crate) struct CaptureArgs {
    /// An EPCIS 2.0 document (JSON/JSON-LD), a JSON list of events, or one event.
    file: PathBuf,
    /// Key file of the acting DID (registered at the node); it signs every event.
    #[arg(long)]
    key: PathBuf,
    /// Submit to a running node (`http://HOST:PORT`) instead of the data directory.
    #[arg(long)]
    server: Option<String>,
}

/// The events of a document, a list, or a single event.
fn events_of(document: Value) -> anyhow::Result<Vec<Value>> {
    match document {
        Value::Array(events) => Ok(events),
        Value::Object(map) if map.contains_key("epcisBody") => map["epcisBody"]["eventList"]
            .as_array()
            .cloned()
            .ok_or_else(|| anyhow!("the document has no epcisBody.eventList")),
        Value::Object(map) if map.contains_key("eventList") => map["eventList"]
            .as_array()
            .cloned()
            .ok_or_else(|| anyhow!("eventList is not a list")),
        event @ Value::Object(_) => Ok(vec![event]),
        _ => bail!("not an EPCIS document, a list of events or an event"),
    }
}

/// Seals and signs `events` with `key`; the signed events and their patient payloads.
pub(crate) fn prepare(
    events: &[Value],
    key: &KeyPair,
) -> anyhow::Result<(Vec<Value>, Vec<RestrictedPayload>)> {
    let mut signed = Vec::with_capacity(events.len());
    let mut payloads = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let (event, mut sealed) =
            seal_and_sign(event, key).with_context(|| format!("events[{i}]"))?;
        signed.push(event);
        payloads.append(&mut sealed);
    }
    Ok((signed, payloads))
}

/// Posts signed events to `server`'s `/capture`; the receipts, or the refusal.
pub(crate) fn post_capture(
    server: &str,
    events: Vec<Value>,
    payloads: Vec<RestrictedPayload>,
) -> anyhow::Result<Value> {
    let url = format!("{}/capture", client::base(server)?);
    let body = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
        "epcisBody": {"eventList": events},
        "medid:restricted": payloads,
    });
    let (status, answer) = client::post_json(&url, &body)?;
    if status != 201 {
        let message = answer["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| answer.to_string());
        bail!("refused by the node (HTTP {status}): {message}");
    }
    Ok(answer)
}

pub(crate) fn capture(data: &DataDir, args: CaptureArgs) -> anyhow::Result<()> {
    let text =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let document: Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let events = events_of(document)?;
    if events.is_empty() {
        bail!("{} holds no event", args.file.display());
    }
    let key = KeyPair::read_file(&args.key)?;
    let (signed, payloads) = prepare(&events, &key)?;
    let answer = match &args.server {
        Some(server) => post_capture(server, signed, payloads)?,
        None => {
            let mut registry = open(data)?;
            // All or nothing, as `POST /capture`: the capture is checked whole against
            // the index first (this process holds the data directory, so nothing can
            // change it between the check and the commit).
            let prepared =
                medid_registry::event::prepare_capture(registry.index(), &signed, &payloads)
                    .map_err(|(i, e)| {
                        let at = i.map_or_else(
                            || "medid:restricted".to_owned(),
                            |i| format!("events[{i}]"),
                        );
                        anyhow!(
                            "{at}: refused ({}): {e}; no event of this capture was logged",
                            e.code()
                        )
                    })?;
            let mut receipts = Vec::new();
            let answers = registry.sequence(prepared.into_iter().map(Ok).collect())?;
            for (i, answer) in answers.into_iter().enumerate() {
                match answer {
                    Ok(receipt) => {
                        let mut value = serde_json::to_value(receipt)?;
                        value["event"] = json!(i);
                        value["existing"] = json!(false);
                        receipts.push(value);
                    }
                    Err(medid_registry::op::OpError::AlreadyLogged { event_id, leaf }) => {
                        receipts.push(json!({"event": i, "eventID": event_id, "leafIndex": leaf, "existing": true}));
                    }
                    Err(e) => bail!("events[{i}]: refused ({}): {e}", e.code()),
                }
            }
            json!({ "receipts": receipts })
        }
    };
    print_json(&answer)
}

/// How a trace is printed.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TraceFormat {
    /// The report, JSON.
    Json,
    /// A summary for people.
    Text,
    /// A Graphviz graph (loads → items → patients).
    Dot,
}

/// `medid trace`
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct TraceArgs {
    #[command(subcommand)]
    verify: Option<TraceCommand>,
    /// Where to start: a load, a sterilizer, a device or drug lot, an item, or a patient.
    id: Option<String>,
    /// Forward: from a load, sterilizer or lot to the patients reached.
    #[arg(long, conflicts_with = "reverse")]
    forward: bool,
    /// Reverse: from a patient (or an item) to the loads and the other patients.
    #[arg(long)]
    reverse: bool,
    /// Add each event's inclusion proof to a signed checkpoint.
    #[arg(long)]
    proofs: bool,
    /// Only loads from this time on (RFC 3339; sterilizer traces).
    #[arg(long)]
    since: Option<String>,
    /// Only loads before this time (RFC 3339; sterilizer traces).
    #[arg(long)]
    until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: TraceFormat,
    /// Ask a running node (`http://HOST:PORT`) instead of the data directory.
    #[arg(long)]
    server: Option<String>,
    /// Sign the request with this key, to see the patients this DID may see.
    #[arg(long)]
    key: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum TraceCommand {
    /// Check a saved trace with proofs offline, from the node's verifier key alone.
    Verify(TraceVerifyArgs),
}

/// `medid trace verify`
#[derive(Args)]
pub(crate) struct TraceVerifyArgs {
    /// The saved trace (`medid trace … --proofs > FILE`).
    file: PathBuf,
    /// The node's checkpoint verifier key (`medid log key`, or `verifierKey` of
    /// `GET /api/node`).
    #[arg(long = "verifier-key")]
    verifier_key: String,
}

/// A GET signed (RFC 9421) by `key`.
fn signed_get(url: &str, key: &KeyPair) -> anyhow::Result<(u16, Value)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{url}: http:// only"))?;
    let (authority, path_query) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    let headers = HeaderMap::new();
    let message = Message {
        method: "GET",
        scheme: "http",
        authority,
        path,
        query,
        headers: &headers,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = sign_with_did(&message, key, now).map_err(|e| anyhow!("signing: {e}"))?;
    client::get_signed(url, &signed.signature_input, &signed.signature)
}

fn query_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn trace_report(data: &DataDir, args: &TraceArgs, id: &str) -> anyhow::Result<Value> {
    let forward = !args.reverse;
    if let Some(server) = &args.server {
        let mut url = format!(
            "{}/api/trace?from={}&direction={}",
            client::base(server)?,
            query_encode(id),
            if forward { "forward" } else { "reverse" }
        );
        if args.proofs {
            url.push_str("&proofs=true");
        }
        for (name, value) in [("since", &args.since), ("until", &args.until)] {
            if let Some(value) = value {
                url.push_str(&format!("&{name}={}", query_encode(value)));
            }
        }
        let (status, body) = match &args.key {
            Some(key) => signed_get(&url, &KeyPair::read_file(key)?)?,
            None => client::get_json(&url, "application/json")?,
        };
        if status != 200 {
            let message = body["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string());
            bail!("{id}: HTTP {status}: {message}");
        }
        return Ok(body);
    }
    let time = |t: &Option<String>, name: &str| -> anyhow::Result<Option<i64>> {
        t.as_deref()
            .map(|t| medid_registry::event::epcis::parse_time(t, name))
            .transpose()
            .map_err(|e| anyhow!("--{name}: {e}"))
    };
    let (since, until) = (time(&args.since, "since")?, time(&args.until, "until")?);
    let registry = open(data)?;
    let index = registry.index().clone();
    let (trace, kind) = trace_from(&index, id, forward, since, until)?
        .ok_or_else(|| anyhow!("no event names `{id}`: nothing to trace"))?;
    let direction = if forward { "forward" } else { "reverse" };
    // The operator of the data directory holds the payloads: every patient is shown.
    let mut report = TraceReport::new(&trace, id, direction, kind, &Viewer::Operator, |c| {
        index.patient_of(c).ok().flatten()
    });
    if args.proofs {
        let log = registry.log();
        let size = log.size();
        let note = log.checkpoint().to_vec();
        report.attach_proofs(&note, |leaf| {
            let entry = log
                .entries(leaf..leaf + 1)?
                .next()
                .transpose()?
                .map(|(_, e)| e)
                .unwrap_or_default();
            Ok::<_, anyhow::Error>((entry, log.inclusion_proof(leaf, size)?))
        })?;
    }
    Ok(serde_json::to_value(report)?)
}

pub(crate) fn trace(data: &DataDir, args: TraceArgs) -> anyhow::Result<()> {
    if let Some(TraceCommand::Verify(verify)) = &args.verify {
        return trace_verify(verify);
    }
    let Some(id) = args.id.clone() else {
        bail!("give the identifier to trace from (or `medid trace verify FILE`)");
    };
    if !args.forward && !args.reverse {
        bail!("give --forward or --reverse");
    }
    let report = trace_report(data, &args, &id)?;
    match args.format {
        TraceFormat::Json => print_json(&report),
        TraceFormat::Text => {
            print!("{}", text(&report));
            Ok(())
        }
        TraceFormat::Dot => {
            print!("{}", dot(&report));
            Ok(())
        }
    }
}

fn trace_verify(args: &TraceVerifyArgs) -> anyhow::Result<()> {
    let text =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let report: Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let proven = verify_report(&report, &args.verifier_key)
        .map_err(|e| anyhow!("{}: {e}", args.file.display()))?;
    println!(
        "ok: {proven} events of the trace are in the ledger of the checkpoint signed by {}",
        args.verifier_key.split('+').next().unwrap_or_default()
    );
    Ok(())
}

fn text(report: &Value) -> String {
    let mut out = format!(
        "{} trace from {} ({})\n",
        report["direction"].as_str().unwrap_or_default(),
        report["from"].as_str().unwrap_or_default(),
        report["kind"].as_str().unwrap_or_default()
    );
    let list = |name: &str| report[name].as_array().cloned().unwrap_or_default();
    out.push_str(&format!("loads ({}):\n", list("loads").len()));
    for load in list("loads") {
        out.push_str(&format!(
            "  {}  sterilizer {}  BI {}{}\n",
            load["id"].as_str().unwrap_or_default(),
            load["sterilizer"].as_str().unwrap_or("-"),
            load["biologicalIndicator"].as_str().unwrap_or("-"),
            if load["recalled"] == true {
                "  RECALLED"
            } else {
                ""
            }
        ));
    }
    out.push_str(&format!("items ({}):\n", list("items").len()));
    for item in list("items") {
        out.push_str(&format!(
            "  {}  {}\n",
            item["id"].as_str().unwrap_or_default(),
            item["status"].as_str().unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "patients: {} ({} hidden)\n",
        report["patientCount"], report["hiddenPatients"]
    ));
    for patient in list("patients") {
        out.push_str(&format!(
            "  {}\n",
            patient["patient"].as_str().unwrap_or_default()
        ));
    }
    out
}

fn dot(report: &Value) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph trace {\n  rankdir=LR;\n");
    let list = |name: &str| report[name].as_array().cloned().unwrap_or_default();
    let mut edges = BTreeSet::new();
    for load in list("loads") {
        let id = load["id"].as_str().unwrap_or_default();
        out.push_str(&format!("  {} [shape=box];\n", quote(id)));
        if let Some(sterilizer) = load["sterilizer"].as_str() {
            edges.insert((sterilizer.to_owned(), id.to_owned()));
        }
    }
    for item in list("items") {
        let id = item["id"].as_str().unwrap_or_default();
        let status = item["status"].as_str().unwrap_or_default();
        out.push_str(&format!(
            "  {} [shape=ellipse, xlabel={}];\n",
            quote(id),
            quote(status)
        ));
    }
    for patient in list("patients") {
        let name = patient["patient"].as_str().unwrap_or_default();
        out.push_str(&format!("  {} [shape=diamond];\n", quote(name)));
        for item in patient["items"].as_array().cloned().unwrap_or_default() {
            edges.insert((
                item.as_str().unwrap_or_default().to_owned(),
                name.to_owned(),
            ));
        }
    }
    // Loads → items, from the load events the items rest on.
    for load in list("loads") {
        let load_id = load["id"].as_str().unwrap_or_default();
        let load_events: BTreeSet<u64> = load["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["logIndex"].as_u64())
            .collect();
        for item in list("items") {
            let rests = item["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["logIndex"].as_u64())
                .any(|i| load_events.contains(&i));
            if rests {
                edges.insert((
                    load_id.to_owned(),
                    item["id"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    for (a, b) in edges {
        out.push_str(&format!("  {} -> {};\n", quote(&a), quote(&b)));
    }
    out.push_str("}\n");
    out
}

/// `medid erase`
#[derive(Args)]
pub(crate) struct EraseArgs {
    /// The commitment (`sha256:…`) of the sealed value whose off-log payload to erase.
    commitment: String,
}

/// Erases an off-log payload (a patient, an operator's name); the ledger keeps the
/// commitment and still verifies. Refused within the retention period of its event.
pub(crate) fn erase(data: &DataDir, args: EraseArgs) -> anyhow::Result<()> {
    let registry = open(data)?;
    let erased = registry.erase_payload(&args.commitment)?;
    print_json(&json!({"commitment": args.commitment, "erased": erased}))
}
