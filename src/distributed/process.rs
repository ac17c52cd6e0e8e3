//! `quiver scheduler` and `quiver executor`: a Ballista cluster from this binary, through the
//! `ballista-scheduler` and `ballista-executor` library crates, so scheduler, executors and
//! gateway share one DataFusion build (and one set of functions and codecs).

use ballista_core::config::TaskSchedulingPolicy;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use std::path::PathBuf;
use std::sync::Arc;

/// `quiver scheduler`.
#[derive(clap::Args, Debug)]
pub struct SchedulerArgs {
    /// Address to listen on (gRPC for clients and executors, REST under /api).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 50050)]
    pub port: u16,
    /// Seconds without a heartbeat after which an executor counts as dead and its tasks
    /// are scheduled elsewhere.
    #[arg(long, default_value_t = 10)]
    pub executor_timeout: u64,
}

/// `quiver executor`.
#[derive(clap::Args, Debug)]
pub struct ExecutorArgs {
    /// The scheduler, HOST:PORT (or df://HOST:PORT).
    #[arg(long)]
    pub scheduler: String,
    /// Address to listen on, and the one the scheduler and clients are told.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Arrow Flight port (results are fetched from it).
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// gRPC port the scheduler pushes tasks to. Default: --port + 1.
    #[arg(long)]
    pub grpc_port: Option<u16>,
    /// Tasks run at once. Default: one per core.
    #[arg(long, default_value_t = 0)]
    pub concurrent_tasks: usize,
    /// Directory for shuffle files. Default: a new temporary directory.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler.
    #[arg(long, default_value_t = 2)]
    pub heartbeat: u64,
}

/// Ballista plans recurse deeply; its own binaries run with 32 MiB stacks.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 << 20)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Runs a scheduler until the process is stopped.
pub fn run_scheduler(args: SchedulerArgs) -> Result<(), String> {
    let addr = format!("{}:{}", args.bind, args.port)
        .parse()
        .map_err(|e| format!("--bind {} --port {}: {e}", args.bind, args.port))?;
    let config = SchedulerConfig {
        bind_host: args.bind.clone(),
        bind_port: args.port,
        external_host: args.bind.clone(),
        scheduling_policy: TaskSchedulingPolicy::PushStaged,
        executor_timeout_seconds: args.executor_timeout,
        expire_dead_executor_interval_seconds: 2.min(args.executor_timeout.max(1)),
        no_executors_grace_period_seconds: args.executor_timeout,
        ..Default::default()
    };
    runtime()?.block_on(async move {
        let cluster = BallistaCluster::new_from_config(&config).await.map_err(|e| e.to_string())?;
        start_server(cluster, addr, Arc::new(config)).await.map_err(|e| e.to_string())
    })
}

/// Runs an executor until the process is stopped (SIGTERM and Ctrl-C tell the scheduler).
pub fn run_executor(args: ExecutorArgs) -> Result<(), String> {
    let target = args.scheduler.strip_prefix("df://").unwrap_or(&args.scheduler);
    let (host, port) = crate::config::host_port(target)
        .ok_or_else(|| format!("--scheduler {}: expected HOST:PORT", args.scheduler))?;
    let grpc_port = match args.grpc_port {
        Some(p) => p,
        None => args.port.checked_add(1).ok_or("--port 65535 leaves no room for the gRPC port; pass --grpc-port")?,
    };
    let config = ExecutorProcessConfig {
        bind_host: args.bind.clone(),
        external_host: Some(args.bind.clone()),
        port: args.port,
        grpc_port,
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: args.concurrent_tasks,
        task_scheduling_policy: TaskSchedulingPolicy::PushStaged,
        work_dir: args.work_dir.map(|d| d.to_string_lossy().into_owned()),
        executor_heartbeat_interval_seconds: args.heartbeat.max(1),
        ..Default::default()
    };
    runtime()?.block_on(async move { start_executor_process(Arc::new(config)).await.map_err(|e| e.to_string()) })
}
