//! Lifecycle events end to end through the `medid` binary: `medid demo` against a fresh
//! `medid serve`, then the commands it prints — resolve (STATUS), trace forward and
//! reverse (json, text, dot), a trace with proofs verified offline — and `medid
//! capture` / `medid trace` / `medid erase` on a data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

/// A running `medid serve`, killed when dropped.
struct Node {
    child: Child,
    http: String,
    dns: String,
}

impl Node {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_medid"))
            .args(["serve", "--dns", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut http, mut dns) = (None, None);
        while http.is_none() || dns.is_none() {
            let line = lines.next().expect("medid serve exited").unwrap();
            if let Some(addr) = line.strip_prefix("http ") {
                http = Some(format!("http://{addr}"));
            }
            if let Some(addr) = line.strip_prefix("dns udp ") {
                dns = Some(format!("udp://{addr}"));
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            http: http.unwrap(),
            dns: dns.unwrap(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn medid(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medid"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = medid(dir, args);
    assert!(
        out.status.success(),
        "medid {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn line<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` in {text}"))
        .trim()
}

#[test]
fn demo_against_a_fresh_node() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let node = Node::start(dir);
    let out = ok(dir, &["demo", "--server", &node.http]);
    let failed = line(&out, "failed load:").to_owned();
    let vkey = line(&out, "verifier key:").to_owned();
    let lot = line(&out, "recalled lot:").to_owned();
    assert!(out.contains("medid trace"), "{out}");

    // Forward from the failed load, as hospital A and anonymously.
    let seen: Value = serde_json::from_str(&ok(
        dir,
        &[
            "trace",
            &failed,
            "--forward",
            "--server",
            &node.http,
            "--key",
            "medid-demo/hospital-a.key",
        ],
    ))
    .unwrap();
    assert_eq!(seen["kind"], "load");
    assert_eq!(seen["loads"][0]["recalled"], true);
    let anonymous: Value = serde_json::from_str(&ok(
        dir,
        &["trace", &failed, "--forward", "--server", &node.http],
    ))
    .unwrap();
    assert_eq!(anonymous["patients"], json!([]));
    assert_eq!(anonymous["patientCount"], seen["patientCount"]);
    // Unused packs of the failed load resolve as recalled.
    let recalled: Vec<String> = seen["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "recalled")
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    for pack in &recalled {
        let record: Value =
            serde_json::from_str(&ok(dir, &["resolve", pack, "--server", &node.http])).unwrap();
        let status = record["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["type"] == "STATUS")
            .unwrap();
        assert_eq!(status["data"]["value"], "recalled", "{pack}");
        // DNS says the same, as a TXT record.
        let txt = ok(dir, &["resolve", pack, "--server", &node.dns]);
        assert!(txt.contains("STATUS recalled"), "{txt}");
    }
    assert!(!recalled.is_empty(), "the failed load has unused packs");
    // The device lot: implanted patients, as text and dot.
    let text = ok(
        dir,
        &[
            "trace",
            &lot,
            "--forward",
            "--format",
            "text",
            "--server",
            &node.http,
        ],
    );
    assert!(
        text.starts_with(&format!("forward trace from {lot} (lot)")),
        "{text}"
    );
    let dot = ok(
        dir,
        &[
            "trace",
            &failed,
            "--forward",
            "--format",
            "dot",
            "--server",
            &node.http,
        ],
    );
    assert!(
        dot.starts_with("digraph trace {") && dot.contains("->"),
        "{dot}"
    );
    // Reverse from a patient.
    let reverse: Value = serde_json::from_str(&ok(
        dir,
        &[
            "trace",
            "PAT-000003",
            "--reverse",
            "--server",
            &node.http,
            "--key",
            "medid-demo/hospital-a.key",
        ],
    ))
    .unwrap();
    assert_eq!(reverse["kind"], "patient");
    // Proofs, saved and checked offline; a tampered file fails with exit 1.
    let saved = ok(
        dir,
        &[
            "trace",
            &failed,
            "--forward",
            "--proofs",
            "--server",
            &node.http,
        ],
    );
    std::fs::write(dir.join("trace.json"), &saved).unwrap();
    let verified = ok(
        dir,
        &["trace", "verify", "trace.json", "--verifier-key", &vkey],
    );
    assert!(verified.starts_with("ok: "), "{verified}");
    let mut tampered: Value = serde_json::from_str(&saved).unwrap();
    tampered["loads"][0]["events"][0]["eventID"] = json!("urn:uuid:forged");
    std::fs::write(dir.join("forged.json"), tampered.to_string()).unwrap();
    let out = medid(
        dir,
        &["trace", "verify", "forged.json", "--verifier-key", &vkey],
    );
    assert_eq!(out.status.code(), Some(1));
    // A second run of the demo is accepted (same actors, events already there or new).
    ok(dir, &["demo", "--server", &node.http]);
}

#[test]
fn capture_and_trace_on_a_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["--data", "node", "init", "--name", "test.example"]);
    ok(dir, &["did", "new", "--out", "cssd.key"]);
    ok(
        dir,
        &[
            "--data",
            "node",
            "did",
            "register",
            "--name",
            "CSSD",
            "--role",
            "sterilization-center",
            "--key",
            "cssd.key",
        ],
    );
    let document = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-01T00:00:00Z",
        "epcisBody": {"eventList": [
            {"type": "AggregationEvent", "eventTime": "2026-03-01T10:00:00Z", "eventTimeZoneOffset": "+00:00",
             "parentID": "86.1000.23/LOAD-1", "childEPCs": ["86.1000.23/PKG-1"], "action": "ADD",
             "bizStep": "urn:medid:bizstep:sterilizing", "medid:sterilizer": "86.1000.23/ST-1"},
            {"type": "ObjectEvent", "eventTime": "2026-03-01T11:00:00Z", "eventTimeZoneOffset": "+00:00",
             "epcList": ["86.1000.23/PKG-1"], "action": "OBSERVE",
             "bizStep": "urn:medid:bizstep:using", "medid:patient": "PAT-9"}
        ]}
    });
    std::fs::write(dir.join("events.jsonld"), document.to_string()).unwrap();
    let receipts: Value = serde_json::from_str(&ok(
        dir,
        &[
            "--data",
            "node",
            "capture",
            "events.jsonld",
            "--key",
            "cssd.key",
        ],
    ))
    .unwrap();
    assert_eq!(receipts["receipts"].as_array().unwrap().len(), 2);
    let again: Value = serde_json::from_str(&ok(
        dir,
        &[
            "--data",
            "node",
            "capture",
            "events.jsonld",
            "--key",
            "cssd.key",
        ],
    ))
    .unwrap();
    // The load is the same event; the use is sealed again, so it is a new commitment.
    assert_eq!(again["receipts"][0]["existing"], true);
    let text = ok(
        dir,
        &[
            "--data",
            "node",
            "trace",
            "86.1000.23/LOAD-1",
            "--forward",
            "--format",
            "text",
        ],
    );
    assert!(text.contains("PAT-9"), "{text}");
    let out = medid(
        dir,
        &["--data", "node", "trace", "86.1000.23/NOTHING", "--forward"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no event names"));
    let out = medid(
        dir,
        &[
            "--data",
            "node",
            "capture",
            "missing.json",
            "--key",
            "cssd.key",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    // A capture whose second event is refused (its eventID names the first) logs
    // nothing: the first event is new when captured alone afterwards.
    let washing = |program: &str| {
        json!({"type": "ObjectEvent", "eventTime": "2026-03-02T08:00:00Z",
               "eventTimeZoneOffset": "+00:00", "epcList": ["86.1000.23/PKG-1"],
               "action": "OBSERVE", "bizStep": "urn:medid:bizstep:washing",
               "medid:program": program,
               "eventID": "urn:uuid:6f1c3c2e-0000-4000-8000-0000000000b1"})
    };
    std::fs::write(
        dir.join("clash.json"),
        json!([washing("93C"), washing("90C")]).to_string(),
    )
    .unwrap();
    let args = [
        "--data",
        "node",
        "capture",
        "clash.json",
        "--key",
        "cssd.key",
    ];
    let out = medid(dir, &args);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("events[1]: refused (exists)"), "{stderr}");
    assert!(
        stderr.contains("no event of this capture was logged"),
        "{stderr}"
    );
    std::fs::write(dir.join("one.json"), json!([washing("93C")]).to_string()).unwrap();
    let args = ["--data", "node", "capture", "one.json", "--key", "cssd.key"];
    let alone: Value = serde_json::from_str(&ok(dir, &args)).unwrap();
    assert_eq!(alone["receipts"][0]["existing"], false);
    ok(dir, &["--data", "node", "verify"]);
}

/// The JSON blocks of README.md's CSSD section, in order.
fn readme_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### Lifecycle events and tracing: the CSSD profile")
        .nth(1)
        .unwrap();
    section
        .split("```json\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_readme_example_captures_and_traces() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let blocks = readme_blocks();
    assert_eq!(blocks.len(), 2);
    std::fs::write(dir.join("cycle.jsonld"), &blocks[0]).unwrap();
    std::fs::write(dir.join("use.json"), &blocks[1]).unwrap();
    ok(dir, &["--data", "node", "init", "--name", "test.example"]);
    for (key, role) in [
        ("cssd.key", "sterilization-center"),
        ("hospital.key", "hospital"),
    ] {
        ok(dir, &["did", "new", "--out", key]);
        ok(
            dir,
            &[
                "--data", "node", "did", "register", "--name", role, "--role", role, "--key", key,
            ],
        );
    }
    let receipts: Value = serde_json::from_str(&ok(
        dir,
        &[
            "--data",
            "node",
            "capture",
            "cycle.jsonld",
            "--key",
            "cssd.key",
        ],
    ))
    .unwrap();
    assert_eq!(receipts["receipts"].as_array().unwrap().len(), 5);
    ok(
        dir,
        &[
            "--data",
            "node",
            "capture",
            "use.json",
            "--key",
            "hospital.key",
        ],
    );
    let report: Value = serde_json::from_str(&ok(
        dir,
        &["--data", "node", "trace", "86.1000.23/LOAD-1", "--forward"],
    ))
    .unwrap();
    assert_eq!(report["patients"][0]["patient"], "PAT-004711");
    assert_eq!(report["loads"][0]["biologicalIndicator"], "pass");
    let pack = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "86.1000.23/PKG-1")
        .unwrap();
    assert_eq!(pack["status"], "used");
    assert_eq!(
        pack["instruments"],
        json!(["86.1000.23/INSTR-1", "86.1000.23/INSTR-2"])
    );
    let reverse: Value = serde_json::from_str(&ok(
        dir,
        &["--data", "node", "trace", "PAT-004711", "--reverse"],
    ))
    .unwrap();
    assert_eq!(reverse["patientCount"], 1);
    // Erasing a payload that does not exist is no error (nothing erased).
    let out = ok(
        dir,
        &[
            "--data",
            "node",
            "erase",
            &format!("sha256:{}", "0".repeat(64)),
        ],
    );
    assert!(out.contains("\"erased\": false"), "{out}");
}
