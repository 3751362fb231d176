//! Identity benchmarks: did:key encode+decode, and signing and verifying a 1 KiB JSON
//! document against a bare Ed25519 verification of the same bytes, in the same run;
//! and 64 documents' signatures checked as one batch.
//!
//! `cargo bench --bench identity`

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]
#![allow(clippy::expect_used)] // a benchmark fails loudly on purpose

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ed25519_dalek::Signer;
use medid_did::{DidKey, KeyPair, ProofOptions, add_proof, read_proofs, verify_all, verify_proofs};
use serde_json::{Value, json};

/// A record-like JSON document of about 1 KiB.
fn document() -> Value {
    let values: Vec<Value> = (1..=8)
        .map(|i| json!({"index": i, "type": "URL", "data": format!("https://cssd.example-hospital.org/packs/PKG-{i:04}/instructions"), "ttl": 86400}))
        .collect();
    json!({"@context": ["https://www.w3.org/ns/credentials/v2"], "op": "register", "id": "86.1000.23/PKG-0001", "values": values})
}

fn benches(c: &mut Criterion) {
    let key = KeyPair::from_seed(&[42; 32]);
    let did = key.did().to_string();
    c.bench_function("did:key encode+decode", |b| {
        b.iter(|| DidKey::parse(&black_box(key.did()).to_string()))
    });

    let doc = document();
    let signed = add_proof(&doc, &key, &ProofOptions::now()).expect("sign");
    let signed_text = serde_json::to_string(&signed).expect("serialise");
    let doc_bytes = serde_json::to_vec(&doc).expect("serialise");
    assert!(
        (900..1300).contains(&doc_bytes.len()),
        "document is {} bytes",
        doc_bytes.len()
    );

    c.bench_function("sign 1 KiB document (JCS + Ed25519)", |b| {
        b.iter(|| add_proof(black_box(&doc), &key, &ProofOptions::now()))
    });
    c.bench_function("verify 1 KiB document (parse + JCS + Ed25519)", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_str(black_box(&signed_text)).expect("parse");
            let proofs = verify_proofs(&value).expect("verify");
            assert_eq!(proofs[0].signer.to_string(), did);
        })
    });
    c.bench_function("component: JSON parse of the signed document", |b| {
        b.iter(|| serde_json::from_str::<Value>(black_box(&signed_text)).expect("parse"))
    });
    c.bench_function("component: JCS of the document", |b| {
        b.iter(|| medid_did::canonical_json(black_box(&doc)))
    });
    c.bench_function("component: did:key decode", |b| {
        b.iter(|| DidKey::parse(black_box(&did)))
    });
    let bare = key.signing_key().sign(&doc_bytes);
    let vk = key.verifying_key();
    c.bench_function("bare ed25519-dalek verify_strict of the same 1 KiB", |b| {
        b.iter(|| {
            vk.verify_strict(black_box(&doc_bytes), black_box(&bare))
                .expect("verify")
        })
    });
    let pending: Vec<_> = (0..64)
        .map(|i| {
            let mut doc = document();
            doc["id"] = json!(format!("86.1000.23/PKG-{i:04}"));
            let signed = add_proof(&doc, &key, &ProofOptions::now()).expect("sign");
            read_proofs(&signed).expect("read").1
        })
        .collect();
    let pending: Vec<_> = pending.iter().collect();
    c.bench_function("verify_all: 64 documents' signatures as one batch", |b| {
        b.iter(|| {
            let checked = verify_all(black_box(&pending));
            assert!(checked.iter().all(Result::is_ok));
        })
    });
}

criterion_group!(identity, benches);
criterion_main!(identity);
