//! Arbitrary bytes as a signed document: verification never panics; any JSON object
//! signed with a fixed key verifies, and stops verifying once its first member changes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medid_did::{KeyPair, ProofOptions, add_proof, verify_proofs};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = verify_proofs(&value);
    let Some(object) = value.as_object() else {
        return;
    };
    let mut unsigned = object.clone();
    unsigned.remove("proof");
    let unsigned = Value::Object(unsigned);
    let key = KeyPair::from_seed(&[9; 32]);
    let signed = add_proof(&unsigned, &key, &ProofOptions::now()).expect("objects can be signed");
    let proofs = verify_proofs(&signed).expect("a fresh signature verifies");
    assert_eq!(proofs[0].signer, key.did());
    if let Some((name, _)) = unsigned.as_object().and_then(|o| o.iter().next()) {
        let mut changed = signed.clone();
        changed[name.as_str()] = Value::String("\u{1}changed\u{1}".into());
        if changed != signed {
            assert!(verify_proofs(&changed).is_err(), "a changed document must not verify");
        }
    }
});
