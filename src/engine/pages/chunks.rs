//! A bounded in-memory cache of decompressed column chunks, the analogue of the segment
//! cache Druid's historicals keep. It avoids work (reading and decompressing a chunk again);
//! it does not make the work faster, and benchmarks label it as such.
//!
//! A chunk enters the cache when one read of it decompressed every one of its pages (a read
//! that skipped pages, or stopped before the end, leaves nothing behind). Entries are named
//! by the file's path, size and modification time, so a file replaced on disk is never
//! served from an old entry; stale entries age out. The byte bound is process-wide
//! (`query.chunk_cache_bytes`). When it is full, a new chunk may only displace chunks unused
//! for [`IDLE`] (least recently used first); otherwise it is not kept. So a scan larger than
//! the cache, repeated, keeps hitting the part that fits instead of flushing it every time
//! (plain LRU would miss on every chunk), and data nobody reads any more still ages out. A
//! chunk larger than an eighth of the bound is never kept.
//!
//! It also opens a row group's chunks for the page decoder ([`open_sources`]): from the cache
//! when it holds them, else from the file.

use super::ColSpec;
use super::compact::compact;
use super::inflate;
use super::values::fixed_width;
use crate::datafile::DataFile;
use crate::engine::{EngineError, plan::QueryPlan};
use parquet::basic::Type as Phys;
use parquet::column::page::{Page, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::serialized_reader::SerializedPageReader;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long a chunk must go unused before a new one may take its place.
pub const IDLE: Duration = Duration::from_secs(30);

/// Names one column chunk of one version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
    row_group: usize,
    leaf: usize,
}

impl ChunkKey {
    /// The key of column `leaf` of row group `row_group` of `f`.
    pub fn new(f: &DataFile, row_group: usize, leaf: usize) -> ChunkKey {
        ChunkKey { path: f.path.clone(), size: f.size_bytes, modified: f.modified, row_group, leaf }
    }
}

struct Entry {
    pages: Arc<[Page]>,
    bytes: u64,
    tick: u64,
    used: Instant,
}

#[derive(Default)]
struct Inner {
    capacity: u64,
    used: u64,
    tick: u64,
    entries: FxHashMap<ChunkKey, Entry>,
    /// Recency order: tick → key.
    order: BTreeMap<u64, ChunkKey>,
}

/// The process's chunk cache.
#[derive(Default)]
pub struct ChunkCache {
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    compacted: AtomicU64,
    cut: AtomicU64,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkStats {
    /// The byte bound (`query.chunk_cache_bytes`).
    pub capacity: u64,
    /// Bytes held now.
    pub bytes: u64,
    /// Chunks held now.
    pub entries: u64,
    /// Chunk reads served from memory.
    pub hits: u64,
    /// Chunk reads that went to the file (while the cache was on).
    pub misses: u64,
    /// Chunks re-encoded with a dictionary as they entered ([`compact`]).
    pub compacted: u64,
    /// Pages decompressed only as far as the rows a query read ([`inflate::page`]).
    pub cut: u64,
}

static CACHE: std::sync::OnceLock<ChunkCache> = std::sync::OnceLock::new();

/// The process-wide cache (empty and disabled until [`set_capacity`]).
pub fn cache() -> &'static ChunkCache {
    CACHE.get_or_init(ChunkCache::default)
}

/// Sets the byte bound (0 turns the cache off and empties it).
pub fn set_capacity(bytes: u64) {
    let c = cache();
    let mut g = c.inner.lock().unwrap_or_else(|e| e.into_inner());
    g.capacity = bytes;
    g.evict_to(bytes);
}

/// The cache's current counters.
pub fn stats() -> ChunkStats {
    let c = cache();
    let g = c.inner.lock().unwrap_or_else(|e| e.into_inner());
    ChunkStats {
        capacity: g.capacity,
        bytes: g.used,
        entries: g.entries.len() as u64,
        hits: c.hits.load(Ordering::Relaxed),
        misses: c.misses.load(Ordering::Relaxed),
        compacted: c.compacted.load(Ordering::Relaxed),
        cut: c.cut.load(Ordering::Relaxed),
    }
}

impl Inner {
    /// The largest chunk kept: an eighth of the bound, so one scan cannot flush everything.
    fn max_chunk(&self) -> u64 {
        self.capacity / 8
    }

    /// Whether a chunk of about `bytes` could enter now: not too large, and room for it or a
    /// chunk idle long enough to give way.
    fn may_admit(&self, bytes: u64) -> bool {
        let oldest_idle =
            || self.order.values().next().and_then(|k| self.entries.get(k)).is_some_and(|e| e.used.elapsed() >= IDLE);
        bytes <= self.max_chunk() && (self.used + bytes <= self.capacity || oldest_idle())
    }

    /// Frees `bytes` by evicting chunks idle for [`IDLE`], oldest first; false (nothing
    /// evicted) when that cannot free enough.
    fn make_room(&mut self, bytes: u64, now: Instant) -> bool {
        let need = (self.used + bytes).saturating_sub(self.capacity);
        let mut idle = 0;
        for key in self.order.values() {
            if idle >= need {
                break;
            }
            match self.entries.get(key) {
                Some(e) if now.duration_since(e.used) >= IDLE => idle += e.bytes,
                _ => break,
            }
        }
        if idle < need {
            return false;
        }
        self.evict_to(self.capacity - bytes);
        true
    }

    /// The pages of `key`, now the most recently used chunk.
    fn touch(&mut self, key: &ChunkKey) -> Option<Arc<[Page]>> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.entries.get_mut(key)?;
        let old = std::mem::replace(&mut e.tick, tick);
        e.used = Instant::now();
        let pages = e.pages.clone();
        self.order.remove(&old);
        self.order.insert(tick, key.clone());
        Some(pages)
    }

    fn evict_to(&mut self, limit: u64) {
        while self.used > limit {
            let Some((_, key)) = self.order.pop_first() else { break };
            if let Some(e) = self.entries.remove(&key) {
                self.used -= e.bytes;
            }
        }
    }
}

/// What the cache says about a chunk about to be read.
enum Lookup {
    /// The cache is off.
    Off,
    Hit(Arc<[Page]>),
    /// Not held; `admit` = a read may keep its pages for the cache (at most `limit` bytes).
    Miss {
        admit: bool,
        limit: u64,
    },
}

impl ChunkCache {
    /// One look under one lock: the chunk's pages, or whether a read should keep them.
    fn lookup(&self, key: &ChunkKey, bytes: u64) -> Lookup {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.capacity == 0 {
            return Lookup::Off;
        }
        if let Some(pages) = g.touch(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Hit(pages);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss { admit: g.may_admit(bytes), limit: g.max_chunk() }
    }

    #[cfg(test)]
    fn get(&self, key: &ChunkKey) -> Option<Arc<[Page]>> {
        self.inner.lock().unwrap().touch(key)
    }

    fn put(&self, key: ChunkKey, pages: Vec<Page>) {
        let bytes: u64 = pages.iter().map(|p| p.buffer().len() as u64 + 64).sum();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if bytes > g.max_chunk() || g.entries.contains_key(&key) || !g.make_room(bytes, Instant::now()) {
            return;
        }
        g.tick += 1;
        let tick = g.tick;
        g.order.insert(tick, key.clone());
        g.entries.insert(key, Entry { pages: pages.into(), bytes, tick, used: Instant::now() });
        g.used += bytes;
    }
}

/// Where a cursor's pages come from: the file (decompressing each page, and keeping them
/// for the cache while no page has been skipped), a cached chunk, or a chunk another thread
/// is reading ahead ([`super::ahead`]).
pub enum PageSource {
    /// Pages read and decompressed from the file; `keep` collects them for the cache. With
    /// `inflate`, the reader hands out zstd pages as stored, for [`inflate::page`] to
    /// decompress, each to at most that many bytes.
    /// `shape` is the column's physical type and whether it has definition levels (what
    /// cutting a page short needs: [`PageSource::get_next_page_upto`]).
    File { reader: Box<SerializedPageReader<File>>, keep: Option<Keep>, inflate: Option<u64>, shape: (Phys, bool) },
    /// A cached chunk's pages; `next` is the next one to hand out.
    Cached { pages: Arc<[Page]>, next: usize },
    /// The pages of a chunk read ahead by another thread, once it has sent them.
    Pending(Receiver<PqResult<Vec<AheadPage>>>),
    /// A chunk read ahead: its pages, decompressed or skipped; `next` as for `Cached`.
    Ahead { pages: Vec<AheadPage>, next: usize },
}

/// One page of a chunk read ahead ([`super::ahead`]).
pub enum AheadPage {
    /// Read and decompressed.
    Read(Page),
    /// Not needed by the rows the unit reads: skipped, with its metadata.
    Skipped(PageMetadata),
}

/// The pages read so far of a chunk that may enter the cache.
pub struct Keep {
    key: ChunkKey,
    pages: Vec<Page>,
    /// Their decompressed bytes, and the most the cache would take.
    bytes: u64,
    limit: u64,
    phys: Phys,
    has_def: bool,
}

impl PageSource {
    /// The pages of chunk `key` (of physical type `phys`, with definition levels when
    /// `has_def`, about `bytes` decompressed): from the cache when it holds them, else from
    /// `open()` (a reader, and the `inflate` bound of [`PageSource::File`]), keeping them for
    /// the cache when `admit` and the cache can take them.
    pub fn new(
        key: ChunkKey,
        (phys, has_def, bytes, admit): (Phys, bool, u64, bool),
        open: impl FnOnce() -> PqResult<(SerializedPageReader<File>, Option<u64>)>,
    ) -> PqResult<PageSource> {
        let keep = match cache().lookup(&key, bytes) {
            Lookup::Hit(pages) => return Ok(PageSource::Cached { pages, next: 0 }),
            Lookup::Miss { admit: true, limit } if admit => {
                Some(Keep { key, pages: Vec::new(), bytes: 0, limit, phys, has_def })
            }
            _ => None,
        };
        let (reader, inflate) = open()?;
        Ok(PageSource::File { reader: Box::new(reader), keep, inflate, shape: (phys, has_def) })
    }

    /// Whether the pages come from the file, decompressed as they are asked for.
    pub fn reads_file(&self) -> bool {
        matches!(self, PageSource::File { .. })
    }

    /// Waits for a chunk read ahead, which then hands out its pages like a cached one.
    fn resolve(&mut self) -> PqResult<()> {
        if let PageSource::Pending(rx) = self {
            let pages = rx.recv().map_err(|_| ParquetError::General("the read-ahead thread stopped".into()))??;
            *self = PageSource::Ahead { pages, next: 0 };
        }
        Ok(())
    }

    /// The next page, decompressed.
    pub fn get_next_page(&mut self) -> PqResult<Option<Page>> {
        self.get_next_page_upto(None)
    }

    /// The next page, decompressed; from the file, when the reader needs only its first
    /// `rows` rows (`Some`), perhaps only that far ([`inflate::page`]). A page cut short
    /// keeps its chunk out of the cache.
    pub fn get_next_page_upto(&mut self, rows: Option<usize>) -> PqResult<Option<Page>> {
        self.resolve()?;
        match self {
            PageSource::File { reader, keep, inflate, shape: (phys, has_def) } => {
                let page = match (reader.get_next_page()?, *inflate) {
                    (Some(p), Some(limit)) => {
                        let prefix =
                            rows.map(|rows| inflate::Prefix { rows, width: fixed_width(*phys), levels: *has_def });
                        let (p, cut) = inflate::page(p, limit, prefix)?;
                        if cut {
                            *keep = None;
                            cache().cut.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(p)
                    }
                    (page, _) => page,
                };
                if let (Some(p), Some(k)) = (&page, keep.as_mut()) {
                    k.bytes += p.buffer().len() as u64;
                    k.pages.push(p.clone());
                    // Past what the cache would keep: stop holding the pages.
                    if k.bytes > k.limit {
                        *keep = None;
                    }
                }
                Ok(page)
            }
            PageSource::Cached { pages, next } => {
                let page = pages.get(*next).cloned();
                *next += 1;
                Ok(page)
            }
            PageSource::Ahead { pages, next } => {
                *next += 1;
                match pages.get(*next - 1) {
                    None => Ok(None),
                    Some(AheadPage::Read(p)) => Ok(Some(p.clone())),
                    Some(AheadPage::Skipped(_)) => Err(ParquetError::General("a page read ahead was skipped".into())),
                }
            }
            PageSource::Pending(_) => unreachable!("resolved above"),
        }
    }

    /// What the next page holds, without decompressing it.
    pub fn peek_next_page(&mut self) -> PqResult<Option<PageMetadata>> {
        self.resolve()?;
        match self {
            PageSource::File { reader, .. } => reader.peek_next_page(),
            PageSource::Cached { pages, next } => Ok(pages.get(*next).map(metadata)),
            PageSource::Ahead { pages, next } => Ok(pages.get(*next).map(|p| match p {
                AheadPage::Read(p) => metadata(p),
                AheadPage::Skipped(m) => m.clone(),
            })),
            PageSource::Pending(_) => unreachable!("resolved above"),
        }
    }

    /// Skips the next page without decompressing it (the chunk then stays out of the cache).
    pub fn skip_next_page(&mut self) -> PqResult<()> {
        self.resolve()?;
        match self {
            PageSource::File { reader, keep, .. } => {
                *keep = None;
                reader.skip_next_page()
            }
            PageSource::Cached { next, .. } | PageSource::Ahead { next, .. } => {
                *next += 1;
                Ok(())
            }
            PageSource::Pending(_) => unreachable!("resolved above"),
        }
    }

    /// Called when the reader is done with the chunk: a chunk read whole enters the cache
    /// (numbers with few values re-encoded with a dictionary, [`compact`]).
    pub fn finish(&mut self) {
        if let PageSource::File { reader, keep, .. } = self
            && keep.is_some()
            && matches!(reader.peek_next_page(), Ok(None))
            && let Some(k) = keep.take()
        {
            let n = k.pages.len();
            let pages = compact(k.pages, k.phys, k.has_def);
            if pages.len() != n {
                cache().compacted.fetch_add(1, Ordering::Relaxed);
            }
            cache().put(k.key, pages);
        }
    }
}

/// What a decompressed page holds (the page decoder reads flat columns only: one value per
/// row).
fn metadata(p: &Page) -> PageMetadata {
    let rows = p.num_values() as usize;
    let is_dict = matches!(p, Page::DictionaryPage { .. });
    PageMetadata { num_rows: (!is_dict).then_some(rows), num_levels: Some(rows), is_dict }
}

/// The needed chunks of a row group, ready to read.
pub struct Opened {
    /// Each chunk's page source.
    pub pages: Vec<PageSource>,
    /// Whether its column has definition levels.
    pub has_def: Vec<bool>,
    /// Its decompressed size when it is read from the file (what read-ahead may take over).
    pub sizes: Vec<Option<u64>>,
}

/// Opens the page sources of row group `rg`'s needed chunks: from the chunk cache when it
/// holds them, else from the file (nothing is read or decompressed yet).
pub fn open_sources(plan: &QueryPlan, f: &Arc<DataFile>, rg: usize, specs: &[ColSpec]) -> Result<Opened, EngineError> {
    let md = f.metadata.metadata();
    let rg_meta = md.row_group(rg);
    let total = rg_meta.num_rows().max(0) as usize;
    let offsets = md.offset_index().and_then(|o| o.get(rg));
    let mut out = Opened { pages: vec![], has_def: vec![], sizes: vec![] };
    for s in specs {
        let chunk = rg_meta.column(s.leaf);
        let locations = offsets.and_then(|o| o.get(s.leaf)).map(|o| o.page_locations().clone());
        let has_def = md.file_metadata().schema_descr().column(s.leaf).max_def_level() > 0;
        let key = ChunkKey::new(f, rg, s.leaf);
        let size = chunk.uncompressed_size().max(0) as u64;
        // A file of its own for each chunk: readers seek it, and a clone shares the offset
        // with the reader of another chunk, which may be on another thread ([`super::ahead`]).
        let pages = PageSource::new(key, (s.phys, has_def, size, plan.limits.chunk_cache), || {
            let file = Arc::new(File::open(&f.path)?);
            Ok(match inflate::stored(chunk)? {
                Some((raw, limit)) => (SerializedPageReader::new(file, &raw, total, locations)?, Some(limit)),
                None => (SerializedPageReader::new(file, chunk, total, locations)?, None),
            })
        })
        .map_err(|e| EngineError::file(f, e))?;
        out.sizes.push(pages.reads_file().then_some(size));
        out.pages.push(pages);
        out.has_def.push(has_def);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use parquet::basic::Encoding;

    fn page(n: usize) -> Page {
        Page::DictionaryPage {
            buf: Bytes::from(vec![0u8; n]),
            num_values: 1,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        }
    }

    fn key(i: usize) -> ChunkKey {
        ChunkKey { path: "f".into(), size: 1, modified: None, row_group: i, leaf: 0 }
    }

    fn cache(capacity: u64) -> ChunkCache {
        let c = ChunkCache::default();
        c.inner.lock().unwrap().capacity = capacity;
        c
    }

    #[test]
    fn a_full_cache_keeps_what_is_in_use_and_lets_idle_chunks_go() {
        let c = cache(8 * 1064);
        let may_admit = |bytes| c.inner.lock().unwrap().may_admit(bytes);
        assert!(may_admit(1000) && !may_admit(1100), "room, and an eighth of the bound at most");
        for i in 0..8 {
            c.put(key(i), vec![page(1000)]);
        }
        assert_eq!(c.inner.lock().unwrap().entries.len(), 8);
        // Full of chunks in use: a read does not even keep its pages for the cache, a ninth
        // chunk offered is not kept, and nothing is evicted.
        assert!(!may_admit(1000));
        c.put(key(8), vec![page(1000)]);
        assert!(c.get(&key(8)).is_none());
        assert!((0..8).all(|i| c.get(&key(i)).is_some()));
        // Once the least recently used ones have been idle long enough, they make room.
        let later = Instant::now() + IDLE;
        let mut g = c.inner.lock().unwrap();
        assert!(g.make_room(1064, later));
        assert_eq!(g.entries.len(), 7);
        assert!(!g.entries.contains_key(&key(0)), "the least recently used chunk left");
        assert!(g.used <= g.capacity - 1064);
    }

    #[test]
    fn oversized_chunks_are_not_kept_and_zero_turns_it_off() {
        let c = cache(8000);
        c.put(key(0), vec![page(1100)]);
        assert!(c.get(&key(0)).is_none(), "over an eighth of the bound");
        c.put(key(1), vec![page(500)]);
        assert!(c.get(&key(1)).is_some());
        c.inner.lock().unwrap().evict_to(0);
        assert!(c.get(&key(1)).is_none());
        assert_eq!(c.inner.lock().unwrap().used, 0);
    }
}
