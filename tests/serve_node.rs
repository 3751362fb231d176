//! A real `medid serve` on ports chosen by the system: the embedded default node
//! created on first start, writes through `--server`, reads over HTTP and DNS (medid's
//! own client, dig and kdig), a read after a write never stale, clean shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod support;

use serde_json::Value;
use support::{Node, medid, ok, tool};

/// `medid prefix create 86.1000.23` through the node, controlled by `controller`.
fn create_prefix(dir: &std::path::Path, node: &Node, controller: &str) {
    ok(
        dir,
        &[
            "prefix",
            "create",
            "86.1000.23",
            "--controller",
            controller,
            "--key",
            "medid-data/admin.key",
            "--server",
            &node.http,
        ],
    );
}

#[test]
fn the_main_job_from_first_start_to_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut node = Node::start(dir);
    assert!(
        node.log.iter().any(|l| l.starts_with("admin key:")),
        "{:?}",
        node.log
    );
    assert!(
        dir.join("medid-data/node.json").exists(),
        "the embedded default lives in ./medid-data"
    );

    let maker = ok(dir, &["did", "new", "--out", "maker.key"])
        .trim()
        .to_owned();
    create_prefix(dir, &node, &maker);
    let receipt: Value = serde_json::from_str(&ok(
        dir,
        &[
            "register",
            "86.1000.23/pump-7",
            "--value",
            "URL=https://maker.example/ifu/7",
            "--value",
            "DESC=infusion pump",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    ))
    .unwrap();
    assert_eq!(receipt["leafIndex"], 1);

    // HTTP, through medid's own client.
    let record: Value = serde_json::from_str(&ok(
        dir,
        &["resolve", "86.1000.23/pump-7", "--server", &node.http],
    ))
    .unwrap();
    assert_eq!(record["responseCode"], 1);
    assert_eq!(
        record["values"][0]["data"]["value"],
        "https://maker.example/ifu/7"
    );

    // DNS over UDP: medid's client, dig and kdig, all without warnings.
    let (host, port) = node.dns.rsplit_once(':').unwrap();
    let answer = ok(
        dir,
        &[
            "resolve",
            "86.1000.23/pump-7",
            "--server",
            &format!("udp://{}", node.dns),
        ],
    );
    assert!(answer.contains("https://maker.example/ifu/7"), "{answer}");
    let name = "pump-7.23.1000.86.hdl.medid.test";
    let dig = tool(
        "dig",
        &["+norec", "-p", port, &format!("@{host}"), name, "TXT"],
    );
    assert!(
        dig.contains("status: NOERROR") && dig.contains("https://maker.example/ifu/7"),
        "{dig}"
    );
    assert!(!dig.to_lowercase().contains("warning"), "{dig}");
    let kdig = tool(
        "kdig",
        &["-p", port, &format!("@{host}"), name, "TXT", "+tcp"],
    );
    assert!(
        kdig.contains("NOERROR") && kdig.contains("https://maker.example/ifu/7"),
        "{kdig}"
    );
    assert!(!kdig.to_lowercase().contains("warning"), "{kdig}");

    // A read after a write never sees the old value (both front ends cache).
    ok(
        dir,
        &[
            "update",
            "86.1000.23/pump-7",
            "--value",
            "URL=https://maker.example/ifu/7-v2",
            "--expected-version",
            "1",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    );
    let record: Value = serde_json::from_str(&ok(
        dir,
        &["resolve", "86.1000.23/pump-7", "--server", &node.http],
    ))
    .unwrap();
    assert_eq!(
        record["values"][0]["data"]["value"],
        "https://maker.example/ifu/7-v2"
    );
    let dig = tool(
        "dig",
        &[
            "+norec",
            "+short",
            "-p",
            port,
            &format!("@{host}"),
            name,
            "TXT",
        ],
    );
    assert!(dig.contains("ifu/7-v2"), "{dig}");

    // A cached NXDOMAIN goes as soon as the name is registered.
    let new_name = "pump-8.23.1000.86.hdl.medid.test";
    let dig = tool(
        "dig",
        &["+norec", "-p", port, &format!("@{host}"), new_name, "TXT"],
    );
    assert!(dig.contains("status: NXDOMAIN"), "{dig}");
    ok(
        dir,
        &[
            "register",
            "86.1000.23/pump-8",
            "--value",
            "URL=https://maker.example/ifu/8",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    );
    let dig = tool(
        "dig",
        &["+norec", "-p", port, &format!("@{host}"), new_name, "TXT"],
    );
    assert!(
        dig.contains("status: NOERROR") && dig.contains("ifu/8"),
        "{dig}"
    );

    // Refusals come back with their reason and exit 1.
    let out = medid(
        dir,
        &[
            "register",
            "86.1000.23/pump-7",
            "--value",
            "URL=x",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(node.stop(), Some(0), "SIGTERM shuts the node down cleanly");
    // Everything acknowledged is there after the restart, and the node verifies.
    assert!(ok(dir, &["verify"]).starts_with("ok: 4 entries"));
}

/// `dig +norec` against the node: the whole answer.
fn dig(node: &Node, name: &str, qtype: &str) -> String {
    let (host, port) = node.dns.rsplit_once(':').unwrap();
    tool(
        "dig",
        &["+norec", "-p", port, &format!("@{host}"), name, qtype],
    )
}

/// `GET /api/handles/{id}` through medid's client: the exit status and what it printed.
fn resolve_http(dir: &std::path::Path, node: &Node, id: &str) -> (Option<i32>, String) {
    let out = medid(dir, &["resolve", id, "--server", &node.http]);
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn answers_follow_writes_deletions_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut node = Node::start(dir);
    let maker = ok(dir, &["did", "new", "--out", "maker.key"])
        .trim()
        .to_owned();
    let server = node.http.clone();
    let write = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--key", "maker.key", "--server", &server]);
        ok(dir, &all);
    };
    create_prefix(dir, &node, &maker);
    let a = "dev-a.23.1000.86.hdl.medid.test";
    let b = "dev-b.23.1000.86.hdl.medid.test";
    write(&[
        "register",
        "86.1000.23/dev-a",
        "--value",
        "URL=https://a.example/1",
    ]);

    // Both names asked before the second exists: the answers are cached.
    assert!(dig(&node, a, "TXT").contains("https://a.example/1"));
    assert!(dig(&node, b, "TXT").contains("status: NXDOMAIN"));
    let (code, text) = resolve_http(dir, &node, "86.1000.23/dev-b");
    assert_ne!(code, Some(0), "{text}");

    // A new identifier answers at once, over DNS and HTTP; names above it are there.
    write(&[
        "register",
        "86.1000.23/dev-b",
        "--value",
        "URL=https://b.example/1",
    ]);
    let answer = dig(&node, b, "TXT");
    assert!(
        answer.contains("status: NOERROR") && answer.contains("https://b.example/1"),
        "{answer}"
    );
    let (code, text) = resolve_http(dir, &node, "86.1000.23/dev-b");
    assert!(
        code == Some(0) && text.contains("https://b.example/1"),
        "{text}"
    );
    let prefix = dig(&node, "23.1000.86.hdl.medid.test", "TXT");
    assert!(prefix.contains("prefix hdl:86.1000.23"), "{prefix}");
    let above = dig(&node, "1000.86.hdl.medid.test", "TXT");
    assert!(
        above.contains("status: NOERROR") && above.contains("ANSWER: 0"),
        "an empty non-terminal: {above}"
    );

    // An update replaces the value.
    write(&[
        "update",
        "86.1000.23/dev-a",
        "--value",
        "URL=https://a.example/2",
        "--expected-version",
        "1",
    ]);
    let answer = dig(&node, a, "TXT");
    assert!(
        answer.contains("https://a.example/2") && !answer.contains("https://a.example/1"),
        "{answer}"
    );
    let (_, text) = resolve_http(dir, &node, "86.1000.23/dev-a");
    assert!(text.contains("https://a.example/2"), "{text}");

    // A deletion removes the name and the record.
    write(&["delete", "86.1000.23/dev-a", "--expected-version", "2"]);
    assert!(dig(&node, a, "TXT").contains("status: NXDOMAIN"));
    let (code, text) = resolve_http(dir, &node, "86.1000.23/dev-a");
    assert_ne!(code, Some(0), "{text}");

    // After a restart the node answers from what the index holds.
    assert_eq!(node.stop(), Some(0));
    let node = Node::start(dir);
    assert!(dig(&node, a, "TXT").contains("status: NXDOMAIN"));
    let answer = dig(&node, b, "TXT");
    assert!(answer.contains("https://b.example/1"), "{answer}");
    let (code, text) = resolve_http(dir, &node, "86.1000.23/dev-b");
    assert!(
        code == Some(0) && text.contains("https://b.example/1"),
        "{text}"
    );
    let (code, text) = resolve_http(dir, &node, "86.1000.23/dev-a");
    assert_ne!(code, Some(0), "{text}");
    // The SOA serial is the ledger size: five entries.
    let soa = dig(&node, "medid.test", "SOA");
    assert!(
        soa.contains("hostmaster.medid.test. 5 "),
        "serial 5 after five writes: {soa}"
    );
}

/// The `STATUS` value of `id` over HTTP (`None`: the answer has none).
fn http_status(dir: &std::path::Path, node: &Node, id: &str) -> Option<String> {
    let (code, text) = resolve_http(dir, node, id);
    assert_eq!(code, Some(0), "{text}");
    let record: Value = serde_json::from_str(&text).unwrap();
    record["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["type"] == "STATUS")
        .map(|v| v["data"]["value"].as_str().unwrap().to_owned())
}

/// Captures `events` (an EPCIS event list) through the node, signed by `key`.
fn capture(dir: &std::path::Path, node: &Node, key: &str, events: Value) {
    std::fs::write(dir.join("events.json"), events.to_string()).unwrap();
    ok(
        dir,
        &[
            "capture",
            "events.json",
            "--key",
            key,
            "--server",
            &node.http,
        ],
    );
}

#[test]
fn cached_answers_follow_the_events_that_change_an_items_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let node = Node::start(dir);
    let maker = ok(dir, &["did", "new", "--out", "maker.key"])
        .trim()
        .to_owned();
    create_prefix(dir, &node, &maker);
    ok(
        dir,
        &[
            "register",
            "86.1000.23/pkg-1",
            "--value",
            "DESC=instrument pack",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    );
    ok(dir, &["did", "new", "--out", "cssd.key"]);
    ok(
        dir,
        &[
            "did",
            "register",
            "--name",
            "CSSD",
            "--role",
            "sterilization-center",
            "--key",
            "cssd.key",
            "--server",
            &node.http,
        ],
    );
    let pack_name = "pkg-1.23.1000.86.hdl.medid.test";
    // Each answer is asked before the event that changes it, so that it is cached.
    assert_eq!(http_status(dir, &node, "86.1000.23/pkg-1"), None);
    let txt = dig(&node, pack_name, "TXT");
    assert!(
        txt.contains("status: NOERROR") && !txt.contains("STATUS"),
        "{txt}"
    );

    // Loaded into a sterilizer: an event naming the pack.
    capture(
        dir,
        &node,
        "cssd.key",
        serde_json::json!([{
            "type": "AggregationEvent", "eventTime": "2026-03-01T10:00:00Z",
            "eventTimeZoneOffset": "+00:00", "parentID": "86.1000.23/LOAD-1",
            "childEPCs": ["86.1000.23/pkg-1"], "action": "ADD",
            "bizStep": "urn:medid:bizstep:sterilizing", "medid:sterilizer": "86.1000.23/ST-1"
        }]),
    );
    assert_eq!(
        http_status(dir, &node, "86.1000.23/pkg-1").as_deref(),
        Some("sterile")
    );
    let txt = dig(&node, pack_name, "TXT");
    assert!(txt.contains("STATUS sterile"), "{txt}");

    // The load's biological indicator fails: an event that names the load, not the
    // pack, recalls it.
    capture(
        dir,
        &node,
        "cssd.key",
        serde_json::json!([{
            "type": "ObjectEvent", "eventTime": "2026-03-01T11:00:00Z",
            "eventTimeZoneOffset": "+00:00", "epcList": ["86.1000.23/LOAD-1"],
            "action": "OBSERVE", "bizStep": "urn:medid:bizstep:sterilizing",
            "medid:sterilizer": "86.1000.23/ST-1",
            "medid:chemicalIndicator": "pass", "medid:biologicalIndicator": "fail"
        }]),
    );
    assert_eq!(
        http_status(dir, &node, "86.1000.23/pkg-1").as_deref(),
        Some("recalled")
    );
    let txt = dig(&node, pack_name, "TXT");
    assert!(txt.contains("STATUS recalled"), "{txt}");
    let trace = |node: &Node| -> Value {
        serde_json::from_str(&ok(
            dir,
            &[
                "trace",
                "86.1000.23/LOAD-1",
                "--forward",
                "--server",
                &node.http,
            ],
        ))
        .unwrap()
    };
    let traced = trace(&node);
    assert_eq!(traced["items"][0]["id"], "86.1000.23/pkg-1");
    assert_eq!(traced["items"][0]["status"], "recalled");

    // A clean stop leaves the trace timelines for the next start, which reads them
    // back (and removes them) instead of walking the index, and answers the same.
    let snapshot = dir.join("medid-data/trace-timelines");
    let mut node = node;
    assert_eq!(node.stop(), Some(0));
    assert!(snapshot.exists());
    let node = start_printing(dir, "trace timelines: read from medid-data/trace-timelines");
    assert!(!snapshot.exists());
    assert_eq!(trace(&node), traced);
    assert_eq!(
        http_status(dir, &node, "86.1000.23/pkg-1").as_deref(),
        Some("recalled")
    );
    // Killed, it leaves none: the next start reads the index.
    drop(node);
    assert!(!snapshot.exists());
    let node = start_printing(dir, "trace timelines: read from the index (no snapshot)");
    assert_eq!(trace(&node), traced);
}

/// `medid serve` in `dir`, which printed `line` before it listened.
fn start_printing(dir: &std::path::Path, line: &str) -> Node {
    let node = Node::start(dir);
    assert!(node.log.iter().any(|l| l == line), "{:?}", node.log);
    node
}

/// The README's order: its first steps (a manufacturer's prefix `86.1000.23` and an
/// identifier under it), then `medid demo` on the same node. The demo keeps to its
/// own prefix and leaves the first identifier as it was.
#[test]
fn the_demo_after_the_readme_first_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let node = Node::start(dir);
    let maker = ok(dir, &["did", "new", "--out", "maker.key"]);
    create_prefix(dir, &node, maker.trim());
    let id = "86.1000.23/pump-7";
    let value = "URL=https://maker.example/ifu/7";
    let server = node.http.as_str();
    let register = ["register", id, "--value", value, "--key", "maker.key"];
    ok(dir, &[&register[..], &["--server", server]].concat());
    let before = ok(dir, &["resolve", id, "--server", server]);
    let out = ok(dir, &["demo", "--server", server]);
    let failed = out
        .lines()
        .find_map(|l| l.strip_prefix("failed load:"))
        .unwrap_or_else(|| panic!("no failed load in {out}"))
        .trim();
    assert!(failed.starts_with("86.1000.100/"), "{out}");
    assert_eq!(ok(dir, &["resolve", id, "--server", server]), before);
}
