//! `did:key` for Ed25519 public keys: encoding and strict decoding.
//!
//! The method-specific identifier is the multibase (base58btc, prefix `z`) encoding of
//! the unsigned-varint multicodec `0xed` (`ed25519-pub`, bytes `0xed 0x01`) followed by
//! the 32-byte public key. Decoding accepts exactly that canonical form and nothing else.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Multicodec code of an Ed25519 public key.
const ED25519_PUB: u64 = 0xed;
/// Multicodec code of an X25519 public key.
const X25519_PUB: u64 = 0xec;
/// Length of an Ed25519 public key in bytes.
const ED25519_KEY_LEN: usize = 32;

/// Why a string is not an acceptable Ed25519 `did:key`.
///
/// [`DidKeyError::code`] gives the error name the did:key specification uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DidKeyError {
    /// Not a DID at all, or not in the `did:key:<multibase>` form.
    #[error("invalidDid: {0}")]
    InvalidDid(String),
    /// A DID of another method than `key`.
    #[error("methodNotSupported: DID method `{0}` is not supported here (only did:key)")]
    MethodNotSupported(String),
    /// The multibase prefix is not `z` (base58btc).
    #[error("invalidDid: multibase prefix `{0}` is not base58btc (`z`)")]
    UnsupportedMultibase(char),
    /// The multicodec names a key type other than Ed25519.
    #[error("invalidPublicKeyType: multicodec 0x{0:x} is not an Ed25519 public key (0xed)")]
    UnsupportedKeyType(u64),
    /// The key has the wrong number of bytes.
    #[error("invalidPublicKeyLength: an Ed25519 public key has 32 bytes, this one has {0}")]
    InvalidPublicKeyLength(usize),
    /// The 32 bytes are not an acceptable curve point.
    #[error("invalidPublicKey: {0}")]
    InvalidPublicKey(String),
}

impl DidKeyError {
    /// The error name defined by the did:key specification.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidDid(_) | Self::UnsupportedMultibase(_) => "invalidDid",
            Self::MethodNotSupported(_) => "methodNotSupported",
            Self::UnsupportedKeyType(_) => "invalidPublicKeyType",
            Self::InvalidPublicKeyLength(_) => "invalidPublicKeyLength",
            Self::InvalidPublicKey(_) => "invalidPublicKey",
        }
    }
}

/// An Ed25519 public key named as a `did:key`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DidKey {
    key: VerifyingKey,
}

impl DidKey {
    /// The `did:key` of a public key.
    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        Self { key }
    }

    /// Decodes a `did:key` strictly; see [`DidKeyError`] for what is refused.
    ///
    /// The last few thousand keys decoded on this thread are remembered: an Ed25519
    /// point decompression costs about a tenth of a signature check, and a node reads
    /// the same signers and controllers again and again (every operation under a
    /// prefix reads the prefix's controllers).
    pub fn parse(did: &str) -> Result<Self, DidKeyError> {
        use std::cell::RefCell;
        use std::collections::HashMap;
        const CAPACITY: usize = 4096;
        thread_local! {
            static KNOWN: RefCell<HashMap<String, DidKey>> = RefCell::new(HashMap::new());
        }
        if let Some(key) = KNOWN.with(|known| known.borrow().get(did).copied()) {
            return Ok(key);
        }
        let key = Self::decode(did)?;
        KNOWN.with(|known| {
            let mut known = known.borrow_mut();
            if known.len() >= CAPACITY {
                known.clear();
            }
            known.insert(did.to_owned(), key);
        });
        Ok(key)
    }

    fn decode(did: &str) -> Result<Self, DidKeyError> {
        let Some(rest) = did.strip_prefix("did:") else {
            return Err(DidKeyError::InvalidDid(format!(
                "`{}` does not start with `did:`",
                truncate(did)
            )));
        };
        let (method, id) = rest.split_once(':').ok_or_else(|| {
            DidKeyError::InvalidDid("a DID has the form did:<method>:<identifier>".into())
        })?;
        if method.is_empty()
            || !method
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(DidKeyError::InvalidDid(format!(
                "`{}` is not a DID method name",
                truncate(method)
            )));
        }
        if method != "key" {
            return Err(DidKeyError::MethodNotSupported(method.to_owned()));
        }
        let first = id.chars().next().ok_or_else(|| {
            DidKeyError::InvalidDid("the method-specific identifier is empty".into())
        })?;
        if first != 'z' {
            return Err(DidKeyError::UnsupportedMultibase(first));
        }
        if let Some(bad) = id.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(DidKeyError::InvalidDid(format!(
                "character `{bad}` cannot appear in a did:key identifier (a DID URL with a path, query or fragment is not a DID)"
            )));
        }
        let (_, bytes) = multibase::decode(id)
            .map_err(|e| DidKeyError::InvalidDid(format!("base58btc decoding failed: {e}")))?;
        let (codec, key) = unsigned_varint::decode::u64(&bytes).map_err(|e| {
            DidKeyError::InvalidDid(format!("the multicodec prefix is not a valid varint: {e}"))
        })?;
        if codec != ED25519_PUB {
            return Err(DidKeyError::UnsupportedKeyType(codec));
        }
        let key: [u8; ED25519_KEY_LEN] = key
            .try_into()
            .map_err(|_| DidKeyError::InvalidPublicKeyLength(key.len()))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| {
            DidKeyError::InvalidPublicKey("the 32 bytes do not encode a point on Ed25519".into())
        })?;
        if key.is_weak() {
            return Err(DidKeyError::InvalidPublicKey(
                "the key is a point of small order, which anyone could sign for".into(),
            ));
        }
        // base58 decoding is one-to-one and the varint decoder refuses non-minimal
        // encodings, so the identifier is in its canonical form.
        Ok(Self { key })
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The method-specific identifier (`z6Mk…`), also the verification method fragment.
    pub fn fingerprint(&self) -> String {
        multibase_key(ED25519_PUB, self.key.as_bytes())
    }

    /// The id of the key's verification method: `did:key:z6Mk…#z6Mk…`.
    pub fn verification_method_id(&self) -> String {
        format!("{self}#{}", self.fingerprint())
    }

    /// The X25519 (Montgomery form) public key derived from this key.
    pub fn x25519_public_key(&self) -> [u8; 32] {
        self.key.to_montgomery().to_bytes()
    }

    /// The multibase encoding (`z6LS…`) of the derived X25519 key.
    pub fn x25519_fingerprint(&self) -> String {
        multibase_key(X25519_PUB, &self.x25519_public_key())
    }
}

/// Multibase base58btc encoding of a multicodec-prefixed key.
pub(crate) fn multibase_key(codec: u64, key: &[u8]) -> String {
    let mut buf = unsigned_varint::encode::u64_buffer();
    let prefix = unsigned_varint::encode::u64(codec, &mut buf);
    let mut bytes = Vec::with_capacity(prefix.len() + key.len());
    bytes.extend_from_slice(prefix);
    bytes.extend_from_slice(key);
    multibase::encode(multibase::Base::Base58Btc, bytes)
}

/// Shortens untrusted input before it is quoted in an error message.
fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl fmt::Display for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "did:key:{}", self.fingerprint())
    }
}

impl fmt::Debug for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DidKey({self})")
    }
}

impl FromStr for DidKey {
    type Err = DidKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for DidKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DidKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, code: &str) {
        match DidKey::parse(input) {
            Ok(k) => panic!("{input} parsed as {k}"),
            Err(e) => assert_eq!(e.code(), code, "{input}: {e}"),
        }
    }

    #[test]
    fn refuses_what_is_not_a_did_key() {
        check("", "invalidDid");
        check("did:", "invalidDid");
        check(
            "dud:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "invalidDid",
        );
        check(
            "did:KEY:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "invalidDid",
        );
        check("did:web:example.com", "methodNotSupported");
        check("did:key:", "invalidDid");
        check(
            "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#x",
            "invalidDid",
        );
        check(
            "did:key:1:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "invalidDid",
        );
        check("did:key:z0OIl", "invalidDid");
    }

    #[test]
    fn a_valid_did_round_trips() {
        let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        assert_eq!(
            DidKey::parse(did).map(|k| k.to_string()).as_deref(),
            Ok(did)
        );
    }
}
