//! The sled index: identifier → record, prefix → controllers, DID → status, nonces,
//! DNS name → identifier or prefix.
//!
//! Derived from the ledger only, and rebuildable from it (`Registry::reindex`). One
//! sled tree holds every key (`i/…` identifiers, `p/…` prefixes, `d/…` DIDs, `n/…`
//! nonces, `a/…` DNS names — see [`Index::alias`]) plus `m/applied`, the ledger size the index reflects; a commit writes the
//! changes of a batch and the new `m/applied` in one atomic sled batch and flushes
//! before returning, so the index is either before or after the batch.

use std::path::Path;
use std::sync::PoisonError;

use medid_did::DidKey;

use crate::dnsname::reversed_name;
use crate::id::Identifier;
use crate::op::{OpError, RestrictedPayload};
use crate::patient_links::PatientLinks;
use crate::state::{
    Changes, DidRecord, IdentifierRecord, PrefixRecord, StateRead, alias_key, did_key,
    identifier_key, prefix_alias_key, prefix_key,
};

const APPLIED: &[u8] = b"m/applied";
/// The ledger's last synced checkpoint (see `Registry::sync`).
const BASE: &[u8] = b"m/base";
/// Prefix of the write-ahead groups: `w/` and the leaf index of the group's first
/// entry, 8 bytes big-endian; the value is each entry's length (4 bytes big-endian)
/// followed by the entry.
const WAL: &[u8] = b"w/";

/// The most bytes of entries one write-ahead value holds (one entry may be larger).
///
/// sled 0.34 stores a tree node that serializes to more than a quarter of a segment
/// (128 KiB) as a separate blob file, and a leaf holds up to 16 values; a group of
/// captured events written as one value made such blobs on every commit. Closing an
/// index whose write-ahead groups had gone through blobs hung in sled's flush (every
/// sled thread idle, the flush waiting for a log position nothing would write) in
/// about a third of the event-trace test runs; with small values, never in the runs
/// since. They also spare the file system a blob file created and unlinked per commit.
const WAL_CHUNK: usize = 6 * 1024;

/// The write-ahead keys and values of a group of entries starting at leaf `first`: one
/// value per run of entries of at most [`WAL_CHUNK`] bytes, keyed by its first leaf.
pub(crate) fn wal_group(first: u64, entries: &[Vec<u8>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut values = Vec::new();
    let mut value: Vec<u8> = Vec::new();
    let mut start = first;
    for (leaf, entry) in (first..).zip(entries) {
        if !value.is_empty() && value.len() + 4 + entry.len() > WAL_CHUNK {
            values.push((wal_key(start), std::mem::take(&mut value)));
            start = leaf;
        }
        // A ledger entry is at most 64 KiB.
        value.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        value.extend_from_slice(entry);
    }
    if !value.is_empty() {
        values.push((wal_key(start), value));
    }
    values
}

/// The first key after every key that starts with `prefix`, for a range walk of the
/// keys under it: `prefix` with its last byte raised by one (trailing 255s dropped
/// first; empty, a range of nothing, when `prefix` is all 255s).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            break;
        }
    }
    end
}

fn wal_key(leaf: u64) -> Vec<u8> {
    let mut key = WAL.to_vec();
    key.extend_from_slice(&leaf.to_be_bytes());
    key
}

/// Splits a write-ahead group back into its entries; `None` if it is malformed.
fn wal_entries(mut value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut entries = Vec::new();
    while !value.is_empty() {
        let (len, rest) = value.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        entries.push(rest.get(..len)?.to_vec());
        value = rest.get(len..)?;
    }
    Some(entries)
}

/// Where a payload is stored: its group file (named by the group's first leaf), the
/// offset of its JSON in that file and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadPointer {
    /// The first ledger index of the group that wrote it.
    pub group: u64,
    /// Where its JSON starts in the group file.
    pub offset: u64,
    /// The length of its JSON.
    pub len: u32,
}

impl PayloadPointer {
    fn to_bytes(self) -> [u8; 20] {
        let mut bytes = [0; 20];
        bytes[..8].copy_from_slice(&self.group.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.offset.to_be_bytes());
        bytes[16..].copy_from_slice(&self.len.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 20] = bytes.try_into().ok()?;
        let (group, rest) = bytes.split_first_chunk::<8>()?;
        let (offset, len) = rest.split_first_chunk::<8>()?;
        Some(Self {
            group: u64::from_be_bytes(*group),
            offset: u64::from_be_bytes(*offset),
            len: u32::from_be_bytes(len.try_into().ok()?),
        })
    }
}

fn pointer_key(commitment: &str) -> Vec<u8> {
    format!("r/{commitment}").into_bytes()
}

/// The page cache of [`Index::open`]: sled's default.
pub(crate) const DEFAULT_CACHE_BYTES: u64 = 1024 * 1024 * 1024;

/// The size of sled's page cache for indexes [`Index::open`] opens from now on, in
/// bytes (0: [`DEFAULT_CACHE_BYTES`]); see [`Index::set_cache_capacity`].
static CACHE_CAPACITY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long [`Index::open`] waits for a just-dropped handle's sled lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Orders this process's sled batches and flushes: a batch holds it shared, a flush
/// (and the close of an index) exclusively. sled 0.34 applies a batch under one lock
/// that every sled database of the process shares, and a flush waits for the disk
/// while holding that lock shared: a flush meeting another thread's batch that waits
/// for the lock could wait forever (seen with two nodes open in one process, one
/// closing). The node itself writes from one thread; this keeps two nodes in one
/// process (tests, a program embedding them) from meeting that way.
static BATCHES: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn apply_batch(tree: &sled::Tree, batch: sled::Batch) -> Result<(), IndexError> {
    let _batches = BATCHES.read().unwrap_or_else(PoisonError::into_inner);
    tree.apply_batch(batch)?;
    Ok(())
}

fn flush(tree: &sled::Tree) -> Result<(), IndexError> {
    let _alone = BATCHES.write().unwrap_or_else(PoisonError::into_inner);
    tree.flush()?;
    Ok(())
}

/// Why the index could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("index: {0}")]
pub struct IndexError(#[from] sled::Error);

/// A handle on the index; cheap to clone, safe to read from many threads.
#[derive(Clone)]
pub struct Index {
    db: sled::Db,
    /// Patient links, from the erasable payload store: `p/<patient>\0<commitment>`,
    /// `c/<commitment>` → patient, and `r/<commitment>` → where its payload is stored
    /// ([`PayloadPointer`]). Not derived from the ledger alone, so `verify` does
    /// not compare it; `reindex` rebuilds it from the ledger and the payloads.
    patients: sled::Tree,
    /// The patient links in memory, once [`Index::hold_patient_links`] read them;
    /// shared by every clone, and changed under its lock after the tree is. Its count
    /// of owners is the count of handles: the last one dropped flushes the index (see
    /// [`BATCHES`]).
    links: std::sync::Arc<std::sync::RwLock<Option<PatientLinks>>>,
}

impl Drop for Index {
    fn drop(&mut self) {
        if std::sync::Arc::strong_count(&self.links) == 1 {
            // Flushed here, so that sled's own flush when the handles go finds nothing
            // left to write. Errors are sled's to report when the index is next opened.
            let _ = flush(&self.patients);
            let _ = flush(&self.db);
        }
    }
}

impl Index {
    /// Opens (or creates) the index at `path`.
    ///
    /// The caller holds the node's lock, so a sled lock still held on `path` can only
    /// be a handle of this process that was just dropped and whose background I/O is
    /// finishing: opening waits for it (up to [`LOCK_WAIT`]) instead of failing.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let cache_bytes = match CACHE_CAPACITY.load(std::sync::atomic::Ordering::Relaxed) {
            0 => DEFAULT_CACHE_BYTES,
            bytes => bytes,
        };
        Self::open_with_cache(path, cache_bytes)
    }

    /// [`Index::open`] with a page cache of `cache_bytes` (sled's default is 1 GB).
    /// Traces walk the timelines of random items across the whole history: once the
    /// index outgrows the cache, every page they touch that is not cached is read and
    /// decoded again.
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self, IndexError> {
        let started = std::time::Instant::now();
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if (e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock"))
                        && started.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other?,
            }
        };
        let patients = db.open_tree("patients")?;
        Ok(Self {
            db,
            patients,
            links: Default::default(),
        })
    }

    /// Sets the size of sled's page cache, in bytes, for the indexes this process opens
    /// from now on (0: sled's default, 1 GiB). A node whose reads are answered from
    /// memory (`medid serve`) needs little of it.
    pub fn set_cache_capacity(bytes: u64) {
        CACHE_CAPACITY.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The ledger size the index reflects.
    pub fn applied(&self) -> Result<u64, IndexError> {
        Ok(self
            .db
            .get(APPLIED)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// Writes `changes` and the new applied size atomically, then flushes to disk.
    pub(crate) fn commit(&self, changes: &Changes, applied: u64) -> Result<(), IndexError> {
        let mut batch = sled::Batch::default();
        for (key, value) in &changes.writes {
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
        batch.insert(APPLIED, &applied.to_be_bytes());
        apply_batch(&self.db, batch)?;
        flush(&self.db)?;
        Ok(())
    }

    /// The write-ahead entries with their leaf indexes, in order: the entries
    /// committed since the ledger's last sync. A malformed group is an error.
    pub(crate) fn wal(&self) -> Result<Vec<(u64, Vec<u8>)>, IndexError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(WAL) {
            let (key, value) = item?;
            let first = key
                .get(WAL.len()..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes);
            let (Some(first), Some(entries)) = (first, wal_entries(&value)) else {
                return Err(IndexError(sled::Error::Corruption { at: None, bt: () }));
            };
            out.extend((first..).zip(entries));
        }
        Ok(out)
    }

    /// The ledger's last synced checkpoint.
    pub(crate) fn base(&self) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(self.db.get(BASE)?.map(|v| v.to_vec()))
    }

    /// Records `checkpoint` (of tree size `size`) as the synced base and drops the
    /// write-ahead entries below `size`, atomically.
    pub(crate) fn set_base(&self, checkpoint: &[u8], size: u64) -> Result<(), IndexError> {
        let mut batch = sled::Batch::default();
        for item in self.db.range(wal_key(0)..wal_key(size)) {
            batch.remove(item?.0);
        }
        batch.insert(BASE, checkpoint);
        apply_batch(&self.db, batch)?;
        flush(&self.db)?;
        Ok(())
    }

    /// Removes everything, for a rebuild.
    pub(crate) fn clear(&self) -> Result<(), IndexError> {
        self.db.clear()?;
        self.clear_patient_links()?;
        flush(&self.db)?;
        Ok(())
    }

    /// Every key and value except bookkeeping, in key order.
    pub(crate) fn entries(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), IndexError>> + '_ {
        self.db
            .iter()
            .filter(
                |item| !matches!(item, Ok((k, _)) if k.starts_with(b"m/") || k.starts_with(WAL)),
            )
            .map(|item| {
                item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(IndexError)
            })
    }

    /// The record of an identifier.
    pub fn identifier(&self, id: &Identifier) -> Result<Option<IdentifierRecord>, IndexError> {
        self.typed(&identifier_key(id))
    }

    /// The record of a prefix, by namespace key (`hdl:86.1000`, …).
    pub fn prefix(&self, key: &str) -> Result<Option<PrefixRecord>, IndexError> {
        self.typed(&prefix_key(key))
    }

    /// The record of a registered DID.
    pub fn did(&self, did: &DidKey) -> Result<Option<DidRecord>, IndexError> {
        self.typed(&did_key(did))
    }

    /// What the DNS name `relative_name` stands for: the canonical identifier whose name
    /// it is, else `prefix:<namespace key>` of the prefix whose name it is (see
    /// [`crate::dnsname`] for the names; `relative_name` is relative to the zone, lower
    /// case, without trailing dot).
    ///
    /// Names are kept under alias keys with their labels reversed,
    /// `a/hdl.86.1000.23.pkg-1` → `86.1000.23/pkg-1` and
    /// `a/hdl.86.1000.23 prefix` → `prefix:hdl:86.1000.23`, so that everything below a
    /// name is one key range ([`Index::has_names_under`]).
    pub fn alias(&self, relative_name: &str) -> Result<Option<String>, IndexError> {
        match self.text(&alias_key(relative_name))? {
            Some(id) => Ok(Some(id)),
            None => self.prefix_alias(relative_name),
        }
    }

    /// `prefix:<namespace key>` of the prefix whose DNS name is `relative_name`. A name
    /// can stand for an identifier and a prefix at once (`86.1000/23` and the prefix
    /// `86.1000.23`); [`Index::alias`] gives the identifier first.
    pub fn prefix_alias(&self, relative_name: &str) -> Result<Option<String>, IndexError> {
        self.text(&prefix_alias_key(relative_name))
    }

    /// Whether some identifier or prefix has a name strictly below `relative_name`
    /// (`""` is the zone apex): a prefix scan of the alias keys.
    pub fn has_names_under(&self, relative_name: &str) -> Result<bool, IndexError> {
        let mut start = alias_key(relative_name);
        if !relative_name.is_empty() {
            start.push(b'.');
        }
        Ok(self.db.scan_prefix(start).next().transpose()?.is_some())
    }

    /// Every DNS name with what it stands for (as [`Index::alias`] and
    /// [`Index::prefix_alias`] give it), in the order of the reversed labels: a name
    /// comes before the names below it.
    pub fn aliases(&self) -> impl Iterator<Item = Result<(String, String), IndexError>> + '_ {
        self.db.scan_prefix(b"a/").map(|item| {
            let (key, value) = item?;
            let key = String::from_utf8_lossy(&key);
            let reversed = key.get(2..).unwrap_or_default();
            let reversed = reversed.strip_suffix(" prefix").unwrap_or(reversed);
            Ok((
                reversed_name(reversed),
                String::from_utf8_lossy(&value).into_owned(),
            ))
        })
    }

    /// Links patients to the commitments of their uses (payloads of events).
    pub(crate) fn link_patients(&self, payloads: &[RestrictedPayload]) -> Result<(), IndexError> {
        if payloads.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for payload in payloads {
            batch.insert(
                format!("p/{}\0{}", payload.data, payload.commitment).into_bytes(),
                Vec::new(),
            );
            batch.insert(
                format!("c/{}", payload.commitment).into_bytes(),
                payload.data.as_bytes(),
            );
        }
        apply_batch(&self.patients, batch)?;
        self.with_links(|links| {
            for payload in payloads {
                links.link(&payload.data, &payload.commitment);
            }
        });
        Ok(())
    }

    /// Reads the patient links into memory: from now on [`Index::patient_of`] and
    /// [`Index::patient_commitments`] answer from there, for this handle and every
    /// clone of it, and every change of the links updates them. Gives how many links
    /// were read. For a node that answers traces (see `patient_links.rs`).
    pub fn hold_patient_links(&self) -> Result<usize, IndexError> {
        let mut held = self.links.write().unwrap_or_else(PoisonError::into_inner);
        // Read under the lock: a link made meanwhile waits for it, then applies itself
        // again (links are idempotent).
        let mut links = PatientLinks::default();
        for item in self.patients.scan_prefix(b"c/") {
            let (key, patient) = item?;
            links.link(
                &String::from_utf8_lossy(&patient),
                &String::from_utf8_lossy(&key[2..]),
            );
        }
        links.shrink_to_fit();
        let count = links.len();
        *held = Some(links);
        Ok(count)
    }

    /// Runs `change` on the links in memory, if they are held.
    fn with_links(&self, change: impl FnOnce(&mut PatientLinks)) {
        let mut held = self.links.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(links) = held.as_mut() {
            change(links);
        }
    }

    /// What `read` gives of the links in memory, if they are held.
    fn read_links<T>(&self, read: impl FnOnce(&PatientLinks) -> T) -> Option<T> {
        let held = self.links.read().unwrap_or_else(PoisonError::into_inner);
        held.as_ref().map(read)
    }

    /// Removes every patient link and payload pointer, in the tree and in memory.
    fn clear_patient_links(&self) -> Result<(), IndexError> {
        self.patients.clear()?;
        self.with_links(|links| *links = PatientLinks::default());
        Ok(())
    }

    /// Records where the payloads of a group were written (see
    /// `Registry::write_payloads`); made durable by the next commit's flush.
    pub(crate) fn set_payload_pointers(
        &self,
        pointers: &[(String, PayloadPointer)],
    ) -> Result<(), IndexError> {
        let mut batch = sled::Batch::default();
        for (commitment, pointer) in pointers {
            batch.insert(pointer_key(commitment), pointer.to_bytes().as_slice());
        }
        apply_batch(&self.patients, batch)?;
        Ok(())
    }

    /// Where the payload of `commitment` is stored, unless it was erased.
    pub fn payload_pointer(&self, commitment: &str) -> Result<Option<PayloadPointer>, IndexError> {
        Ok(self
            .patients
            .get(pointer_key(commitment))?
            .and_then(|v| PayloadPointer::from_bytes(&v)))
    }

    /// Drops the pointer and the patient link of an erased payload, durably.
    pub(crate) fn unlink_patient(&self, commitment: &str) -> Result<(), IndexError> {
        let key = format!("c/{commitment}");
        if let Some(patient) = self.patients.remove(key.as_bytes())? {
            let patient = String::from_utf8_lossy(&patient);
            self.patients
                .remove(format!("p/{patient}\0{commitment}").as_bytes())?;
        }
        self.patients.remove(pointer_key(commitment))?;
        flush(&self.patients)?;
        self.with_links(|links| links.unlink(commitment));
        Ok(())
    }

    /// Rebuilds the payload pointers from the payloads `stored` in the group files,
    /// and the patient links from every patient commitment in the index whose payload
    /// is stored (or that `legacy` finds in a file of its own).
    pub(crate) fn relink_patients(
        &self,
        stored: &[(RestrictedPayload, PayloadPointer)],
        legacy: impl Fn(&str) -> Option<RestrictedPayload>,
    ) -> Result<(), IndexError> {
        self.clear_patient_links()?;
        let pointers: Vec<(String, PayloadPointer)> = stored
            .iter()
            .map(|(p, pointer)| (p.commitment.clone(), *pointer))
            .collect();
        self.set_payload_pointers(&pointers)?;
        let by_commitment: std::collections::HashMap<&str, &RestrictedPayload> = stored
            .iter()
            .map(|(p, _)| (p.commitment.as_str(), p))
            .collect();
        let mut found = Vec::new();
        for commitment in crate::event::patient_commitments_indexed(self)? {
            match by_commitment.get(commitment.as_str()) {
                Some(p) => found.push((*p).clone()),
                None => {
                    if let Some(p) = legacy(&commitment).filter(RestrictedPayload::opens) {
                        found.push(p);
                    }
                }
            }
        }
        self.link_patients(&found)?;
        flush(&self.patients)?;
        Ok(())
    }

    /// The commitments of a patient's uses.
    pub fn patient_commitments(&self, patient: &str) -> Result<Vec<String>, IndexError> {
        if let Some(commitments) = self.read_links(|links| links.commitments(patient)) {
            return Ok(commitments);
        }
        let prefix = format!("p/{patient}\0");
        self.patients
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (key, _) = item?;
                Ok(String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            })
            .collect()
    }

    /// The patient behind a commitment, unless its payload was erased.
    pub fn patient_of(&self, commitment: &str) -> Result<Option<String>, IndexError> {
        if let Some(patient) = self.read_links(|links| links.patient_of(commitment)) {
            return Ok(patient);
        }
        Ok(self
            .patients
            .get(format!("c/{commitment}").as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Walks the keys in `[start, end)`, ascending or descending, while `visit`
    /// returns true.
    pub fn walk_range(
        &self,
        start: &[u8],
        end: &[u8],
        backward: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), IndexError> {
        if start >= end {
            return Ok(());
        }
        let range = self.db.range(start.to_vec()..end.to_vec());
        let mut step = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<bool, IndexError> {
            let (k, v) = item?;
            Ok(visit(&k, &v))
        };
        if backward {
            for item in range.rev() {
                if !step(item)? {
                    break;
                }
            }
        } else {
            for item in range {
                if !step(item)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The value under `key`.
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    /// Low-level write, for tests that tamper with the index.
    #[doc(hidden)]
    pub fn raw_insert(&self, key: &[u8], value: &[u8]) -> Result<(), IndexError> {
        self.db.insert(key, value)?;
        flush(&self.db)?;
        Ok(())
    }

    /// Bytes of keys and values the index holds (to measure sled's space amplification).
    pub fn logical_bytes(&self) -> Result<u64, IndexError> {
        let mut total = 0u64;
        for item in self.db.iter() {
            let (k, v) = item?;
            total += (k.len() + v.len()) as u64;
        }
        Ok(total)
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> Result<u64, IndexError> {
        Ok(self.db.size_on_disk()?)
    }

    fn text(&self, key: &[u8]) -> Result<Option<String>, IndexError> {
        Ok(self
            .db
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn typed<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, IndexError> {
        // A value that does not parse is reported as absent here; `verify` names it.
        Ok(self
            .db
            .get(key)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }
}

impl StateRead for Index {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        self.db
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| OpError::Invalid {
                pointer: String::new(),
                message: format!("index read failed: {e}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::{Index, WAL_CHUNK, prefix_end, wal_group};
    use crate::state::Changes;

    #[test]
    fn write_ahead_groups_are_cut_into_small_values_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        // Entries of many sizes, one larger than a chunk on its own.
        let entries: Vec<Vec<u8>> = (0..300u32)
            .map(|i| {
                vec![
                    i as u8;
                    if i == 7 {
                        3 * WAL_CHUNK
                    } else {
                        (i as usize * 37) % 900
                    }
                ]
            })
            .collect();
        let values = wal_group(1000, &entries);
        assert!(values.len() > 10, "{} values", values.len());
        for (_, value) in &values {
            assert!(value.len() <= WAL_CHUNK || value.len() == 3 * WAL_CHUNK + 4);
        }
        let mut changes = Changes::default();
        changes
            .writes
            .extend(values.into_iter().map(|(k, v)| (k, Some(v))));
        index.commit(&changes, 1300).unwrap();
        let read = index.wal().unwrap();
        assert_eq!(read.len(), entries.len());
        for ((leaf, entry), (i, expected)) in read.iter().zip(entries.iter().enumerate()) {
            assert_eq!((*leaf, entry), (1000 + i as u64, expected));
        }
    }

    /// Writes a few keys under `tag` and commits them, then links a few patients (a
    /// batch left for sled to flush).
    fn write(index: &Index, tag: usize, applied: u64) {
        let mut changes = Changes::default();
        for key in 0..50 {
            changes
                .writes
                .insert(format!("x/{tag}/{key}").into_bytes(), Some(vec![7; 300]));
        }
        index.commit(&changes, applied).unwrap();
        let payloads: Vec<_> = (0..20)
            .map(|p| crate::op::RestrictedPayload::seal(&format!("PAT-{tag}-{p}")))
            .collect();
        index.link_patients(&payloads).unwrap();
    }

    #[test]
    fn two_indexes_in_one_process_write_and_close_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // One index written without pause while another is opened, written and closed
        // again and again, as two tests (or two nodes) in one process do.
        let writer = {
            let (path, stop, done) = (dir.path().join("a"), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let index = Index::open(&path).unwrap();
                let mut round = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    write(&index, round, round as u64);
                    round += 1;
                }
                done.send(()).unwrap();
            })
        };
        let closer = {
            let path = dir.path().join("b");
            std::thread::spawn(move || {
                for round in 0..60 {
                    let index = Index::open(&path.join(round.to_string())).unwrap();
                    for batch in 0..5 {
                        write(&index, batch, batch as u64);
                    }
                }
                done.send(()).unwrap();
            })
        };
        let hung = "sled batches and closes hang each other";
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect(hung);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect(hung);
        writer.join().unwrap();
        closer.join().unwrap();
    }

    #[test]
    fn the_end_of_a_prefix_sorts_after_every_key_under_it_and_before_the_rest() {
        assert_eq!(prefix_end(b"ee/"), b"ee0");
        assert_eq!(prefix_end(b"ee/pack\0"), b"ee/pack\x01");
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"");
        // After every key under the prefix, and not after a key outside it.
        let end = prefix_end(b"ee/pack\0");
        assert!(b"ee/pack\0\xff\xff".as_slice() < end.as_slice());
        assert!(end.as_slice() < b"ee/packs\0".as_slice());
    }
}
