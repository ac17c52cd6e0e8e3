//! Shared state of a running gateway: settings, catalog, clock.

use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::config::GatewayConfig;
use crate::jobs::Jobs;
use crate::limits::Admission;
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::clock::{Clock, FixedClock, ManualClock, SystemClock};

/// Everything a request handler needs.
pub struct AppState {
    pub config: GatewayConfig,
    pub config_dir: PathBuf,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub started: std::time::Instant,
    pub jobs: Arc<Jobs>,
    pub admission: Admission,
    pub auth: Auth,
    pub counters: crate::metrics::Counters,
    pub metrics: crate::metrics::Metrics,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
    pub trusted_proxies: Vec<crate::net::Net>,
    /// Signs and checks share links.
    pub share: crate::share::Signer,
    /// Physical tables whose data files failed to read, with the last error (`/status`).
    pub degraded: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl AppState {
    pub fn new(config: GatewayConfig, config_dir: PathBuf, catalog: Catalog) -> AppState {
        let jobs_dir = config.jobs_dir(&config_dir);
        AppState::with_parts(config, config_dir, catalog, Arc::new(SystemClock), &jobs_dir)
    }

    /// Builds the state with an explicit clock and job directory (tests use both).
    pub fn with_parts(
        config: GatewayConfig,
        config_dir: PathBuf,
        catalog: Catalog,
        clock: Arc<dyn Clock>,
        jobs_dir: &std::path::Path,
    ) -> AppState {
        let jobs = Arc::new(Jobs::open(jobs_dir, clock.clone(), &config.jobs));
        let q = &config.query;
        let admission =
            Admission::new(config.limits.clone()).with_byte_budget(q.max_inflight_bytes, q.max_inflight_bytes_per_user);
        crate::workers::set_nice(q.worker_nice);
        let auth = Auth::new(&config.auth);
        let trusted_proxies = crate::net::parse_all(&config.server.trusted_proxies).unwrap_or_default();
        let share = crate::share::Signer::load(&config.auth.share_secret, jobs_dir).unwrap_or_else(|e| {
            tracing::error!("share links will not survive a restart: {e}");
            let key = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            crate::share::Signer::new(key.as_bytes())
        });
        AppState {
            share,
            trusted_proxies,
            config,
            config_dir,
            catalog: Arc::new(catalog),
            clock,
            started: std::time::Instant::now(),
            jobs,
            admission,
            auth,
            counters: Default::default(),
            metrics: Default::default(),
            degraded: Default::default(),
        }
    }

    /// Loads `DIR/gateway.toml` and the catalog and opens the job store; every problem found
    /// is returned.
    pub fn load(config_dir: PathBuf) -> Result<AppState, Vec<String>> {
        let (config, catalog) = load_config(&config_dir)?;
        Ok(AppState::new(config, config_dir, catalog))
    }
}

/// Loads `DIR/gateway.toml` and the catalog only (no job store: safe next to a running
/// server, as `quiver check` and `quiver rollup` are).
pub fn load_config(config_dir: &std::path::Path) -> Result<(GatewayConfig, Catalog), Vec<String>> {
    let config = GatewayConfig::load(config_dir).map_err(|e| vec![e])?;
    let catalog = crate::catalog::load(&config.tables_dir(config_dir), &config.data_root(config_dir))?;
    Ok((config, catalog))
}

impl AppState {
    /// A physical table whose files fail to read is degraded until a query on it succeeds.
    pub fn note_table_health<T>(&self, slice: &str, r: &Result<T, crate::engine::EngineError>) {
        let mut degraded = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Err(e @ crate::engine::EngineError::File { .. }) => {
                degraded.insert(slice.to_string(), e.to_string());
            }
            Ok(_) => {
                degraded.remove(slice);
            }
            Err(_) => {}
        }
    }

    /// Records a finished (or failed) query in the counters.
    pub fn count(&self, r: &Result<crate::engine::QueryResult, crate::engine::EngineError>) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.counters;
        c.queries.fetch_add(1, Relaxed);
        match r {
            Ok(q) => {
                c.rows_scanned.fetch_add(q.stats.rows_scanned, Relaxed);
                c.bytes_scanned.fetch_add(q.stats.bytes_scanned, Relaxed);
                c.row_groups_scanned.fetch_add(q.stats.row_groups_scanned as u64, Relaxed);
                c.row_groups_pruned.fetch_add(q.stats.row_groups_pruned as u64, Relaxed);
            }
            Err(crate::engine::EngineError::Canceled) => {
                c.queries_canceled.fetch_add(1, Relaxed);
            }
            Err(_) => {}
        }
    }
}
