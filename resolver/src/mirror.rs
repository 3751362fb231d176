//! [`IndexMirror`]: the part of the registry's index that resolution reads — DNS names,
//! identifier records, prefixes, and which items and lots have lifecycle events — held
//! in memory, so that an answer the [`AnswerCache`](crate::AnswerCache) does not hold
//! is computed without a sled read (with a million identifiers, most of those reads
//! missed sled's page cache and waited on the disk).
//!
//! [`RecordReads`] is what the DNS and HTTP answers read; the sled
//! [`Index`] and the mirror both implement it.
//!
//! # Consistency
//!
//! The mirror is loaded from the index before the node takes writes
//! ([`IndexMirror::load`]) and kept equal to it by [`IndexMirror::apply`], which
//! `medid serve`'s commit hook calls with the keys every commit changed, before the
//! answer cache is invalidated and before any writer is answered: a read after an
//! acknowledged write sees the write. Its serial (the SOA serial and the cache's guard
//! against a race between a computed answer and a write) moves only after the mirror
//! holds the commit. If the index cannot be read while a commit is applied, the mirror
//! stops answering and every read goes to the index from then on.
//!
//! What is mirrored, by index key:
//! - `a/<reversed name>` and `a/<reversed name> prefix` → name → identifier and prefix,
//!   and for every name how many names lie below it (empty non-terminals, NXDOMAIN);
//! - `i/<identifier>` → the record, as the index stores it (JSON, parsed per answer);
//! - `p/<namespace key>` → the prefix record;
//! - `ee/<item>\0…` and `el/<lot>\0…` → that the item or lot has events. Only then is
//!   an item's lifecycle status (`item_status`) read from the index; an item without
//!   events and whose lot has none is `unprocessed` without a read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use medid_registry::dnsname::reversed_name;
use medid_registry::event::epcis::lot_of;
use medid_registry::event::trace::{ItemStatus, item_status};
use medid_registry::id::Identifier;
use medid_registry::{IdentifierRecord, Index, IndexError, PrefixRecord, prefix_end};

/// The reads an identifier's answers need, from the sled [`Index`] or from an
/// [`IndexMirror`].
pub trait RecordReads: Send + Sync {
    /// The record of an identifier (without its derived status).
    fn identifier_record(&self, id: &Identifier) -> Result<Option<IdentifierRecord>, IndexError>;
    /// The record of an identifier as the index stores it (JSON), by canonical text, for
    /// readers that parse only what they need.
    fn identifier_json(&self, id: &str) -> Result<Option<Arc<[u8]>>, IndexError>;
    /// The record of a prefix, by namespace key (`hdl:86.1000`).
    fn prefix_record(&self, key: &str) -> Result<Option<PrefixRecord>, IndexError>;
    /// The lifecycle status of an item (`Unprocessed` when no event names it).
    fn status(&self, item: &str) -> Result<ItemStatus, IndexError>;
}

impl RecordReads for Index {
    fn identifier_record(&self, id: &Identifier) -> Result<Option<IdentifierRecord>, IndexError> {
        self.identifier(id)
    }

    fn identifier_json(&self, id: &str) -> Result<Option<Arc<[u8]>>, IndexError> {
        Ok(self.get_raw(format!("i/{id}").as_bytes())?.map(Arc::from))
    }

    fn prefix_record(&self, key: &str) -> Result<Option<PrefixRecord>, IndexError> {
        self.prefix(key)
    }

    fn status(&self, item: &str) -> Result<ItemStatus, IndexError> {
        item_status(self, item)
    }
}

/// The index's resolution keys in memory; see the [module docs](self).
pub struct IndexMirror {
    index: Index,
    state: RwLock<Mirror>,
}

/// What a DNS name stands for: the values of its two alias keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Target {
    /// The canonical identifier named so.
    pub(crate) identifier: Option<Box<str>>,
    /// `prefix:<namespace key>` of the prefix named so.
    pub(crate) prefix: Option<Box<str>>,
}

impl Target {
    fn is_empty(&self) -> bool {
        self.identifier.is_none() && self.prefix.is_none()
    }
}

#[derive(Default)]
struct Mirror {
    /// The index could not be read while a commit was applied: the mirror may be
    /// stale, and reads go to the index.
    broken: bool,
    /// The ledger size the mirror reflects (the index's `m/applied`).
    serial: u64,
    /// DNS name relative to the zone → what it stands for.
    names: HashMap<Box<str>, Target>,
    /// DNS name (`""`: the zone) → how many names lie strictly below it.
    below: HashMap<Box<str>, u64>,
    /// Canonical identifier → its record, as the index stores it (shared, so that an
    /// answer parses it outside the lock).
    records: HashMap<Box<str>, Arc<[u8]>>,
    /// Namespace key → its prefix record.
    prefixes: HashMap<Box<str>, Arc<PrefixRecord>>,
    /// Items (`ee/`) and lots (`el/`) that events name.
    event_subjects: HashSet<Box<str>>,
}

/// The names strictly above `name` up to the zone (`""`), nearest first.
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(name);
    std::iter::from_fn(move || {
        let current = rest?;
        if current.is_empty() {
            rest = None;
            return None;
        }
        let parent = current.split_once('.').map_or("", |(_, parent)| parent);
        rest = Some(parent);
        Some(parent)
    })
}

impl Mirror {
    /// Sets what `name` stands for (nothing: the name is gone).
    fn set_name(&mut self, name: &str, target: Target) {
        let existed = if target.is_empty() {
            self.names.remove(name).is_some()
        } else {
            self.names.insert(name.into(), target).is_some()
        };
        let exists = self.names.contains_key(name);
        if existed == exists {
            return;
        }
        for ancestor in ancestors(name) {
            let count = self.below.entry(ancestor.into()).or_default();
            if exists {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.below.remove(ancestor);
                }
            }
        }
    }

    fn set_record(&mut self, id: &str, record: Option<Vec<u8>>) {
        match record {
            Some(bytes) => self.records.insert(id.into(), Arc::from(bytes)),
            None => self.records.remove(id),
        };
    }

    fn set_prefix(&mut self, key: &str, record: Option<PrefixRecord>) {
        match record {
            Some(record) => self.prefixes.insert(key.into(), Arc::new(record)),
            None => self.prefixes.remove(key),
        };
    }

    fn has_events(&self, item: &str) -> bool {
        self.event_subjects.contains(item)
            || lot_of(item).is_some_and(|lot| self.event_subjects.contains(lot.as_str()))
    }
}

/// The subject of an event key (`ee/<item>\0…`, `el/<lot>\0…`).
fn event_subject(key: &[u8]) -> Option<&str> {
    let rest = key
        .strip_prefix(b"ee/")
        .or_else(|| key.strip_prefix(b"el/"))?;
    let subject = rest.split(|&b| b == 0).next()?;
    std::str::from_utf8(subject).ok()
}

/// Every subject with a key under `space` (`ee/`, `el/`), as [`event_subject`] reads
/// it, to `found`. One short read per subject: past a subject's first key the walk
/// starts again beyond all of its keys (`<space><subject>\0` → `<space><subject>\x01`),
/// so a pack in a thousand cycles costs one read, not the tens of thousands of keys of
/// its timeline (at 10M events, a walk of every key was most of the index on disk).
fn subjects(index: &Index, space: &[u8], found: &mut dyn FnMut(&str)) -> Result<(), IndexError> {
    let end = prefix_end(space);
    let mut start = space.to_vec();
    loop {
        let mut next = None;
        index.walk_range(&start, &end, false, &mut |key, _| {
            let after = match key
                .get(space.len()..)
                .unwrap_or_default()
                .iter()
                .position(|&b| b == 0)
            {
                // The subject's keys all start with `<space><subject>\0`.
                Some(nul) => prefix_end(&key[..=space.len() + nul]),
                // A key without the separator: just past it.
                None => [key, &[0]].concat(),
            };
            next = Some((event_subject(key).map(str::to_owned), after));
            false
        })?;
        let Some((subject, after)) = next else {
            return Ok(());
        };
        if let Some(subject) = subject {
            found(&subject);
        }
        start = after;
    }
}

/// Every key and value under `prefix`, in key order, to `visit`.
fn scan(
    index: &Index,
    prefix: &[u8],
    visit: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<(), IndexError> {
    index.walk_range(prefix, &prefix_end(prefix), false, &mut |key, value| {
        visit(key, value);
        true
    })
}

/// What was read from the index for one commit, before the mirror is locked.
#[derive(Default)]
struct Update {
    names: Vec<(String, Target)>,
    records: Vec<(String, Option<Vec<u8>>)>,
    prefixes: Vec<(String, Option<PrefixRecord>)>,
    event_subjects: Vec<String>,
}

/// The text under `key`, if any.
fn text(index: &Index, key: &str) -> Result<Option<Box<str>>, IndexError> {
    Ok(index
        .get_raw(key.as_bytes())?
        .map(|v| String::from_utf8_lossy(&v).into()))
}

/// A prefix record as the index holds it; one that does not parse is absent (as
/// [`Index::prefix`] has it).
fn parse_prefix(bytes: &[u8]) -> Option<PrefixRecord> {
    serde_json::from_slice(bytes).ok()
}

impl IndexMirror {
    /// Reads the resolution keys of `index` into memory (a scan of its `a/`, `i/`,
    /// `p/`, `ee/` and `el/` keys). Call it before the node takes writes, then
    /// [`IndexMirror::apply`] every commit.
    pub fn load(index: &Index) -> Result<Self, IndexError> {
        let mut mirror = Mirror {
            serial: index.applied()?,
            ..Mirror::default()
        };
        let mut names: Vec<(String, bool, Box<str>)> = Vec::new();
        scan(index, b"a/", &mut |key, value| {
            let key = String::from_utf8_lossy(key.get(2..).unwrap_or_default());
            let (reversed, is_prefix) = match key.strip_suffix(" prefix") {
                Some(reversed) => (reversed, true),
                None => (key.as_ref(), false),
            };
            names.push((
                reversed_name(reversed),
                is_prefix,
                String::from_utf8_lossy(value).into(),
            ));
        })?;
        for (name, is_prefix, value) in names {
            let mut target = mirror.names.get(name.as_str()).cloned().unwrap_or_default();
            if is_prefix {
                target.prefix = Some(value);
            } else {
                target.identifier = Some(value);
            }
            mirror.set_name(&name, target);
        }
        scan(index, b"i/", &mut |key, value| {
            let id = String::from_utf8_lossy(key.get(2..).unwrap_or_default());
            mirror.set_record(&id, Some(value.to_vec()));
        })?;
        scan(index, b"p/", &mut |key, value| {
            let key = String::from_utf8_lossy(key.get(2..).unwrap_or_default());
            mirror.set_prefix(&key, parse_prefix(value));
        })?;
        for space in [&b"ee/"[..], b"el/"] {
            subjects(index, space, &mut |subject| {
                if !mirror.event_subjects.contains(subject) {
                    mirror.event_subjects.insert(subject.into());
                }
            })?;
        }
        Ok(IndexMirror {
            index: index.clone(),
            state: RwLock::new(mirror),
        })
    }

    /// Brings the mirror up to the index after a commit that changed `changed_keys`
    /// (as the sequencer's commit hook reports them). On a read error the mirror stops
    /// answering (every read goes to the index) and the error is returned.
    pub fn apply(&self, changed_keys: &[String]) -> Result<(), IndexError> {
        let update = self.read_update(changed_keys);
        let serial = self.index.applied();
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let (update, serial) = match (update, serial) {
            (Ok(update), Ok(serial)) => (update, serial),
            (Err(e), _) | (_, Err(e)) => {
                state.broken = true;
                return Err(e);
            }
        };
        for (name, target) in update.names {
            state.set_name(&name, target);
        }
        for (id, record) in update.records {
            state.set_record(&id, record);
        }
        for (key, record) in update.prefixes {
            state.set_prefix(&key, record);
        }
        for subject in update.event_subjects {
            state.event_subjects.insert(subject.into());
        }
        state.serial = serial;
        Ok(())
    }

    /// Reads the current values of the mirrored keys among `changed_keys`.
    fn read_update(&self, changed_keys: &[String]) -> Result<Update, IndexError> {
        let mut update = Update::default();
        for key in changed_keys {
            if let Some(alias) = key.strip_prefix("a/") {
                let reversed = alias.strip_suffix(" prefix").unwrap_or(alias);
                let target = Target {
                    identifier: text(&self.index, &format!("a/{reversed}"))?,
                    prefix: text(&self.index, &format!("a/{reversed} prefix"))?,
                };
                update.names.push((reversed_name(reversed), target));
            } else if let Some(id) = key.strip_prefix("i/") {
                update
                    .records
                    .push((id.to_owned(), self.index.get_raw(key.as_bytes())?));
            } else if let Some(prefix) = key.strip_prefix("p/") {
                let record = self.index.get_raw(key.as_bytes())?;
                update
                    .prefixes
                    .push((prefix.to_owned(), record.as_deref().and_then(parse_prefix)));
            } else if let Some(subject) = event_subject(key.as_bytes()) {
                update.event_subjects.push(subject.to_owned());
            }
        }
        Ok(update)
    }

    /// Runs `read` on the mirror, or `fallback` on the index when the mirror is broken.
    fn read<T>(
        &self,
        read: impl FnOnce(&Mirror) -> T,
        fallback: impl FnOnce(&Index) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if state.broken {
            drop(state);
            return fallback(&self.index);
        }
        Ok(read(&state))
    }

    /// The index the mirror follows.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The ledger size the mirror reflects.
    pub fn serial(&self) -> Result<u64, IndexError> {
        self.read(|m| m.serial, Index::applied)
    }

    /// What the DNS name `relative_name` stands for (see [`Index::alias`]).
    pub(crate) fn target(&self, relative_name: &str) -> Result<Target, IndexError> {
        self.read(
            |m| m.names.get(relative_name).cloned().unwrap_or_default(),
            |index| {
                Ok(Target {
                    identifier: text(index, &format!("a/{}", reversed_name(relative_name)))?,
                    prefix: index.prefix_alias(relative_name)?.map(Into::into),
                })
            },
        )
    }

    /// Whether some name lies strictly below `relative_name` (see
    /// [`Index::has_names_under`]).
    pub fn has_names_under(&self, relative_name: &str) -> Result<bool, IndexError> {
        self.read(
            |m| m.below.contains_key(relative_name),
            |index| index.has_names_under(relative_name),
        )
    }
}

impl RecordReads for IndexMirror {
    fn identifier_record(&self, id: &Identifier) -> Result<Option<IdentifierRecord>, IndexError> {
        let key = id.to_string();
        // A record that does not parse is reported as absent (as `Index::identifier`).
        self.read(
            |m| {
                m.records
                    .get(key.as_str())
                    .and_then(|bytes| serde_json::from_slice(bytes).ok())
            },
            |index| index.identifier(id),
        )
    }

    fn identifier_json(&self, id: &str) -> Result<Option<Arc<[u8]>>, IndexError> {
        self.read(
            |m| m.records.get(id).cloned(),
            |index| index.identifier_json(id),
        )
    }

    fn prefix_record(&self, key: &str) -> Result<Option<PrefixRecord>, IndexError> {
        self.read(
            |m| {
                m.prefixes
                    .get(key)
                    .map(|record| PrefixRecord::clone(record))
            },
            |index| index.prefix(key),
        )
    }

    fn status(&self, item: &str) -> Result<ItemStatus, IndexError> {
        if self.read(|m| m.has_events(item), |_| Ok(true))? {
            item_status(&self.index, item)
        } else {
            Ok(ItemStatus::Unprocessed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_reach_the_zone() {
        assert_eq!(
            ancestors("pkg-1.23.hdl").collect::<Vec<_>>(),
            ["23.hdl", "hdl", ""]
        );
        assert_eq!(ancestors("").count(), 0);
    }

    #[test]
    fn names_below_are_counted() {
        let mut mirror = Mirror::default();
        let id = Target {
            identifier: Some("86.1000/a".into()),
            prefix: None,
        };
        mirror.set_name("a.1000.86.hdl", id.clone());
        mirror.set_name("b.1000.86.hdl", id.clone());
        mirror.set_name("a.1000.86.hdl", id);
        assert_eq!(mirror.below.get("1000.86.hdl"), Some(&2));
        mirror.set_name("a.1000.86.hdl", Target::default());
        assert_eq!(mirror.below.get(""), Some(&1));
        mirror.set_name("b.1000.86.hdl", Target::default());
        assert!(mirror.below.is_empty());
        assert!(mirror.names.is_empty());
    }

    #[test]
    fn event_keys_name_their_subject() {
        assert_eq!(event_subject(b"ee/86.1000/p\0t\0l"), Some("86.1000/p"));
        assert_eq!(event_subject(b"el//01/1/10/L\0t"), Some("/01/1/10/L"));
        assert_eq!(event_subject(b"es/x\0t"), None);
    }

    #[test]
    fn the_subject_scan_finds_every_subject_once_in_order() {
        #![allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index")).unwrap();
        let keys: [&[u8]; 12] = [
            b"ee/a\0\x01",
            b"ee/a\0\x02",
            b"ee/a\0\xff\xff",
            b"ee/a\x01b\0x",
            b"ee/ab\0x",
            b"ee/b",
            b"ee/c\0x\0y",
            b"ee/c\0z",
            b"el/L1\0t",
            b"el/L1\0u",
            b"ef/other\0x",
            b"ed/other\0x",
        ];
        for key in keys {
            index.raw_insert(key, b"").unwrap();
        }
        for space in [&b"ee/"[..], b"el/"] {
            // Against every key read one by one.
            let mut every = std::collections::BTreeSet::new();
            scan(&index, space, &mut |key, _| {
                every.extend(event_subject(key).map(str::to_owned));
            })
            .unwrap();
            let mut found = Vec::new();
            subjects(&index, space, &mut |s| found.push(s.to_owned())).unwrap();
            assert_eq!(found, every.into_iter().collect::<Vec<_>>());
        }
        let mut found = Vec::new();
        subjects(&index, b"ee/", &mut |s| found.push(s.to_owned())).unwrap();
        assert_eq!(found, ["a", "a\x01b", "ab", "b", "c"]);
    }
}
