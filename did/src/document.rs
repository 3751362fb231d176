//! DID document expansion for an Ed25519 `did:key`, per the did:key create algorithm.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::DidKey;

const DID_CONTEXT: &str = "https://www.w3.org/ns/did/v1";

/// How the verification methods of a DID document are represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyFormat {
    /// `Multikey` with `publicKeyMultibase` (the default of the did:key specification).
    #[default]
    Multikey,
    /// `Ed25519VerificationKey2020` (and `X25519KeyAgreementKey2020`).
    Ed25519VerificationKey2020,
    /// `JsonWebKey2020` with an OKP `publicKeyJwk`.
    JsonWebKey2020,
}

impl KeyFormat {
    fn context(self) -> &'static str {
        match self {
            Self::Multikey => "https://w3id.org/security/multikey/v1",
            Self::Ed25519VerificationKey2020 => "https://w3id.org/security/suites/ed25519-2020/v1",
            Self::JsonWebKey2020 => "https://w3id.org/security/suites/jws-2020/v1",
        }
    }

    fn method(self, id: String, did: &DidKey, curve: Curve) -> Value {
        let (multibase, raw) = match curve {
            Curve::Ed25519 => (did.fingerprint(), *did.verifying_key().as_bytes()),
            Curve::X25519 => (did.x25519_fingerprint(), did.x25519_public_key()),
        };
        let controller = did.to_string();
        match self {
            Self::Multikey => json!({
                "id": id, "type": "Multikey", "controller": controller,
                "publicKeyMultibase": multibase,
            }),
            Self::Ed25519VerificationKey2020 => json!({
                "id": id,
                "type": match curve {
                    Curve::Ed25519 => "Ed25519VerificationKey2020",
                    Curve::X25519 => "X25519KeyAgreementKey2020",
                },
                "controller": controller,
                "publicKeyMultibase": multibase,
            }),
            Self::JsonWebKey2020 => json!({
                "id": id, "type": "JsonWebKey2020", "controller": controller,
                "publicKeyJwk": {
                    "kty": "OKP",
                    "crv": match curve { Curve::Ed25519 => "Ed25519", Curve::X25519 => "X25519" },
                    "x": URL_SAFE_NO_PAD.encode(raw),
                },
            }),
        }
    }
}

#[derive(Clone, Copy)]
enum Curve {
    Ed25519,
    X25519,
}

/// The DID document of `did`: one verification method used for authentication,
/// assertion and capabilities, and — only when `key_agreement` is set — the X25519 key
/// derived from it under `keyAgreement`.
pub fn did_document(did: &DidKey, format: KeyFormat, key_agreement: bool) -> Value {
    let vm_id = did.verification_method_id();
    let mut context = vec![DID_CONTEXT, format.context()];
    let mut methods = vec![format.method(vm_id.clone(), did, Curve::Ed25519)];
    let mut agreement = Vec::new();
    if key_agreement {
        let ka_id = format!("{did}#{}", did.x25519_fingerprint());
        if format == KeyFormat::Ed25519VerificationKey2020 {
            context.push("https://w3id.org/security/suites/x25519-2020/v1");
        }
        methods.push(format.method(ka_id.clone(), did, Curve::X25519));
        agreement.push(ka_id);
    }
    let mut doc = json!({
        "@context": context,
        "id": did.to_string(),
        "verificationMethod": methods,
        "authentication": [vm_id],
        "assertionMethod": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
    });
    if !agreement.is_empty() {
        doc["keyAgreement"] = json!(agreement);
    }
    doc
}
