//! Operations: the signed changes a registry accepts.
//!
//! An operation is a JSON document (`schemas/operation.schema.json`) with a Data
//! Integrity proof by one or more DIDs. [`SignedOperation::from_json`] checks the
//! schema and every signature and gives the typed [`Operation`] ([`SignedOperation::read`]
//! leaves the signatures for [`check_signatures`], which checks many documents' as one
//! batch); whether the signers may
//! make the change is decided against the registry's state (`state.rs`).
//!
//! Restricted values never travel inside an operation: the operation carries a salted
//! SHA-256 `commitment` and the payload ([`RestrictedPayload`]) travels beside it in a
//! [`Submission`], so the signed document — and so the ledger — holds no personal data.

use medid_did::{DidKey, PendingSignatures, ProofError, read_proofs, verify_all};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::delegation::NodeDelegation;
use crate::id::{Identifier, Namespace};
use crate::schema::{SchemaError, validate_operation};

/// The largest operation the ledger takes (a tlog-tiles entry holds at most 64 KiB).
pub const MAX_OPERATION_BYTES: usize = 65_535;

/// One value of an identifier's record, Handle-style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordValue {
    /// Position of the value in the record (1 ≤ index < 2³¹).
    pub index: u32,
    /// The value's type: `URL`, `EMAIL`, `DESC`, `GTIN`, or one of the caller's own.
    #[serde(rename = "type")]
    pub kind: String,
    /// The data of a public value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// `sha256:<hex>` over salt ‖ data of a restricted value, whose data is off-log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    /// Seconds a resolver may cache the value.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Who may read the data: everyone, or the DIDs listed.
    #[serde(default)]
    pub read: ReadPermission,
}

fn default_ttl() -> u32 {
    86_400
}

/// Who may read a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(untagged)]
pub enum ReadPermission {
    /// Anyone (`"public"`).
    #[default]
    #[serde(with = "public")]
    Public,
    /// Only these DIDs.
    Restricted(Vec<DidKey>),
}

mod public {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("public")
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        match String::deserialize(d)?.as_str() {
            "public" => Ok(()),
            other => Err(serde::de::Error::custom(format!(
                "`{other}` is not `public`"
            ))),
        }
    }
}

/// The off-log payload of a restricted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictedPayload {
    /// The commitment it opens: `sha256:<hex of SHA-256(salt ‖ data)>`.
    pub commitment: String,
    /// The salt, hex; at least 16 random bytes.
    pub salt: String,
    /// The value's data.
    pub data: String,
}

impl RestrictedPayload {
    /// A payload for `data` with a fresh random salt.
    pub fn seal(data: &str) -> Self {
        let salt: [u8; 16] = rand::random();
        let salt = hex::encode(salt);
        Self {
            commitment: commitment(&salt, data),
            salt,
            data: data.to_owned(),
        }
    }

    /// Whether the payload opens its commitment.
    pub fn opens(&self) -> bool {
        self.salt.len() >= 32 && commitment(&self.salt, &self.data) == self.commitment
    }
}

fn commitment(salt_hex: &str, data: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(hex::decode(salt_hex).unwrap_or_default());
    hasher.update(data.as_bytes());
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// What an operation changes.
// A DID holds its decompressed key (~200 bytes); operations live for one request, so
// the size difference between variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Create a top-level prefix (by the node's admin).
    PrefixCreate {
        /// The new prefix.
        prefix: Namespace,
        /// Its controllers.
        controllers: Vec<DidKey>,
    },
    /// Delegate a sub-prefix of a prefix the signer controls.
    PrefixDelegate {
        /// The sub-prefix.
        prefix: Namespace,
        /// Its controllers.
        controllers: Vec<DidKey>,
        /// The node that answers for it, when it is delegated to another node.
        node: Option<NodeDelegation>,
    },
    /// Register an identifier with its values.
    IdentifierRegister {
        /// The identifier.
        id: Identifier,
        /// Its values.
        values: Vec<RecordValue>,
        /// Its own controllers; without them the prefix's controllers act for it.
        controllers: Option<Vec<DidKey>>,
    },
    /// Add or replace values (by index), and remove others.
    IdentifierUpdate {
        /// The identifier.
        id: Identifier,
        /// The record version the change was made against.
        version: u64,
        /// Values to add or replace.
        set: Vec<RecordValue>,
        /// Indexes of values to remove.
        remove: Vec<u32>,
    },
    /// Delete the identifier.
    IdentifierDelete {
        /// The identifier.
        id: Identifier,
        /// The record version the change was made against.
        version: u64,
    },
    /// Replace the controllers of an identifier or a prefix.
    ControllersChange {
        /// What changes hands.
        target: Target,
        /// The version the change was made against.
        version: u64,
        /// The new controllers.
        controllers: Vec<DidKey>,
    },
    /// Register a DID with public attributes (self-signed).
    DidRegister {
        /// The DID.
        did: DidKey,
        /// Its public name.
        name: String,
        /// Its role.
        role: String,
        /// Who registered it (and may deactivate it), if not itself.
        registrar: Option<DidKey>,
    },
    /// Deactivate a DID: it can no longer act.
    DidDeactivate {
        /// The DID.
        did: DidKey,
    },
}

/// What a controller change applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An identifier.
    Identifier(Identifier),
    /// A prefix.
    Prefix(Namespace),
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The document is not valid JSON or does not match the schema.
    #[error("schema: {0}")]
    Schema(#[from] SchemaError),
    /// A value is well-formed JSON but not acceptable (an identifier's syntax, …).
    #[error("{pointer}: {message}")]
    Invalid {
        /// JSON pointer to the member at fault.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// A proof does not verify.
    #[error("proof: {0}")]
    Proof(String),
    /// The operation is larger than a ledger entry can be.
    #[error("the operation has {0} bytes; at most {MAX_OPERATION_BYTES} fit in a ledger entry")]
    TooLarge(usize),
    /// `created` is too far from the node's clock.
    #[error(
        "stale operation: created {created}, the node accepts ±{window_seconds} s around its clock"
    )]
    Stale {
        /// The operation's `created`.
        created: String,
        /// The accepted window.
        window_seconds: i64,
    },
    /// The signer has used this nonce before.
    #[error("replay: {signer} already used nonce {nonce}")]
    Replay {
        /// The signer.
        signer: String,
        /// The nonce.
        nonce: String,
    },
    /// No signer controls the target.
    #[error("not authorised: {signers} may not change {target}")]
    NotController {
        /// The signers.
        signers: String,
        /// The target.
        target: String,
    },
    /// A signer is deactivated.
    #[error("{0} is deactivated and can no longer act")]
    Deactivated(String),
    /// A new controller did not sign (proof of possession).
    #[error("{0} must also sign the operation to prove it holds the key")]
    MissingPossession(String),
    /// The target changed since the version the operation was made against.
    #[error("conflict: {target} is at version {current}, the operation expected {expected}")]
    Conflict {
        /// The target.
        target: String,
        /// The version the operation expected.
        expected: u64,
        /// The version it is at.
        current: u64,
    },
    /// The target does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The target exists already.
    #[error("already exists: {0}")]
    Exists(String),
    /// A restricted payload is missing, or does not open its commitment.
    #[error("restricted value: {0}")]
    Restricted(String),
    /// Erasure refused: the record is within its retention period.
    #[error("retention: {0}")]
    Retention(String),
    /// The event (same CBV hash ID) is in the ledger already; capturing it again is
    /// answered with its existing receipt.
    #[error("event {event_id} is in the ledger already, at index {leaf}")]
    AlreadyLogged {
        /// The event's ID.
        event_id: String,
        /// Its ledger index.
        leaf: u64,
    },
}

impl OpError {
    /// A short stable code for APIs: `schema`, `proof`, `conflict`, …
    pub fn code(&self) -> &'static str {
        match self {
            Self::Schema(_) => "schema",
            Self::Invalid { .. } => "invalid",
            Self::Proof(_) => "proof",
            Self::TooLarge(_) => "tooLarge",
            Self::Stale { .. } => "stale",
            Self::Replay { .. } => "replay",
            Self::NotController { .. } => "notAuthorised",
            Self::Deactivated(_) => "deactivated",
            Self::MissingPossession(_) => "missingPossession",
            Self::Conflict { .. } => "conflict",
            Self::NotFound(_) => "notFound",
            Self::Exists(_) => "exists",
            Self::Restricted(_) => "restricted",
            Self::AlreadyLogged { .. } => "alreadyLogged",
            Self::Retention(_) => "retention",
        }
    }
}

/// An operation whose schema and signatures have been checked.
#[derive(Debug, Clone)]
pub struct SignedOperation {
    /// What it changes.
    pub op: Operation,
    /// Who signed it, in proof order.
    pub signers: Vec<DidKey>,
    /// Its `created` time.
    pub created: OffsetDateTime,
    /// Its nonce.
    pub nonce: String,
    /// The ledger entry: the document's RFC 8785 canonical form.
    pub entry: Vec<u8>,
}

impl SignedOperation {
    /// Checks a document's schema and proofs and reads its operation.
    pub fn from_json(document: &Value) -> Result<Self, OpError> {
        let (op, signatures) = Self::read(document)?;
        signatures.verify().map_err(refused)?;
        Ok(op)
    }

    /// Checks a document's schema, reads its proofs and its operation, and returns the
    /// signatures still to check.
    pub fn read(document: &Value) -> Result<(Self, PendingSignatures), OpError> {
        validate_operation(document)?;
        let entry = medid_did::canonical_json(document);
        if entry.len() > MAX_OPERATION_BYTES {
            return Err(OpError::TooLarge(entry.len()));
        }
        let (proofs, signatures) = read_proofs(document).map_err(refused)?;
        let text = |name: &str| {
            document
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let created =
            OffsetDateTime::parse(text("created"), &Rfc3339).map_err(|e| OpError::Invalid {
                pointer: "/created".into(),
                message: format!("not an RFC 3339 date-time: {e}"),
            })?;
        let op = Self {
            op: parse_operation(document)?,
            signers: proofs.into_iter().map(|p| p.signer).collect(),
            created,
            nonce: text("nonce").to_owned(),
            entry,
        };
        Ok((op, signatures))
    }

    /// Reads an operation back from its ledger entry, checking its proofs again.
    pub fn from_entry(entry: &[u8]) -> Result<Self, OpError> {
        let document: Value = serde_json::from_slice(entry).map_err(|e| {
            OpError::Schema(SchemaError {
                pointer: String::new(),
                message: format!("not JSON: {e}"),
            })
        })?;
        Self::from_json(&document)
    }
}

/// The refusal of a document whose proof is malformed or does not verify.
pub(crate) fn refused(error: ProofError) -> OpError {
    OpError::Proof(error.to_string())
}

/// Checks the signatures of documents read without them (`SignedOperation::read`,
/// `LedgerEntry::read`, `Prepared::read`) as one batch, with the outcome checking each
/// alone would have: what did not read, or whose signature does not verify, is refused.
pub fn check_signatures<T>(
    read: Vec<Result<(T, PendingSignatures), OpError>>,
) -> Vec<Result<T, OpError>> {
    let pending: Vec<&PendingSignatures> = read
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|(_, signatures)| signatures))
        .collect();
    let mut verified = verify_all(&pending).into_iter();
    read.into_iter()
        .map(|r| {
            let (value, _) = r?;
            match verified.next() {
                Some(Ok(())) => Ok(value),
                Some(Err(error)) => Err(refused(error)),
                None => Err(OpError::Proof("the signature was not checked".into())),
            }
        })
        .collect()
}

fn invalid(pointer: &str, message: impl std::fmt::Display) -> OpError {
    OpError::Invalid {
        pointer: pointer.to_owned(),
        message: message.to_string(),
    }
}

fn field<T: serde::de::DeserializeOwned>(document: &Value, name: &str) -> Result<T, OpError> {
    let value = document.get(name).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| invalid(&format!("/{name}"), e))
}

fn optional<T: serde::de::DeserializeOwned>(
    document: &Value,
    name: &str,
) -> Result<Option<T>, OpError> {
    match document.get(name) {
        None => Ok(None),
        Some(_) => field(document, name).map(Some),
    }
}

fn identifier(document: &Value) -> Result<Identifier, OpError> {
    let text: String = field(document, "id")?;
    Identifier::parse(&text).map_err(|e| invalid("/id", e))
}

/// Parses a prefix as operations name it: a handle prefix (`86.1000`), an OID arc
/// (`urn:oid:1.2.156`) or a GS1 Company Prefix (`gs1:0950600`).
pub fn parse_prefix(text: &str) -> Result<Namespace, crate::id::IdError> {
    if text
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:oid:"))
    {
        let oid = crate::id::Oid::parse(text)?;
        Ok(Namespace::Oid(oid.arcs().to_vec()))
    } else if let Some(gcp) = text.strip_prefix("gs1:") {
        Namespace::gs1_company_prefix(gcp)
    } else {
        crate::id::Prefix::parse(text).map(Namespace::Handle)
    }
}

fn prefix(document: &Value) -> Result<Namespace, OpError> {
    let text: String = field(document, "prefix")?;
    parse_prefix(&text).map_err(|e| invalid("/prefix", e))
}

fn values(document: &Value, name: &str) -> Result<Vec<RecordValue>, OpError> {
    let values: Vec<RecordValue> = optional(document, name)?.unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for (i, value) in values.iter().enumerate() {
        if !seen.insert(value.index) {
            return Err(invalid(
                &format!("/{name}/{i}/index"),
                format!("index {} appears twice", value.index),
            ));
        }
    }
    Ok(values)
}

fn parse_operation(document: &Value) -> Result<Operation, OpError> {
    let kind: String = field(document, "op")?;
    Ok(match kind.as_str() {
        "prefix.create" => Operation::PrefixCreate {
            prefix: prefix(document)?,
            controllers: field(document, "controllers")?,
        },
        "prefix.delegate" => Operation::PrefixDelegate {
            prefix: prefix(document)?,
            controllers: field(document, "controllers")?,
            node: match optional::<NodeDelegation>(document, "node")? {
                Some(node) => {
                    node.check().map_err(|e| invalid("/node", e))?;
                    Some(node)
                }
                None => None,
            },
        },
        "identifier.register" => Operation::IdentifierRegister {
            id: identifier(document)?,
            values: values(document, "values")?,
            controllers: optional(document, "controllers")?,
        },
        "identifier.update" => Operation::IdentifierUpdate {
            id: identifier(document)?,
            version: field(document, "version")?,
            set: values(document, "set")?,
            remove: optional(document, "remove")?.unwrap_or_default(),
        },
        "identifier.delete" => Operation::IdentifierDelete {
            id: identifier(document)?,
            version: field(document, "version")?,
        },
        "controllers.change" => Operation::ControllersChange {
            target: if document.get("id").is_some() {
                Target::Identifier(identifier(document)?)
            } else {
                Target::Prefix(prefix(document)?)
            },
            version: field(document, "version")?,
            controllers: field(document, "controllers")?,
        },
        "did.register" => Operation::DidRegister {
            did: field(document, "did")?,
            name: field(document, "name")?,
            role: field(document, "role")?,
            registrar: optional(document, "registrar")?,
        },
        "did.deactivate" => Operation::DidDeactivate {
            did: field(document, "did")?,
        },
        other => return Err(invalid("/op", format!("unknown operation `{other}`"))),
    })
}

/// A signed operation with the payloads of its restricted values, as a client sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The signed operation document.
    pub operation: Value,
    /// Payloads of the operation's restricted values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restricted: Vec<RestrictedPayload>,
}

/// A value as a client gives it: public data, or data restricted to some readers,
/// which [`seal_values`] turns into a commitment and an off-log payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputValue {
    /// Position of the value in the record.
    pub index: u32,
    /// The value's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The data.
    pub data: String,
    /// Seconds a resolver may cache the value.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Who may read the data.
    #[serde(default)]
    pub read: ReadPermission,
}

/// Record values for an operation, and the payloads of its restricted values.
pub fn seal_values(values: &[InputValue]) -> (Vec<RecordValue>, Vec<RestrictedPayload>) {
    let mut payloads = Vec::new();
    let sealed = values
        .iter()
        .map(|v| {
            let (data, commitment) = match v.read {
                ReadPermission::Public => (Some(v.data.clone()), None),
                ReadPermission::Restricted(_) => {
                    let payload = RestrictedPayload::seal(&v.data);
                    let commitment = payload.commitment.clone();
                    payloads.push(payload);
                    (None, Some(commitment))
                }
            };
            RecordValue {
                index: v.index,
                kind: v.kind.clone(),
                data,
                commitment,
                ttl: v.ttl,
                read: v.read.clone(),
            }
        })
        .collect();
    (sealed, payloads)
}

/// An unsigned operation document: `fields` plus `op`, `created` (now) and a fresh
/// random `nonce`. Sign it with [`medid_did::add_proof`], once per signer.
pub fn draft(op: &str, fields: Value) -> Value {
    let mut document = match fields {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    document.insert("op".into(), op.into());
    let now = OffsetDateTime::now_utc();
    let created = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_default();
    document.insert("created".into(), created.into());
    let nonce: [u8; 16] = rand::random();
    document.insert("nonce".into(), hex::encode(nonce).into());
    Value::Object(document)
}

/// Signs a drafted operation by every key in `keys`, in order.
pub fn sign(document: &Value, keys: &[&medid_did::KeyPair]) -> Result<Value, OpError> {
    let mut signed = document.clone();
    for key in keys {
        let options = medid_did::ProofOptions::now();
        signed = medid_did::add_proof(&signed, key, &options)
            .map_err(|e| OpError::Proof(e.to_string()))?;
    }
    Ok(signed)
}
