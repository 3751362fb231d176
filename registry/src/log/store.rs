//! Where the tiled log's files live: the [`TileStore`] trait and its two implementations.
//!
//! - [`TileStore`] — a small key/value contract over tlog-tiles paths (see its docs for
//!   what is durable when a call returns).
//! - [`FsTileStore`] — real files under a root directory, laid out exactly as the paths
//!   say, so any static file server can serve the directory as a tlog-tiles log.
//! - [`MemTileStore`] — in memory, for tests; it can simulate a crash at the k-th write.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Storage for the files of a tiled log, addressed by tlog-tiles paths such as
/// `tile/0/x001/234.p/17`, `tile/entries/005` and `checkpoint`.
///
/// # Contract
///
/// - [`put`](TileStore::put) replaces the file at `path` **atomically and durably**:
///   when it returns `Ok`, a reader (including one after a crash or power loss) sees
///   the new bytes; if it fails or the process dies during the call, readers see either
///   the old bytes (or no file) or the new bytes, never a mixture. On a file system this
///   is: write a temporary file, fsync it, rename it over the target, fsync the directory.
/// - [`put_many`](TileStore::put_many) writes several files that nothing refers to yet
///   (the log uses it for tiles and bundles beyond its committed checkpoint): all are
///   durable when it returns `Ok`. If it fails or the process dies during the call, any
///   subset of the files may have been written, and a file may be incomplete; the
///   caller must not rely on them until the call has returned `Ok`. Implementations
///   may write in place and batch the fsyncs.
/// - [`get`](TileStore::get) returns the last bytes put at `path`, or `None` if there is
///   no file there. A file `put` is never seen partially written.
/// - [`delete`](TileStore::delete) removes a file (missing files are not an error). It
///   need not be durable: a deletion lost in a crash leaves only an unreferenced file.
///   The log uses it for partial tiles superseded by a full tile.
///
/// Paths are relative, `/`-separated, made of ASCII letters, digits, `.`, `_` and `-`,
/// with no empty, `.` or `..` component; implementations refuse others.
pub trait TileStore {
    /// Atomically and durably replaces the file at `path` with `data`.
    fn put(&self, path: &str, data: &[u8]) -> io::Result<()>;

    /// Atomically replaces each file; all are durable when this returns `Ok`.
    fn put_many(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        for (path, data) in files {
            self.put(path, data)?;
        }
        Ok(())
    }

    /// [`put_many`](TileStore::put_many) without waiting for the disk: the files are
    /// durable only after the next [`sync`](TileStore::sync).
    fn put_many_unsynced(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        self.put_many(files)
    }

    /// [`put`](TileStore::put) without waiting for the disk: atomic for readers, but
    /// durable only after the next [`sync`](TileStore::sync).
    fn put_unsynced(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.put(path, data)
    }

    /// Makes the files at `paths`, written unsynced, durable, with the directories
    /// that lead to them; forgets about every other unsynced write.
    fn sync(&self, paths: &[String]) -> io::Result<()> {
        let _ = paths;
        Ok(())
    }

    /// The contents of the file at `path`, or `None` if there is none.
    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>>;

    /// Removes the file at `path`, if there is one.
    fn delete(&self, path: &str) -> io::Result<()>;
}

impl<T: TileStore + ?Sized> TileStore for &T {
    fn put(&self, path: &str, data: &[u8]) -> io::Result<()> {
        (**self).put(path, data)
    }
    fn put_many(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        (**self).put_many(files)
    }
    fn put_many_unsynced(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        (**self).put_many_unsynced(files)
    }
    fn put_unsynced(&self, path: &str, data: &[u8]) -> io::Result<()> {
        (**self).put_unsynced(path, data)
    }
    fn sync(&self, paths: &[String]) -> io::Result<()> {
        (**self).sync(paths)
    }
    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        (**self).get(path)
    }
    fn delete(&self, path: &str) -> io::Result<()> {
        (**self).delete(path)
    }
}

impl<T: TileStore + ?Sized> TileStore for Arc<T> {
    fn put(&self, path: &str, data: &[u8]) -> io::Result<()> {
        (**self).put(path, data)
    }
    fn put_many(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        (**self).put_many(files)
    }
    fn put_many_unsynced(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        (**self).put_many_unsynced(files)
    }
    fn put_unsynced(&self, path: &str, data: &[u8]) -> io::Result<()> {
        (**self).put_unsynced(path, data)
    }
    fn sync(&self, paths: &[String]) -> io::Result<()> {
        (**self).sync(paths)
    }
    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        (**self).get(path)
    }
    fn delete(&self, path: &str) -> io::Result<()> {
        (**self).delete(path)
    }
}

/// Refuses a path that is not a plain relative path (see [`TileStore`]).
fn check_path(path: &str) -> io::Result<()> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if path.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a tile store path: {path:?}"),
        ))
    }
}

/// A [`TileStore`] of real files under a root directory.
///
/// Every file is written under another name in `<root>/.spare/` (fsynced for `put` and
/// `put_many`), then moved into place: `put` exchanges it with the old file in one
/// `renameat2(RENAME_EXCHANGE)` (a plain rename over it where that is not supported or
/// there is no old file), `put_many` renames it to its new path. Directories are fsynced
/// after; the first time this process writes into a directory, it also fsyncs every
/// parent up to the root, so a directory created here (or by an earlier process that
/// died before syncing it) is durable before anything relies on it. `put_many` fsyncs
/// each file on its own thread.
///
/// Nothing is ever unlinked: `delete` moves the file (and a `.p` directory left empty)
/// to `.spare/`, and new files reuse those spares, truncated, once they have rested
/// [`SPARE_REST`]. On ext4 without a journal, creating a file scans every inode its
/// block group freed in the last minutes (`recently_deleted`): at ingest rates that
/// was ~200 µs per file, a third of a group commit. `.spare/` holds only files the
/// log has dropped (old checkpoints, superseded partial tiles); a static file server
/// may serve it or not.
#[derive(Debug, Clone)]
pub struct FsTileStore {
    root: PathBuf,
    /// Directories known to exist durably (their entries in their parents fsynced).
    durable_dirs: Arc<Mutex<HashSet<PathBuf>>>,
    /// What unsynced writes left for the next `sync`.
    unsynced: Arc<Mutex<Unsynced>>,
    spares: Arc<Mutex<Spares>>,
}

/// Where files and directories go instead of being unlinked, under the root.
const SPARE_DIR: &str = ".spare";

/// How long a file moved to the spares waits before it is rewritten: a reader that
/// opened it under its old name (a static file server sending it to a slow client)
/// reads it unchanged meanwhile.
const SPARE_REST: Duration = Duration::from_secs(10);

/// Files and directories moved out of the tree, to be reused for new ones.
#[derive(Debug)]
struct Spares {
    dir: PathBuf,
    /// Whether `dir` exists.
    made: bool,
    /// Spare files, oldest first, with when each was moved there.
    files: VecDeque<(Instant, PathBuf)>,
    /// Empty spare directories.
    dirs: Vec<PathBuf>,
    /// The next name in `dir`.
    next: u64,
    rest: Duration,
}

impl Spares {
    /// The spares a store left in `root`: every file, which rests from now, and every
    /// empty directory.
    fn open(root: &Path) -> io::Result<Self> {
        let mut spares = Self {
            dir: root.join(SPARE_DIR),
            made: false,
            files: VecDeque::new(),
            dirs: Vec::new(),
            next: 0,
            rest: SPARE_REST,
        };
        let listing = match fs::read_dir(&spares.dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(spares),
            Err(e) => return Err(with_path(e, &spares.dir)),
        };
        spares.made = true;
        let now = Instant::now();
        for entry in listing {
            let entry = entry.map_err(|e| with_path(e, &spares.dir))?;
            if let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            {
                spares.next = spares.next.max(n.saturating_add(1));
            }
            let path = entry.path();
            if path.is_dir() {
                if is_empty_dir(&path) {
                    spares.dirs.push(path);
                }
            } else {
                spares.files.push_back((now, path));
            }
        }
        Ok(spares)
    }

    /// A name in the spare directory that nothing uses (the directory is made on
    /// first use).
    fn name(&mut self) -> io::Result<PathBuf> {
        if !self.made {
            fs::create_dir_all(&self.dir).map_err(|e| with_path(e, &self.dir))?;
            self.made = true;
        }
        let name = self.dir.join(self.next.to_string());
        self.next = self.next.saturating_add(1);
        Ok(name)
    }

    /// The oldest spare file, if it has rested long enough.
    fn take_file(&mut self) -> Option<PathBuf> {
        let (at, _) = self.files.front()?;
        if at.elapsed() < self.rest {
            return None;
        }
        self.files.pop_front().map(|(_, path)| path)
    }
}

/// Whether `dir` is a directory with nothing in it.
fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// Swaps the files at `a` and `b` atomically.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Directories created by unsynced writes since the last `sync`: their entries in
/// their parents are not durable yet.
#[derive(Debug, Default)]
struct Unsynced {
    new_dirs: BTreeSet<PathBuf>,
}

impl FsTileStore {
    /// A store rooted at `root`, which is created (with its parents) if missing and
    /// made durable.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| with_path(e, &root))?;
        sync_dir(&root)?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let durable_dirs = Arc::new(Mutex::new(HashSet::from([root.clone()])));
        let spares = Arc::new(Mutex::new(Spares::open(&root)?));
        Ok(Self {
            root,
            durable_dirs,
            unsynced: Arc::default(),
            spares,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for `path`.
    fn file(&self, path: &str) -> io::Result<PathBuf> {
        check_path(path)?;
        Ok(self.root.join(path))
    }

    fn unsynced(&self) -> MutexGuard<'_, Unsynced> {
        self.unsynced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn durable_dirs(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.durable_dirs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn spares(&self) -> MutexGuard<'_, Spares> {
        self.spares
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `data` to a file in the spare directory that nothing reads — a rested
    /// spare, truncated, or a new one — fsynced if `durable`; returns its path.
    fn fill(&self, data: &[u8], durable: bool) -> io::Result<PathBuf> {
        let rested = self.spares().take_file();
        let opened = rested.and_then(|spare| {
            let file = File::options().write(true).truncate(true).open(&spare);
            file.ok().map(|file| (spare, file))
        });
        let (path, mut file) = match opened {
            Some(opened) => opened,
            None => {
                let path = self.spares().name()?;
                let file = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| with_path(e, &path))?;
                (path, file)
            }
        };
        file.write_all(data).map_err(|e| with_path(e, &path))?;
        if durable {
            file.sync_all().map_err(|e| with_path(e, &path))?;
        }
        Ok(path)
    }

    /// Moves `path` (a file or an empty directory) to the spares; false if there was
    /// nothing at `path`.
    fn retire(&self, path: &Path, dir: bool) -> io::Result<bool> {
        let spare = self.spares().name()?;
        match fs::rename(path, &spare) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(with_path(e, path)),
        }
        let mut spares = self.spares();
        if dir {
            spares.dirs.push(spare);
        } else {
            spares.files.push_back((Instant::now(), spare));
        }
        Ok(true)
    }

    /// Makes the directory `dir` (and its parents): a `.p` directory from an empty
    /// spare when there is one.
    fn make_dir(&self, dir: &Path) -> io::Result<()> {
        let partial = dir.extension().is_some_and(|ext| ext == "p");
        if partial && !dir.exists() {
            let spare = self.spares().dirs.pop();
            if let (Some(spare), Some(parent)) = (spare, dir.parent()) {
                fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
                if fs::rename(&spare, dir).is_ok() {
                    return Ok(());
                }
                self.spares().dirs.push(spare);
            }
        }
        fs::create_dir_all(dir).map_err(|e| with_path(e, dir))
    }

    /// Replaces `path` atomically (a spare file, exchanged with the old one); with
    /// `durable`, fsyncs the file before the exchange and the directories after it.
    fn replace(&self, path: &str, data: &[u8], durable: bool) -> io::Result<()> {
        let (targets, to_sync, newly_durable) = self.directories(&[path])?;
        let target = targets
            .first()
            .ok_or_else(|| io::Error::other("no target"))?;
        // 1. The new contents under a spare name: a crash here leaves the target as
        //    it was.
        let new = self.fill(data, durable)?;
        // 2. The exchange switches the target from old to new contents atomically;
        //    the old contents rest as a spare. Without an old file (or without
        //    RENAME_EXCHANGE), a rename does the same and unlinks the old file.
        match exchange(&new, target) {
            Ok(()) => self.spares().files.push_back((Instant::now(), new)),
            Err(_) => {
                if let Err(e) = fs::rename(&new, target) {
                    let _ = fs::remove_file(&new);
                    return Err(with_path(e, target));
                }
            }
        }
        // 3. The directories, making the exchange (and any new directory) durable.
        self.settle(&to_sync, newly_durable, durable)
    }

    /// Writes each file under a spare name and renames it into place; with
    /// `durable`, each is fsynced on its own thread so that the file system commits
    /// them together.
    fn write_all_new(&self, files: &[(&str, &[u8])], durable: bool) -> io::Result<()> {
        let paths: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
        let (targets, to_sync, newly_durable) = self.directories(&paths)?;
        let writes: Vec<(&PathBuf, &[u8])> = targets
            .iter()
            .zip(files)
            .map(|(target, (_, data))| (target, *data))
            .collect();
        let write = |(target, data): &(&PathBuf, &[u8])| {
            let new = self.fill(data, durable)?;
            fs::rename(&new, target).map_err(|e| with_path(e, target))
        };
        if durable {
            each_at_once(&writes, write)?;
        } else {
            // Nothing waits on the disk: a thread each would only add thread starts.
            writes.iter().try_for_each(write)?;
        }
        self.settle(&to_sync, newly_durable, durable)
    }

    /// After writes: with `durable`, fsyncs the directories written in; without,
    /// leaves the directories created to the next `sync`. Either way later calls may
    /// treat the new directories as existing durably.
    fn settle(&self, dirs: &[PathBuf], created: Vec<PathBuf>, durable: bool) -> io::Result<()> {
        if durable {
            each_at_once(dirs, |dir| sync_dir(dir))?;
        } else {
            self.unsynced().new_dirs.extend(created.iter().cloned());
        }
        self.durable_dirs().extend(created);
        Ok(())
    }
}

/// Fsyncs a directory, making the entries renamed or created in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| with_path(e, dir))
}

/// Adds the file name to an I/O error.
fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl FsTileStore {
    /// Creates the directories of `paths` and says which directories must be fsynced
    /// for their entries to be durable: each file's directory, and every directory
    /// not yet known durable with its parent up to the root. The caller marks the
    /// returned new directories durable once it has synced them.
    fn directories(
        &self,
        paths: &[&str],
    ) -> io::Result<(Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>)> {
        let mut to_sync = BTreeSet::new();
        let mut newly_durable = Vec::new();
        let mut targets = Vec::with_capacity(paths.len());
        let known = self.durable_dirs();
        for path in paths {
            let target = self.file(path)?;
            let dir = target.parent().unwrap_or(&self.root).to_path_buf();
            if !known.contains(&dir) {
                self.make_dir(&dir)?;
                let mut chain = Some(dir.as_path());
                while let Some(d) = chain.filter(|d| !known.contains(*d)) {
                    to_sync.insert(d.to_path_buf());
                    newly_durable.push(d.to_path_buf());
                    chain = d.parent().filter(|p| p.starts_with(&self.root));
                    if let Some(parent) = chain {
                        to_sync.insert(parent.to_path_buf());
                    }
                }
            }
            to_sync.insert(dir);
            targets.push(target);
        }
        Ok((targets, to_sync.into_iter().collect(), newly_durable))
    }
}

/// Runs `f` on every item at once, one thread each (the items are a few files or
/// directories waiting on the disk), and gives the first error.
fn each_at_once<T: Sync>(items: &[T], f: impl Fn(&T) -> io::Result<()> + Sync) -> io::Result<()> {
    let Some((first, rest)) = items.split_first() else {
        return Ok(());
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = rest.iter().map(|item| scope.spawn(|| f(item))).collect();
        let mut result = f(first);
        for handle in handles {
            let outcome = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("writer thread panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    })
}

/// Fsyncs a file written earlier; one deleted since needs nothing.
fn sync_file(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_all().map_err(|e| with_path(e, path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(with_path(e, path)),
    }
}

impl TileStore for FsTileStore {
    fn put(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.replace(path, data, true)
    }

    /// Writes the files, then fsyncs them and their directories together. The log
    /// only ever puts files at paths its committed checkpoint does not refer to (new
    /// full tiles, partial tiles of a new width): a crash midway leaves unreferenced
    /// files that the next append replaces, and the checkpoint (written with `put`,
    /// after this returns) is what makes them part of the log.
    fn put_many(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        self.write_all_new(files, true)
    }

    fn put_many_unsynced(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        self.write_all_new(files, false)
    }

    fn put_unsynced(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.replace(path, data, false)
    }

    fn sync(&self, paths: &[String]) -> io::Result<()> {
        let new_dirs = std::mem::take(&mut self.unsynced().new_dirs);
        let mut files = Vec::with_capacity(paths.len());
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        for path in paths {
            let file = self.file(path)?;
            if let Some(dir) = file.parent() {
                dirs.insert(dir.to_path_buf());
            }
            files.push(file);
        }
        for dir in &new_dirs {
            dirs.insert(dir.clone());
            if let Some(parent) = dir.parent().filter(|p| p.starts_with(&self.root)) {
                dirs.insert(parent.to_path_buf());
            }
        }
        let dirs: Vec<PathBuf> = dirs.into_iter().filter(|d| d.exists()).collect();
        let outcome = each_at_once(&files, |file| sync_file(file))
            .and_then(|()| each_at_once(&dirs, |dir| sync_dir(dir)));
        if outcome.is_err() {
            // Sync those directories again next time.
            self.unsynced().new_dirs.extend(new_dirs);
        }
        outcome
    }

    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let file = self.file(path)?;
        match fs::read(&file) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(with_path(e, &file)),
        }
    }

    /// Moves the file to the spares (see [`FsTileStore`]).
    fn delete(&self, path: &str) -> io::Result<()> {
        let file = self.file(path)?;
        if !self.retire(&file, false)? {
            return Ok(());
        }
        // A `<N>.p` directory holds only partial tiles: it goes too once empty.
        if let Some(dir) = file.parent()
            && dir.extension().is_some_and(|ext| ext == "p")
            && is_empty_dir(dir)
            && self.retire(dir, true).unwrap_or(false)
        {
            self.durable_dirs().remove(dir);
        }
        Ok(())
    }
}

/// An in-memory [`TileStore`] for tests, with fault injection.
///
/// Clones share the same files, so a test can keep a handle while a log owns another.
/// [`crash_at_write`](MemTileStore::crash_at_write) makes a later write fail as if the
/// process had died just before it: that write and every write after it fail and
/// change nothing, until [`restart`](MemTileStore::restart). Writes are puts (each file
/// of a `put_many` counts as one, written one by one, so a crash inside it leaves the
/// earlier files written) and deletes. A `put` is atomic, as the contract requires; a
/// file of a `put_many` that the crash hits is left torn: its first half written.
#[derive(Debug, Clone, Default)]
pub struct MemTileStore {
    inner: Arc<Mutex<MemInner>>,
}

#[derive(Debug, Default)]
struct MemInner {
    files: BTreeMap<String, Vec<u8>>,
    puts: u64,
    writes: u64,
    crash_at: Option<u64>,
    crashed: bool,
}

impl MemTileStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemInner> {
        // A panic elsewhere cannot leave the map half-updated: recover it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An independent copy of the files (not shared with `self`), with no fault armed.
    pub fn fork(&self) -> Self {
        let files = self.lock().files.clone();
        Self {
            inner: Arc::new(Mutex::new(MemInner {
                files,
                ..MemInner::default()
            })),
        }
    }

    /// Arms a crash: counting from now (0 = the next write), the `k`-th write (put or
    /// delete) fails without effect, and so does every write after it, until
    /// [`restart`](Self::restart).
    pub fn crash_at_write(&self, k: u64) {
        let mut inner = self.lock();
        inner.crash_at = Some(inner.writes + k);
    }

    /// Ends a simulated crash: writes succeed again; the files are as the crash left them.
    pub fn restart(&self) {
        let mut inner = self.lock();
        inner.crash_at = None;
        inner.crashed = false;
    }

    /// Whether an armed crash has happened.
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Number of puts attempted so far (failed ones included).
    pub fn put_count(&self) -> u64 {
        self.lock().puts
    }

    /// Number of writes (puts and deletes) attempted so far (failed ones included).
    pub fn write_count(&self) -> u64 {
        self.lock().writes
    }

    /// Paths of all files, in order.
    pub fn paths(&self) -> Vec<String> {
        self.lock().files.keys().cloned().collect()
    }
}

fn crash_error() -> io::Error {
    io::Error::other("simulated crash")
}

impl MemInner {
    /// Counts a write; `Err` if the simulated crash has happened.
    fn write_allowed(&mut self) -> io::Result<()> {
        let n = self.writes;
        self.writes += 1;
        if self.crashed || self.crash_at == Some(n) {
            self.crashed = true;
            return Err(crash_error());
        }
        Ok(())
    }
}

impl TileStore for MemTileStore {
    fn put(&self, path: &str, data: &[u8]) -> io::Result<()> {
        check_path(path)?;
        let mut inner = self.lock();
        inner.puts += 1;
        inner.write_allowed()?;
        inner.files.insert(path.to_owned(), data.to_vec());
        Ok(())
    }

    fn put_many(&self, files: &[(&str, &[u8])]) -> io::Result<()> {
        for (path, data) in files {
            check_path(path)?;
            let mut inner = self.lock();
            inner.puts += 1;
            let running = !inner.crashed;
            if let Err(crash) = inner.write_allowed() {
                if running {
                    let torn = data[..data.len() / 2].to_vec();
                    inner.files.insert((*path).to_owned(), torn);
                }
                return Err(crash);
            }
            inner.files.insert((*path).to_owned(), data.to_vec());
        }
        Ok(())
    }

    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        check_path(path)?;
        Ok(self.lock().files.get(path).cloned())
    }

    fn delete(&self, path: &str) -> io::Result<()> {
        check_path(path)?;
        let mut inner = self.lock();
        inner.write_allowed()?;
        inner.files.remove(path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn TileStore) {
        assert_eq!(store.get("tile/0/000").unwrap(), None);
        store.put("tile/0/000", b"one").unwrap();
        assert_eq!(
            store.get("tile/0/000").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        store.put("tile/0/000", b"two").unwrap();
        assert_eq!(
            store.get("tile/0/000").unwrap().as_deref(),
            Some(&b"two"[..])
        );
        store
            .put_many(&[
                ("tile/0/x001/002.p/3", b"a"),
                ("tile/entries/001.p/3", b"b"),
            ])
            .unwrap();
        assert_eq!(
            store.get("tile/0/x001/002.p/3").unwrap().as_deref(),
            Some(&b"a"[..])
        );
        store.delete("tile/0/x001/002.p/3").unwrap();
        store.delete("tile/0/x001/002.p/3").unwrap();
        assert_eq!(store.get("tile/0/x001/002.p/3").unwrap(), None);
        for bad in [
            "",
            "/etc/passwd",
            "tile/../x",
            "tile//0",
            "./checkpoint",
            "a\\b",
            "tile/0/",
        ] {
            assert!(store.put(bad, b"x").is_err(), "{bad:?}");
            assert!(store.get(bad).is_err(), "{bad:?}");
            assert!(store.delete(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fs_store_follows_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsTileStore::open(dir.path().join("log")).unwrap();
        exercise(&store);
        // Files are where the paths say, and no temporary files remain.
        assert_eq!(fs::read(dir.path().join("log/tile/0/000")).unwrap(), b"two");
        assert!(!dir.path().join("log/tile/0/x001/002.p").exists());
        let names: Vec<_> = fs::read_dir(dir.path().join("log/tile/0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }

    /// Every inode under `dir`, recursively.
    fn inodes(dir: &Path) -> BTreeSet<u64> {
        use std::os::unix::fs::MetadataExt as _;
        let mut out = BTreeSet::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.insert(fs::metadata(&path).unwrap().ino());
            if path.is_dir() {
                out.extend(inodes(&path));
            }
        }
        out
    }

    #[test]
    fn fs_store_reuses_what_it_drops_and_frees_no_inode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("log");
        let store = FsTileStore::open(&root).unwrap();
        store.spares().rest = Duration::ZERO;
        let long = vec![7u8; 10_000];
        store.put("checkpoint", b"first").unwrap();
        store
            .put_many_unsynced(&[("tile/entries/000.p/9", &long), ("tile/0/000.p/9", b"h9")])
            .unwrap();
        store.put("checkpoint", b"second").unwrap();
        let before = inodes(&root);
        // Superseded partial tiles go, full ones and a newer checkpoint come: every
        // inode in use before is still in use, and nothing new was allocated.
        store.delete("tile/entries/000.p/9").unwrap();
        store.delete("tile/0/000.p/9").unwrap();
        assert!(!root.join("tile/entries/000.p").exists());
        store
            .put_many(&[("tile/entries/001.p/1", b"e1"), ("tile/0/001.p/1", b"t1")])
            .unwrap();
        store.put("checkpoint", b"third").unwrap();
        let after = inodes(&root);
        assert_eq!(before, after, "inodes freed or allocated");
        assert_eq!(fs::read(root.join("tile/entries/001.p/1")).unwrap(), b"e1");
        assert_eq!(fs::read(root.join("tile/0/001.p/1")).unwrap(), b"t1");
        assert_eq!(fs::read(root.join("checkpoint")).unwrap(), b"third");
        // A reopened store finds its spares again.
        drop(store);
        let store = FsTileStore::open(&root).unwrap();
        store.spares().rest = Duration::ZERO;
        store.delete("tile/0/001.p/1").unwrap();
        store.put_many(&[("tile/0/002.p/5", b"t5")]).unwrap();
        assert_eq!(inodes(&root), after);
        assert_eq!(
            store.get("tile/0/002.p/5").unwrap().as_deref(),
            Some(&b"t5"[..])
        );
    }

    #[test]
    fn a_dropped_file_rests_before_it_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsTileStore::open(dir.path()).unwrap();
        store.put_many(&[("tile/0/000.p/1", b"old")]).unwrap();
        // A reader that opened the file before it was dropped still reads it whole.
        let mut reader = File::open(dir.path().join("tile/0/000.p/1")).unwrap();
        store.delete("tile/0/000.p/1").unwrap();
        store.put_many(&[("tile/0/000.p/2", b"new")]).unwrap();
        store.put("checkpoint", b"new").unwrap();
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut read).unwrap();
        assert_eq!(read, b"old");
    }

    #[test]
    fn mem_store_follows_the_contract() {
        exercise(&MemTileStore::new());
    }

    #[test]
    fn mem_store_crashes_at_the_kth_write() {
        let store = MemTileStore::new();
        store.put("a", b"1").unwrap();
        store.crash_at_write(2);
        store.put("b", b"2").unwrap();
        store.delete("zz").unwrap();
        assert!(store.put("c", b"3").is_err());
        assert!(store.crashed());
        assert!(store.put("d", b"4").is_err());
        assert!(store.delete("a").is_err());
        assert_eq!(store.paths(), ["a", "b"]);
        assert_eq!((store.put_count(), store.write_count()), (4, 6));
        let fork = store.fork();
        store.restart();
        store.put("c", b"3").unwrap();
        assert_eq!(store.paths(), ["a", "b", "c"]);
        assert_eq!(fork.paths(), ["a", "b"]);
        assert!(!fork.crashed());
    }
}
