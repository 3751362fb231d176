//! The zone a node answers for ([`ZoneConfig`], validated into a [`Zone`]) and the
//! read access to the registry's index the answers come from ([`ZoneIndex`]: the sled
//! [`Index`] in a node, [`MemoryIndex`] in tests and fuzzing).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use hickory_proto::rr::Name;
use medid_registry::delegation::NodeDelegation;
use medid_registry::dnsname::{
    GS1_LABEL, HANDLE_LABEL, MAX_ZONE_NAME_LEN, OID_LABEL, identifier_name, namespace_name,
    reversed_name,
};
use medid_registry::event::trace::ItemStatus;
use medid_registry::id::{Identifier, Namespace};
use medid_registry::{IdentifierRecord, Index};

use crate::mirror::{IndexMirror, RecordReads};

/// What a node's zone looks like from outside: its name, its name server, SOA timers,
/// TTLs and where OID NAPTR records point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The zone's name, such as `medid.example` (a trailing dot is allowed; at most
    /// [`MAX_ZONE_NAME_LEN`] characters of lower- or upper-case LDH labels).
    pub name: String,
    /// The name server named by the apex NS record and the SOA's MNAME; default
    /// `ns.<zone>`. Inside the zone, it answers A/AAAA with [`ZoneConfig::ns_addresses`]
    /// and the NS answer carries them as glue.
    pub ns_name: Option<String>,
    /// Addresses of the name server (glue). The server fills in its listen address when
    /// this is empty and the address is not unspecified (`0.0.0.0`, `::`).
    pub ns_addresses: Vec<IpAddr>,
    /// The SOA's RNAME, a mailbox written as a name; default `hostmaster.<zone>`.
    pub hostmaster: Option<String>,
    /// TTL of the SOA, NS and glue records and of prefix records, in seconds.
    pub ttl: u32,
    /// The SOA MINIMUM: how long resolvers keep a negative answer (NXDOMAIN, NODATA).
    pub negative_ttl: u32,
    /// SOA REFRESH, for secondaries, in seconds.
    pub refresh: u32,
    /// SOA RETRY, in seconds.
    pub retry: u32,
    /// SOA EXPIRE, in seconds.
    pub expire: u32,
    /// The node's HTTP resolution URL of an identifier, with `{id}` where the canonical
    /// identifier goes (`https://node.example/api/handles/{id}`). When set, every OID
    /// identifier and OID prefix gets a NAPTR record pointing there.
    pub resolution_url: Option<String>,
    /// Where this node's authority starts, relative to the zone: `""` for the zone
    /// itself (a root node), or the name of the prefix a parent delegated to this node
    /// (`1000.86.hdl`): every node of a hierarchy maps identifiers under the same zone,
    /// and a child is authoritative for its delegated sub-zone only (its SOA and NS are
    /// there, names outside it are REFUSED).
    pub apex: String,
}

impl ZoneConfig {
    /// The configuration of zone `name` with the defaults: `ns.<zone>`,
    /// `hostmaster.<zone>`, TTL 3600 s, negative TTL 300 s, refresh 3600 s, retry 600 s,
    /// expire 1 week, no resolution URL.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ns_name: None,
            ns_addresses: Vec::new(),
            hostmaster: None,
            ttl: 3600,
            negative_ttl: 300,
            refresh: 3600,
            retry: 600,
            expire: 604_800,
            resolution_url: None,
            apex: String::new(),
        }
    }
}

/// Why a [`ZoneConfig`] cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneConfigError {
    /// A name is not a valid DNS name of LDH labels.
    #[error("{what} `{name}` is not a DNS name: {reason}")]
    BadName {
        /// Which name: "the zone", "the name server", …
        what: &'static str,
        /// The name as configured.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The name server's name lies where identifiers are named.
    #[error(
        "the name server `{0}` lies under hdl., oid. or gs1. of the zone, where identifiers \
         are named; choose another name such as ns.<zone>"
    )]
    NameServerCollides(String),
    /// The resolution URL has no `{id}`.
    #[error("the resolution URL `{0}` has no `{{id}}` where the identifier goes")]
    ResolutionUrl(String),
}

/// A validated zone: the configuration with its names ready for answers.
#[derive(Debug, Clone)]
pub struct Zone {
    config: ZoneConfig,
    /// The zone's name, lower case, without the trailing dot.
    name: String,
    /// The zone's name as a fully qualified DNS name.
    origin: Name,
    /// Labels of the origin, lower case, from the leftmost.
    origin_labels: Vec<Vec<u8>>,
    ns: Name,
    ns_text: String,
    /// The name server's name relative to the zone, when it lies inside.
    ns_relative: Option<String>,
    hostmaster: Name,
    hostmaster_text: String,
    /// The apex of the node's authority relative to the zone (`""`: the zone).
    apex_relative: String,
    /// The apex of the node's authority, fully qualified.
    apex_name: Name,
}

impl Zone {
    /// Checks `config` and prepares its names.
    pub fn new(config: ZoneConfig) -> Result<Zone, ZoneConfigError> {
        let name = checked_name("the zone", &config.name)?;
        if name.is_empty() {
            return Err(ZoneConfigError::BadName {
                what: "the zone",
                name: config.name.clone(),
                reason: "it is empty (the root zone is not served)".into(),
            });
        }
        if name.len() > MAX_ZONE_NAME_LEN {
            return Err(ZoneConfigError::BadName {
                what: "the zone",
                name: config.name.clone(),
                reason: format!(
                    "it has {} characters; identifiers' names leave room for at most \
                     {MAX_ZONE_NAME_LEN}",
                    name.len()
                ),
            });
        }
        let apex_relative = checked_name("the apex", &config.apex)?;
        let apex_text = if apex_relative.is_empty() {
            name.clone()
        } else {
            format!("{apex_relative}.{name}")
        };
        let ns_text = match &config.ns_name {
            Some(ns) => checked_name("the name server", ns)?,
            None if apex_relative.is_empty() => format!("ns.{name}"),
            None => format!("{SUBZONE_NS_LABEL}.{apex_text}"),
        };
        let ns_relative = ns_text
            .strip_suffix(&name)
            .and_then(|head| head.strip_suffix('.'))
            .map(str::to_owned);
        let subzone_ns = format!("{SUBZONE_NS_LABEL}.{apex_relative}");
        if let Some(relative) = ns_relative.as_ref().filter(|r| **r != subzone_ns) {
            let top = relative.rsplit('.').next().unwrap_or_default();
            if [HANDLE_LABEL, OID_LABEL, GS1_LABEL].contains(&top) {
                return Err(ZoneConfigError::NameServerCollides(ns_text));
            }
        }
        let hostmaster_text = match &config.hostmaster {
            Some(mailbox) => checked_name("the hostmaster mailbox", mailbox)?,
            None => format!("hostmaster.{name}"),
        };
        if let Some(url) = &config.resolution_url
            && !url.contains("{id}")
        {
            return Err(ZoneConfigError::ResolutionUrl(url.clone()));
        }
        let fqdn = |what: &'static str, text: &str| {
            Name::from_ascii(format!("{text}.")).map_err(|e| ZoneConfigError::BadName {
                what,
                name: text.to_owned(),
                reason: e.to_string(),
            })
        };
        Ok(Zone {
            origin: fqdn("the zone", &name)?,
            origin_labels: name.split('.').map(|l| l.as_bytes().to_vec()).collect(),
            ns: fqdn("the name server", &ns_text)?,
            hostmaster: fqdn("the hostmaster mailbox", &hostmaster_text)?,
            name,
            ns_text,
            ns_relative,
            hostmaster_text,
            apex_name: fqdn("the apex", &apex_text)?,
            apex_relative,
            config,
        })
    }

    /// The apex of the node's authority relative to the zone (`""`: the zone itself).
    pub fn apex_relative(&self) -> &str {
        &self.apex_relative
    }

    /// The apex of the node's authority, fully qualified.
    pub fn apex_name(&self) -> &Name {
        &self.apex_name
    }

    /// Whether `relative` (a name relative to the zone) lies at or below the apex.
    pub(crate) fn within_apex(&self, relative: &str) -> bool {
        self.apex_relative.is_empty()
            || relative == self.apex_relative
            || relative
                .strip_suffix(self.apex_relative.as_str())
                .is_some_and(|head| head.ends_with('.'))
    }

    /// The configuration.
    pub fn config(&self) -> &ZoneConfig {
        &self.config
    }

    /// The zone's name, lower case, without the trailing dot.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's name as a DNS name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The name server's name.
    pub(crate) fn ns(&self) -> &Name {
        &self.ns
    }

    /// The name server's name, without the trailing dot.
    pub(crate) fn ns_text(&self) -> &str {
        &self.ns_text
    }

    /// The name server's name relative to the zone, when it lies inside.
    pub(crate) fn ns_relative(&self) -> Option<&str> {
        self.ns_relative.as_deref()
    }

    /// The SOA RNAME.
    pub(crate) fn hostmaster(&self) -> &Name {
        &self.hostmaster
    }

    /// The SOA RNAME, without the trailing dot.
    pub(crate) fn hostmaster_text(&self) -> &str {
        &self.hostmaster_text
    }

    /// Labels of the origin, lower case, from the leftmost.
    pub(crate) fn origin_labels(&self) -> &[Vec<u8>] {
        &self.origin_labels
    }

    /// The name of `id` below this zone, fully qualified: `pkg-1.23.1000.86.hdl.<zone>.`.
    pub fn identifier_fqdn(&self, id: &Identifier) -> String {
        format!("{}.{}.", identifier_name(id), self.name)
    }

    /// The name of a prefix below this zone, fully qualified.
    pub fn namespace_fqdn(&self, ns: &Namespace) -> String {
        format!("{}.{}.", namespace_name(ns), self.name)
    }
}

/// The first label of the name server of a delegated sub-zone, `h--ns.<apex>`: a plain
/// label never starts with `h--` and a hashed one has 29 characters, so no identifier
/// is named so.
pub const SUBZONE_NS_LABEL: &str = "h--ns";

/// A configured name, lower-cased and without its trailing dot, if it is made of LDH
/// labels of 1 to 63 characters and fits in 253 characters.
fn checked_name(what: &'static str, name: &str) -> Result<String, ZoneConfigError> {
    let bad = |reason: String| ZoneConfigError::BadName {
        what,
        name: name.to_owned(),
        reason,
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if trimmed.len() > 253 {
        return Err(bad(format!(
            "it has {} characters; at most 253",
            trimmed.len()
        )));
    }
    if trimmed.is_empty() {
        return Ok(trimmed);
    }
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad(format!(
                "label `{label}` has {} characters; a label has 1 to 63",
                label.len()
            )));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(bad(format!(
                "label `{label}` is not made of letters, digits and inner hyphens"
            )));
        }
    }
    Ok(trimmed)
}

/// Why the index could not be read. Answered as SERVFAIL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("index read failed: {0}")]
pub struct ZoneReadError(pub String);

impl From<medid_registry::IndexError> for ZoneReadError {
    fn from(e: medid_registry::IndexError) -> Self {
        ZoneReadError(e.to_string())
    }
}

/// Adds the derived lifecycle `STATUS` value (`sterile`, `used`, `recalled`) of an item
/// named by events, as the HTTP answer shows it: a public value at the first free index
/// from 100, TTL 60 s.
fn add_status(status: ItemStatus, record: &mut IdentifierRecord) {
    if status == ItemStatus::Unprocessed {
        return;
    }
    let text = serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut free = 100;
    while record.values.iter().any(|v| v.value.index == free) {
        free += 1;
    }
    record.values.push(medid_registry::StoredValue {
        value: medid_registry::op::RecordValue {
            index: free,
            kind: "STATUS".into(),
            data: Some(text),
            commitment: None,
            ttl: 60,
            read: medid_registry::op::ReadPermission::Public,
        },
        timestamp: record.updated.clone(),
    });
}

/// An identifier's record with its status, read through `reads`.
fn record_with_status(
    reads: &dyn RecordReads,
    id: &Identifier,
) -> Result<Option<IdentifierRecord>, ZoneReadError> {
    let Some(mut record) = reads.identifier_record(id)? else {
        return Ok(None);
    };
    add_status(reads.status(&id.to_string())?, &mut record);
    Ok(Some(record))
}

/// Read access to what a zone says: the registry's index, seen through the DNS names of
/// identifiers and prefixes ([`medid_registry::dnsname`]).
///
/// Contract: every method reads the index as it is at the call (no snapshot across
/// calls); a name given here is relative to the zone, lower case, without trailing dot
/// (`""` is the apex). [`Index`] implements it for a node; [`MemoryIndex`] is the
/// in-memory implementation for tests and fuzzing.
pub trait ZoneIndex: Send + Sync {
    /// A number that grows with every change of the index: the ledger size it reflects.
    /// It is the zone's SOA serial (modulo 2³²).
    fn serial(&self) -> Result<u64, ZoneReadError>;
    /// What `relative_name` stands for: a canonical identifier, else
    /// `prefix:<namespace key>` (see [`Index::alias`]).
    fn alias(&self, relative_name: &str) -> Result<Option<String>, ZoneReadError>;
    /// `prefix:<namespace key>` of the prefix named `relative_name`.
    fn prefix_alias(&self, relative_name: &str) -> Result<Option<String>, ZoneReadError>;
    /// Whether some name lies strictly below `relative_name`.
    fn has_names_under(&self, relative_name: &str) -> Result<bool, ZoneReadError>;
    /// The record of an identifier.
    fn identifier(&self, id: &Identifier) -> Result<Option<IdentifierRecord>, ZoneReadError>;
    /// Every name with what it stands for (`(relative name, target)`, as
    /// [`ZoneIndex::alias`] and [`ZoneIndex::prefix_alias`] give it), a name before the
    /// names below it.
    fn names(&self) -> Box<dyn Iterator<Item = Result<(String, String), ZoneReadError>> + '_>;
    /// The node the prefix `namespace_key` is delegated to, if it is delegated to
    /// another node.
    fn delegation(&self, namespace_key: &str) -> Result<Option<NodeDelegation>, ZoneReadError> {
        let _ = namespace_key;
        Ok(None)
    }
}

impl ZoneIndex for Index {
    fn serial(&self) -> Result<u64, ZoneReadError> {
        Ok(self.applied()?)
    }

    fn alias(&self, relative_name: &str) -> Result<Option<String>, ZoneReadError> {
        Ok(Index::alias(self, relative_name)?)
    }

    fn prefix_alias(&self, relative_name: &str) -> Result<Option<String>, ZoneReadError> {
        Ok(Index::prefix_alias(self, relative_name)?)
    }

    fn has_names_under(&self, relative_name: &str) -> Result<bool, ZoneReadError> {
        Ok(Index::has_names_under(self, relative_name)?)
    }

    fn identifier(&self, id: &Identifier) -> Result<Option<IdentifierRecord>, ZoneReadError> {
        record_with_status(self, id)
    }

    fn names(&self) -> Box<dyn Iterator<Item = Result<(String, String), ZoneReadError>> + '_> {
        Box::new(self.aliases().map(|item| item.map_err(ZoneReadError::from)))
    }

    fn delegation(&self, namespace_key: &str) -> Result<Option<NodeDelegation>, ZoneReadError> {
        Ok(self.prefix(namespace_key)?.and_then(|record| record.node))
    }
}

/// A node's index through its [`IndexMirror`]: no sled read unless an item has events.
impl ZoneIndex for IndexMirror {
    fn serial(&self) -> Result<u64, ZoneReadError> {
        Ok(IndexMirror::serial(self)?)
    }

    fn alias(&self, relative_name: &str) -> Result<Option<String>, ZoneReadError> {
        let target = self.target(relative_name)?;
        Ok(target.identifier.or(target.prefix).map(String::from))
    }

    fn prefix_alias(&self, relative_name: &str) -> Result<Option<String>, ZoneReadError> {
        Ok(self.target(relative_name)?.prefix.map(String::from))
    }

    fn has_names_under(&self, relative_name: &str) -> Result<bool, ZoneReadError> {
        Ok(IndexMirror::has_names_under(self, relative_name)?)
    }

    fn identifier(&self, id: &Identifier) -> Result<Option<IdentifierRecord>, ZoneReadError> {
        record_with_status(self, id)
    }

    fn names(&self) -> Box<dyn Iterator<Item = Result<(String, String), ZoneReadError>> + '_> {
        self.index().names()
    }

    fn delegation(&self, namespace_key: &str) -> Result<Option<NodeDelegation>, ZoneReadError> {
        Ok(self
            .prefix_record(namespace_key)?
            .and_then(|record| record.node))
    }
}

/// An in-memory [`ZoneIndex`]: identifiers and prefixes inserted directly, for tests
/// and fuzzing.
#[derive(Debug, Clone, Default)]
pub struct MemoryIndex {
    serial: u64,
    /// Reversed name → canonical identifier.
    identifiers: BTreeMap<String, String>,
    /// Reversed name → `prefix:<key>`.
    prefixes: BTreeMap<String, String>,
    records: HashMap<Identifier, IdentifierRecord>,
    /// Namespace key → the node it is delegated to.
    delegations: HashMap<String, NodeDelegation>,
}

impl MemoryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an identifier's record; its `id` must parse.
    pub fn insert_identifier(
        &mut self,
        record: IdentifierRecord,
    ) -> Result<(), medid_registry::id::IdError> {
        let id = Identifier::parse(&record.id)?;
        self.identifiers
            .insert(reversed_name(&identifier_name(&id)), id.to_string());
        self.records.insert(id, record);
        self.serial += 1;
        Ok(())
    }

    /// Removes an identifier.
    pub fn remove_identifier(&mut self, id: &Identifier) {
        self.identifiers
            .remove(&reversed_name(&identifier_name(id)));
        self.records.remove(id);
        self.serial += 1;
    }

    /// Adds a prefix.
    pub fn insert_prefix(&mut self, ns: &Namespace) {
        self.prefixes.insert(
            reversed_name(&namespace_name(ns)),
            format!("prefix:{}", ns.namespace_key()),
        );
        self.serial += 1;
    }

    /// Adds a prefix delegated to another node.
    pub fn insert_delegation(&mut self, ns: &Namespace, node: NodeDelegation) {
        self.insert_prefix(ns);
        self.delegations.insert(ns.namespace_key(), node);
    }
}

impl ZoneIndex for MemoryIndex {
    fn delegation(&self, namespace_key: &str) -> Result<Option<NodeDelegation>, ZoneReadError> {
        Ok(self.delegations.get(namespace_key).cloned())
    }

    fn serial(&self) -> Result<u64, ZoneReadError> {
        Ok(self.serial)
    }

    fn alias(&self, relative_name: &str) -> Result<Option<String>, ZoneReadError> {
        let key = reversed_name(relative_name);
        Ok(self
            .identifiers
            .get(&key)
            .or_else(|| self.prefixes.get(&key))
            .cloned())
    }

    fn prefix_alias(&self, relative_name: &str) -> Result<Option<String>, ZoneReadError> {
        Ok(self.prefixes.get(&reversed_name(relative_name)).cloned())
    }

    fn has_names_under(&self, relative_name: &str) -> Result<bool, ZoneReadError> {
        let mut start = reversed_name(relative_name);
        if !start.is_empty() {
            start.push('.');
        }
        let below = |map: &BTreeMap<String, String>| {
            map.range(start.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&start))
        };
        Ok(below(&self.identifiers) || below(&self.prefixes))
    }

    fn identifier(&self, id: &Identifier) -> Result<Option<IdentifierRecord>, ZoneReadError> {
        Ok(self.records.get(id).cloned())
    }

    fn names(&self) -> Box<dyn Iterator<Item = Result<(String, String), ZoneReadError>> + '_> {
        // The same order as the sled index: by reversed name, an identifier before a
        // prefix of the same name.
        let mut all: Vec<(String, u8, &String)> = self
            .identifiers
            .iter()
            .map(|(k, v)| (k.clone(), 0, v))
            .chain(self.prefixes.iter().map(|(k, v)| (k.clone(), 1, v)))
            .collect();
        all.sort();
        Box::new(
            all.into_iter()
                .map(|(k, _, v)| Ok((reversed_name(&k), v.clone()))),
        )
    }
}
