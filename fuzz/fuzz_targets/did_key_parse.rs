//! Arbitrary strings as did:key: never a panic; whatever parses re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medid_did::DidKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(did) = DidKey::parse(text) {
            assert_eq!(did.to_string(), text, "a parsed did:key must be canonical");
            assert_eq!(DidKey::parse(&did.to_string()), Ok(did));
        }
    }
});
