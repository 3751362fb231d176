//! Arbitrary strings as identifiers: never a panic; whatever parses re-parses from its
//! canonical form to an equal value, the canonical form is its own canonical form, a
//! GS1 key re-parses from its element string too, and a namespace's key parses back to
//! that namespace.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medid_registry::id::{Identifier, Namespace, Prefix};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = Identifier::parse(text) {
        let canonical = id.canonical();
        let again = Identifier::parse(&canonical);
        assert_eq!(
            again.as_ref(),
            Ok(&id),
            "{text:?} → {canonical:?} does not re-parse"
        );
        if let Ok(again) = again {
            assert_eq!(
                again.canonical(),
                canonical,
                "canonical form is not a fixed point"
            );
        }
        if let Identifier::Gs1(key) = &id {
            let element = key.element_string();
            assert_eq!(
                Identifier::parse(&element).as_ref(),
                Ok(&id),
                "element string {element:?} does not re-parse"
            );
        }
        let namespace = id.namespace();
        let key = namespace.namespace_key();
        assert_eq!(
            Namespace::from_key(&key).as_ref(),
            Ok(&namespace),
            "namespace key {key:?}"
        );
        let ancestors = namespace.ancestors_keys();
        assert_eq!(
            ancestors.first(),
            Some(&key),
            "ancestors start with the key itself"
        );
    }
    if let Ok(prefix) = Prefix::parse(text) {
        assert_eq!(Prefix::parse(prefix.as_str()).as_ref(), Ok(&prefix));
    }
    if let Ok(namespace) = Namespace::from_key(text) {
        let key = namespace.namespace_key();
        assert_eq!(
            Namespace::from_key(&key).as_ref(),
            Ok(&namespace),
            "namespace key {key:?}"
        );
    }
});
