//! Ledger entries: a signed operation (a JSON object with `op`) or a signed EPCIS event
//! (a JSON object whose `type` is an event type). The write path, replay, `reindex`
//! and `verify` handle both through [`LedgerEntry`].

use medid_did::{DidKey, PendingSignatures};
use serde_json::Value;

use crate::event::{SignedEvent, apply_event};
use crate::op::{OpError, SignedOperation, refused};
use crate::state::{Changes, StateRead, apply};

/// One checked ledger entry.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // both live for one request or one replay chunk
pub enum LedgerEntry {
    /// A signed operation.
    Operation(SignedOperation),
    /// A signed lifecycle event.
    Event(SignedEvent),
}

/// Whether a document is an EPCIS event (rather than an operation).
pub fn is_event(document: &Value) -> bool {
    document.get("op").is_none()
        && document
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("Event"))
}

impl LedgerEntry {
    /// Checks a document: an event when it has an event `type` and no `op`, else an
    /// operation.
    pub fn from_json(document: &Value) -> Result<Self, OpError> {
        let (entry, signatures) = Self::read(document)?;
        signatures.verify().map_err(refused)?;
        Ok(entry)
    }

    /// [`LedgerEntry::from_json`] but for the signatures, which it returns to check.
    pub fn read(document: &Value) -> Result<(Self, PendingSignatures), OpError> {
        if is_event(document) {
            SignedEvent::read(document).map(|(e, s)| (Self::Event(e), s))
        } else {
            SignedOperation::read(document).map(|(op, s)| (Self::Operation(op), s))
        }
    }

    /// Reads an entry back from the ledger, checking it again.
    pub fn from_entry(entry: &[u8]) -> Result<Self, OpError> {
        let (entry, signatures) = Self::read_entry(entry)?;
        signatures.verify().map_err(refused)?;
        Ok(entry)
    }

    /// [`LedgerEntry::from_entry`] but for the signatures, which it returns to check.
    pub fn read_entry(entry: &[u8]) -> Result<(Self, PendingSignatures), OpError> {
        let document: Value = serde_json::from_slice(entry).map_err(|e| {
            OpError::Schema(crate::SchemaError {
                pointer: String::new(),
                message: format!("not JSON: {e}"),
            })
        })?;
        Self::read(&document)
    }

    /// The bytes the ledger holds.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Operation(op) => &op.entry,
            Self::Event(event) => &event.entry,
        }
    }

    /// Takes the bytes the ledger holds.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::Operation(op) => op.entry,
            Self::Event(event) => event.entry,
        }
    }

    /// The operation, when the entry is one.
    pub fn operation(&self) -> Option<&SignedOperation> {
        match self {
            Self::Operation(op) => Some(op),
            Self::Event(_) => None,
        }
    }
}

/// Applies an entry (ledger index `leaf`) to the state.
pub(crate) fn apply_entry(
    state: &dyn StateRead,
    changes: &mut Changes,
    entry: &LedgerEntry,
    leaf: u64,
    admin: &DidKey,
) -> Result<(), OpError> {
    match entry {
        LedgerEntry::Operation(op) => apply(state, changes, op, leaf, admin),
        LedgerEntry::Event(event) => apply_event(state, changes, event, leaf),
    }
}
