//! Shared state of a running gateway: settings, catalog, clock.

use crate::catalog::Catalog;
use crate::config::GatewayConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// The source of "now" (UTC ms), injected so time-dependent behaviour is testable.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock fixed at an instant (tests, reproducible demos).
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

/// Everything a request handler needs.
pub struct AppState {
    pub config: GatewayConfig,
    pub config_dir: PathBuf,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub started: std::time::Instant,
}

impl AppState {
    pub fn new(config: GatewayConfig, config_dir: PathBuf, catalog: Catalog) -> AppState {
        AppState {
            config,
            config_dir,
            catalog: Arc::new(catalog),
            clock: Arc::new(SystemClock),
            started: std::time::Instant::now(),
        }
    }

    /// Loads `DIR/gateway.toml` and the catalog; every problem found is returned.
    pub fn load(config_dir: PathBuf) -> Result<AppState, Vec<String>> {
        let config = GatewayConfig::load(&config_dir).map_err(|e| vec![e])?;
        let catalog = crate::catalog::load(&config.tables_dir(&config_dir), &config.data_root(&config_dir))?;
        Ok(AppState::new(config, config_dir, catalog))
    }
}
