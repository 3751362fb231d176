//! The answer cache: encoded answers (DNS wire bytes, HTTP JSON bodies) kept for their
//! TTL, keyed by the subject they describe (a canonical identifier, a DID, a prefix) and
//! a variant (the query type, the filters, the representation).
//!
//! A write must never be followed by a stale read: [`AnswerCache::invalidate_subject`]
//! is called with every subject an acknowledged write changed before the writer gets its
//! receipt, and moka does not return an entry after a matching invalidation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::sync::Cache;

/// What a cached answer is about, and which answer it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The canonical identifier, DID or prefix the answer describes.
    pub subject: Arc<str>,
    /// Which answer about it: query type, filters, representation, front end.
    pub variant: Arc<str>,
}

impl CacheKey {
    /// A key for `variant` of the answers about `subject`.
    pub fn new(subject: &str, variant: &str) -> Self {
        Self {
            subject: subject.into(),
            variant: variant.into(),
        }
    }
}

#[derive(Clone)]
struct Entry {
    bytes: Bytes,
    ttl: Duration,
    /// When the answer stops being valid. moka applies per-entry expiry when it runs
    /// its pending tasks, so reads check the deadline themselves.
    deadline: Instant,
}

struct PerEntryTtl;

impl Expiry<CacheKey, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Entry,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Encoded answers for their TTL; cheap to clone (one shared cache).
#[derive(Clone)]
pub struct AnswerCache {
    entries: Option<Cache<CacheKey, Entry>>,
    /// Moves at every invalidation: an answer computed across one is not kept.
    generation: Arc<AtomicU64>,
}

impl AnswerCache {
    /// A cache holding at most `capacity` answers.
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: Some(
                Cache::builder()
                    .max_capacity(capacity)
                    .expire_after(PerEntryTtl)
                    .support_invalidation_closures()
                    .build(),
            ),
            generation: Arc::default(),
        }
    }

    /// A cache that holds nothing (every lookup computes its answer).
    pub fn disabled() -> Self {
        Self {
            entries: None,
            generation: Arc::default(),
        }
    }

    /// The cached answer for `key`, if any and not expired.
    pub fn get(&self, key: &CacheKey) -> Option<Bytes> {
        let entry = self.entries.as_ref()?.get(key)?;
        (Instant::now() < entry.deadline).then_some(entry.bytes)
    }

    /// Keeps `bytes` as the answer for `key` for `ttl` (not at all when `ttl` is zero).
    pub fn insert(&self, key: CacheKey, bytes: Bytes, ttl: Duration) {
        if let Some(entries) = self.entries.as_ref().filter(|_| !ttl.is_zero()) {
            let deadline = Instant::now() + ttl;
            entries.insert(
                key,
                Entry {
                    bytes,
                    ttl,
                    deadline,
                },
            );
        }
    }

    /// The answer for `key`, computed by `compute` (answer and TTL) when not cached.
    /// A write may invalidate the subject while its answer is computed, before the
    /// answer enters the cache: an answer computed across an invalidation is dropped
    /// again after its insert, so that the old state's answer does not outlive the
    /// write.
    pub fn get_or_compute<E>(
        &self,
        key: CacheKey,
        compute: impl FnOnce() -> Result<(Bytes, Duration), E>,
    ) -> Result<Bytes, E> {
        if let Some(bytes) = self.get(&key) {
            return Ok(bytes);
        }
        let before = self.generation.load(Ordering::SeqCst);
        let (bytes, ttl) = compute()?;
        self.insert(key.clone(), bytes.clone(), ttl);
        if self.generation.load(Ordering::SeqCst) != before
            && let Some(entries) = &self.entries
        {
            entries.invalidate(&key);
        }
        Ok(bytes)
    }

    /// Drops the answers a commit made stale, given the index keys it changed (what the
    /// sequencer's commit hook gets).
    pub fn invalidate_changed(&self, changed: &[String]) {
        // A prefix changes who answers for everything under it (HTTP "not responsible").
        if changed.iter().any(|k| k.starts_with("p/")) {
            self.invalidate_all();
            return;
        }
        // A cycle result or a lot recall can change the STATUS of every item of its
        // loads or lot; other events change the STATUS of the items they name.
        if changed
            .iter()
            .any(|k| k.starts_with("es/") || k.starts_with("el/"))
        {
            self.invalidate_all();
            return;
        }
        for key in changed.iter().filter_map(|k| k.strip_prefix("ee/")) {
            self.invalidate_subject(key.split('\0').next().unwrap_or_default());
        }
        // Identifiers (HTTP and DNS answers) and DNS names that appeared or went.
        for subject in crate::dns::invalidation_subjects(changed.iter().map(String::as_str)) {
            self.invalidate_subject(&subject);
        }
        // DID resolution answers.
        for did in changed.iter().filter_map(|k| k.strip_prefix("d/")) {
            self.invalidate_subject(did);
        }
    }

    /// Drops every answer about `subject`.
    pub fn invalidate_subject(&self, subject: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            let subject: Arc<str> = subject.into();
            // Registering the predicate cannot fail: the cache supports closures.
            let _ = entries.invalidate_entries_if(move |k, _| k.subject == subject);
        }
    }

    /// Drops every answer (a change whose reach is wide, such as a delegation).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_last_their_ttl_and_go_on_invalidation() {
        let cache = AnswerCache::new(100);
        let key = CacheKey::new("86.1000/PKG-1", "http:handle");
        cache.insert(
            key.clone(),
            Bytes::from_static(b"old"),
            Duration::from_secs(60),
        );
        assert_eq!(cache.get(&key).as_deref(), Some(&b"old"[..]));
        cache.invalidate_subject("86.1000/PKG-1");
        assert_eq!(cache.get(&key), None);
        cache.insert(
            key.clone(),
            Bytes::from_static(b"short"),
            Duration::from_millis(30),
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&key), None, "expired after its TTL");
        assert_eq!(AnswerCache::disabled().get(&key), None);
    }
}
