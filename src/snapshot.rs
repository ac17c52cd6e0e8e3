//! Catalog snapshots (DESIGN §8a): everything derived from the configuration and the files
//! (tables, file lists, footers, availability, and the memoised dimension values, views and
//! role answers) is one immutable [`Catalog`]. A new one is built when files appear, change
//! or disappear under a physical table's path, or on demand (SIGHUP), and swapped in
//! atomically; a request keeps the snapshot it started with until it ends. A configuration
//! that fails to load never replaces a working snapshot: the problems are kept for
//! `/status` and the log.

use crate::catalog::{self, Catalog};
use crate::clock::Clock;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// How the snapshots have fared, for `/status`.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// The serving snapshot's version.
    pub version: u64,
    /// When it was loaded (UTC ms).
    pub loaded_at_ms: i64,
    /// When the files were last compared with it (UTC ms).
    pub checked_at_ms: i64,
    /// The last failed reload's problems, until a reload succeeds.
    pub last_error: Option<String>,
    /// When that reload failed (UTC ms).
    pub last_error_at_ms: Option<i64>,
}

/// The serving snapshot and how to build the next one.
pub struct Snapshots {
    current: RwLock<Arc<Catalog>>,
    tables_dir: PathBuf,
    data_root: PathBuf,
    /// Held while a reload runs, so concurrent triggers build one snapshot, not several.
    reloading: Mutex<()>,
    status: Mutex<ReloadStatus>,
    clock: Arc<dyn Clock>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Snapshots {
    /// Serves `catalog` as version 1; reloads read `tables_dir` against `data_root`.
    pub fn new(mut catalog: Catalog, tables_dir: PathBuf, data_root: PathBuf, clock: Arc<dyn Clock>) -> Snapshots {
        catalog.version = 1;
        catalog.fingerprint = fingerprint(&catalog, &tables_dir);
        let now = clock.now_ms();
        let status = ReloadStatus { version: 1, loaded_at_ms: now, checked_at_ms: now, ..Default::default() };
        Snapshots {
            current: RwLock::new(Arc::new(catalog)),
            tables_dir,
            data_root,
            reloading: Mutex::new(()),
            status: Mutex::new(status),
            clock,
        }
    }

    /// The serving snapshot.
    pub fn current(&self) -> Arc<Catalog> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How the snapshots have fared.
    pub fn status(&self) -> ReloadStatus {
        lock(&self.status).clone()
    }

    /// Whether the files under some physical table's path differ from the serving snapshot's:
    /// one appeared, disappeared, or changed size or modification time.
    pub fn stale(&self) -> bool {
        let cat = self.current();
        cat.tables.values().flat_map(|t| t.physical.iter()).any(|p| {
            let listed: BTreeSet<PathBuf> = match catalog::physical::expand_path(&self.data_root, &p.path_spec) {
                Ok(paths) => paths.into_iter().collect(),
                Err(_) => return true,
            };
            let known: BTreeSet<PathBuf> = p.files.iter().map(|f| f.path.clone()).collect();
            listed != known || !p.files_unchanged()
        })
    }

    /// Records a reload that failed before the catalog was read (`gateway.toml` itself).
    pub fn record_failure(&self, problems: &[String]) {
        let mut st = lock(&self.status);
        st.last_error = Some(problems.join("; "));
        st.last_error_at_ms = Some(self.clock.now_ms());
        tracing::error!("configuration reload failed; snapshot {} keeps serving: {}", st.version, problems.join("; "));
    }

    /// Builds and swaps in a new snapshot when the files changed, or always with `force`
    /// (a configuration reload). `Ok(true)` when a new snapshot now serves; on failure the
    /// serving one stays and the problems are returned (and kept for `/status`).
    pub fn refresh(&self, force: bool) -> Result<bool, Vec<String>> {
        let _one = lock(&self.reloading);
        let now = self.clock.now_ms();
        lock(&self.status).checked_at_ms = now;
        if !force && !self.stale() {
            return Ok(false);
        }
        let old = self.current();
        match catalog::load_reusing(&self.tables_dir, &self.data_root, Some(&old)) {
            Ok(mut next) => {
                next.version = old.version + 1;
                next.fingerprint = fingerprint(&next, &self.tables_dir);
                let version = next.version;
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
                *lock(&self.status) = ReloadStatus {
                    version,
                    loaded_at_ms: now,
                    checked_at_ms: now,
                    last_error: None,
                    last_error_at_ms: None,
                };
                tracing::info!(version, "catalog snapshot {version} now serving");
                Ok(true)
            }
            Err(problems) => {
                self.record_failure(&problems);
                Err(problems)
            }
        }
    }
}

/// A digest of what answers depend on: every data file (path, size, modification time) and
/// the text of every table definition file.
pub fn fingerprint(catalog: &Catalog, tables_dir: &std::path::Path) -> String {
    let mut parts: Vec<String> = catalog
        .footers()
        .values()
        .map(|f| format!("{}|{}|{:?}|{}", f.path.display(), f.size_bytes, f.modified, f.time_column))
        .collect();
    parts.sort();
    if let Ok(entries) = std::fs::read_dir(tables_dir) {
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        parts.extend(files.iter().filter_map(|f| std::fs::read_to_string(f).ok()));
    }
    let refs: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
    crate::digest::digest(&refs)
}
