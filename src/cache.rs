//! The result cache: answers kept in memory, least recently used first out, bounded in bytes,
//! each for at most `cache.ttl_seconds`. An entry is the whole shaped result of a query's
//! meaning, so every page, format and file name of it is served from one run.
//!
//! The key names an answer: the canonical query (parameter names and order normalised, the
//! presentation left out), the intervals it resolved to (so `current` moves the key), who
//! asks (user, grants, row-level filters) and the data snapshot's fingerprint. Entries of an
//! older snapshot are never hit, and are dropped when a new snapshot serves.

use crate::engine::ScanStats;
use crate::response::RenderSpec;
use arrow::array::RecordBatch;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A cached answer.
pub struct Entry {
    pub batch: RecordBatch,
    pub stats: ScanStats,
    pub spec: RenderSpec,
    /// The newest modification time of the files it was computed from.
    pub last_modified: Option<std::time::SystemTime>,
    bytes: usize,
    at: Instant,
}

/// What a cache holds: something that knows its size and age.
pub trait Weighed {
    /// Bytes it holds.
    fn bytes(&self) -> usize;
    /// When it was made.
    fn made(&self) -> Instant;
}

impl Weighed for Entry {
    fn bytes(&self) -> usize {
        self.bytes
    }
    fn made(&self) -> Instant {
        self.at
    }
}

/// A rendered small answer: its body and the headers that belong to the representation
/// (content type, links, download name), kept so that a repeat costs no rendering.
pub struct Rendered {
    pub body: bytes::Bytes,
    pub headers: Vec<(&'static str, String)>,
    at: Instant,
}

impl Rendered {
    /// A rendered body with its headers.
    pub fn new(body: bytes::Bytes, headers: Vec<(&'static str, String)>) -> Rendered {
        Rendered { body, headers, at: Instant::now() }
    }
}

impl Weighed for Rendered {
    fn bytes(&self) -> usize {
        self.body.len() + 256 + self.headers.iter().map(|h| h.1.len()).sum::<usize>()
    }
    fn made(&self) -> Instant {
        self.at
    }
}

impl Entry {
    /// An entry for `batch`.
    pub fn new(
        batch: RecordBatch,
        stats: ScanStats,
        spec: RenderSpec,
        last_modified: Option<std::time::SystemTime>,
    ) -> Entry {
        let bytes = batch.get_array_memory_size() + 1024;
        Entry { batch, stats, spec, last_modified, bytes, at: Instant::now() }
    }
}

struct Inner<V> {
    map: HashMap<String, (Arc<V>, u64)>,
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
}

impl<V> Default for Inner<V> {
    fn default() -> Self {
        Inner { map: HashMap::new(), order: BTreeMap::new(), tick: 0, bytes: 0 }
    }
}

pub use crate::metrics::CacheStats;

/// An LRU cache bounded in bytes (answers, or rendered bodies).
pub struct Cache<V = Entry> {
    inner: Mutex<Inner<V>>,
    max_bytes: usize,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl<V: Weighed> Cache<V> {
    /// A cache of at most `max_bytes` (0 disables it) whose entries live `ttl`.
    pub fn new(max_bytes: usize, ttl: Duration) -> Cache<V> {
        Cache {
            inner: Mutex::new(Inner::default()),
            max_bytes,
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry under `key`, if present and younger than the TTL (counted as a hit or miss).
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let mut g = self.lock();
        let found = g.map.get(key).map(|(e, t)| (e.clone(), *t));
        let hit = match found {
            Some((e, _)) if e.made().elapsed() > self.ttl => {
                remove(&mut g, key);
                None
            }
            Some((e, old)) => {
                g.tick += 1;
                let tick = g.tick;
                g.order.remove(&old);
                g.order.insert(tick, key.to_string());
                if let Some(slot) = g.map.get_mut(key) {
                    slot.1 = tick;
                }
                Some(e)
            }
            None => None,
        };
        let counter = if hit.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Relaxed);
        hit
    }

    /// Keeps `entry` under `key`, evicting the least recently used entries to stay within the
    /// byte bound. An entry larger than half the bound is not kept.
    pub fn put(&self, key: String, entry: Arc<V>) -> bool {
        if entry.bytes() > self.max_bytes / 2 {
            return false;
        }
        let mut g = self.lock();
        remove(&mut g, &key);
        while g.bytes + entry.bytes() > self.max_bytes {
            let Some((_, oldest)) = g.order.pop_first() else { break };
            if let Some((e, _)) = g.map.remove(&oldest) {
                g.bytes -= e.bytes();
                self.evictions.fetch_add(1, Relaxed);
            }
        }
        g.tick += 1;
        let tick = g.tick;
        g.bytes += entry.bytes();
        g.order.insert(tick, key.clone());
        g.map.insert(key, (entry, tick));
        true
    }

    /// Drops every entry (a new snapshot serves).
    pub fn clear(&self) {
        *self.lock() = Inner::default();
    }

    /// Hits, misses, evictions and what is held.
    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            bytes: g.bytes as u64,
            entries: g.map.len() as u64,
        }
    }
}

fn remove<V: Weighed>(g: &mut Inner<V>, key: &str) {
    if let Some((e, tick)) = g.map.remove(key) {
        g.order.remove(&tick);
        g.bytes -= e.bytes();
    }
}

pub use crate::digest::digest;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use std::sync::Arc as StdArc;

    fn entry(rows: usize) -> Arc<Entry> {
        let a = Int64Array::from(vec![1i64; rows]);
        let b = RecordBatch::try_from_iter([("x", StdArc::new(a) as arrow::array::ArrayRef)]).unwrap();
        let spec = RenderSpec { tz: "UTC".into(), dims: vec![], missing: vec![], stem: "s".into() };
        Arc::new(Entry::new(b, ScanStats::default(), spec, None))
    }

    #[test]
    fn bounded_in_bytes_least_recently_used_out() {
        let one = entry(1000).bytes;
        let c: Cache = Cache::new(one * 3 + 10, Duration::from_secs(60));
        c.put("a".into(), entry(1000));
        c.put("b".into(), entry(1000));
        c.put("c".into(), entry(1000));
        assert!(c.get("a").is_some(), "a is now the most recently used");
        c.put("d".into(), entry(1000));
        assert!(c.get("b").is_none(), "b, the least recently used, was evicted");
        assert!(c.get("a").is_some() && c.get("c").is_some() && c.get("d").is_some());
        let s = c.stats();
        assert_eq!((s.evictions, s.entries), (1, 3));
        assert!(s.bytes as usize <= one * 3 + 10);
        assert!(!c.put("huge".into(), entry(100_000)), "larger than half the bound: not kept");
    }

    #[test]
    fn entries_expire() {
        let c: Cache = Cache::new(1 << 20, Duration::from_millis(0));
        c.put("a".into(), entry(10));
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.get("a").is_none());
        assert_eq!(c.stats().entries, 0);
    }
}
