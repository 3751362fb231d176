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
//!
//! A signature verifies when it satisfies RFC 8032's cofactored equation
//! `[8][s]B = [8]R + [8][k]A` with a canonical `s` (the rule ZIP 215 fixes), by a key
//! that is not of small order ([`DidKey`] refuses those). The rule is the same whether
//! signatures are checked one at a time ([`verify_proofs`]) or many at once
//! ([`verify_all`], one batch equation): a node's batch check, `reindex` and an offline
//! `medid verify` accept exactly the same documents. Every signature RFC 8032's strict
//! check accepts verifies.

use ed25519_zebra::{Signature, VerificationKeyBytes, batch};
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
    let (proofs, signatures) = read_proofs(document)?;
    signatures.verify()?;
    Ok(proofs)
}

/// The signatures of a document's proofs, read but not yet checked.
#[derive(Debug, Clone)]
pub struct PendingSignatures {
    proofs: Vec<PendingSignature>,
    /// `hash(document without proof)`: what every proof signs, after its configuration.
    document: [u8; 32],
    /// Another form of the document the signatures are also accepted over
    /// ([`PendingSignatures::or_over`]), hashed only when the first form fails.
    other_form: Option<Map<String, Value>>,
}

#[derive(Debug, Clone)]
struct PendingSignature {
    index: usize,
    signer: DidKey,
    signature: Signature,
    /// `hash(proof configuration)`.
    config: [u8; 32],
}

impl PendingSignature {
    /// The batch item of this signature over `hash(config) ‖ document`.
    fn item(&self, document: &[u8; 32]) -> batch::Item {
        let mut signed = [0; 64];
        signed[..32].copy_from_slice(&self.config);
        signed[32..].copy_from_slice(document);
        let key = VerificationKeyBytes::from(self.signer.verifying_key().to_bytes());
        (key, self.signature, &signed).into()
    }

    fn verifies_over(&self, document: &[u8; 32]) -> bool {
        self.item(document).verify_single().is_ok()
    }
}

impl PendingSignatures {
    /// Checks every signature; the first that does not verify is the error.
    pub fn verify(&self) -> Result<(), ProofError> {
        let mut other: Option<Option<[u8; 32]>> = None;
        for proof in &self.proofs {
            if proof.verifies_over(&self.document) {
                continue;
            }
            let other = other.get_or_insert_with(|| self.other_form.as_ref().map(unsecured_hash));
            if !other.is_some_and(|other| proof.verifies_over(&other)) {
                return Err(ProofError::BadSignature {
                    index: proof.index,
                    signer: proof.signer.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Also accepts each signature over another form of the document (`document`
    /// without its `proof`), as when a node added a member after signing.
    pub fn or_over(mut self, document: Map<String, Value>) -> Self {
        self.other_form = Some(document);
        self
    }
}

fn unsecured_hash(document: &Map<String, Value>) -> [u8; 32] {
    Sha256::digest(canonical_json_without(document, "proof")).into()
}

/// Checks the signatures of many documents as one batch — per signature, about half
/// the cost of checking one by one with a signer each, under a quarter when one signer
/// signs them all — with the same outcome as [`PendingSignatures::verify`] on each.
/// The batch takes each signature over the document's first form; when it fails (a
/// bad signature, or one over another form), each document is checked alone.
pub fn verify_all(documents: &[&PendingSignatures]) -> Vec<Result<(), ProofError>> {
    let mut batch = batch::Verifier::new();
    for document in documents {
        for proof in &document.proofs {
            batch.queue(proof.item(&document.document));
        }
    }
    if batch.verify(rand::thread_rng()).is_ok() {
        documents.iter().map(|_| Ok(())).collect()
    } else {
        documents.iter().map(|d| d.verify()).collect()
    }
}

/// Reads every proof of `document`: who signed, in proof-set order, and the signatures
/// still to check.
pub fn read_proofs(
    document: &Value,
) -> Result<(Vec<VerifiedProof>, PendingSignatures), ProofError> {
    let object = document.as_object().ok_or(ProofError::NotAnObject)?;
    let proofs = match object.get("proof") {
        None => return Err(ProofError::MissingProof),
        Some(Value::Array(set)) if set.is_empty() => return Err(ProofError::MissingProof),
        Some(Value::Array(set)) => set.as_slice(),
        Some(single) => std::slice::from_ref(single),
    };
    let (proofs, pending) = proofs
        .iter()
        .enumerate()
        .map(|(index, proof)| read_one(index, proof, object))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    let pending = PendingSignatures {
        proofs: pending,
        document: unsecured_hash(object),
        other_form: None,
    };
    Ok((proofs, pending))
}

fn read_one(
    index: usize,
    proof: &Value,
    document: &Map<String, Value>,
) -> Result<(VerifiedProof, PendingSignature), ProofError> {
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
    let pending = PendingSignature {
        index,
        signer,
        signature: Signature::from_bytes(&signature),
        config: jcs_sha256(&Value::Object(config))?,
    };
    Ok((
        VerifiedProof {
            signer,
            created,
            proof_purpose,
        },
        pending,
    ))
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

    /// A document signed by the raw Ed25519 scalar `secret`, with the signature's `R`
    /// moved by `torsion` (a point of order dividing 8): RFC 8032's cofactored equation
    /// holds, the cofactorless one does not.
    fn signed_with_torsion(
        secret: curve25519_dalek::Scalar,
        torsion: curve25519_dalek::EdwardsPoint,
    ) -> Value {
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use sha2::Sha512;
        let public = EdwardsPoint::mul_base(&secret).compress().to_bytes();
        let did =
            DidKey::from_verifying_key(ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap());
        let mut unsecured = Map::new();
        unsecured.insert("id".into(), "86.1000.23/PKG-2".into());
        let mut proof = Map::new();
        proof.insert("type".into(), PROOF_TYPE.into());
        proof.insert("cryptosuite".into(), CRYPTOSUITE.into());
        proof.insert("created".into(), "2026-11-21T10:00:00Z".into());
        proof.insert(
            "verificationMethod".into(),
            did.verification_method_id().into(),
        );
        proof.insert("proofPurpose".into(), "assertionMethod".into());
        let signed = hash_data(&proof, &unsecured).unwrap();
        let nonce = Scalar::from_bytes_mod_order_wide(&[7; 64]);
        let r = (EdwardsPoint::mul_base(&nonce) + torsion)
            .compress()
            .to_bytes();
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(r)
                .chain_update(public)
                .chain_update(&signed)
                .finalize()
                .into(),
        );
        let mut signature = r.to_vec();
        signature.extend_from_slice((nonce + k * secret).as_bytes());
        proof.insert(
            "proofValue".into(),
            multibase::encode(multibase::Base::Base58Btc, signature).into(),
        );
        unsecured.insert("proof".into(), Value::Object(proof));
        Value::Object(unsecured)
    }

    fn pending(doc: &Value) -> PendingSignatures {
        read_proofs(doc).unwrap().1
    }

    #[test]
    fn a_batch_finds_exactly_the_documents_at_fault() {
        let (_, first) = signed();
        let second = add_proof(
            &json!({"id": "86.1000.23/PKG-3"}),
            &KeyPair::from_seed(&[3; 32]),
            &ProofOptions::now(),
        )
        .unwrap();
        let mut tampered = first.clone();
        tampered["n"] = json!(2);
        let all = [pending(&first), pending(&tampered), pending(&second)];
        let outcome = verify_all(&all.iter().collect::<Vec<_>>());
        assert!(outcome[0].is_ok() && outcome[2].is_ok());
        assert!(matches!(
            outcome[1],
            Err(ProofError::BadSignature { index: 0, .. })
        ));
        let good = [pending(&first), pending(&second)];
        assert!(
            verify_all(&good.iter().collect::<Vec<_>>())
                .iter()
                .all(Result::is_ok)
        );
    }

    #[test]
    fn one_at_a_time_and_in_a_batch_accept_the_same_signatures() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let secret = curve25519_dalek::Scalar::from_bytes_mod_order_wide(&[5; 64]);
        // R with a component of order 2, 4 and 8: the cofactored equation holds.
        for torsion in [EIGHT_TORSION[4], EIGHT_TORSION[2], EIGHT_TORSION[1]] {
            let doc = signed_with_torsion(secret, torsion);
            assert!(verify_proofs(&doc).is_ok());
            let (_, honest) = signed();
            let batch = [pending(&doc), pending(&honest), pending(&doc)];
            for _ in 0..16 {
                let outcome = verify_all(&batch.iter().collect::<Vec<_>>());
                assert!(outcome.iter().all(Result::is_ok), "{outcome:?}");
            }
        }
        // A signature that does not satisfy it is refused alike, in and out of a batch.
        let mut wrong = signed_with_torsion(secret, EIGHT_TORSION[0]);
        wrong["id"] = json!("86.1000.23/PKG-4");
        assert!(verify_proofs(&wrong).is_err());
        let (_, honest) = signed();
        let batch = [pending(&honest), pending(&wrong)];
        for _ in 0..16 {
            let outcome = verify_all(&batch.iter().collect::<Vec<_>>());
            assert!(outcome[0].is_ok() && outcome[1].is_err());
        }
    }

    #[test]
    fn a_small_order_key_cannot_sign() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        // With a small-order key [8][k]A vanishes: `R = [s]B` satisfies the equation
        // for any document, so did:key refuses such a key before any signature is checked.
        let weak = DidKey::from_verifying_key(
            ed25519_dalek::VerifyingKey::from_bytes(&EIGHT_TORSION[1].compress().to_bytes())
                .unwrap(),
        );
        let (_, mut doc) = signed();
        doc["proof"]["verificationMethod"] = weak.verification_method_id().into();
        assert!(matches!(
            read_proofs(&doc),
            Err(ProofError::VerificationMethod { index: 0, .. })
        ));
    }

    #[test]
    fn or_over_accepts_the_signature_over_another_form() {
        let (key, doc) = signed();
        let mut with_member = doc.as_object().unwrap().clone();
        with_member.insert("eventID".into(), "ni:///sha-256;0".into());
        let with_member = Value::Object(with_member);
        assert!(verify_proofs(&with_member).is_err());
        let (proofs, signatures) = read_proofs(&with_member).unwrap();
        assert_eq!(proofs[0].signer, key.did());
        assert!(
            signatures
                .or_over(doc.as_object().unwrap().clone())
                .verify()
                .is_ok()
        );
    }
}
