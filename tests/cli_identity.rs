//! The identity commands of the real `medid` binary: outputs and exit statuses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn medid(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medid"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the medid binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs medid and checks its exit status; returns stdout.
fn check(args: &[&str], dir: &Path, status: i32) -> Output {
    let out = medid(args, dir);
    assert_eq!(
        out.status.code(),
        Some(status),
        "medid {args:?}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    out
}

#[test]
fn new_show_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&["did", "new", "--out", "alice.key"], dir.path(), 0);
    let did = stdout(&out);
    assert!(did.starts_with("did:key:z6Mk"), "{did}");
    assert!(!stderr(&out).contains("secretKeyMultibase"));
    let secret = std::fs::read_to_string(dir.path().join("alice.key")).unwrap();
    let secret: Value = serde_json::from_str(&secret).unwrap();
    let secret = secret["secretKeyMultibase"].as_str().unwrap().to_owned();
    assert!(!stdout(&out).contains(&secret) && !stderr(&out).contains(&secret));

    assert_eq!(
        stdout(&check(&["did", "show", "alice.key"], dir.path(), 0)),
        did
    );

    let doc: Value =
        serde_json::from_str(&stdout(&check(&["did", "resolve", &did], dir.path(), 0))).unwrap();
    assert_eq!(doc["id"], did.as_str());
    assert_eq!(doc["verificationMethod"][0]["type"], "Multikey");
    assert!(doc.get("keyAgreement").is_none());

    let doc: Value = serde_json::from_str(&stdout(&check(
        &["did", "resolve", &did, "--format", "jwk", "--key-agreement"],
        dir.path(),
        0,
    )))
    .unwrap();
    assert_eq!(
        doc["verificationMethod"][1]["publicKeyJwk"]["crv"],
        "X25519"
    );
    assert_eq!(doc["keyAgreement"].as_array().map(Vec::len), Some(1));

    let doc: Value = serde_json::from_str(&stdout(&check(
        &["did", "resolve", &did, "--format", "ed25519-2020"],
        dir.path(),
        0,
    )))
    .unwrap();
    assert_eq!(
        doc["verificationMethod"][0]["type"],
        "Ed25519VerificationKey2020"
    );

    // A second `did new` to the same path must not replace the key.
    let out = check(&["did", "new", "--out", "alice.key"], dir.path(), 1);
    assert!(
        stderr(&out).contains("refusing to overwrite"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sign_then_verify_then_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let did = stdout(&check(&["did", "new", "--out", "k"], dir.path(), 0));
    std::fs::write(dir.path().join("doc.json"), r#"{"id":"86.1000.23/PKG-1","values":[{"index":1,"type":"URL","data":"https://example.org"}]}"#).unwrap();
    let signed = stdout(&check(&["sign", "--key", "k", "doc.json"], dir.path(), 0));
    std::fs::write(dir.path().join("signed.json"), &signed).unwrap();
    let out = check(&["verify", "signed.json"], dir.path(), 0);
    assert!(stdout(&out).contains(&did), "{}", stdout(&out));

    let mut doc: Value = serde_json::from_str(&signed).unwrap();
    doc["values"][0]["data"] = "https://evil.example".into();
    std::fs::write(dir.path().join("tampered.json"), doc.to_string()).unwrap();
    let out = check(&["verify", "tampered.json"], dir.path(), 1);
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));

    let mut doc: Value = serde_json::from_str(&signed).unwrap();
    let other = stdout(&check(&["did", "new", "--out", "k2"], dir.path(), 0));
    let fingerprint = other.trim_start_matches("did:key:");
    doc["proof"]["verificationMethod"] = format!("{other}#{fingerprint}").into();
    std::fs::write(dir.path().join("rekeyed.json"), doc.to_string()).unwrap();
    check(&["verify", "rekeyed.json"], dir.path(), 1);
}

#[test]
fn invalid_input_exits_1_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-json"), "{nope").unwrap();
    std::fs::write(dir.path().join("array.json"), "[1,2]").unwrap();
    std::fs::write(dir.path().join("unsigned.json"), "{\"a\":1}").unwrap();
    let out = check(&["did", "resolve", "did:key:zNOPE"], dir.path(), 1);
    assert!(stderr(&out).contains("invalidDid"), "{}", stderr(&out));
    let out = check(&["did", "resolve", "did:web:example.org"], dir.path(), 1);
    assert!(
        stderr(&out).contains("methodNotSupported"),
        "{}",
        stderr(&out)
    );
    check(&["did", "show", "missing.key"], dir.path(), 1);
    check(&["did", "show", "not-json"], dir.path(), 1);
    check(&["verify", "not-json"], dir.path(), 1);
    check(&["verify", "array.json"], dir.path(), 1);
    let out = check(&["verify", "unsigned.json"], dir.path(), 1);
    assert!(stderr(&out).contains("no proof"), "{}", stderr(&out));
    check(
        &["sign", "--key", "missing.key", "unsigned.json"],
        dir.path(),
        1,
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    check(&[], dir.path(), 2);
    check(&["frobnicate"], dir.path(), 2);
    check(&["did", "resolve"], dir.path(), 2);
    check(
        &["did", "resolve", "did:key:z", "--format", "pem"],
        dir.path(),
        2,
    );
    check(&["sign", "doc.json"], dir.path(), 2);
    check(&["--help"], dir.path(), 0);
}

#[test]
fn output_to_a_reader_that_has_gone_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // `medid did new | head -0`: the pipe's reader is closed before medid writes.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_medid"))
        .args(["did", "new", "--out", "k.key"])
        .current_dir(dir.path())
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    // The key file was written before the DID was printed.
    assert!(dir.path().join("k.key").exists());
}
