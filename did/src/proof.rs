//! JSON documents signed with a Data Integrity proof, cryptosuite `eddsa-jcs-2022`.
//!
//! Signing follows the W3C "Data Integrity EdDSA Cryptosuites v1.0" JCS variant:
//!
//! 1. the proof configuration is the proof without `proofValue` (with the document's
//!    `@context` copied in when the document has one);
//! 2. both the document without `proof` and the configuration are canonicalised with
//!    RFC 8785 (JCS) and hashed with SHA-256;
//! 3. the Ed25519 signature over `hash(config) ‖ hash(document)` is the `proofValue`,
//!    multibase base58btc.
//!
//! A document may carry a proof set (an array under `proof`): every proof signs the same
//! unsecured document, so independent signers (an operation's controller and a new key
//! proving possession) can sign in any order. Verification checks every proof.

use ed25519_dalek::Signature;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::jcs::canonical_json_without;
use crate::{DidKey, DidKeyError, KeyPair, canonical_json};

const PROOF_TYPE: &str = "DataIntegrityProof";
const CRYPTOSUITE: &str = "eddsa-jcs-2022";

/// Options of a proof about to be created.
#[derive(Debug, Clone)]
pub struct ProofOptions {
    /// When the proof is made; serialised as an XSD dateTime in UTC, whole seconds.
    pub created: OffsetDateTime,
    /// The verification relationship the signature claims (`assertionMethod`, …).
    pub proof_purpose: String,
}

impl ProofOptions {
    /// A proof made now for `assertionMethod`.
    pub fn now() -> Self {
        Self {
            created: OffsetDateTime::now_utc(),
            proof_purpose: "assertionMethod".into(),
        }
    }
}

/// A proof that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The DID whose key made the signature.
    pub signer: DidKey,
    /// The proof's `created` time.
    pub created: OffsetDateTime,
    /// The proof's `proofPurpose`.
    pub proof_purpose: String,
}

/// Why a document could not be signed, or its proof did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The document is not a JSON object.
    #[error("a signed document must be a JSON object")]
    NotAnObject,
    /// The document has no `proof`.
    #[error("the document has no proof")]
    MissingProof,
    /// A proof member is missing or has the wrong shape.
    #[error("proof {index}: `{field}` {problem}")]
    MalformedProof {
        /// Position of the proof in the proof set.
        index: usize,
        /// The member at fault.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The verification method is not an acceptable `did:key`.
    #[error("proof {index}: verificationMethod: {source}")]
    VerificationMethod {
        /// Position of the proof in the proof set.
        index: usize,
        /// The did:key decoding error.
        source: DidKeyError,
    },
    /// The signature does not match the document, the proof options or the key.
    #[error("proof {index}: the signature of {signer} does not match the document")]
    BadSignature {
        /// Position of the proof in the proof set.
        index: usize,
        /// The DID that supposedly signed.
        signer: String,
    },
    /// The document cannot be canonicalised (RFC 8785).
    #[error("the document cannot be canonicalised: {0}")]
    Canonicalization(String),
}

/// Adds a proof by `key` to `document`. A document that already has a proof gets a
/// proof set with the new proof appended.
pub fn add_proof(
    document: &Value,
    key: &KeyPair,
    options: &ProofOptions,
) -> Result<Value, ProofError> {
    let object = document.as_object().ok_or(ProofError::NotAnObject)?;
    let mut unsecured = object.clone();
    let existing = unsecured.remove("proof");
    let did = key.did();
    let created = options
        .created
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| ProofError::Canonicalization(e.to_string()))?
        .format(&Rfc3339)
        .map_err(|e| ProofError::Canonicalization(e.to_string()))?;
    let mut proof = Map::new();
    proof.insert("type".into(), PROOF_TYPE.into());
    proof.insert("cryptosuite".into(), CRYPTOSUITE.into());
    proof.insert("created".into(), created.into());
    proof.insert(
        "verificationMethod".into(),
        did.verification_method_id().into(),
    );
    proof.insert("proofPurpose".into(), options.proof_purpose.clone().into());
    if let Some(context) = unsecured.get("@context") {
        proof.insert("@context".into(), context.clone());
    }
    let signed = hash_data(&proof, &unsecured)?;
    let signature = key.sign(&signed);
    proof.insert(
        "proofValue".into(),
        multibase::encode(multibase::Base::Base58Btc, signature.to_bytes()).into(),
    );
    let proof = Value::Object(proof);
    let proofs = match existing {
        None => proof,
        Some(Value::Array(mut set)) => {
            set.push(proof);
            Value::Array(set)
        }
        Some(single) => Value::Array(vec![single, proof]),
    };
    let mut secured = unsecured;
    secured.insert("proof".into(), proofs);
    Ok(Value::Object(secured))
}

/// Verifies every proof of `document` and returns who signed, in proof-set order.
pub fn verify_proofs(document: &Value) -> Result<Vec<VerifiedProof>, ProofError> {
    let object = document.as_object().ok_or(ProofError::NotAnObject)?;
    let proofs = match object.get("proof") {
        None => return Err(ProofError::MissingProof),
        Some(Value::Array(set)) if set.is_empty() => return Err(ProofError::MissingProof),
        Some(Value::Array(set)) => set.as_slice(),
        Some(single) => std::slice::from_ref(single),
    };
    let unsecured_hash: [u8; 32] = Sha256::digest(canonical_json_without(object, "proof")).into();
    proofs
        .iter()
        .enumerate()
        .map(|(index, proof)| verify_one(index, proof, object, &unsecured_hash))
        .collect()
}

fn verify_one(
    index: usize,
    proof: &Value,
    document: &Map<String, Value>,
    unsecured_hash: &[u8; 32],
) -> Result<VerifiedProof, ProofError> {
    let malformed = |field, problem: &str| ProofError::MalformedProof {
        index,
        field,
        problem: problem.to_owned(),
    };
    let proof = proof
        .as_object()
        .ok_or_else(|| malformed("proof", "is not an object"))?;
    let text = |field: &'static str| {
        proof
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(field, "is missing or not a string"))
    };
    if text("type")? != PROOF_TYPE {
        return Err(malformed("type", "must be DataIntegrityProof"));
    }
    if text("cryptosuite")? != CRYPTOSUITE {
        return Err(malformed("cryptosuite", "must be eddsa-jcs-2022"));
    }
    let created = OffsetDateTime::parse(text("created")?, &Rfc3339)
        .map_err(|_| malformed("created", "is not an XSD dateTime with a time zone"))?;
    let proof_purpose = text("proofPurpose")?.to_owned();
    let method = text("verificationMethod")?;
    let (did, fragment) = method
        .split_once('#')
        .ok_or_else(|| malformed("verificationMethod", "must be did:key:…#<key>"))?;
    let signer =
        DidKey::parse(did).map_err(|source| ProofError::VerificationMethod { index, source })?;
    if fragment != signer.fingerprint() {
        return Err(malformed(
            "verificationMethod",
            "fragment does not name the did:key's own key",
        ));
    }
    if let Some(context) = proof.get("@context") {
        let wanted = as_list(context);
        let have = document.get("@context").map(as_list).unwrap_or_default();
        if !have.starts_with(&wanted) {
            return Err(malformed(
                "@context",
                "does not match the document's @context",
            ));
        }
    }
    let value = text("proofValue")?;
    let signature = match multibase::decode(value) {
        Ok((multibase::Base::Base58Btc, bytes)) if value.starts_with('z') => bytes,
        _ => return Err(malformed("proofValue", "is not multibase base58btc")),
    };
    let signature: [u8; 64] = signature
        .as_slice()
        .try_into()
        .map_err(|_| malformed("proofValue", "is not a 64-byte Ed25519 signature"))?;
    let config: Map<String, Value> = proof
        .iter()
        .filter(|(k, _)| k.as_str() != "proofValue")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut signed = jcs_sha256(&Value::Object(config))?.to_vec();
    signed.extend_from_slice(unsecured_hash);
    signer
        .verifying_key()
        .verify_strict(&signed, &Signature::from_bytes(&signature))
        .map_err(|_| ProofError::BadSignature {
            index,
            signer: signer.to_string(),
        })?;
    Ok(VerifiedProof {
        signer,
        created,
        proof_purpose,
    })
}

fn as_list(context: &Value) -> Vec<Value> {
    match context {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn hash_data(
    config: &Map<String, Value>,
    unsecured: &Map<String, Value>,
) -> Result<Vec<u8>, ProofError> {
    let mut data = jcs_sha256(&Value::Object(config.clone()))?.to_vec();
    data.extend_from_slice(&jcs_sha256(&Value::Object(unsecured.clone()))?);
    Ok(data)
}

fn jcs_sha256(value: &Value) -> Result<[u8; 32], ProofError> {
    Ok(Sha256::digest(canonical_json(value)).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signed() -> (KeyPair, Value) {
        let key = KeyPair::from_seed(&[1; 32]);
        let doc = json!({"@context": ["https://www.w3.org/ns/credentials/v2"], "id": "86.1000.23/PKG-1", "n": 1.5});
        let signed = add_proof(&doc, &key, &ProofOptions::now()).unwrap();
        (key, signed)
    }

    #[test]
    fn sign_then_verify() {
        let (key, doc) = signed();
        let proofs = verify_proofs(&doc).unwrap();
        assert_eq!(proofs.len(), 1);
        assert_eq!(proofs[0].signer, key.did());
    }

    #[test]
    fn any_change_breaks_the_proof() {
        let (_, doc) = signed();
        let mut changed = doc.clone();
        changed["n"] = json!(1.25);
        assert!(matches!(
            verify_proofs(&changed),
            Err(ProofError::BadSignature { .. })
        ));
        let mut changed = doc.clone();
        changed["proof"]["created"] = json!("2020-01-01T00:00:00Z");
        assert!(matches!(
            verify_proofs(&changed),
            Err(ProofError::BadSignature { .. })
        ));
        let mut changed = doc.clone();
        changed["proof"]["proofPurpose"] = json!("authentication");
        assert!(matches!(
            verify_proofs(&changed),
            Err(ProofError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_proof_set_needs_every_proof() {
        let (_, doc) = signed();
        let second = KeyPair::from_seed(&[2; 32]);
        let both = add_proof(&doc, &second, &ProofOptions::now()).unwrap();
        let signers: Vec<_> = verify_proofs(&both)
            .unwrap()
            .into_iter()
            .map(|p| p.signer)
            .collect();
        assert_eq!(
            signers,
            vec![KeyPair::from_seed(&[1; 32]).did(), second.did()]
        );
        let mut broken = both.clone();
        broken["proof"][1]["proofValue"] = both["proof"][0]["proofValue"].clone();
        assert!(matches!(
            verify_proofs(&broken),
            Err(ProofError::BadSignature { index: 1, .. })
        ));
    }
}
