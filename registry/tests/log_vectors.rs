//! The public Merkle proof test vectors in `shared/vectors/merkle`, read as they are:
//! every inclusion and consistency vector must be accepted exactly when `wantErr` is
//! false.
//!
//! Hashes are base64. Leaf hashes and proof hashes go through [`Hash::from_slice`]; a
//! value that is not 32 bytes is refused there, which counts as the proof being
//! rejected. Roots are passed to the verifiers as the raw bytes, as RFC 9162 compares
//! them. A `null` proof is an empty one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use medid_registry::log::{Hash, verify_consistency, verify_inclusion};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/merkle")
}

/// Every `*.json` file under `dir`, recursively, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn bytes(b64: &str) -> Vec<u8> {
    BASE64.decode(b64).expect("vector field is base64")
}

/// The hashes of a proof, or `None` if one is not a 32-byte hash.
fn proof_hashes(proof: &Option<Vec<String>>) -> Option<Vec<Hash>> {
    proof
        .iter()
        .flatten()
        .map(|p| Hash::from_slice(&bytes(p)).ok())
        .collect()
}

fn inclusion_accepted(v: &InclusionVector) -> bool {
    let (Ok(leaf), Some(proof)) = (
        Hash::from_slice(&bytes(&v.leaf_hash)),
        proof_hashes(&v.proof),
    ) else {
        return false;
    };
    verify_inclusion(v.leaf_idx, v.tree_size, &leaf, &proof, &bytes(&v.root)).is_ok()
}

fn consistency_accepted(v: &ConsistencyVector) -> bool {
    let Some(proof) = proof_hashes(&v.proof) else {
        return false;
    };
    verify_consistency(v.size1, v.size2, &proof, &bytes(&v.root1), &bytes(&v.root2)).is_ok()
}

/// Runs `accepted` on every vector file of `kind`; returns (files, accepted count).
fn check<V: for<'de> Deserialize<'de>>(
    kind: &str,
    accepted: impl Fn(&V) -> bool,
    want_err: impl Fn(&V) -> bool,
    desc: impl Fn(&V) -> &str,
) -> (usize, usize) {
    let files = json_files(&vectors_dir().join(kind));
    let mut failures = Vec::new();
    let mut ok = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let vector: V = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a {kind} vector: {e}", file.display()));
        let got = accepted(&vector);
        ok += usize::from(got);
        if got == want_err(&vector) {
            failures.push(format!(
                "{}: {:?}: accepted = {got}, wantErr = {}",
                file.display(),
                desc(&vector),
                want_err(&vector)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} {kind} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (files.len(), ok)
}

#[test]
fn inclusion_vectors() {
    let (files, accepted) =
        check::<InclusionVector>("inclusion", inclusion_accepted, |v| v.want_err, |v| &v.desc);
    // 98 files at the time of writing; fail loudly if the directory moved or emptied.
    assert!(files >= 98, "only {files} inclusion vectors found");
    assert!(accepted >= 6, "only {accepted} inclusion vectors accepted");
}

#[test]
fn consistency_vectors() {
    let (files, accepted) = check::<ConsistencyVector>(
        "consistency",
        consistency_accepted,
        |v| v.want_err,
        |v| &v.desc,
    );
    // 98 files at the time of writing.
    assert!(files >= 98, "only {files} consistency vectors found");
    assert!(
        accepted >= 6,
        "only {accepted} consistency vectors accepted"
    );
}
