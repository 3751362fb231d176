//! Every class of malformed `did:key`, each refused with its own did:key error name.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use medid_did::{DidKey, DidKeyError, KeyPair};

fn encode(prefix: &[u8], key: &[u8]) -> String {
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(key);
    format!(
        "did:key:{}",
        multibase::encode(multibase::Base::Base58Btc, bytes)
    )
}

fn check(input: &str, code: &str) {
    match DidKey::parse(input) {
        Ok(k) => panic!("{input} was accepted as {k}"),
        Err(e) => assert_eq!(e.code(), code, "{input}: {e}"),
    }
}

/// 32 bytes that do not decompress to an Ed25519 point.
fn non_point() -> [u8; 32] {
    (0u8..=255)
        .map(|i| {
            let mut y = [0u8; 32];
            y[0] = i;
            y[1] = 0x5a;
            y
        })
        .find(|y| ed25519_dalek::VerifyingKey::from_bytes(y).is_err())
        .expect("about half of all y coordinates are not on the curve")
}

#[test]
fn wrong_scheme_or_method() {
    let good = KeyPair::generate().did().to_string();
    check(&good.replacen("did:", "uri:", 1), "invalidDid");
    check(
        &good.replacen("did:key:", "did:web:", 1),
        "methodNotSupported",
    );
    check(
        &good.replacen("did:key:", "did:example:", 1),
        "methodNotSupported",
    );
    check("did:key", "invalidDid");
    check(&format!("{good}#frag"), "invalidDid");
    check(&format!("{good}/path"), "invalidDid");
}

#[test]
fn wrong_multibase() {
    let key = KeyPair::generate().verifying_key();
    let mut bytes = vec![0xed, 0x01];
    bytes.extend_from_slice(key.as_bytes());
    for base in [
        multibase::Base::Base58Flickr,
        multibase::Base::Base64Url,
        multibase::Base::Base32Lower,
    ] {
        let did = format!("did:key:{}", multibase::encode(base, &bytes));
        let err = DidKey::parse(&did).unwrap_err();
        assert!(
            matches!(err, DidKeyError::UnsupportedMultibase(_)),
            "{did}: {err}"
        );
        assert_eq!(err.code(), "invalidDid");
    }
    check("did:key:z0000", "invalidDid"); // `0` is not a base58 digit
}

#[test]
fn wrong_codec() {
    let key = KeyPair::generate().verifying_key();
    check(
        &encode(&[0xec, 0x01], key.as_bytes()),
        "invalidPublicKeyType",
    ); // x25519-pub
    check(
        &encode(&[0xe7, 0x01], key.as_bytes()),
        "invalidPublicKeyType",
    ); // secp256k1-pub
    check(
        &encode(&[0x80, 0x24], key.as_bytes()),
        "invalidPublicKeyType",
    ); // p256-pub
}

#[test]
fn wrong_length() {
    let key = KeyPair::generate().verifying_key();
    check(
        &encode(&[0xed, 0x01], &key.as_bytes()[..31]),
        "invalidPublicKeyLength",
    );
    check(
        &encode(&[0xed, 0x01], &[key.as_bytes().as_slice(), &[0]].concat()),
        "invalidPublicKeyLength",
    );
    check(&encode(&[0xed, 0x01], &[]), "invalidPublicKeyLength");
}

#[test]
fn not_a_point_or_a_weak_point() {
    check(&encode(&[0xed, 0x01], &non_point()), "invalidPublicKey");
    // The identity point (y = 1) has small order: anyone could sign for it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    check(&encode(&[0xed, 0x01], &identity), "invalidPublicKey");
}

#[test]
fn the_errors_are_distinct() {
    let key = KeyPair::generate().verifying_key();
    let errors = [
        DidKey::parse("nodid").unwrap_err(),
        DidKey::parse("did:web:x").unwrap_err(),
        DidKey::parse(&encode(&[0xec, 0x01], key.as_bytes())).unwrap_err(),
        DidKey::parse(&encode(&[0xed, 0x01], &key.as_bytes()[..8])).unwrap_err(),
        DidKey::parse(&encode(&[0xed, 0x01], &non_point())).unwrap_err(),
    ];
    let codes: std::collections::BTreeSet<_> = errors.iter().map(DidKeyError::code).collect();
    assert_eq!(codes.len(), errors.len(), "{codes:?}");
}
