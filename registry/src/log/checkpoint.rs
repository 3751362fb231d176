//! Checkpoints: the log's signed tree heads, as C2SP tlog-checkpoint signed notes.
//!
//! - [`Checkpoint`] — a verified checkpoint body: origin, tree size, root hash.
//! - [`sign_checkpoint`] — the note text (`<origin>\n<size>\n<base64 root>\n`) signed
//!   with an Ed25519 key named after the origin (C2SP signed-note, signature type 0x01).
//! - [`verifier_key`] — the standard vkey `<name>+<hex key id>+<base64(0x01 || key)>`.
//! - [`verify_checkpoint`] — parses a note, verifies its signature by a vkey and returns
//!   the [`Checkpoint`].
//! - [`CheckpointError`] — why a checkpoint was refused.
//!
//! The note format, key ids and vkeys come from the `signed_note` crate and the body
//! format from `tlog_tiles::Checkpoint`; this module only binds them to our types.

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use signed_note::{Note, NoteError, StandardVerifier, VerifierList};

use super::hash::Hash;

/// Signature type byte of Ed25519 signed-note signatures.
const ED25519_TYPE: u8 = 0x01;

/// A checkpoint whose signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (its name), equal to the signing key's name.
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// Merkle tree hash of those entries.
    pub root: Hash,
}

/// Why a checkpoint could not be produced or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The origin cannot name a key: it is empty, or has spaces, `+` or control characters.
    #[error(
        "invalid origin {0:?}: it must be non-empty, without spaces, '+' or control characters"
    )]
    InvalidOrigin(String),
    /// The verifier key string is not a valid Ed25519 vkey.
    #[error("invalid verifier key {vkey:?}: {reason}")]
    InvalidVerifierKey {
        /// The vkey given.
        vkey: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bytes are not a signed note.
    #[error("malformed signed note")]
    MalformedNote,
    /// The note carries no signature by the verifier key (another key signed it).
    #[error("the checkpoint is not signed by {0}")]
    NotSignedByKey(String),
    /// The note carries a signature by the verifier key that does not verify.
    #[error("the checkpoint signature by {0} is invalid")]
    BadSignature(String),
    /// The signed text is not a checkpoint body.
    #[error("the signed note is not a checkpoint (origin, size, root hash)")]
    MalformedBody,
    /// The checkpoint's origin is not the name of the key that signed it.
    #[error("checkpoint origin {origin:?} is not the key name {key_name:?}")]
    OriginMismatch {
        /// The origin line of the checkpoint.
        origin: String,
        /// The name in the verifier key.
        key_name: String,
    },
    /// Signing failed.
    #[error("signing the checkpoint failed: {0}")]
    Signing(String),
}

/// Whether `origin` can be both a checkpoint origin and a signed-note key name.
pub(crate) fn origin_is_valid(origin: &str) -> bool {
    signed_note::is_key_name_valid(origin) && !origin.chars().any(char::is_control)
}

/// The signed-note verifier key for the log `origin` with Ed25519 public key `key`:
/// `<origin>+<8 hex digits of key id>+<base64(0x01 || key)>`, where the key id is
/// `SHA-256(origin || "\n" || 0x01 || key)[:4]`.
pub fn verifier_key(origin: &str, key: &VerifyingKey) -> String {
    signed_note::new_ed25519_verifier_key(origin, key)
}

/// A `signed_note::Signer` for an Ed25519 key named `name`.
struct NoteSigner<'a> {
    name: &'a str,
    id: u32,
    key: &'a SigningKey,
}

impl<'a> NoteSigner<'a> {
    fn new(name: &'a str, key: &'a SigningKey) -> Self {
        let mut public = vec![ED25519_TYPE];
        public.extend_from_slice(key.verifying_key().as_bytes());
        Self {
            name,
            id: signed_note::key_id(name, &public),
            key,
        }
    }
}

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.try_sign(msg)?.to_bytes().to_vec())
    }
}

/// The checkpoint for a tree of `size` entries with root `root`, as a signed note
/// signed by `key` under the name `origin`.
pub fn sign_checkpoint(
    origin: &str,
    size: u64,
    root: &Hash,
    key: &SigningKey,
) -> Result<Vec<u8>, CheckpointError> {
    if !origin_is_valid(origin) {
        return Err(CheckpointError::InvalidOrigin(origin.to_owned()));
    }
    let body = tlog_tiles::Checkpoint::new(origin, size, root.to_tlog(), "")
        .map_err(|_| CheckpointError::InvalidOrigin(origin.to_owned()))?;
    let mut note = Note::new(&body.to_bytes(), &[]).map_err(|_| CheckpointError::MalformedBody)?;
    let signer = NoteSigner::new(origin, key);
    note.add_sigs(&[&signer])
        .map_err(|e| CheckpointError::Signing(e.to_string()))?;
    Ok(note.to_bytes())
}

/// Verifies the signed checkpoint `note` with the verifier key `vkey` and returns its
/// body. The note must carry a valid signature by that key (signatures by other keys,
/// e.g. witness cosignatures, are ignored) and its origin must be the key's name.
pub fn verify_checkpoint(note: &[u8], vkey: &str) -> Result<Checkpoint, CheckpointError> {
    let verifier =
        StandardVerifier::new(vkey).map_err(|e| CheckpointError::InvalidVerifierKey {
            vkey: vkey.to_owned(),
            reason: e.to_string(),
        })?;
    let key_name = signed_note::Verifier::name(&verifier).to_owned();
    let note = Note::from_bytes(note).map_err(|_| CheckpointError::MalformedNote)?;
    match note.verify(&VerifierList::new(vec![Box::new(verifier)])) {
        Ok(_) => {}
        Err(NoteError::UnverifiedNote) => return Err(CheckpointError::NotSignedByKey(key_name)),
        Err(NoteError::InvalidSignature { .. }) => {
            return Err(CheckpointError::BadSignature(key_name));
        }
        Err(_) => return Err(CheckpointError::MalformedNote),
    }
    let body = tlog_tiles::Checkpoint::from_bytes(note.text())
        .map_err(|_| CheckpointError::MalformedBody)?;
    if body.origin() != key_name {
        return Err(CheckpointError::OriginMismatch {
            origin: body.origin().to_owned(),
            key_name,
        });
    }
    Ok(Checkpoint {
        origin: body.origin().to_owned(),
        size: body.size(),
        root: Hash::from_tlog(*body.hash()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn vkey_matches_the_signed_note_spec_example() {
        // c2sp.org/signed-note, "Verifier keys", Example.
        let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        let raw = BASE64
            .decode("AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .unwrap();
        let public = VerifyingKey::from_bytes(&raw[1..].try_into().unwrap()).unwrap();
        assert_eq!(verifier_key("example.com/foo", &public), vkey);
        // And the example note verifies under it (through the same crate we sign with).
        let note = "This is an example message.\n\n\u{2014} example.com/foo \
            Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let note = Note::from_bytes(note.as_bytes()).unwrap();
        let verifier = StandardVerifier::new(vkey).unwrap();
        note.verify(&VerifierList::new(vec![Box::new(verifier)]))
            .unwrap();
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let root = crate::log::hash::leaf_hash(b"x");
        let note = sign_checkpoint("medid.example/log", 42, &root, &k).unwrap();
        let text = String::from_utf8(note.clone()).unwrap();
        let expected_body = format!("medid.example/log\n42\n{root}\n\n\u{2014} medid.example/log ");
        assert!(text.starts_with(&expected_body), "{text}");
        let vkey = verifier_key("medid.example/log", &k.verifying_key());
        let cp = verify_checkpoint(&note, &vkey).unwrap();
        assert_eq!(
            cp,
            Checkpoint {
                origin: "medid.example/log".into(),
                size: 42,
                root
            }
        );
    }

    #[test]
    fn refusals() {
        let k = key(1);
        let root = crate::log::hash::leaf_hash(b"x");
        let note = sign_checkpoint("medid.example/log", 42, &root, &k).unwrap();
        let vkey = verifier_key("medid.example/log", &k.verifying_key());

        let other = verifier_key("medid.example/log", &key(2).verifying_key());
        assert!(matches!(
            verify_checkpoint(&note, &other),
            Err(CheckpointError::NotSignedByKey(_))
        ));
        let renamed = verifier_key("medid.example/other", &k.verifying_key());
        assert!(matches!(
            verify_checkpoint(&note, &renamed),
            Err(CheckpointError::NotSignedByKey(_))
        ));
        // Same key, changed size: the signature no longer verifies.
        let text = String::from_utf8(note.clone()).unwrap();
        let forged = text.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            verify_checkpoint(forged.as_bytes(), &vkey),
            Err(CheckpointError::BadSignature(_))
        ));
        assert!(matches!(
            verify_checkpoint(b"garbage", &vkey),
            Err(CheckpointError::MalformedNote)
        ));
        assert!(matches!(
            verify_checkpoint(&note, "not a vkey"),
            Err(CheckpointError::InvalidVerifierKey { .. })
        ));
        // A signed note whose text is no checkpoint.
        let mut odd = Note::new(b"hello\n", &[]).unwrap();
        odd.add_sigs(&[&NoteSigner::new("medid.example/log", &k)])
            .unwrap();
        assert!(matches!(
            verify_checkpoint(&odd.to_bytes(), &vkey),
            Err(CheckpointError::MalformedBody)
        ));
        for bad in ["", "has space", "a+b", "tab\tx"] {
            assert!(matches!(
                sign_checkpoint(bad, 1, &root, &k),
                Err(CheckpointError::InvalidOrigin(_))
            ));
        }
    }

    #[test]
    fn origin_must_be_the_key_name() {
        // A note signed by the right key, but whose body names another origin.
        let k = key(3);
        let body =
            tlog_tiles::Checkpoint::new("other.example", 1, Hash::default().to_tlog(), "").unwrap();
        let mut note = Note::new(&body.to_bytes(), &[]).unwrap();
        note.add_sigs(&[&NoteSigner::new("medid.example/log", &k)])
            .unwrap();
        let vkey = verifier_key("medid.example/log", &k.verifying_key());
        assert!(matches!(
            verify_checkpoint(&note.to_bytes(), &vkey),
            Err(CheckpointError::OriginMismatch { .. })
        ));
    }
}
