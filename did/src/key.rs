//! Ed25519 key pairs and their key files.
//!
//! A key file is a small JSON object naming the DID and holding the secret key as a
//! Multikey-style multibase value (multicodec `ed25519-priv`, `0x1300`):
//!
//! ```json
//! {"did":"did:key:z6Mk…","secretKeyMultibase":"z3u2…"}
//! ```
//!
//! Files are created with mode 0600 and never overwritten; reading refuses a file that
//! others can read, and one whose secret does not match the DID it names.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::didkey::{DidKey, multibase_key};

/// Multicodec code of an Ed25519 private key.
const ED25519_PRIV: u64 = 0x1300;

/// An Ed25519 key pair. Its `Debug` form shows the DID, never the secret.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing would replace an existing key.
    #[error("{0}: a file already exists there; refusing to overwrite a key")]
    Exists(PathBuf),
    /// The file is readable or writable by others than its owner.
    #[error("{path}: key file is accessible to others (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a medid key file.
    #[error("{path}: not a key file: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyFile {
    did: String,
    secret_key_multibase: String,
}

impl KeyPair {
    /// A new key pair from the operating system's random source.
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The key pair of a 32-byte Ed25519 seed (the RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The key pair's `did:key`.
    pub fn did(&self) -> DidKey {
        DidKey::from_verifying_key(self.signing.verifying_key())
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs a message (RFC 8032 Ed25519).
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    /// The X25519 secret key derived from this key, for key agreement: the first half
    /// of SHA-512(seed), clamped as RFC 7748 does.
    pub fn x25519_secret_key(&self) -> Zeroizing<[u8; 32]> {
        let mut scalar = Zeroizing::new(self.signing.to_scalar_bytes());
        scalar[0] &= 248;
        scalar[31] &= 127;
        scalar[31] |= 64;
        scalar
    }

    /// The underlying signing key, for code that signs with another envelope
    /// (signed notes, HTTP message signatures).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Writes a new key file with mode 0600. Refuses to replace an existing file.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let secret = Zeroizing::new(multibase_key(ED25519_PRIV, self.signing.as_bytes()));
        let body = Zeroizing::new(
            serde_json::to_string_pretty(&KeyFile {
                did: self.did().to_string(),
                secret_key_multibase: secret.to_string(),
            })
            .map_err(|e| io(e.into()))?,
        );
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyFileError::Exists(path.to_owned()),
            _ => io(e),
        })?;
        file.write_all(body.as_bytes()).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads a key file written by [`KeyPair::write_file`].
    pub fn read_file(path: &Path) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let malformed = |reason: String| KeyFileError::Malformed {
            path: path.to_owned(),
            reason,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::TooOpen {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let text = Zeroizing::new(fs::read(path).map_err(io)?);
        let file: KeyFile = serde_json::from_slice(&text).map_err(|e| malformed(format!("{e}")))?;
        let secret = Zeroizing::new(file.secret_key_multibase);
        let (base, bytes) = multibase::decode(secret.as_str())
            .map_err(|_| malformed("secretKeyMultibase is not multibase".into()))?;
        let bytes = Zeroizing::new(bytes);
        if base != multibase::Base::Base58Btc {
            return Err(malformed("secretKeyMultibase is not base58btc".into()));
        }
        let (codec, seed) = unsigned_varint::decode::u64(&bytes)
            .map_err(|_| malformed("secretKeyMultibase has no multicodec prefix".into()))?;
        if codec != ED25519_PRIV {
            return Err(malformed(format!(
                "secret key multicodec 0x{codec:x} is not ed25519-priv (0x1300)"
            )));
        }
        let seed: &[u8; 32] = seed
            .try_into()
            .map_err(|_| malformed(format!("secret key has {} bytes, not 32", seed.len())))?;
        let pair = Self::from_seed(seed);
        if pair.did().to_string() != file.did {
            return Err(malformed(
                "the secret key does not belong to the DID the file names".into(),
            ));
        }
        Ok(pair)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.did())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let pair = KeyPair::generate();
        pair.write_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = KeyPair::read_file(&path).unwrap();
        assert_eq!(back.did(), pair.did());
        assert!(matches!(
            pair.write_file(&path),
            Err(KeyFileError::Exists(_))
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let pair = KeyPair::from_seed(&[7; 32]);
        let shown = format!("{pair:?}");
        let secret = multibase_key(ED25519_PRIV, &[7; 32]);
        assert!(!shown.contains(&secret[1..]), "{shown}");
        assert!(shown.contains("did:key:z6Mk"));
    }

    #[test]
    #[cfg(unix)]
    fn refuses_a_key_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        KeyPair::generate().write_file(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            KeyPair::read_file(&path),
            Err(KeyFileError::TooOpen { mode: 0o644, .. })
        ));
    }
}
