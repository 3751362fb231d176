//! [`TraceMirror`]: the timelines the trace engine walks, held in memory beside the
//! index, so that a trace reads from sled only the few event records it keeps.
//!
//! A trace walks, for every pack it reaches, the pack's timeline around a load, back
//! to its packing and at its end (its status now), and the load and sterilizer
//! timelines. Those walks decide on the role in the key alone and never on
//! [`Role::Event`] entries (washing, dispatch, an instrument put into a pack). The
//! mirror holds every `ee/` and `es/` entry with another role — a small part of the
//! index (no instrument timelines, no values) — sorted as the keys sort.
//!
//! # Consistency
//!
//! [`TraceMirror::load`] reads the index before the node takes writes;
//! [`TraceMirror::apply`] brings it in step after each commit, with the keys the
//! commit changed (the sequencer's commit hook, before any writer is answered). A
//! commit only adds entries, at ledger indexes from the size the mirror reflects on;
//! for every subject it names, the mirror walks the subject's keys from the end until it
//! has found as many entries at those ledger indexes as the commit wrote, wherever an
//! event's time put them. If the index cannot be read meanwhile, the mirror stops
//! answering and every walk goes to the index from then on.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::trace::{Position, TraceSource};
use super::{Role, key_position};
use crate::index::{Index, IndexError};

/// The spaces the mirror holds: item and load timelines, sterilizer timelines.
const SPACES: [&[u8]; 2] = [b"ee/", b"es/"];

/// An entry of a timeline: its position and the subject's role.
type Entry = (i64, u64, u8);

#[derive(Default)]
struct Timelines {
    /// By subject prefix (`ee/<subject>\0`): the entries other than [`Role::Event`],
    /// in key order.
    subjects: HashMap<Vec<u8>, Vec<Entry>>,
    /// The ledger size the mirror reflects.
    applied: u64,
    /// Set when an update could not read the index: the mirror no longer answers.
    stale: bool,
}

/// The trace engine's timelines in memory, over an [`Index`] for everything else.
pub struct TraceMirror {
    index: Index,
    timelines: RwLock<Timelines>,
}

/// The subject prefix of a `…\0 T L R` key (everything before its last 17 bytes).
fn prefix_of(key: &[u8]) -> Option<&[u8]> {
    key.len().checked_sub(17).map(|end| &key[..end])
}

fn keep(role: Role) -> bool {
    role != Role::Event
}

impl TraceMirror {
    /// Reads the timelines from `index`.
    pub fn load(index: &Index) -> Result<Self, IndexError> {
        let mut timelines = Timelines {
            applied: index.applied()?,
            ..Timelines::default()
        };
        for space in SPACES {
            let mut end = space.to_vec();
            if let Some(last) = end.last_mut() {
                *last += 1;
            }
            index.walk_range(space, &end, false, &mut |key, _| {
                if let (Some((time, leaf, role)), Some(prefix)) =
                    (key_position(key), prefix_of(key))
                    && keep(role)
                {
                    match timelines.subjects.get_mut(prefix) {
                        Some(entries) => entries.push((time, leaf, role as u8)),
                        None => {
                            timelines
                                .subjects
                                .insert(prefix.to_vec(), vec![(time, leaf, role as u8)]);
                        }
                    }
                }
                true
            })?;
        }
        timelines.subjects.shrink_to_fit();
        Ok(Self {
            index: index.clone(),
            timelines: RwLock::new(timelines),
        })
    }

    /// Brings the mirror in step with a commit that changed `changed` (the index keys,
    /// as the commit hook gives them). Called once per commit, in commit order, before
    /// the next commit.
    pub fn apply(&self, changed: &[String]) -> Result<(), IndexError> {
        let mut timelines = self
            .timelines
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if timelines.stale {
            return Ok(());
        }
        let updated = update(&self.index, &mut timelines, changed);
        if !matches!(updated, Ok(true)) {
            timelines.stale = true;
            timelines.subjects = HashMap::new();
        }
        updated.map(|_| ())
    }

    /// The index under the mirror.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Whether two mirrors hold the same timelines (one kept in step with commits and
    /// one loaded afresh, say). A mirror that stopped answering holds none.
    pub fn matches(&self, other: &TraceMirror) -> bool {
        let read = |m: &TraceMirror| {
            let timelines = m.timelines.read().unwrap_or_else(PoisonError::into_inner);
            let mut all: Vec<(Vec<u8>, Vec<Entry>)> = timelines
                .subjects
                .iter()
                .filter(|(_, entries)| !entries.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            all.sort();
            (timelines.stale, all)
        };
        read(self) == read(other)
    }

    /// How many timeline entries the mirror holds.
    pub fn entries(&self) -> usize {
        let timelines = self
            .timelines
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        timelines.subjects.values().map(Vec::len).sum()
    }
}

/// Adds the entries of one commit: for each subject prefix the changed keys name, walks
/// the index's keys under it from the end until as many keys at ledger indexes from
/// `applied` were seen as the commit wrote there. False if some could not be found
/// (the commit was not what the mirror reflects plus new entries).
fn update(
    index: &Index,
    timelines: &mut Timelines,
    changed: &[String],
) -> Result<bool, IndexError> {
    let since = timelines.applied;
    // Keys per subject prefix. A key is `space/<subject>\0` then 17 binary bytes that
    // the hook's text may have altered, but the subject (UTF-8, before the first NUL)
    // comes through as it was: the keys of a subject that itself holds a NUL fall under
    // the prefix up to that NUL, and are found by walking that whole range.
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for key in changed {
        let key = key.as_bytes();
        if SPACES.iter().any(|space| key.starts_with(space))
            && let Some(nul) = key.iter().position(|b| *b == 0)
        {
            *counts.entry(&key[..=nul]).or_default() += 1;
        }
    }
    for (prefix, mut wanted) in counts {
        let mut end = prefix.to_vec();
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let mut found: Vec<(Vec<u8>, Entry)> = Vec::new();
        index.walk_range(prefix, &end, true, &mut |key, _| {
            if let Some((time, leaf, role)) = key_position(key)
                && leaf >= since
            {
                wanted -= 1;
                if let Some(subject) = prefix_of(key)
                    && keep(role)
                {
                    found.push((subject.to_vec(), (time, leaf, role as u8)));
                }
            }
            wanted > 0
        })?;
        if wanted > 0 {
            return Ok(false);
        }
        for (subject, entry) in found {
            let entries = timelines.subjects.entry(subject).or_default();
            let at = entries.partition_point(|e| *e < entry);
            if entries.get(at) != Some(&entry) {
                entries.insert(at, entry);
            }
        }
    }
    timelines.applied = index.applied()?;
    Ok(true)
}

impl TraceSource for TraceMirror {
    fn walk(
        &self,
        start: &[u8],
        end: &[u8],
        backward: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), IndexError> {
        self.index.walk_range(start, end, backward, visit)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        self.index.get_raw(key)
    }

    fn patient_commitments(&self, patient: &str) -> Result<Vec<String>, IndexError> {
        self.index.patient_commitments(patient)
    }

    fn walk_roles(
        &self,
        prefix: &[u8],
        from: Option<Position>,
        backward: bool,
        visit: &mut dyn FnMut(Position, Role) -> bool,
    ) -> Option<Result<(), IndexError>> {
        if !SPACES.iter().any(|space| prefix.starts_with(space)) {
            return None;
        }
        let timelines = self
            .timelines
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if timelines.stale {
            return None;
        }
        let entries = timelines
            .subjects
            .get(prefix)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // Strictly after (or before) every role at `from`.
        let (after, before) = match from {
            None => (0, entries.len()),
            Some((time, leaf)) => (
                entries.partition_point(|e| (e.0, e.1) <= (time, leaf)),
                entries.partition_point(|e| (e.0, e.1) < (time, leaf)),
            ),
        };
        let mut step = |&(time, leaf, role): &Entry| match Role::from_byte(role) {
            Some(role) => visit((time, leaf), role),
            None => true,
        };
        if backward {
            let _ = entries[..before].iter().rev().all(&mut step);
        } else {
            let range = if from.is_some() {
                &entries[after..]
            } else {
                entries
            };
            let _ = range.iter().all(&mut step);
        }
        Some(Ok(()))
    }
}
