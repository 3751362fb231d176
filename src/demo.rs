//! `medid demo`: loads a realistic scenario into a running node — a manufacturer with
//! implant and drug lots, a sterilization center with sterilizers and reusable packs
//! over many cycles, two hospitals, a failed load and a device lot recall — and prints
//! the commands that resolve and trace it.

#![allow(clippy::print_stdout)]

use std::path::Path;

use anyhow::{Context, anyhow};
use clap::Args;
use medid_did::KeyPair;
use medid_registry::event::epcis::bizstep;
use medid_registry::event::scenario::{DEVICE_GTIN, HistoryConfig, cssd_history};
use medid_registry::op::{Submission, draft, sign};
use serde_json::{Value, json};

use crate::client;
use crate::events::{post_capture, prepare};

/// `medid demo`
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// The running node (`http://HOST:PORT`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The node's admin key file (creates the demo's prefixes).
    #[arg(long = "admin-key", default_value = "medid-data/admin.key")]
    admin_key: std::path::PathBuf,
    /// Where to write the demo actors' key files.
    #[arg(long, default_value = "medid-demo")]
    out: std::path::PathBuf,
}

/// The sterilization center's prefix in the demo: apart from the README's first steps
/// (`86.1000.23`, a manufacturer's), so that the demo runs on a node already used.
const DEMO_PREFIX: &str = "86.1000.100";

fn actor(dir: &Path, name: &str) -> anyhow::Result<KeyPair> {
    let path = dir.join(format!("{name}.key"));
    if path.exists() {
        return Ok(KeyPair::read_file(&path)?);
    }
    let key = KeyPair::generate();
    key.write_file(&path)?;
    Ok(key)
}

/// Submits an operation; an identifier, prefix or DID already there (a second run of
/// the demo) is fine.
fn submit(server: &str, op: &str, fields: Value, keys: &[&KeyPair]) -> anyhow::Result<()> {
    let submission = Submission {
        operation: sign(&draft(op, fields), keys)?,
        restricted: Vec::new(),
    };
    match client::submit(server, &submission) {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("(exists,") => Ok(()),
        Err(e) => Err(e.context(op.to_owned())),
    }
}

fn capture(server: &str, events: &[Value], key: &KeyPair) -> anyhow::Result<usize> {
    let mut count = 0;
    for chunk in events.chunks(500) {
        let (signed, payloads) = prepare(chunk, key)?;
        let answer = post_capture(server, signed, payloads)?;
        count += answer["receipts"].as_array().map_or(0, Vec::len);
    }
    Ok(count)
}

pub(crate) fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let server = client::base(&args.server)?.to_owned();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let admin = KeyPair::read_file(&args.admin_key).with_context(|| {
        format!(
            "{}: the node's admin key (medid serve printed where it is)",
            args.admin_key.display()
        )
    })?;
    let out = &args.out;
    let (maker, cssd, hospital_a, hospital_b, surgeon) = (
        actor(out, "manufacturer")?,
        actor(out, "cssd")?,
        actor(out, "hospital-a")?,
        actor(out, "hospital-b")?,
        actor(out, "surgeon")?,
    );
    for (key, name, role) in [
        (&maker, "Example Implants Ltd", "manufacturer"),
        (&cssd, "Central Sterile Services", "sterilization-center"),
        (&hospital_a, "Hospital A", "hospital"),
        (&hospital_b, "Hospital B", "hospital"),
        (&surgeon, "Dr. Example", "person"),
    ] {
        submit(
            &server,
            "did.register",
            json!({"did": key.did().to_string(), "name": name, "role": role}),
            &[key],
        )?;
    }
    let config = HistoryConfig {
        prefix: DEMO_PREFIX.into(),
        sterilizers: 3,
        packs: 18,
        loads: 40,
        packs_per_load: 5,
        patients: 40,
        failures_per_mille: 0,
        device_uses_per_load: 1,
        // Start a week ago, one event a minute.
        start_ms: (time::OffsetDateTime::now_utc().unix_timestamp() - 7 * 86_400) * 1000,
        ..HistoryConfig::default()
    };
    submit(
        &server,
        "prefix.create",
        json!({"prefix": config.prefix, "controllers": [cssd.did().to_string()]}),
        &[&admin],
    )?;
    for pack in 0..config.packs {
        submit(
            &server,
            "identifier.register",
            json!({"id": config.pack(pack), "values": [
                {"index": 1, "type": "DESC", "data": format!("instrument pack {pack} (laparoscopy set)")}
            ]}),
            &[&cssd],
        )?;
    }
    let mut events = cssd_history(&config);
    // The last cycle result of sterilizer 0 fails its biological indicator.
    let failed_load = events
        .iter_mut()
        .rev()
        .find(|e| {
            e["medid:biologicalIndicator"].is_string()
                && e["medid:sterilizer"] == json!(format!("hdl:{}", config.sterilizer(0)))
        })
        .map(|e| {
            e["medid:biologicalIndicator"] = json!("fail");
            e["epcList"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("hdl:")
                .to_owned()
        })
        .ok_or_else(|| anyhow!("the scenario has no cycle result"))?;
    let (mut by_cssd, mut by_a, mut by_b) = (Vec::new(), Vec::new(), Vec::new());
    for (i, mut event) in events.into_iter().enumerate() {
        let step = event["bizStep"].as_str().unwrap_or_default().to_owned();
        if matches!(
            step.as_str(),
            bizstep::USING | bizstep::IMPLANTING | bizstep::DISPENSING
        ) {
            if i % 2 == 0 {
                event["medid:readers"] = json!([surgeon.did().to_string()]);
                by_a.push(event);
            } else {
                by_b.push(event);
            }
        } else {
            by_cssd.push(event);
        }
    }
    // Events go in time order per actor; each actor's events are captured in order, and
    // the trace orders by event time, so interleaving across actors does not matter.
    let mut count = capture(&server, &by_cssd, &cssd)?;
    count += capture(&server, &by_a, &hospital_a)?;
    count += capture(&server, &by_b, &hospital_b)?;
    let lot = format!("/01/{DEVICE_GTIN}/10/LOT2");
    let now =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let recall = json!({
        "type": "ObjectEvent", "eventTime": now, "eventTimeZoneOffset": "+00:00",
        "epcList": [format!("https://id.gs1.org{lot}")], "action": "OBSERVE",
        "disposition": "recalled", "medid:reason": "sterile barrier defect"
    });
    count += capture(&server, &[recall], &maker)?;
    let node: Value = client::get_json(&format!("{server}/api/node"), "application/json")?.1;
    let vkey = node["verifierKey"].as_str().unwrap_or_default();
    let keys = out.display();
    println!(
        "loaded {count} events: 3 sterilizers, {} packs, {} loads, 2 hospitals",
        config.packs, config.loads
    );
    println!("failed load: {failed_load}");
    println!("sterilizer: {}", config.sterilizer(0));
    println!("recalled lot: {lot}");
    println!("verifier key: {vkey}");
    println!();
    println!("# a pack's record, with its lifecycle STATUS (sterile, used, recalled):");
    println!("medid resolve {} --server {server}", config.pack(0));
    println!("# which patients did the failed load reach? (counts only without a key)");
    println!("medid trace {failed_load} --forward --format text --server {server}");
    println!("# the same, as hospital A (patients it recorded are shown):");
    println!(
        "medid trace {failed_load} --forward --format text --server {server} --key {keys}/hospital-a.key"
    );
    println!("# the recall report of the sterilizer since its last passing indicator:");
    println!(
        "curl -s '{server}/api/recall?sterilizer={}'",
        config.sterilizer(0)
    );
    println!("# reverse: what touched patient PAT-000003, and whom else did it reach?");
    println!(
        "medid trace PAT-000003 --reverse --format text --server {server} --key {keys}/hospital-a.key"
    );
    println!("# the implants of a recalled device lot:");
    println!(
        "medid trace {lot} --forward --format text --server {server} --key {keys}/hospital-b.key"
    );
    println!("# a trace with proofs, checked offline from the node's verifier key alone:");
    println!("medid trace {failed_load} --forward --proofs --server {server} > trace.json");
    println!("medid trace verify trace.json --verifier-key '{vkey}'");
    println!("# EPCIS query:");
    println!("curl -s '{server}/events?EQ_bizStep=urn:medid:bizstep:sterilizing&perPage=5'");
    Ok(())
}
