//! A node's registry on disk: its key, ledger, index and off-log payloads, and the
//! write path that ties them together.
//!
//! Data directory layout (`--data DIR`):
//!
//! ```text
//! DIR/LOCK          held (flock) while a process uses the directory
//! DIR/node.json     {"name": origin of the log, "admin": DID allowed to create prefixes}
//! DIR/node.key      the node's Ed25519 key file (mode 0600): signs checkpoints
//! DIR/admin.key     the admin key, when `init` generated one
//! DIR/log/          the ledger, C2SP tlog-tiles layout: publish it as static files
//! DIR/index/        the sled index (rebuildable from log/)
//! DIR/restricted/   payloads of restricted values, off-log and erasable: one file per
//!                   group commit (`<first leaf>.pay`)
//! ```
//!
//! [`Registry::submit`] is the write path (group commit): every operation of a batch is
//! checked against the state in order, the payloads of restricted values are written,
//! the accepted entries are appended to the ledger (durable), then the index is updated
//! and flushed; only then are receipts returned.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medid_did::{DidKey, KeyPair, PendingSignatures};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::entry::{LedgerEntry, apply_entry};
use crate::event::SignedEvent;
use crate::index::{Index, IndexError, PayloadPointer, wal_group};
use crate::log::{FsTileStore, Hash, Log, LogError};
use crate::op::{
    OpError, Operation, RestrictedPayload, SignedOperation, Submission, check_signatures,
};
use crate::state::{Changes, Overlay};

/// How far an operation's `created` may be from the node's clock, in seconds.
pub const DEFAULT_CLOCK_WINDOW: i64 = 300;

/// A node's configuration, `DIR/node.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name: the origin line of its checkpoints.
    pub name: String,
    /// The DID allowed to create top-level prefixes.
    pub admin: DidKey,
}

/// What `init` created.
#[derive(Debug)]
pub struct InitOutcome {
    /// The node's DID (its checkpoint-signing key).
    pub node_did: DidKey,
    /// The signed-note verifier key of the node's checkpoints.
    pub verifier_key: String,
    /// The admin DID.
    pub admin: DidKey,
    /// Where the admin key was written, when `init` generated it.
    pub admin_key_file: Option<PathBuf>,
}

/// The answer to an accepted operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// Position of the operation in the ledger.
    pub leaf_index: u64,
    /// RFC 6962 leaf hash of the entry, base64.
    pub entry_hash: Hash,
    /// Size of the ledger's signed checkpoint that includes it.
    pub tree_size: u64,
}

/// Why a registry could not be opened, written or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another process uses the data directory.
    #[error("{0} is in use by another medid process")]
    Locked(PathBuf),
    /// The directory holds no node (run `medid init`).
    #[error("{0} holds no medid node; run `medid init --data {0} --name NAME` first")]
    NotInitialised(PathBuf),
    /// The directory holds a node already.
    #[error("{0} already holds a medid node")]
    AlreadyInitialised(PathBuf),
    /// A configuration or key file is not valid.
    #[error("{0}")]
    Config(String),
    /// The ledger failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A ledger entry is not a valid operation, or does not apply: the ledger and the
    /// code disagree.
    #[error("ledger entry {index}: {reason}")]
    BadEntry {
        /// The entry's index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The request is refused (retention, …).
    #[error("refused ({code}): {0}", code = .0.code())]
    Refused(OpError),
    /// The index does not match the ledger.
    #[error(
        "index value `{key}` does not match the ledger (last written by entry {entry:?}); run `medid reindex`"
    )]
    IndexMismatch {
        /// The key.
        key: String,
        /// The ledger entry that wrote the value, when known.
        entry: Option<u64>,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_owned(),
        source,
    }
}

/// An operation or event ready to be sequenced: schema, signatures, freshness and
/// payloads checked. Preparing is the expensive, parallel part of a write.
#[derive(Debug, Clone)]
pub struct Prepared {
    entry: LedgerEntry,
    restricted: Vec<RestrictedPayload>,
}

/// Every payload opens one of `commitments`, and every commitment has its payload.
fn check_payloads(commitments: &[&str], payloads: &[RestrictedPayload]) -> Result<(), OpError> {
    for commitment in commitments {
        let payload = payloads
            .iter()
            .find(|p| p.commitment == *commitment)
            .ok_or_else(|| OpError::Restricted(format!("no payload for {commitment}")))?;
        if !payload.opens() {
            return Err(OpError::Restricted(format!(
                "the payload does not open {commitment}"
            )));
        }
    }
    if let Some(extra) = payloads
        .iter()
        .find(|p| !commitments.contains(&p.commitment.as_str()))
    {
        return Err(OpError::Restricted(format!(
            "payload {} matches no value",
            extra.commitment
        )));
    }
    Ok(())
}

impl Prepared {
    /// Checks a submission at time `now`.
    pub fn new(
        submission: &Submission,
        now: OffsetDateTime,
        window_seconds: i64,
    ) -> Result<Self, OpError> {
        let (prepared, signatures) = Self::read(submission, now, window_seconds)?;
        signatures.verify().map_err(crate::op::refused)?;
        Ok(prepared)
    }

    /// Checks submissions at time `now`, their signatures as one batch (see
    /// [`check_signatures`]).
    pub fn all(
        submissions: &[Submission],
        now: OffsetDateTime,
        window_seconds: i64,
    ) -> Vec<Result<Self, OpError>> {
        check_signatures(
            submissions
                .iter()
                .map(|s| Self::read(s, now, window_seconds))
                .collect(),
        )
    }

    /// A checked event with the payloads of its sealed members. An event has no
    /// freshness window (events are often captured late); a replay is the same event,
    /// answered idempotently by its hash ID.
    pub fn event(event: SignedEvent, restricted: Vec<RestrictedPayload>) -> Result<Self, OpError> {
        let commitments: Vec<&str> = event.facts.sealed.iter().map(String::as_str).collect();
        check_payloads(&commitments, &restricted)?;
        Ok(Self {
            entry: LedgerEntry::Event(event),
            restricted,
        })
    }

    /// [`Prepared::new`] but for the signatures, which it returns to check.
    pub fn read(
        submission: &Submission,
        now: OffsetDateTime,
        window_seconds: i64,
    ) -> Result<(Self, PendingSignatures), OpError> {
        let (entry, signatures) = LedgerEntry::read(&submission.operation)?;
        let op = match entry {
            LedgerEntry::Event(event) => {
                let prepared = Self::event(event, submission.restricted.clone())?;
                return Ok((prepared, signatures));
            }
            LedgerEntry::Operation(op) => op,
        };
        if (op.created - now).whole_seconds().abs() > window_seconds {
            return Err(OpError::Stale {
                created: submission.operation["created"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                window_seconds,
            });
        }
        let commitments: Vec<&str> = match &op.op {
            Operation::IdentifierRegister { values, .. } => values.iter(),
            Operation::IdentifierUpdate { set, .. } => set.iter(),
            _ => [].iter(),
        }
        .filter_map(|v| v.commitment.as_deref())
        .collect();
        check_payloads(&commitments, &submission.restricted)?;
        let prepared = Self {
            entry: LedgerEntry::Operation(op),
            restricted: submission.restricted.clone(),
        };
        Ok((prepared, signatures))
    }

    /// The ledger entry.
    pub fn entry(&self) -> &LedgerEntry {
        &self.entry
    }

    /// The operation, when the submission is one.
    pub fn operation(&self) -> Option<&SignedOperation> {
        self.entry.operation()
    }
}

/// What a group commit answered, and which index keys it changed.
#[derive(Debug)]
pub struct Committed {
    /// One answer per operation, in submission order.
    pub answers: Vec<Result<Receipt, OpError>>,
    /// The index keys the commit changed (`i/<identifier>`, `p/<prefix>`, `d/<did>`).
    pub changed: Vec<String>,
}

/// A node's registry, opened for writing. Holds the data directory's lock.
pub struct Registry {
    dir: PathBuf,
    config: NodeConfig,
    log: Log<FsTileStore>,
    index: Index,
    /// The ledger size at the last [`Registry::sync`], and when that was.
    synced: (u64, Instant),
    /// Whether dropping the registry syncs the ledger (see [`Registry::abandon`]).
    sync_on_drop: bool,
    _lock: File,
}

/// How many entries may wait in the write-ahead log before the ledger is synced.
const SYNC_ENTRIES: u64 = 8192;
/// How long entries may wait in the write-ahead log before the ledger is synced.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_millis(500);

impl Registry {
    /// Creates a node in `dir`: node key, configuration, an empty signed ledger. With
    /// no `admin`, generates an admin key into `DIR/admin.key`.
    pub fn init(
        dir: &Path,
        name: &str,
        admin: Option<DidKey>,
    ) -> Result<InitOutcome, RegistryError> {
        Self::init_with_key(dir, name, admin, KeyPair::generate())
    }

    /// [`Registry::init`] with a node key made beforehand (a parent can delegate to
    /// its DID before the node exists).
    pub fn init_with_key(
        dir: &Path,
        name: &str,
        admin: Option<DidKey>,
        node_key: KeyPair,
    ) -> Result<InitOutcome, RegistryError> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
            return Err(RegistryError::Config(format!(
                "node name `{name}` must be non-empty, without spaces or `+` (it is a signed-note key name)"
            )));
        }
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let config_path = dir.join("node.json");
        if config_path.exists() {
            return Err(RegistryError::AlreadyInitialised(dir.to_owned()));
        }
        let lock = lock(dir)?;
        node_key
            .write_file(&dir.join("node.key"))
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        let (admin, admin_key_file) = match admin {
            Some(admin) => (admin, None),
            None => {
                let key = KeyPair::generate();
                let path = dir.join("admin.key");
                key.write_file(&path)
                    .map_err(|e| RegistryError::Config(e.to_string()))?;
                (key.did(), Some(path))
            }
        };
        let config = NodeConfig {
            name: name.to_owned(),
            admin,
        };
        let log = Log::open(
            open_store(dir)?,
            config.name.clone(),
            node_key.signing_key().clone(),
        )?;
        let verifier_key = log.verifier_key().to_owned();
        // node.json last: a directory without it is not a node, and init can run again.
        write_durably(
            &config_path,
            &serde_json::to_vec_pretty(&config).unwrap_or_default(),
        )?;
        drop(lock);
        Ok(InitOutcome {
            node_did: node_key.did(),
            verifier_key,
            admin,
            admin_key_file,
        })
    }

    /// Opens the node in `dir`, locking it, and brings the index up to the ledger.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        let config_path = dir.join("node.json");
        if !config_path.exists() {
            return Err(RegistryError::NotInitialised(dir.to_owned()));
        }
        let lock = lock(dir)?;
        let config: NodeConfig =
            serde_json::from_slice(&fs::read(&config_path).map_err(io_error(&config_path))?)
                .map_err(|e| RegistryError::Config(format!("{}: {e}", config_path.display())))?;
        let node_key = KeyPair::read_file(&dir.join("node.key"))
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        let index = Index::open(&dir.join("index"))?;
        let log = open_log(
            open_store(dir)?,
            &config.name,
            node_key.signing_key(),
            &index,
        )?;
        let mut registry = Self {
            dir: dir.to_owned(),
            config,
            log,
            index,
            synced: (0, Instant::now()),
            sync_on_drop: true,
            _lock: lock,
        };
        registry.log.defer_sync();
        registry.sync()?;
        registry.catch_up()?;
        Ok(registry)
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The ledger.
    pub fn log(&self) -> &Log<FsTileStore> {
        &self.log
    }

    /// The index, for reads (cheap to clone).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks and sequences a batch of submissions at the node's clock.
    pub fn submit(
        &mut self,
        batch: &[Submission],
    ) -> Result<Vec<Result<Receipt, OpError>>, RegistryError> {
        let prepared = Prepared::all(batch, OffsetDateTime::now_utc(), DEFAULT_CLOCK_WINDOW);
        self.sequence(prepared)
    }

    /// Sequences prepared operations as one group commit: refusals are answered, the
    /// rest are logged durably, indexed, and answered with receipts.
    pub fn sequence(
        &mut self,
        batch: Vec<Result<Prepared, OpError>>,
    ) -> Result<Vec<Result<Receipt, OpError>>, RegistryError> {
        let committed = self.sequence_reporting(batch)?;
        self.sync_when_due()?;
        Ok(committed.answers)
    }

    /// Makes the ledger's files durable and empties the write-ahead log (see
    /// [`Registry::sequence_reporting`]). Commits do it by themselves every few
    /// thousand entries or [`SYNC_INTERVAL`]; a writer that goes idle calls it.
    pub fn sync(&mut self) -> Result<(), RegistryError> {
        let size = self.log.size();
        // Step 1: every tile and bundle written since the last sync, fsync'd. Dying
        // here changes nothing: `open` still starts from the previous base.
        self.log.sync()?;
        // Step 2: the new base checkpoint, and the write-ahead entries it covers
        // dropped, in one atomic index batch. Dying before it lands: as in step 1.
        self.index.set_base(self.log.checkpoint(), size)?;
        self.synced = (size, Instant::now());
        Ok(())
    }

    /// Closes the registry as a crash would: without syncing the ledger, so that the
    /// next `open` recovers from the write-ahead log. For crash tests.
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.sync_on_drop = false;
    }

    /// [`Registry::sync`] if entries have waited in the write-ahead log long enough,
    /// or enough of them.
    pub fn sync_when_due(&mut self) -> Result<(), RegistryError> {
        let (synced, at) = self.synced;
        let waiting = self.log.size().saturating_sub(synced);
        if waiting >= SYNC_ENTRIES || (waiting > 0 && at.elapsed() >= SYNC_INTERVAL) {
            self.sync()?;
        }
        Ok(())
    }

    /// [`Registry::sequence`], also giving the index keys the batch changed
    /// (`i/<identifier>`, `p/<prefix>`, `d/<did>`, …), so caches can drop what they say.
    ///
    /// One fsync makes a group durable: the index changes and the entries themselves
    /// (as a write-ahead log, `w/<leaf index>`) go into one atomic sled batch, flushed
    /// before anything is published. The ledger's tiles and checkpoint are then written
    /// without waiting for the disk and made durable every few thousand entries
    /// ([`Registry::sync`]), which drops the write-ahead entries they cover. After a
    /// crash, `open` starts the ledger again from the last synced checkpoint and
    /// appends the write-ahead entries: the same entries give the same tree and the
    /// same signed checkpoints, so nothing acknowledged or published is lost or forked.
    pub fn sequence_reporting(
        &mut self,
        batch: Vec<Result<Prepared, OpError>>,
    ) -> Result<Committed, RegistryError> {
        let first = self.log.size();
        let mut changes = Changes::default();
        let mut entries: Vec<Vec<u8>> = Vec::new();
        let mut payloads: Vec<RestrictedPayload> = Vec::new();
        let mut patients: Vec<RestrictedPayload> = Vec::new();
        let mut outcomes: Vec<Result<u64, OpError>> = Vec::with_capacity(batch.len());
        for prepared in batch {
            let outcome = prepared.and_then(|p| {
                let leaf = first + entries.len() as u64;
                let mut mine = Changes::default();
                let view = Overlay {
                    base: &self.index,
                    changes: &changes,
                };
                apply_entry(&view, &mut mine, &p.entry, leaf, &self.config.admin)?;
                changes.merge(mine);
                if let LedgerEntry::Event(event) = &p.entry
                    && let Some(commitment) = &event.facts.patient
                {
                    patients.extend(
                        p.restricted
                            .iter()
                            .filter(|r| &r.commitment == commitment)
                            .cloned(),
                    );
                }
                entries.push(p.entry.into_bytes());
                payloads.extend(p.restricted);
                Ok(leaf)
            });
            outcomes.push(outcome);
        }
        if entries.is_empty() {
            // Every operation was refused: nothing to write.
            let refusals = outcomes
                .into_iter()
                .filter_map(Result::err)
                .map(Err)
                .collect();
            return Ok(Committed {
                answers: refusals,
                changed: Vec::new(),
            });
        }
        let changed: Vec<String> = changes
            .writes
            .keys()
            .filter(|k| !k.starts_with(b"n/"))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        // Step 1: restricted payloads, each written to its own file and fsync'd. If the
        // process dies here, some payloads exist without a ledger entry: nothing refers
        // to them and the client was not answered, so it submits again.
        self.write_payloads(&payloads)?;
        // Patient links (patient → commitment), in the index's erasable tree: a link
        // whose event never reaches the ledger points at no event and is harmless.
        self.index.link_patients(&patients)?;
        // Step 2, the commit point: the index changes, the entries as write-ahead
        // entries and the new applied size, one atomic sled batch, flushed. Dying
        // before the flush: nothing of the batch is anywhere that counts (files the
        // ledger may hold beyond its base are rewritten at `open`), and no writer was
        // answered. Dying after it: `open` appends the write-ahead entries to the
        // ledger again; the batch is committed even though no writer was answered.
        let size = first + entries.len() as u64;
        for (key, value) in wal_group(first, &entries) {
            changes.writes.insert(key, Some(value));
        }
        self.index.commit(&changes, size)?;
        // Step 3: the ledger's tiles and checkpoint, written without waiting for the
        // disk (step 2 made the entries durable). From here the checkpoint may be
        // served: every entry it covers is in the write-ahead log or synced.
        let appended = self.log.append_batch(&entries)?;
        // Step 4: acknowledge. Everything acknowledged is in the index and durable.
        let answers = outcomes
            .into_iter()
            .map(|o| {
                o.map(|leaf| Receipt {
                    leaf_index: leaf,
                    entry_hash: appended.leaf_hashes[(leaf - first) as usize],
                    tree_size: appended.tree_size,
                })
            })
            .collect();
        Ok(Committed { answers, changed })
    }

    /// Erases the payload of a restricted value; the ledger's commitment stays. The
    /// payload's bytes in its group file are overwritten with zeros and the file
    /// fsync'd, then its pointer and patient link leave the index (see
    /// [`Registry::write_payloads`]). Gives whether there was a payload to erase.
    pub fn erase_payload(&self, commitment: &str) -> Result<bool, RegistryError> {
        let legacy = payload_path(&self.dir, commitment)?;
        self.check_retention(commitment, OffsetDateTime::now_utc())?;
        let mut erased = false;
        if let Some(pointer) = self.index.payload_pointer(commitment)? {
            let path = group_path(&self.dir, pointer.group);
            match File::options().write(true).open(&path) {
                Ok(mut file) => {
                    use std::io::{Seek, SeekFrom};
                    file.seek(SeekFrom::Start(pointer.offset))
                        .and_then(|_| file.write_all(&vec![0; pointer.len as usize]))
                        .and_then(|()| file.sync_all())
                        .map_err(io_error(&path))?;
                    erased = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
        }
        self.index.unlink_patient(commitment)?;
        match fs::remove_file(&legacy) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(erased),
            Err(e) => Err(io_error(&legacy)(e)),
        }
    }

    /// Refuses erasing the payload of a value sealed in an event before the event's
    /// retention period (WS 310.3) has passed at `now`.
    pub fn check_retention(
        &self,
        commitment: &str,
        now: OffsetDateTime,
    ) -> Result<(), RegistryError> {
        let key = crate::event::commitment_key(commitment);
        let Some(leaf) = self
            .index
            .get_raw(&key)?
            .as_deref()
            .and_then(crate::event::leaf_of)
        else {
            return Ok(());
        };
        let bad = |reason: String| RegistryError::BadEntry {
            index: leaf,
            reason,
        };
        let (_, entry) = self
            .log
            .entries(leaf..leaf + 1)?
            .next()
            .transpose()?
            .ok_or_else(|| bad("missing".into()))?;
        if let LedgerEntry::Event(event) =
            LedgerEntry::from_entry(&entry).map_err(|e| bad(e.to_string()))?
        {
            let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
            crate::event::retention::check_erasure(&event.facts, &event.event_id, now_ms)
                .map_err(RegistryError::Refused)?;
        }
        Ok(())
    }

    /// The payload of a restricted value, if it was not erased.
    pub fn payload(&self, commitment: &str) -> Result<Option<RestrictedPayload>, RegistryError> {
        read_payload(&self.dir, &self.index, commitment)
    }

    /// Writes a batch's payloads durably, before the group's index commit: all of them
    /// in one group file, `DIR/restricted/<first leaf of the group, 16 hex>.pay` (each
    /// payload its JSON with a 4-byte big-endian length before it), written to a
    /// temporary file, fsync'd, renamed into place, the directory fsync'd. Each
    /// payload's pointer (group, offset, length) goes into the index's erasable tree
    /// and is made durable by the group's index flush that follows. Dying before that
    /// flush leaves a group file no ledger entry refers to; the next group starts at
    /// the same leaf and replaces it.
    fn write_payloads(&self, payloads: &[RestrictedPayload]) -> Result<(), RegistryError> {
        if payloads.is_empty() {
            return Ok(());
        }
        let group = self.log.size();
        let dir = self.dir.join("restricted");
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut bytes = Vec::new();
        let mut pointers = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let json = serde_json::to_vec(payload).unwrap_or_default();
            // A payload is far below 4 GiB (a submission is at most a few MiB).
            bytes.extend_from_slice(&(json.len() as u32).to_be_bytes());
            let offset = bytes.len() as u64;
            bytes.extend_from_slice(&json);
            pointers.push((
                payload.commitment.clone(),
                PayloadPointer {
                    group,
                    offset,
                    len: json.len() as u32,
                },
            ));
        }
        let path = group_path(&self.dir, group);
        let tmp = path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
        file.write_all(&bytes).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_error(&path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(&dir))?;
        self.index.set_payload_pointers(&pointers)?;
        Ok(())
    }

    /// Replays the ledger entries the index has not seen (after a crash between the
    /// ledger append and the index flush).
    fn catch_up(&mut self) -> Result<(), RegistryError> {
        let applied = self.index.applied()?;
        let size = self.log.size();
        if applied > size {
            return Err(RegistryError::IndexMismatch {
                key: "m/applied".into(),
                entry: Some(applied),
            });
        }
        self.replay(applied..size)
    }

    fn replay(&mut self, range: std::ops::Range<u64>) -> Result<(), RegistryError> {
        const CHUNK: u64 = 10_000;
        let mut start = range.start;
        while start < range.end {
            let end = (start + CHUNK).min(range.end);
            let entries = self
                .log
                .entries(start..end)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut changes = Changes::default();
            for (index, op) in parse_entries(&entries) {
                let op = op?;
                let mut mine = Changes::default();
                let view = Overlay {
                    base: &self.index,
                    changes: &changes,
                };
                apply_entry(&view, &mut mine, &op, index, &self.config.admin).map_err(|e| {
                    RegistryError::BadEntry {
                        index,
                        reason: format!("does not apply: {e}"),
                    }
                })?;
                changes.merge(mine);
            }
            self.index.commit(&changes, end)?;
            start = end;
        }
        Ok(())
    }

    /// Rebuilds the index from the ledger; returns the number of entries replayed.
    pub fn reindex(&mut self) -> Result<u64, RegistryError> {
        // The write-ahead entries live in the index: sync them into the ledger first.
        self.sync()?;
        self.index.clear()?;
        let size = self.log.size();
        self.replay(0..size)?;
        // Patient links come from the off-log payloads of the events' commitments; an
        // erased payload has no link.
        let stored = stored_payloads(&self.dir)?;
        let dir = self.dir.clone();
        self.index.relink_patients(&stored, |commitment| {
            read_legacy_payload(&dir, commitment).ok().flatten()
        })?;
        self.sync()?;
        Ok(size)
    }

    /// Re-checks everything: every tile and entry hash and the checkpoint signature,
    /// every operation's schema and signatures, every state transition, and that the
    /// index holds exactly what replaying the ledger gives. Returns the ledger size.
    pub fn verify(&self) -> Result<u64, RegistryError> {
        let size = self.log.verify()?;
        let mut state: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
            std::collections::BTreeMap::new();
        const CHUNK: u64 = 10_000;
        for start in (0..size).step_by(CHUNK as usize) {
            let end = (start + CHUNK).min(size);
            let entries = self
                .log
                .entries(start..end)?
                .collect::<Result<Vec<_>, _>>()?;
            for (index, op) in parse_entries(&entries) {
                let op = op?;
                let mut changes = Changes::default();
                apply_entry(&state, &mut changes, &op, index, &self.config.admin).map_err(|e| {
                    RegistryError::BadEntry {
                        index,
                        reason: format!("does not apply: {e}"),
                    }
                })?;
                for (key, value) in changes.writes {
                    match value {
                        Some(value) => state.insert(key, value),
                        None => state.remove(&key),
                    };
                }
            }
        }
        let mut expected = state.into_iter();
        let mut actual = self.index.entries();
        loop {
            match (expected.next(), actual.next().transpose()?) {
                (None, None) => return Ok(size),
                (Some((key, value)), Some((k, v))) if key == k && value == v => continue,
                (Some((key, value)), _) => {
                    return Err(RegistryError::IndexMismatch {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        entry: log_index_of(&value),
                    });
                }
                (None, Some((key, value))) => {
                    return Err(RegistryError::IndexMismatch {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        entry: log_index_of(&value),
                    });
                }
            }
        }
    }
}

/// Reads ledger entries back as operations (schema and signatures checked again, in
/// batches), on all cores.
fn parse_entries(entries: &[(u64, Vec<u8>)]) -> Vec<(u64, Result<LedgerEntry, RegistryError>)> {
    crate::parallel_batches(entries, |batch| {
        let read = batch
            .iter()
            .map(|(_, e)| LedgerEntry::read_entry(e))
            .collect();
        batch
            .iter()
            .zip(check_signatures(read))
            .map(|((index, _), entry)| {
                let entry = entry.map_err(|e| RegistryError::BadEntry {
                    index: *index,
                    reason: e.to_string(),
                });
                (*index, entry)
            })
            .collect()
    })
}

fn log_index_of(value: &[u8]) -> Option<u64> {
    if let Ok(bytes) = <[u8; 8]>::try_from(value) {
        return Some(u64::from_be_bytes(bytes));
    }
    serde_json::from_slice::<serde_json::Value>(value)
        .ok()
        .and_then(|v| v.get("log_index").and_then(serde_json::Value::as_u64))
}

impl Drop for Registry {
    /// Syncs the ledger on the way out, so that the next start has nothing to replay.
    /// A failure is left to that start, which recovers from the write-ahead log.
    fn drop(&mut self) {
        if self.sync_on_drop {
            let _ = self.sync();
        }
    }
}

/// Opens the ledger. When the index holds write-ahead entries (a group was committed
/// after the last sync), starts from the last synced checkpoint, whose files are all
/// durable, and appends them again, durably; whatever the ledger's files held beyond
/// that base is ignored and overwritten.
fn open_log(
    store: FsTileStore,
    name: &str,
    key: &ed25519_dalek::SigningKey,
    index: &Index,
) -> Result<Log<FsTileStore>, RegistryError> {
    let wal = index.wal()?;
    if wal.is_empty() {
        return Ok(Log::open(store, name.to_owned(), key.clone())?);
    }
    let base = index.base()?.ok_or_else(|| {
        RegistryError::Config("the index holds write-ahead entries but no synced checkpoint".into())
    })?;
    let mut log = Log::open_at(store, name.to_owned(), key.clone(), base)?;
    let base_size = log.size();
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let later = wal.into_iter().filter(|(leaf, _)| *leaf >= base_size);
    for (expected, (leaf, entry)) in (base_size..).zip(later) {
        if leaf != expected {
            return Err(RegistryError::BadEntry {
                index: expected,
                reason: "missing from the write-ahead log".into(),
            });
        }
        pending.push(entry);
    }
    for chunk in pending.chunks(crate::MAX_GROUP) {
        log.append_batch(chunk)?;
    }
    Ok(log)
}

/// How long opening a node waits for its lock before saying the node is in use.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Takes the node's lock, waiting up to [`LOCK_WAIT`] for it: a child process that
/// another thread of this process is starting holds a copy of every descriptor, and
/// with it the lock of a node this process has just closed, until it runs its program.
fn lock(dir: &Path) -> Result<File, RegistryError> {
    let path = dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(RegistryError::Locked(dir.to_owned()));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error(&path)(e)),
        }
    }
}

fn open_store(dir: &Path) -> Result<FsTileStore, RegistryError> {
    let path = dir.join("log");
    FsTileStore::open(&path).map_err(io_error(&path))
}

fn payload_path(dir: &Path, commitment: &str) -> Result<PathBuf, RegistryError> {
    let hex = commitment
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            RegistryError::Config(format!("`{commitment}` is not a sha256: commitment"))
        })?;
    Ok(dir.join("restricted").join(format!("{hex}.json")))
}

fn group_path(dir: &Path, group: u64) -> PathBuf {
    dir.join("restricted").join(format!("{group:016x}.pay"))
}

/// The payload of a restricted value in the node at `dir` with index `index`, if it
/// was not erased. Safe to call while a [`Registry`] holds the directory (group files
/// are renamed into place whole; an erasure overwrites a payload with zeros, which
/// reads as erased).
pub fn read_payload(
    dir: &Path,
    index: &Index,
    commitment: &str,
) -> Result<Option<RestrictedPayload>, RegistryError> {
    let Some(pointer) = index.payload_pointer(commitment)? else {
        return read_legacy_payload(dir, commitment);
    };
    let path = group_path(dir, pointer.group);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path)(e)),
    };
    let mut bytes = vec![0; pointer.len as usize];
    use std::io::{Read, Seek, SeekFrom};
    let read = file
        .seek(SeekFrom::Start(pointer.offset))
        .and_then(|_| file.read_exact(&mut bytes));
    match read {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io_error(&path)(e)),
    }
    // Zeros (erased) or bytes of another payload (a pointer left by a group that
    // never committed) open nothing.
    Ok(serde_json::from_slice::<RestrictedPayload>(&bytes)
        .ok()
        .filter(|p| p.commitment == commitment && p.opens()))
}

/// A payload stored in a file of its own, `DIR/restricted/<hex>.json`, as nodes wrote
/// them before group files.
fn read_legacy_payload(
    dir: &Path,
    commitment: &str,
) -> Result<Option<RestrictedPayload>, RegistryError> {
    let path = payload_path(dir, commitment)?;
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RegistryError::Config(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// Every payload still in the group files (erased ones are zeros and skipped), with
/// its pointer, for `reindex`.
fn stored_payloads(dir: &Path) -> Result<Vec<(RestrictedPayload, PayloadPointer)>, RegistryError> {
    let folder = dir.join("restricted");
    let listing = match fs::read_dir(&folder) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(&folder)(e)),
    };
    let mut found = Vec::new();
    for item in listing {
        let path = item.map_err(io_error(&folder))?.path();
        let group = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pay"))
            .and_then(|n| u64::from_str_radix(n, 16).ok());
        let Some(group) = group else { continue };
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let mut rest = bytes.as_slice();
        let mut offset = 0u64;
        while let Some((len, body)) = rest.split_first_chunk::<4>() {
            let len = u32::from_be_bytes(*len);
            let Some(payload) = body.get(..len as usize) else {
                break;
            };
            offset += 4;
            if let Ok(p) = serde_json::from_slice::<RestrictedPayload>(payload)
                && p.opens()
            {
                found.push((p, PayloadPointer { group, offset, len }));
            }
            offset += u64::from(len);
            rest = &body[len as usize..];
        }
    }
    Ok(found)
}

/// Writes a file atomically and durably: temporary file, fsync, rename, fsync of the
/// directory.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    fs::rename(&tmp, path).map_err(io_error(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}
