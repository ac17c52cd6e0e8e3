//! Beyond one machine (DESIGN §8): physical tables with `engine = "distributed"` run their
//! aggregation on an Apache DataFusion Ballista cluster. The [`QueryPlan`] is translated into
//! DataFusion logical plans (`translate`), submitted to the scheduler and streamed back from
//! the executors (`client`); the groups that come back go through the same post-aggregation,
//! having, sort, topN and count as the local engine's (`engine::finalize`, `engine::shape`).
//! The `scheduler` and `executor` subcommands run the cluster from this binary (`process`).
//!
//! Built with the `distributed` cargo feature. Without it this module keeps only the
//! settings and a [`Cluster`] that refuses to start, so configuration can name the feature.

#[cfg(feature = "distributed")]
mod client;
#[cfg(feature = "distributed")]
pub mod probe;
#[cfg(feature = "distributed")]
pub mod process;
#[cfg(feature = "distributed")]
pub mod translate;

use crate::config::DistributedConfig;
use crate::engine::plan::{CancelToken, QueryPlan};
use crate::engine::{EngineError, QueryResult};
use std::time::Duration;

/// Where the cluster is and how long the gateway waits for it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configured address, `df://host:port` (shown in messages and `/status`).
    pub scheduler: String,
    pub host: String,
    pub port: u16,
    /// The most a query may take on the cluster before it is canceled and answered 503.
    pub timeout: Duration,
    /// The most a health probe of the scheduler may take.
    pub probe_timeout: Duration,
}

impl Settings {
    /// Settings from `[distributed]`; `None` when no scheduler is configured.
    pub fn from_config(c: &DistributedConfig) -> Result<Option<Settings>, String> {
        if c.scheduler.is_empty() {
            return Ok(None);
        }
        let (host, port) = c.address()?;
        Ok(Some(Settings {
            scheduler: c.scheduler.clone(),
            host,
            port,
            timeout: Duration::from_secs_f64(c.timeout_seconds),
            probe_timeout: Duration::from_secs_f64(c.probe_timeout_seconds),
        }))
    }
}

/// The scheduler's health as last probed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Probe {
    pub reachable: bool,
    /// Executors registered with the scheduler.
    pub executors: usize,
    /// Why the probe failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a remote run returns: the groups at the request grain (`__t`, `__d0…`, `__a0…`), the
/// groups of each nested average (`__t`, `__d0…`, `__n`), and the Ballista job ids.
pub struct RemoteGroups {
    pub main: Vec<arrow::array::RecordBatch>,
    pub nested: Vec<(String, Vec<arrow::array::RecordBatch>)>,
    pub jobs: Vec<String>,
}

/// The gateway's handle on the cluster.
pub struct Cluster {
    pub settings: Settings,
    #[cfg(feature = "distributed")]
    client: client::Client,
}

impl Cluster {
    /// A handle on the configured scheduler; an error when this binary was built without the
    /// `distributed` feature.
    pub fn new(settings: Settings) -> Result<Cluster, String> {
        #[cfg(feature = "distributed")]
        {
            let client = client::Client::new(settings.clone())?;
            Ok(Cluster { settings, client })
        }
        #[cfg(not(feature = "distributed"))]
        {
            let _ = settings;
            Err(NOT_BUILT.to_string())
        }
    }

    /// Runs `plan` on the cluster and finishes it in the gateway: the same shaped result as
    /// `engine::execute`, with `stats.remote` naming the scheduler and the jobs.
    pub fn execute(&self, plan: &QueryPlan, cancel: &CancelToken) -> Result<QueryResult, EngineError> {
        #[cfg(feature = "distributed")]
        {
            let started = std::time::Instant::now();
            let remote = self.client.execute(plan, cancel)?;
            let jobs = remote.jobs.clone();
            let (batch, groups) = finish::finish(plan, remote)?;
            let stats = crate::engine::ScanStats {
                files: plan.files.len(),
                groups,
                elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
                remote: Some(crate::engine::RemoteRun { scheduler: self.settings.scheduler.clone(), jobs }),
                ..Default::default()
            };
            Ok(QueryResult { batch, stats })
        }
        #[cfg(not(feature = "distributed"))]
        {
            let _ = (plan, cancel);
            Err(EngineError::Unsupported(NOT_BUILT.into()))
        }
    }

    /// The DataFusion logical plans `plan` runs as (for `format=debug`).
    pub fn explain(&self, plan: &QueryPlan) -> Result<Vec<String>, EngineError> {
        #[cfg(feature = "distributed")]
        {
            self.client.explain(plan)
        }
        #[cfg(not(feature = "distributed"))]
        {
            let _ = plan;
            Err(EngineError::Unsupported(NOT_BUILT.into()))
        }
    }

    /// Probes the scheduler (bounded by `probe_timeout`).
    pub fn probe(&self) -> Probe {
        #[cfg(feature = "distributed")]
        {
            self.client.probe()
        }
        #[cfg(not(feature = "distributed"))]
        {
            Probe { reachable: false, executors: 0, error: Some(NOT_BUILT.into()) }
        }
    }
}

/// Why a binary without the feature cannot run distributed tables.
pub const NOT_BUILT: &str = "this quiver was built without the distributed backend; build it with `cargo build --release --features distributed`";

#[cfg(feature = "distributed")]
mod finish;
