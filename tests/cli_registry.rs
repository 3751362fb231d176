//! The registry commands of the real `medid` binary on a real data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn medid(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medid"))
        .arg("--data")
        .arg(dir.join("node"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the medid binary runs")
}

/// Runs medid, checks its exit status, returns stdout.
fn check(dir: &Path, args: &[&str], status: i32) -> String {
    let out = medid(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(status),
        "medid {args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    if status == 0 { stdout } else { stderr }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_receipt_nobody_reads_is_no_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    check(dir, &["init", "--name", "cssd.medid.example"], 0);
    let cssd = check(dir, &["did", "new", "--out", "cssd.key"], 0)
        .trim()
        .to_owned();
    let create = ["prefix", "create", "86.1000", "--controller", &cssd];
    check(
        dir,
        &[&create[..], &["--key", "node/admin.key"]].concat(),
        0,
    );
    // `medid register … | head -c0`: the reader is gone before the receipt is printed.
    let mut register = Command::new(env!("CARGO_BIN_EXE_medid"))
        .arg("--data")
        .arg(dir.join("node"))
        .args([
            "register",
            "86.1000/PKG-9",
            "--value",
            "URL=https://cssd.example/p/9",
        ])
        .args(["--key", "cssd.key"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(register.stdout.take());
    let out = register.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    let record = json(&check(dir, &["show", "86.1000/PKG-9"], 0));
    assert_eq!(record["values"][0]["data"], "https://cssd.example/p/9");
}

#[test]
fn a_node_from_init_to_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = check(dir, &["init", "--name", "cssd.medid.example"], 0);
    assert!(out.contains("verifier key: cssd.medid.example+"), "{out}");
    assert!(dir.join("node/admin.key").exists());
    check(dir, &["init", "--name", "again"], 1);
    let cssd = check(dir, &["did", "new", "--out", "cssd.key"], 0)
        .trim()
        .to_owned();

    let receipt = json(&check(
        dir,
        &[
            "prefix",
            "create",
            "86.1000",
            "--controller",
            &cssd,
            "--key",
            "node/admin.key",
        ],
        0,
    ));
    assert_eq!(receipt["leafIndex"], 0);
    check(
        dir,
        &[
            "prefix",
            "create",
            "87",
            "--controller",
            &cssd,
            "--key",
            "cssd.key",
        ],
        1,
    );

    let receipt = json(&check(
        dir,
        &[
            "register",
            "86.1000/PKG-0001",
            "--value",
            "URL=https://cssd.example/p/1",
            "--private",
            "PATIENT=pseudo-123",
            "--key",
            "cssd.key",
        ],
        0,
    ));
    assert_eq!(
        (receipt["leafIndex"].as_u64(), receipt["treeSize"].as_u64()),
        (Some(1), Some(2))
    );
    let record = json(&check(dir, &["show", "86.1000/PKG-0001"], 0));
    assert_eq!(record["values"][0]["data"], "https://cssd.example/p/1");
    assert!(
        record["values"][1]["commitment"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(record["values"][1].get("data").is_none());
    assert_eq!(
        json(&check(dir, &["show", "86.1000"], 0))["controllers"][0],
        cssd.as_str()
    );

    check(
        dir,
        &[
            "update",
            "86.1000/PKG-0001",
            "--value",
            "DESC=basic tray",
            "--first-index",
            "3",
            "--key",
            "cssd.key",
        ],
        0,
    );
    assert_eq!(
        json(&check(dir, &["show", "86.1000/PKG-0001"], 0))["version"],
        2
    );
    let err = check(
        dir,
        &[
            "update",
            "86.1000/PKG-0001",
            "--value",
            "DESC=x",
            "--expected-version",
            "1",
            "--key",
            "cssd.key",
        ],
        1,
    );
    assert!(err.contains("conflict"), "{err}");

    check(
        dir,
        &[
            "did",
            "register",
            "--key",
            "cssd.key",
            "--name",
            "Central Sterile",
            "--role",
            "sterilization-center",
        ],
        0,
    );
    assert_eq!(
        json(&check(dir, &["show", &cssd], 0))["role"],
        "sterilization-center"
    );

    // Proofs come out as JSON that verifies.
    let vkey = check(dir, &["log", "vkey"], 0);
    assert!(vkey.starts_with("cssd.medid.example+"));
    let checkpoint = check(dir, &["log", "checkpoint"], 0);
    assert!(
        checkpoint.starts_with("cssd.medid.example\n4\n"),
        "{checkpoint}"
    );
    let proof = json(&check(dir, &["log", "proof", "inclusion", "1"], 0));
    let hashes: Vec<medid_registry::log::Hash> =
        serde_json::from_value(proof["proof"].clone()).unwrap();
    let leaf: medid_registry::log::Hash =
        serde_json::from_value(proof["leafHash"].clone()).unwrap();
    let root: medid_registry::log::Hash = serde_json::from_value(proof["root"].clone()).unwrap();
    medid_registry::log::verify_inclusion(1, 4, &leaf, &hashes, &root.0).unwrap();
    let consistency = json(&check(dir, &["log", "proof", "consistency", "2", "4"], 0));
    assert!(
        consistency["proof"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    check(dir, &["log", "proof", "inclusion", "9"], 1);

    check(dir, &["delete", "86.1000/PKG-0001", "--key", "cssd.key"], 0);
    check(dir, &["show", "86.1000/PKG-0001"], 1);
    check(dir, &["reindex"], 0);
    assert!(check(dir, &["verify"], 0).contains("ok: 5 entries"));

    // Bad input: a clear message and exit 1.
    let err = check(
        dir,
        &[
            "register", "86.1000/", "--value", "URL=x", "--key", "cssd.key",
        ],
        1,
    );
    assert!(err.contains("/id"), "{err}");
    check(
        dir,
        &[
            "register",
            "86.1000/X",
            "--value",
            "no-equals",
            "--key",
            "cssd.key",
        ],
        1,
    );
    check(dir, &["show", "not an identifier"], 1);
    check(
        dir,
        &["did", "deactivate", "did:key:nope", "--key", "cssd.key"],
        1,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_medid"))
        .args(["--data", "/nonexistent/x", "show", "86.1000/X"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("medid init"));

    // A flipped byte in the ledger: verify names the entry and exits 1.
    let bundle = dir.join("node/log/tile/entries/000.p/5");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    std::fs::write(&bundle, bytes).unwrap();
    let err = check(dir, &["verify"], 1);
    assert!(err.contains("entry 4"), "{err}");
}
