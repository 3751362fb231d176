//! The registry's state machine: what each operation may do, given the state before it.
//!
//! [`apply`] is a pure function of (state, operation, leaf index): the node runs it
//! before logging an operation (to refuse what may not happen), and `reindex`/`verify`
//! run it again over the ledger to rebuild or re-check the indexes. Reads go through a
//! [`StateRead`], writes into [`Changes`], so the same code serves sled, a batch overlay
//! and an in-memory replay. Nothing here looks at a clock: freshness of `created` is
//! checked at submission, before sequencing.

use std::collections::BTreeMap;

use medid_did::DidKey;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use crate::delegation::NodeDelegation;
use crate::dnsname::{identifier_name, namespace_name, reversed_name};
use crate::id::{Identifier, Namespace};
use crate::op::{OpError, Operation, RecordValue, SignedOperation, Target};

/// Key of an identifier's record.
pub(crate) fn identifier_key(id: &Identifier) -> Vec<u8> {
    format!("i/{id}").into_bytes()
}
/// Key of a prefix's record.
pub(crate) fn prefix_key(prefix: &str) -> Vec<u8> {
    format!("p/{prefix}").into_bytes()
}
/// Key of a DID's record.
pub(crate) fn did_key(did: &DidKey) -> Vec<u8> {
    format!("d/{did}").into_bytes()
}
/// Alias key of the identifier whose DNS name (relative to the zone, see
/// [`crate::dnsname`]) is `relative_name`: `a/` and the labels in reverse order, so that
/// every name below a name shares one key prefix. Its value is the canonical identifier.
pub(crate) fn alias_key(relative_name: &str) -> Vec<u8> {
    format!("a/{}", reversed_name(relative_name)).into_bytes()
}
/// Alias key of the prefix whose DNS name is `relative_name`: the identifier alias key
/// and ` prefix` (a name can stand for an identifier and a prefix at once). Its value is
/// `prefix:<namespace key>`.
pub(crate) fn prefix_alias_key(relative_name: &str) -> Vec<u8> {
    format!("a/{} prefix", reversed_name(relative_name)).into_bytes()
}
/// The alias entry of a prefix.
fn prefix_alias(prefix: &Namespace) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        prefix_alias_key(&namespace_name(prefix)),
        Some(format!("prefix:{}", prefix.namespace_key()).into_bytes()),
    )
}
fn nonce_key(did: &DidKey, nonce: &str) -> Vec<u8> {
    format!("n/{did} {nonce}").into_bytes()
}

/// A value as stored: the signed value and when it was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredValue {
    /// The value as signed.
    #[serde(flatten)]
    pub value: RecordValue,
    /// The `created` time of the operation that set it.
    pub timestamp: String,
}

/// An identifier's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierRecord {
    /// Canonical identifier.
    pub id: String,
    /// Its values, by index.
    pub values: Vec<StoredValue>,
    /// Its own controllers, if any (else its prefix's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<Vec<DidKey>>,
    /// Number of operations applied to it.
    pub version: u64,
    /// When it was registered.
    pub created: String,
    /// When it last changed.
    pub updated: String,
    /// Ledger index of the operation that last changed it.
    pub log_index: u64,
}

/// A prefix's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixRecord {
    /// The prefix (namespace key).
    pub prefix: String,
    /// Its controllers.
    pub controllers: Vec<DidKey>,
    /// The prefix it was delegated from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The node it was delegated to, when another node answers for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeDelegation>,
    /// Number of operations applied to it.
    pub version: u64,
    /// Ledger index of the operation that last changed it.
    pub log_index: u64,
}

/// A registered DID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DidRecord {
    /// The DID.
    pub did: DidKey,
    /// Public name.
    pub name: String,
    /// Role: manufacturer, sterilization-center, hospital, person, …
    pub role: String,
    /// Who registered it, if not itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<DidKey>,
    /// Whether it was deactivated.
    pub deactivated: bool,
    /// When it was registered.
    pub created: String,
    /// When it last changed.
    pub updated: String,
    /// Ledger index of the operation that last changed it.
    pub log_index: u64,
}

/// Read access to a state.
pub(crate) trait StateRead {
    /// The value under `key`.
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, OpError>;
}

/// Writes not yet in the underlying state (`None` deletes), read through first.
#[derive(Debug, Default, Clone)]
pub(crate) struct Changes {
    pub(crate) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Changes {
    /// Adds `other`'s writes, which win over ours. (`BTreeMap::append` would rebuild
    /// the whole map each time: quadratic over a batch.)
    pub(crate) fn merge(&mut self, other: Changes) {
        for (key, value) in other.writes {
            self.writes.insert(key, value);
        }
    }
}

/// A state seen through pending changes.
pub(crate) struct Overlay<'a, R: StateRead + ?Sized> {
    pub(crate) base: &'a R,
    pub(crate) changes: &'a Changes,
}

impl<R: StateRead + ?Sized> StateRead for Overlay<'_, R> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        match self.changes.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.base.read(key),
        }
    }
}

impl StateRead for BTreeMap<Vec<u8>, Vec<u8>> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        Ok(self.get(key).cloned())
    }
}

fn get<T: serde::de::DeserializeOwned>(
    state: &dyn StateRead,
    key: &[u8],
) -> Result<Option<T>, OpError> {
    match state.read(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| OpError::Invalid {
                pointer: String::from_utf8_lossy(key).into_owned(),
                message: format!("index value is corrupt: {e}"),
            }),
    }
}

fn put<T: Serialize>(changes: &mut Changes, key: Vec<u8>, value: &T) {
    // Serialising these plain structs to JSON cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    changes.writes.insert(key, Some(bytes));
}

/// The closest registered prefix of an identifier's namespace, from longest to shortest.
pub(crate) fn closest_prefix(
    state: &dyn StateRead,
    id: &Identifier,
) -> Result<Option<PrefixRecord>, OpError> {
    for key in id.namespace().ancestors_keys() {
        if let Some(record) = get::<PrefixRecord>(state, &prefix_key(&key))? {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

fn closest_parent(
    state: &dyn StateRead,
    prefix: &Namespace,
) -> Result<Option<PrefixRecord>, OpError> {
    for key in prefix.ancestors_keys().into_iter().skip(1) {
        if let Some(record) = get::<PrefixRecord>(state, &prefix_key(&key))? {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

fn signers_text(signers: &[DidKey]) -> String {
    signers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn require_controller(
    signers: &[DidKey],
    controllers: &[DidKey],
    target: &str,
) -> Result<(), OpError> {
    if signers.iter().any(|s| controllers.contains(s)) {
        Ok(())
    } else {
        Err(OpError::NotController {
            signers: signers_text(signers),
            target: target.to_owned(),
        })
    }
}

fn require_version(target: &str, expected: u64, current: u64) -> Result<(), OpError> {
    if expected == current {
        Ok(())
    } else {
        Err(OpError::Conflict {
            target: target.to_owned(),
            expected,
            current,
        })
    }
}

/// Every new controller must have signed: proof of possession of its key.
fn require_possession(signers: &[DidKey], new: &[DidKey], old: &[DidKey]) -> Result<(), OpError> {
    match new
        .iter()
        .find(|c| !old.contains(c) && !signers.contains(c))
    {
        Some(missing) => Err(OpError::MissingPossession(missing.to_string())),
        None => Ok(()),
    }
}

fn merge_values(values: &mut Vec<StoredValue>, set: &[RecordValue], timestamp: &str) {
    for value in set {
        values.retain(|v| v.value.index != value.index);
        values.push(StoredValue {
            value: value.clone(),
            timestamp: timestamp.to_owned(),
        });
    }
    values.sort_by_key(|v| v.value.index);
}

/// Applies `op` (the entry at ledger index `leaf`) to `state`, writing into `changes`;
/// refuses what the signers may not do. Nothing is written when it refuses.
pub(crate) fn apply(
    state: &dyn StateRead,
    changes: &mut Changes,
    op: &SignedOperation,
    leaf: u64,
    admin: &DidKey,
) -> Result<(), OpError> {
    let mut mine = Changes::default();
    {
        let view = Overlay {
            base: state,
            changes: &mine,
        };
        check_signers(&view, op)?;
    }
    for signer in &op.signers {
        mine.writes.insert(
            nonce_key(signer, &op.nonce),
            Some(leaf.to_be_bytes().to_vec()),
        );
    }
    let now = op.created.format(&Rfc3339).unwrap_or_default();
    let view = Overlay {
        base: state,
        changes: &mine,
    };
    let signers = &op.signers;
    match &op.op {
        Operation::PrefixCreate {
            prefix,
            controllers,
        } => {
            require_controller(
                signers,
                std::slice::from_ref(admin),
                "the node (prefix.create is the admin's)",
            )?;
            if get::<PrefixRecord>(&view, &prefix_key(&prefix.namespace_key()))?.is_some() {
                return Err(OpError::Exists(prefix.to_string()));
            }
            if let Some(parent) = closest_parent(&view, prefix)? {
                return Err(OpError::Invalid {
                    pointer: "/prefix".into(),
                    message: format!("{prefix} lies under {}; use prefix.delegate", parent.prefix),
                });
            }
            let record = PrefixRecord {
                prefix: prefix.namespace_key(),
                controllers: controllers.clone(),
                parent: None,
                node: None,
                version: 1,
                log_index: leaf,
            };
            put(&mut mine, prefix_key(&prefix.namespace_key()), &record);
            let (key, value) = prefix_alias(prefix);
            mine.writes.insert(key, value);
        }
        Operation::PrefixDelegate {
            prefix,
            controllers,
            node,
        } => {
            if get::<PrefixRecord>(&view, &prefix_key(&prefix.namespace_key()))?.is_some() {
                return Err(OpError::Exists(prefix.to_string()));
            }
            let parent = closest_parent(&view, prefix)?.ok_or_else(|| {
                OpError::NotFound(format!("no prefix above {prefix} at this node"))
            })?;
            refuse_other_node(&parent, "/prefix")?;
            require_controller(signers, &parent.controllers, &parent.prefix)?;
            let record = PrefixRecord {
                prefix: prefix.namespace_key(),
                controllers: controllers.clone(),
                parent: Some(parent.prefix),
                node: node.clone(),
                version: 1,
                log_index: leaf,
            };
            put(&mut mine, prefix_key(&prefix.namespace_key()), &record);
            let (key, value) = prefix_alias(prefix);
            mine.writes.insert(key, value);
        }
        Operation::IdentifierRegister {
            id,
            values,
            controllers,
        } => {
            if get::<IdentifierRecord>(&view, &identifier_key(id))?.is_some() {
                return Err(OpError::Exists(id.to_string()));
            }
            let prefix = closest_prefix(&view, id)?
                .ok_or_else(|| OpError::NotFound(format!("no prefix for {id} at this node")))?;
            refuse_other_node(&prefix, "/id")?;
            require_controller(signers, &prefix.controllers, &prefix.prefix)?;
            let mut stored = Vec::new();
            merge_values(&mut stored, values, &now);
            let record = IdentifierRecord {
                id: id.to_string(),
                values: stored,
                controllers: controllers.clone(),
                version: 1,
                created: now.clone(),
                updated: now,
                log_index: leaf,
            };
            put(&mut mine, identifier_key(id), &record);
            mine.writes.insert(
                alias_key(&identifier_name(id)),
                Some(id.to_string().into_bytes()),
            );
        }
        Operation::IdentifierUpdate {
            id,
            version,
            set,
            remove,
        } => {
            let mut record = identifier_for_change(&view, id, signers)?;
            require_version(&record.id, *version, record.version)?;
            if let Some(missing) = remove
                .iter()
                .find(|i| !record.values.iter().any(|v| v.value.index == **i))
            {
                return Err(OpError::NotFound(format!(
                    "{id} has no value at index {missing}"
                )));
            }
            record.values.retain(|v| !remove.contains(&v.value.index));
            merge_values(&mut record.values, set, &now);
            record.version += 1;
            record.updated = now;
            record.log_index = leaf;
            put(&mut mine, identifier_key(id), &record);
        }
        Operation::IdentifierDelete { id, version } => {
            let record = identifier_for_change(&view, id, signers)?;
            require_version(&record.id, *version, record.version)?;
            mine.writes.insert(identifier_key(id), None);
            mine.writes.insert(alias_key(&identifier_name(id)), None);
        }
        Operation::ControllersChange {
            target,
            version,
            controllers,
        } => match target {
            Target::Identifier(id) => {
                let mut record = identifier_for_change(&view, id, signers)?;
                require_version(&record.id, *version, record.version)?;
                let old = record.controllers.clone().unwrap_or_default();
                require_possession(signers, controllers, &old)?;
                record.controllers = Some(controllers.clone());
                record.version += 1;
                record.updated = now;
                record.log_index = leaf;
                put(&mut mine, identifier_key(id), &record);
            }
            Target::Prefix(prefix) => {
                let mut record = get::<PrefixRecord>(&view, &prefix_key(&prefix.namespace_key()))?
                    .ok_or_else(|| OpError::NotFound(prefix.to_string()))?;
                require_controller(signers, &record.controllers, &record.prefix)?;
                require_version(&record.prefix, *version, record.version)?;
                require_possession(signers, controllers, &record.controllers)?;
                record.controllers = controllers.clone();
                record.version += 1;
                record.log_index = leaf;
                put(&mut mine, prefix_key(&prefix.namespace_key()), &record);
            }
        },
        Operation::DidRegister {
            did,
            name,
            role,
            registrar,
        } => {
            if !signers.contains(did) {
                return Err(OpError::MissingPossession(did.to_string()));
            }
            if let Some(registrar) = registrar.filter(|r| !signers.contains(r)) {
                return Err(OpError::MissingPossession(registrar.to_string()));
            }
            if get::<DidRecord>(&view, &did_key(did))?.is_some() {
                return Err(OpError::Exists(did.to_string()));
            }
            let record = DidRecord {
                did: *did,
                name: name.clone(),
                role: role.clone(),
                registrar: *registrar,
                deactivated: false,
                created: now.clone(),
                updated: now,
                log_index: leaf,
            };
            put(&mut mine, did_key(did), &record);
        }
        Operation::DidDeactivate { did } => {
            let mut record = get::<DidRecord>(&view, &did_key(did))?
                .ok_or_else(|| OpError::NotFound(did.to_string()))?;
            let allowed: Vec<DidKey> = std::iter::once(*did).chain(record.registrar).collect();
            require_controller(signers, &allowed, &did.to_string())?;
            record.deactivated = true;
            record.updated = now;
            record.log_index = leaf;
            put(&mut mine, did_key(did), &record);
        }
    }
    changes.merge(mine);
    Ok(())
}

/// Refuses to write under a prefix delegated to another node: that node answers for it.
fn refuse_other_node(prefix: &PrefixRecord, pointer: &str) -> Result<(), OpError> {
    match &prefix.node {
        Some(node) => Err(OpError::Invalid {
            pointer: pointer.to_owned(),
            message: format!(
                "{} is delegated to the node {} ({}); write there",
                prefix.prefix, node.name, node.http
            ),
        }),
        None => Ok(()),
    }
}

/// Refuses replays and deactivated signers.
fn check_signers(state: &dyn StateRead, op: &SignedOperation) -> Result<(), OpError> {
    for signer in &op.signers {
        if state.read(&nonce_key(signer, &op.nonce))?.is_some() {
            return Err(OpError::Replay {
                signer: signer.to_string(),
                nonce: op.nonce.clone(),
            });
        }
        if get::<DidRecord>(state, &did_key(signer))?.is_some_and(|r| r.deactivated) {
            return Err(OpError::Deactivated(signer.to_string()));
        }
    }
    Ok(())
}

/// The record of `id`, if one of `signers` may change it.
fn identifier_for_change(
    state: &dyn StateRead,
    id: &Identifier,
    signers: &[DidKey],
) -> Result<IdentifierRecord, OpError> {
    let record = get::<IdentifierRecord>(state, &identifier_key(id))?
        .ok_or_else(|| OpError::NotFound(id.to_string()))?;
    let mut allowed = record.controllers.clone().unwrap_or_default();
    if let Some(prefix) = closest_prefix(state, id)? {
        allowed.extend(prefix.controllers);
    }
    require_controller(signers, &allowed, &record.id)?;
    Ok(record)
}
