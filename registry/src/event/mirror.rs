//! [`TraceMirror`]: the timelines the trace engine walks and the event records it
//! reads, held in memory beside the index, so that a trace does not wait on sled's
//! pages (at 10M events the index is larger than the machine's memory, and every
//! record a trace read from it was a page read from disk).
//!
//! A trace walks, for every pack it reaches, the pack's timeline around a load, back
//! to its packing and at its end (its status now), the load and sterilizer
//! timelines, and a patient's uses. Those walks decide on the role in the key alone
//! and never on [`Role::Event`] entries (washing, dispatch, an instrument put into a
//! pack). The mirror holds every `ee/`, `es/` and `ep/` entry with another role — a
//! small part of the index (no instrument timelines, no values) — sorted as the keys
//! sort, and every `ev/` record (what a trace reads of an event: ~175 bytes in the
//! generated CSSD history, its ID, a load's packs, a use's commitment and readers) in
//! one buffer by ledger index.
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
//!
//! # Snapshot
//!
//! Reading the mirror from a large index walks most of it (at 10M events, 37 GB of
//! sled: about 18 minutes on a 2-core machine). A node that stops cleanly writes the
//! mirror to a snapshot file ([`TraceMirror::save`]) and reads it back on its next start
//! ([`TraceMirror::open`]) when the snapshot reflects exactly the ledger size the index
//! does; any other snapshot (older, unreadable, or one whose SHA-256 does not match) is
//! ignored and the index walked. A snapshot is removed once read, so a node that then
//! stops without writing one (killed) walks the index on its next start.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::{PoisonError, RwLock};

use sha2::{Digest, Sha256};

use super::trace::{Position, TraceSource};
use super::{Role, key_position, record_key};
use crate::index::{Index, IndexError, prefix_end};

/// The spaces the mirror holds: item and load timelines, sterilizer timelines, the
/// uses behind a patient commitment.
const SPACES: [&[u8]; 3] = [b"ee/", b"es/", b"ep/"];

/// The event records' space, and the key just past it.
const RECORDS: (&[u8], &[u8]) = (b"ev/", b"ev0");

/// An entry of a timeline: its position and the subject's role.
type Entry = (i64, u64, u8);

#[derive(Default)]
struct Timelines {
    /// By subject prefix (`ee/<subject>\0`): the entries other than [`Role::Event`],
    /// in key order.
    subjects: HashMap<Vec<u8>, Vec<Entry>>,
    /// The event records.
    records: Records,
    /// The ledger size the mirror reflects.
    applied: u64,
    /// Set when an update could not read the index: the mirror no longer answers.
    stale: bool,
}

/// The `ev/` records by ledger index: leaf `L`'s is `bytes[ends[L - 1]..ends[L]]`
/// (`ends[-1]` being 0), empty when `L` is not an event. Eight bytes per ledger entry
/// and the records themselves, in two allocations.
#[derive(Default, PartialEq, Eq)]
struct Records {
    ends: Vec<u64>,
    bytes: Vec<u8>,
}

impl Records {
    /// Adds the record of `leaf`, past every leaf held. False if `leaf` is not.
    fn push(&mut self, leaf: u64, record: &[u8]) -> bool {
        let Ok(leaf) = usize::try_from(leaf) else {
            return false;
        };
        if leaf < self.ends.len() {
            return false;
        }
        let end = self.bytes.len() as u64;
        self.ends.resize(leaf, end);
        self.bytes.extend_from_slice(record);
        self.ends.push(self.bytes.len() as u64);
        true
    }

    /// Adds the records in the index's `ev/` keys from `since` on. False if one is
    /// not past every leaf held (the index is not the mirror's plus new events).
    fn read(&mut self, index: &Index, since: u64) -> Result<bool, IndexError> {
        let mut added = true;
        index.walk_range(&record_key(since), RECORDS.1, false, &mut |key, value| {
            added = key
                .strip_prefix(RECORDS.0)
                .and_then(|leaf| <[u8; 8]>::try_from(leaf).ok())
                .is_some_and(|leaf| self.push(u64::from_be_bytes(leaf), value));
            added
        })?;
        Ok(added)
    }

    fn get(&self, leaf: u64) -> Option<&[u8]> {
        let leaf = usize::try_from(leaf).ok()?;
        let end = usize::try_from(*self.ends.get(leaf)?).ok()?;
        let start = match leaf.checked_sub(1) {
            Some(before) => usize::try_from(self.ends[before]).ok()?,
            None => 0,
        };
        self.bytes.get(start..end).filter(|r| !r.is_empty())
    }
}

/// The trace engine's timelines and records in memory, over an [`Index`] for
/// everything else.
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
            index.walk_range(space, &prefix_end(space), false, &mut |key, _| {
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
        let since = timelines.applied;
        if !timelines.records.read(index, 0)? || timelines.records.ends.len() as u64 > since {
            // Records past the size the index says it reflects: not a consistent index.
            timelines = Timelines {
                stale: true,
                ..Timelines::default()
            };
        }
        timelines.subjects.shrink_to_fit();
        timelines.records.ends.shrink_to_fit();
        timelines.records.bytes.shrink_to_fit();
        Ok(Self {
            index: index.clone(),
            timelines: RwLock::new(timelines),
        })
    }

    /// The mirror from the snapshot at `snapshot` when it reflects the index as it is,
    /// else read from the index (see the module's documentation). Says which.
    pub fn open(index: &Index, snapshot: &Path) -> Result<(Self, Source), IndexError> {
        let applied = index.applied()?;
        let read = read_snapshot(snapshot);
        // Read or not, the snapshot has served: once the index moves on it is stale.
        let _ = std::fs::remove_file(snapshot);
        let source = match read {
            Ok(timelines) if timelines.applied == applied => {
                return Ok((
                    Self {
                        index: index.clone(),
                        timelines: RwLock::new(timelines),
                    },
                    Source::Snapshot,
                ));
            }
            Ok(timelines) => Source::Index(format!(
                "the snapshot reflects ledger size {}, the index {applied}",
                timelines.applied
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Source::Index("no snapshot".into()),
            Err(e) => Source::Index(format!("the snapshot does not read back: {e}")),
        };
        Ok((Self::load(index)?, source))
    }

    /// Writes the mirror to `path` for [`TraceMirror::open`]: to a temporary file,
    /// synced, then renamed over `path` (a crash leaves the old file or none). Writes
    /// nothing for a mirror that stopped answering. Call it when no commit can come
    /// (the sequencer stopped), so that the snapshot reflects the index.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let timelines = self
            .timelines
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if timelines.stale {
            return Ok(());
        }
        let temporary = path.with_extension("tmp");
        let mut out = Hashed {
            inner: BufWriter::with_capacity(1 << 20, File::create(&temporary)?),
            hash: Sha256::new(),
        };
        out.write_all(SNAPSHOT_MAGIC)?;
        out.write_all(&timelines.applied.to_be_bytes())?;
        out.write_all(&(timelines.subjects.len() as u64).to_be_bytes())?;
        for (prefix, entries) in &timelines.subjects {
            out.write_all(&(prefix.len() as u64).to_be_bytes())?;
            out.write_all(prefix)?;
            out.write_all(&(entries.len() as u64).to_be_bytes())?;
            for (time, leaf, role) in entries {
                out.write_all(&time.to_be_bytes())?;
                out.write_all(&leaf.to_be_bytes())?;
                out.write_all(&[*role])?;
            }
        }
        let records = &timelines.records;
        out.write_all(&(records.ends.len() as u64).to_be_bytes())?;
        for end in &records.ends {
            out.write_all(&end.to_be_bytes())?;
        }
        out.write_all(&(records.bytes.len() as u64).to_be_bytes())?;
        out.write_all(&records.bytes)?;
        let digest = out.hash.finalize();
        let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.write_all(&digest)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
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
            timelines.records = Records::default();
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
            let records = (0..timelines.records.ends.len() as u64)
                .filter_map(|leaf| Some((leaf, timelines.records.get(leaf)?.to_vec())))
                .collect::<Vec<_>>();
            (timelines.stale, all, records)
        };
        read(self) == read(other)
    }

    /// How many event records the mirror holds, and their bytes.
    pub fn records(&self) -> (usize, usize) {
        let timelines = self
            .timelines
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let records = &timelines.records;
        let count = (0..records.ends.len() as u64)
            .filter(|leaf| records.get(*leaf).is_some())
            .count();
        (count, records.bytes.len())
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

/// Where [`TraceMirror::open`] read the mirror from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The snapshot.
    Snapshot,
    /// The index, and why not the snapshot.
    Index(String),
}

const SNAPSHOT_MAGIC: &[u8] = b"medid trace timelines 1\n";

/// A writer or reader that hashes what goes through it.
struct Hashed<T> {
    inner: T,
    hash: Sha256,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Hashed<R> {
    fn bytes<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut bytes = [0; N];
        self.inner.read_exact(&mut bytes)?;
        self.hash.update(bytes);
        Ok(bytes)
    }

    fn u64(&mut self) -> io::Result<u64> {
        self.bytes().map(u64::from_be_bytes)
    }

    /// A count of items of `size` bytes each, refused if they would not fit in what
    /// is left of a file of `len` bytes (a damaged count allocates nothing).
    fn count(&mut self, size: u64, len: u64) -> io::Result<usize> {
        let count = self.u64()?;
        match count.checked_mul(size) {
            Some(bytes) if bytes <= len => usize::try_from(count).map_err(io::Error::other),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a count larger than the file",
            )),
        }
    }

    fn vec(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; len];
        self.inner.read_exact(&mut bytes)?;
        self.hash.update(&bytes);
        Ok(bytes)
    }
}

/// Reads what [`TraceMirror::save`] wrote, checking its hash.
fn read_snapshot(path: &Path) -> io::Result<Timelines> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut input = Hashed {
        inner: BufReader::with_capacity(1 << 20, file),
        hash: Sha256::new(),
    };
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    if input.vec(SNAPSHOT_MAGIC.len())? != SNAPSHOT_MAGIC {
        return Err(invalid("not a trace timelines snapshot"));
    }
    let mut timelines = Timelines {
        applied: input.u64()?,
        ..Timelines::default()
    };
    let subjects = input.count(16, len)?;
    timelines.subjects.reserve(subjects);
    for _ in 0..subjects {
        let prefix_len = input.count(1, len)?;
        let prefix = input.vec(prefix_len)?;
        let count = input.count(17, len)?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let time = i64::from_be_bytes(input.bytes()?);
            let leaf = input.u64()?;
            let [role] = input.bytes()?;
            entries.push((time, leaf, role));
        }
        timelines.subjects.insert(prefix, entries);
    }
    let ends = input.count(8, len)?;
    timelines.records.ends = (0..ends)
        .map(|_| input.u64())
        .collect::<io::Result<Vec<_>>>()?;
    let bytes = input.count(1, len)?;
    timelines.records.bytes = input.vec(bytes)?;
    if timelines.records.ends.last().copied().unwrap_or(0) != bytes as u64
        || !timelines.records.ends.is_sorted()
    {
        return Err(invalid("record offsets out of order"));
    }
    let digest = input.hash.finalize();
    let mut stored = [0; 32];
    input.inner.read_exact(&mut stored)?;
    if digest[..] != stored || input.inner.read(&mut [0])? != 0 {
        return Err(invalid("the snapshot's SHA-256 does not match"));
    }
    Ok(timelines)
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
        let end = prefix_end(prefix);
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
    if !timelines.records.read(index, since)? {
        return Ok(false);
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
        if let Some(leaf) = key
            .strip_prefix(RECORDS.0)
            .and_then(|leaf| <[u8; 8]>::try_from(leaf).ok())
        {
            let timelines = self
                .timelines
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if !timelines.stale {
                let leaf = u64::from_be_bytes(leaf);
                return Ok(timelines.records.get(leaf).map(<[u8]>::to_vec));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::Records;

    #[test]
    fn records_are_found_by_ledger_index_across_gaps() {
        let mut records = Records::default();
        assert!(records.push(0, b"first"));
        // Leaves 1 to 3 are not events (operations, say).
        assert!(records.push(4, b"fifth"));
        assert!(records.push(5, b"sixth"));
        assert_eq!(records.get(0), Some(&b"first"[..]));
        assert_eq!(records.get(2), None);
        assert_eq!(records.get(4), Some(&b"fifth"[..]));
        assert_eq!(records.get(5), Some(&b"sixth"[..]));
        assert_eq!(records.get(6), None);
        assert_eq!(records.get(u64::MAX), None);
        // A leaf at or before one held is refused and changes nothing.
        assert!(!records.push(5, b"again"));
        assert!(!records.push(1, b"late"));
        assert_eq!(records.get(1), None);
        assert_eq!(records.get(5), Some(&b"sixth"[..]));
    }
}
