//! SHA-256 hashes of the ledger's Merkle tree (RFC 6962 §2.1 / RFC 9162 §2.1.1).
//!
//! - [`Hash`] — a 32-byte SHA-256 value, written as standard base64 in text and JSON
//!   (the encoding of checkpoints, tlog-proof bundles and the Merkle test vectors).
//! - [`leaf_hash`] — `SHA-256(0x00 || entry)`, the hash of one log entry.
//! - [`node_hash`] — `SHA-256(0x01 || left || right)`, an interior node.
//! - [`EMPTY_ROOT`] — the root of the empty tree, `SHA-256("")`.
//!
//! Pure functions, no I/O.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Length of a [`Hash`](struct@Hash) in bytes.
pub const HASH_LEN: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node or a tree root.
///
/// `Display`, `FromStr` and serde use standard base64 with padding (RFC 4648 §4),
/// e.g. `47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=` for [`EMPTY_ROOT`].
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash(pub [u8; HASH_LEN]);

/// The Merkle tree hash of the empty tree: `SHA-256("")` (RFC 6962 §2.1).
pub const EMPTY_ROOT: Hash = Hash([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Why bytes or text are not a [`Hash`](struct@Hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The text is not standard base64.
    #[error("hash is not valid base64: {0}")]
    Base64(String),
    /// The value does not have 32 bytes.
    #[error("hash has {0} bytes, a SHA-256 hash has 32")]
    Length(usize),
}

impl Hash {
    /// The hash with these 32 bytes.
    pub const fn from_bytes(bytes: [u8; HASH_LEN]) -> Self {
        Self(bytes)
    }

    /// The hash in `bytes`, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashError> {
        <[u8; HASH_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| HashError::Length(bytes.len()))
    }

    /// The 32 bytes of the hash.
    pub const fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// The hash in the representation of the `tlog_tiles` crate.
    pub(crate) const fn to_tlog(self) -> tlog_tiles::Hash {
        tlog_tiles::Hash(self.0)
    }

    /// The hash from the representation of the `tlog_tiles` crate.
    pub(crate) const fn from_tlog(hash: tlog_tiles::Hash) -> Self {
        Self(hash.0)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<&[u8]> for Hash {
    type Error = HashError;

    fn try_from(bytes: &[u8]) -> Result<Self, HashError> {
        Self::from_slice(bytes)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = HashError;

    fn from_str(text: &str) -> Result<Self, HashError> {
        let bytes = BASE64
            .decode(text)
            .map_err(|e| HashError::Base64(e.to_string()))?;
        Self::from_slice(&bytes)
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The leaf hash of a log entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut sha = Sha256::new();
    sha.update([0x00]);
    sha.update(entry);
    Hash(sha.finalize().into())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut sha = Sha256::new();
    sha.update([0x01]);
    sha.update(left.0);
    sha.update(right.0);
    Hash(sha.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(Hash(Sha256::digest(b"").into()), EMPTY_ROOT);
        assert_eq!(
            EMPTY_ROOT.to_string(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn hashes_agree_with_tlog_tiles() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"");
        assert_eq!(a, Hash::from_tlog(tlog_tiles::record_hash(b"a")));
        assert_eq!(
            node_hash(&a, &b),
            Hash::from_tlog(tlog_tiles::node_hash(a.to_tlog(), b.to_tlog()))
        );
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
    }

    #[test]
    fn base64_text_and_json() {
        let h = leaf_hash(b"medid");
        let text = h.to_string();
        assert_eq!(text.parse::<Hash>(), Ok(h));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), h);
        assert_eq!(
            "ZG9uJ3QgY2FyZSAy".parse::<Hash>(),
            Err(HashError::Length(12))
        );
        assert!(matches!(
            "not base64!".parse::<Hash>(),
            Err(HashError::Base64(_))
        ));
        assert!(serde_json::from_str::<Hash>("\"AAAA\"").is_err());
    }
}
