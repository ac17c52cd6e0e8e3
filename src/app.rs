//! Shared state of a running gateway: settings, the serving catalog snapshot, identity, clock,
//! and the reload that replaces the last two parts (SIGHUP).

use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::config::GatewayConfig;
use crate::jobs::Jobs;
use crate::limits::Admission;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

pub use crate::clock::{Clock, FixedClock, ManualClock, SystemClock};

/// Everything a request handler needs.
pub struct AppState {
    pub config: GatewayConfig,
    pub config_dir: PathBuf,
    /// The serving catalog snapshot and its reloads (see [`AppState::catalog`]).
    pub snapshots: crate::snapshot::Snapshots,
    pub clock: Arc<dyn Clock>,
    pub started: std::time::Instant,
    pub jobs: Arc<Jobs>,
    pub admission: Admission,
    /// Tokens and roles, replaced as a whole by a configuration reload (see [`AppState::auth`]).
    auth: RwLock<Arc<Auth>>,
    pub counters: crate::metrics::Counters,
    pub metrics: crate::metrics::Metrics,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
    pub trusted_proxies: Vec<crate::net::Net>,
    /// Signs and checks share links.
    pub share: crate::share::Signer,
    /// `query.default_asyncAfter`, parsed once.
    pub default_async_after: crate::grammar::async_after::AsyncAfter,
    /// Answers kept for repeats, other pages and other formats.
    pub cache: crate::cache::Cache,
    /// Rendered small bodies, by representation: a repeat costs no rendering.
    pub bodies: crate::cache::Cache<crate::cache::Rendered>,
    /// Physical tables whose data files failed to read, with the last error (`/status`).
    pub degraded: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
    /// The Ballista cluster of `[distributed]`, when a scheduler is configured.
    pub cluster: Option<Arc<crate::distributed::Cluster>>,
    /// The cluster's last probe and when it was taken (UTC ms), for `/status`.
    pub cluster_probe: std::sync::Mutex<Option<(crate::distributed::Probe, i64)>>,
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
        crate::engine::pages::chunks::set_capacity(q.chunk_cache_bytes);
        let auth = RwLock::new(Arc::new(Auth::new(&config.auth)));
        let snapshots = crate::snapshot::Snapshots::new(
            catalog,
            config.tables_dir(&config_dir),
            config.data_root(&config_dir),
            clock.clone(),
        );
        let trusted_proxies = crate::net::parse_all(&config.server.trusted_proxies).unwrap_or_default();
        let share = crate::share::Signer::load(&config.auth.share_secret, jobs_dir).unwrap_or_else(|e| {
            tracing::error!("share links will not survive a restart: {e}");
            let key = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            crate::share::Signer::new(key.as_bytes())
        });
        let default_async_after = crate::grammar::async_after::parse(&config.query.default_asyncAfter)
            .unwrap_or(crate::grammar::async_after::AsyncAfter::Never);
        // Three quarters of the budget for answers, one for rendered bodies.
        let ttl = std::time::Duration::from_secs(config.cache.ttl_seconds);
        let budget = config.cache.max_bytes as usize;
        let cache = crate::cache::Cache::new(budget - budget / 4, ttl);
        let bodies = crate::cache::Cache::<crate::cache::Rendered>::new(budget / 4, ttl);
        let cluster = start_cluster(&config.distributed);
        AppState {
            cluster,
            cluster_probe: Default::default(),
            default_async_after,
            cache,
            bodies,
            share,
            trusted_proxies,
            config,
            config_dir,
            snapshots,
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
        AppState::load_with_jobs(config_dir, None)
    }

    /// [`AppState::load`] with the job store in `jobs_dir` instead of where `gateway.toml`
    /// says (`--jobs-dir`, or the user's state directory for the embedded data set).
    pub fn load_with_jobs(config_dir: PathBuf, jobs_dir: Option<PathBuf>) -> Result<AppState, Vec<String>> {
        let (mut config, catalog) = load_config(&config_dir)?;
        if let Some(j) = jobs_dir {
            config.jobs.dir = j.to_string_lossy().into_owned();
        }
        Ok(AppState::new(config, config_dir, catalog))
    }
}

/// Loads `DIR/gateway.toml` and the catalog only (no job store: safe next to a running
/// server, as `quiver check` and `quiver rollup` are).
pub fn load_config(config_dir: &std::path::Path) -> Result<(GatewayConfig, Catalog), Vec<String>> {
    let config = GatewayConfig::load(config_dir).map_err(|e| vec![e])?;
    let catalog = crate::catalog::load(&config.tables_dir(config_dir), &config.data_root(config_dir))?;
    if config.distributed.scheduler.is_empty() {
        let problems: Vec<String> = catalog
            .physical_on(crate::catalog::physical::Engine::Distributed)
            .map(|p| {
                format!(
                    "physical table '{}' has engine = \"distributed\", but {} sets no `distributed.scheduler` (e.g. \"df://127.0.0.1:50050\")",
                    p.name,
                    config_dir.join("gateway.toml").display()
                )
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
    }
    Ok((config, catalog))
}

/// The cluster handle for `[distributed]` (none without a scheduler; a binary without the
/// feature refused distributed tables when the catalog loaded).
fn start_cluster(c: &crate::config::DistributedConfig) -> Option<Arc<crate::distributed::Cluster>> {
    let settings = crate::distributed::Settings::from_config(c).ok()??;
    match crate::distributed::Cluster::new(settings) {
        Ok(cl) => Some(Arc::new(cl)),
        Err(e) => {
            tracing::error!("distributed tables cannot run: {e}");
            None
        }
    }
}

impl AppState {
    /// The serving catalog snapshot: a request takes it once and keeps it to the end.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.snapshots.current()
    }

    /// The identity configuration in force.
    pub fn auth(&self) -> Arc<Auth> {
        self.auth.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Builds a new snapshot when files changed (the periodic refresh); `Ok(true)` when one
    /// was swapped in.
    pub fn refresh(&self) -> Result<bool, Vec<String>> {
        let swapped = self.snapshots.refresh(false)?;
        if swapped {
            self.after_swap();
        }
        Ok(swapped)
    }

    /// Re-reads `tables/*.toml` and the `[auth]` section of `gateway.toml` (SIGHUP), and
    /// rebuilds the snapshot. Anything that fails to load leaves what serves in place; other
    /// changed sections of `gateway.toml` are logged as needing a restart.
    pub fn reload(&self) -> Result<(), Vec<String>> {
        let config = GatewayConfig::load(&self.config_dir).map_err(|e| {
            let problems = vec![e];
            self.snapshots.record_failure(&problems);
            problems
        })?;
        self.snapshots.refresh(true)?;
        self.after_swap();
        *self.auth.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Auth::new(&config.auth));
        // --port and --bind override the file; they are not changes.
        let server = crate::config::ServerConfig {
            port: self.config.server.port,
            bind: self.config.server.bind.clone(),
            ..config.server.clone()
        };
        let restart: Vec<&str> = [
            ("server", format!("{server:?}") != format!("{:?}", self.config.server)),
            ("query", format!("{:?}", config.query) != format!("{:?}", self.config.query)),
            ("limits", format!("{:?}", config.limits) != format!("{:?}", self.config.limits)),
            ("jobs", format!("{:?}", config.jobs) != format!("{:?}", self.config.jobs)),
            ("catalog", format!("{:?}", config.catalog) != format!("{:?}", self.config.catalog)),
        ]
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(k, _)| k)
        .collect();
        if !restart.is_empty() {
            tracing::warn!("gateway.toml: changes to [{}] take effect at the next restart", restart.join("], ["));
        }
        Ok(())
    }

    /// A new snapshot serves: the degraded marks and cached answers were about the old files,
    /// and the new snapshot's dimension values are computed in the background rather than in
    /// a request (nor in the query whose replaced file triggered the reload).
    fn after_swap(&self) {
        self.degraded.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.cache.clear();
        self.bodies.clear();
        let catalog = self.catalog();
        let warming = std::thread::Builder::new().name("warm".into());
        if warming.spawn(move || crate::request::values::warm(&catalog)).is_err() {
            tracing::warn!("cannot start warming dimension values; the first request computes them");
        }
    }

    /// Marks a physical table degraded with `message` (shown to operators by `/status`).
    pub fn mark_degraded(&self, slice: &str, message: &str) {
        self.degraded.lock().unwrap_or_else(|p| p.into_inner()).insert(slice.to_string(), message.to_string());
    }

    /// A physical table whose files fail to read is degraded until a query on it succeeds.
    pub fn note_table_health<T>(&self, slice: &str, r: &Result<T, crate::engine::EngineError>) {
        let mut degraded = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Err(e @ (crate::engine::EngineError::File { .. } | crate::engine::EngineError::Unavailable(_))) => {
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

/// Every `catalog.refresh_seconds` (unless 0), compares the files under every physical
/// table's path with the serving snapshot and builds a new one when they changed.
pub async fn refresh_loop(state: Arc<AppState>) {
    let every = state.config.catalog.refresh_seconds;
    if every == 0 {
        return;
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(every)).await;
        let st = state.clone();
        crate::workers::run(move || st.refresh()).await;
    }
}

/// Every `distributed.probe_seconds` (unless 0), asks the scheduler whether it is there and
/// how many executors it has. While it is unreachable or has none, every distributed table is
/// degraded (`/status`); the first good probe clears that.
pub async fn cluster_loop(state: Arc<AppState>) {
    let every = state.config.distributed.probe_seconds;
    let Some(cluster) = state.cluster.clone() else { return };
    if every <= 0.0 {
        return;
    }
    loop {
        let c = cluster.clone();
        if let Some(probe) = crate::workers::run(move || c.probe()).await {
            state.note_cluster(probe);
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(every)).await;
    }
}

impl AppState {
    /// Records a probe of the cluster and marks or clears the distributed tables' health.
    pub fn note_cluster(&self, probe: crate::distributed::Probe) {
        let problem = match (&probe.error, probe.executors) {
            (Some(e), _) => Some(format!("The distributed engine cannot be reached: {e}.")),
            (None, 0) => Some("The distributed engine has no executors.".to_string()),
            _ => None,
        };
        let distributed: Vec<String> =
            self.catalog().physical_on(crate::catalog::physical::Engine::Distributed).map(|p| p.name.clone()).collect();
        {
            let mut degraded = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
            for name in distributed {
                match &problem {
                    Some(m) => {
                        degraded.insert(name, m.clone());
                    }
                    None => {
                        degraded.remove(&name);
                    }
                }
            }
        }
        *self.cluster_probe.lock().unwrap_or_else(|p| p.into_inner()) = Some((probe, self.clock.now_ms()));
    }
}
