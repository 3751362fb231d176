//! The public did:key test vectors (`shared/vectors/did-key/ed25519-x25519.json`), read
//! as they are, and a cross-check against the independent `did-key` crate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::path::PathBuf;

use did_key::{DIDCore, Fingerprint, KeyMaterial};
use medid_did::{DidKey, KeyFormat, KeyPair, did_document};
use serde_json::Value;

fn vectors() -> serde_json::Map<String, Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/did-key/ed25519-x25519.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str(&text).unwrap() {
        Value::Object(map) => map,
        other => panic!("vector file is not an object: {other}"),
    }
}

/// The raw key bytes of a vector key pair, given as base58 or as a JWK member.
fn key_bytes(pair: &Value, base58: &str, jwk: &str, member: &str) -> Vec<u8> {
    use base64::Engine;
    if let Some(text) = pair[base58].as_str() {
        multibase::decode(format!("z{text}")).unwrap().1
    } else {
        let text = pair[jwk][member]
            .as_str()
            .unwrap_or_else(|| panic!("{pair} has no {base58} or {jwk}.{member}"));
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .unwrap()
    }
}

#[test]
fn ed25519_x25519_vectors() {
    let vectors = vectors();
    assert!(
        vectors.len() >= 5,
        "expected the five vectors, found {}",
        vectors.len()
    );
    for (did, vector) in &vectors {
        let seed: [u8; 32] = hex::decode(vector["seed"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let pair = KeyPair::from_seed(&seed);
        let ours = pair.did();
        assert_eq!(&ours.to_string(), did, "DID of seed {}", vector["seed"]);
        assert_eq!(DidKey::parse(did).unwrap(), ours);

        let ed = &vector["verificationKeyPair"];
        assert_eq!(
            ours.verifying_key().as_bytes().to_vec(),
            key_bytes(ed, "publicKeyBase58", "publicKeyJwk", "x")
        );

        let ka = &vector["keyAgreementKeyPair"];
        let ka_id = ka["id"].as_str().unwrap();
        assert_eq!(
            ka_id.rsplit('#').next(),
            Some(ours.x25519_fingerprint().as_str())
        );
        assert_eq!(
            ours.x25519_public_key().to_vec(),
            key_bytes(ka, "publicKeyBase58", "publicKeyJwk", "x")
        );
        assert_eq!(
            pair.x25519_secret_key().to_vec(),
            key_bytes(ka, "privateKeyBase58", "privateKeyJwk", "d")
        );

        // The vectors' documents use the 2018 suites; the structure must agree with ours.
        let theirs = &vector["didDocument"];
        let doc = did_document(&ours, KeyFormat::Multikey, true);
        assert_eq!(doc["id"], theirs["id"]);
        // Some vectors use relative references (`#z6Mk…`); resolve them against the DID.
        let absolute = |v: &Value| -> String {
            let id = v.as_str().unwrap();
            if id.starts_with('#') {
                format!("{did}{id}")
            } else {
                id.to_owned()
            }
        };
        let refs =
            |v: &Value| -> Vec<String> { v.as_array().unwrap().iter().map(absolute).collect() };
        for relation in [
            "assertionMethod",
            "authentication",
            "capabilityInvocation",
            "capabilityDelegation",
            "keyAgreement",
        ] {
            assert_eq!(
                refs(&doc[relation]),
                refs(&theirs[relation]),
                "{did} {relation}"
            );
        }
        let ids = |d: &Value| -> Vec<String> {
            d["verificationMethod"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| absolute(&m["id"]))
                .collect()
        };
        assert_eq!(ids(&doc), ids(theirs));
    }
}

#[test]
fn agrees_with_the_did_key_crate_on_random_keys() {
    for _ in 0..64 {
        let pair = KeyPair::generate();
        let seed = pair.signing_key().to_bytes();
        let theirs = did_key::generate::<did_key::Ed25519KeyPair>(Some(&seed));
        let ours = pair.did();
        assert_eq!(theirs.fingerprint(), ours.fingerprint());
        assert_eq!(
            theirs.public_key_bytes(),
            ours.verifying_key().as_bytes().to_vec()
        );

        let resolved = did_key::resolve(&ours.to_string()).unwrap();
        let their_doc =
            serde_json::to_value(resolved.get_did_document(did_key::CONFIG_JOSE_PUBLIC)).unwrap();
        let our_doc = did_document(&ours, KeyFormat::JsonWebKey2020, true);
        assert_eq!(our_doc["keyAgreement"], their_doc["keyAgreement"]);
        for (a, b) in our_doc["verificationMethod"]
            .as_array()
            .unwrap()
            .iter()
            .zip(their_doc["verificationMethod"].as_array().unwrap())
        {
            assert_eq!(a["id"], b["id"]);
            assert_eq!(a["publicKeyJwk"]["x"], b["publicKeyJwk"]["x"]);
            assert_eq!(a["publicKeyJwk"]["crv"], b["publicKeyJwk"]["crv"]);
        }
    }
}
