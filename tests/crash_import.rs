//! SIGKILL a real `medid import` several times mid-run: every receipt it printed is in
//! the ledger afterwards, a re-run completes the import without duplicates, and
//! `medid verify` passes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ROWS: usize = 6000;

fn medid(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_medid"));
    command.arg("--data").arg(dir.join("node")).current_dir(dir);
    command
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = medid(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "medid {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts an import and kills it (SIGKILL) `delay` after its first receipt; returns
/// the receipts it printed.
fn import_and_kill(dir: &Path, delay: Duration) -> Vec<Value> {
    let mut child = medid(dir)
        .args([
            "import",
            "catalogue.jsonl",
            "--key",
            "maker.key",
            "--batch",
            "250",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut receipts = Vec::new();
    // Wait for the first receipt, then let it run `delay` more before the kill.
    if let Ok(line) = received.recv_timeout(Duration::from_secs(60)) {
        receipts.push(line);
    }
    let deadline = Instant::now() + delay;
    while let Ok(line) = received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        receipts.push(line);
        if Instant::now() >= deadline {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    receipts.extend(received.try_iter());
    receipts
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn killed_imports_lose_no_acknowledged_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(dir, &["init", "--name", "maker.medid.example"]);
    let maker = run(dir, &["did", "new", "--out", "maker.key"])
        .trim()
        .to_owned();
    run(
        dir,
        &[
            "prefix",
            "create",
            "86.1000.7",
            "--controller",
            &maker,
            "--key",
            "node/admin.key",
        ],
    );
    let mut file = std::fs::File::create(dir.join("catalogue.jsonl")).unwrap();
    for i in 0..ROWS {
        writeln!(
            file,
            r#"{{"id":"86.1000.7/DEV-{i:05}","values":[{{"index":1,"type":"URL","data":"https://maker.example/ifu/{i}"}},{{"index":2,"type":"GTIN","data":"0950600013435{}"}}]}}"#,
            i % 10
        )
        .unwrap();
    }
    drop(file);

    let mut acknowledged: Vec<Value> = Vec::new();
    for delay_ms in [0, 7, 40, 150] {
        let receipts = import_and_kill(dir, Duration::from_millis(delay_ms));
        assert!(
            !receipts.is_empty(),
            "the import printed no receipt before it was killed"
        );
        acknowledged.extend(receipts);
    }
    let last = run(dir, &["import", "catalogue.jsonl", "--key", "maker.key"]);
    acknowledged.extend(
        last.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()),
    );

    // Every identifier was acknowledged exactly once, and every receipt is in the ledger.
    let mut ids: Vec<&str> = acknowledged
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        acknowledged.len(),
        "an identifier was acknowledged twice"
    );
    let registry = medid_registry::Registry::open(&dir.join("node")).unwrap();
    // Every row is registered (some were committed by a killed run that died before
    // printing their receipts: those the re-run found already present).
    for i in 0..ROWS {
        let id = medid_registry::id::Identifier::parse(&format!("86.1000.7/DEV-{i:05}")).unwrap();
        assert!(
            registry.index().identifier(&id).unwrap().is_some(),
            "{id} is missing"
        );
    }
    assert_eq!(
        registry.log().size(),
        ROWS as u64 + 1,
        "a row was logged twice"
    );
    for receipt in &acknowledged {
        let leaf = receipt["leafIndex"].as_u64().unwrap();
        let entry = registry.log().entry(leaf).unwrap();
        assert_eq!(
            medid_registry::log::leaf_hash(&entry).to_string(),
            receipt["entryHash"].as_str().unwrap(),
            "receipt {receipt}"
        );
        let op: Value = serde_json::from_slice(&entry).unwrap();
        assert_eq!(op["id"], receipt["id"]);
    }
    drop(registry);
    assert!(run(dir, &["verify"]).starts_with("ok:"));
    // A re-run of the finished import changes nothing.
    assert_eq!(
        run(dir, &["import", "catalogue.jsonl", "--key", "maker.key"]),
        ""
    );
}
