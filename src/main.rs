//! The `quiver` command: `serve` (the default) and `check`.

use clap::{Parser, Subcommand};
use quiver::app::AppState;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc keeps freed pages for reuse: the engine allocates and frees batch-sized buffers
/// constantly, and the system allocator returned them to the kernel (page faults were ~15 %
/// of a full-scan query's profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "quiver", version, about = "A Fili-compatible, URL-driven OLAP gateway over Parquet")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Load the configuration and data, print every problem found, exit non-zero if any.
    Check {
        /// Configuration directory (gateway.toml + tables/). Default: ./config, else the
        /// embedded flights configuration.
        #[arg(long, env = "QUIVER_CONFIG")]
        config: Option<PathBuf>,
        /// Also print, per physical table, the Parquet schema, the grain its timestamps are
        /// at, its availability and row counts.
        #[arg(long)]
        verbose: bool,
    },
    /// Write a starter catalog (tables/*.toml) for Parquet files, guessing the time column,
    /// grain, dimensions and metrics, each guess commented.
    Init {
        /// Parquet files, one table each.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Configuration directory to write into (created if missing).
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Pre-aggregate a table to a coarser grain and fewer dimensions, write it as Parquet and
    /// add it to the catalog as a rollup physical table.
    Rollup(RollupArgs),
    /// Generate TPC-H lineitem (tpchgen) as Parquet sorted by ship date, for benchmarks.
    Tpch {
        /// Scale factor (1 = 6,001,215 rows).
        #[arg(long, default_value_t = 1.0)]
        sf: f64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a Ballista scheduler for tables with engine = "distributed" (built with
    /// --features distributed).
    #[cfg(feature = "distributed")]
    Scheduler(quiver::distributed::process::SchedulerArgs),
    /// Run a Ballista executor that joins a scheduler (built with --features distributed).
    #[cfg(feature = "distributed")]
    Executor(quiver::distributed::process::ExecutorArgs),
    /// Print a new random API token and the SHA-256 line to put in gateway.toml.
    Token {
        /// The user the token is for.
        #[arg(long, default_value = "USER")]
        user: String,
    },
}

#[derive(clap::Args)]
struct RollupArgs {
    /// Configuration directory.
    #[arg(long, env = "QUIVER_CONFIG")]
    config: Option<PathBuf>,
    /// Logical table to roll up.
    #[arg(long)]
    table: String,
    /// Grain of the rollup (e.g. day).
    #[arg(long)]
    grain: String,
    /// Dimensions to keep, comma-separated.
    #[arg(long, value_delimiter = ',')]
    dimensions: Vec<String>,
    /// Metrics to carry, comma-separated (default: every metric that re-aggregates).
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    /// Name of the new physical table.
    #[arg(long)]
    name: String,
    /// Output file, relative to the catalog's data root (default: data/NAME.parquet).
    #[arg(long)]
    output: Option<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration directory (gateway.toml + tables/). Default: ./config if it holds a
    /// catalog, else the embedded flights data set (unpacked into the user's data directory).
    #[arg(long, env = "QUIVER_CONFIG")]
    config: Option<PathBuf>,
    /// Port to listen on (overrides gateway.toml).
    #[arg(long, env = "QUIVER_PORT")]
    port: Option<u16>,
    /// Address to bind (overrides gateway.toml).
    #[arg(long, env = "QUIVER_BIND")]
    bind: Option<String>,
    /// Log format: text or json. The level comes from RUST_LOG (default info).
    #[arg(long, env = "QUIVER_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Job store directory (overrides gateway.toml). Default for the embedded data set: the
    /// user's state directory ($XDG_STATE_HOME/quiver/jobs, ~/.local/state/quiver/jobs).
    #[arg(long, env = "QUIVER_JOBS_DIR")]
    jobs_dir: Option<PathBuf>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        // `quiver` alone serves: the same flags, read from the environment.
        match Cli::try_parse_from(["quiver", "serve"]).map(|c| c.command) {
            Ok(Some(Command::Serve(a))) => a,
            _ => ServeArgs { config: None, port: None, bind: None, log_format: "text".into(), jobs_dir: None },
        }
    }
}

/// The configuration directory to use (see `quiver::config::default_config_dir`), and
/// whether it is the embedded data set.
fn config_dir(given: Option<PathBuf>) -> Result<(PathBuf, bool), ExitCode> {
    match given {
        Some(d) => Ok((d, false)),
        None => quiver::config::default_config_dir().map_err(|e| {
            eprintln!("error: cannot unpack the embedded data set: {e}; pass --config");
            ExitCode::FAILURE
        }),
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// How often orphaned jobs are canceled (expired ones are deleted hourly, see `Jobs::sweep`).
const JOB_SWEEP_SECONDS: u64 = 10;

/// Resident memory above which freed allocator pages are returned to the OS once the server
/// has been idle for `PURGE_IDLE` (see `serve`).
const RSS_CUSHION: u64 = 128 << 20;

/// Resident memory above which they are returned as soon as no data query runs.
const RSS_SPIKE: u64 = 512 << 20;

/// mimalloc's `mi_option_purge_delay` (its index in mimalloc.h; libmimalloc-sys names no
/// constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long the server stays idle before a resident set between the cushion and the spike mark
/// is purged.
const PURGE_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// This process's resident set size (Linux: `VmRSS` in /proc/self/status, in kB whatever the
/// page size; elsewhere unknown).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs a cluster process with the server's logging; an error is printed and exits 1.
#[cfg(feature = "distributed")]
fn cluster_process(what: &str, run: impl FnOnce() -> Result<(), String>) -> ExitCode {
    init_logging(&std::env::var("QUIVER_LOG_FORMAT").unwrap_or_else(|_| "text".into()));
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Check { config, verbose } => check(config, verbose),
        Command::Serve(args) => serve(args),
        #[cfg(feature = "distributed")]
        Command::Scheduler(args) => cluster_process("scheduler", || quiver::distributed::process::run_scheduler(args)),
        #[cfg(feature = "distributed")]
        Command::Executor(args) => cluster_process("executor", || quiver::distributed::process::run_executor(args)),
        Command::Rollup(args) => rollup(args),
        Command::Init { files, config } => match quiver::init::write(&files, &config) {
            Ok(written) => {
                for w in &written {
                    println!("wrote {}", w.display());
                }
                println!("next: quiver check --verbose --config {0} && quiver serve --config {0}", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Tpch { sf, out } => {
            let started = std::time::Instant::now();
            match quiver::tpch::write_lineitem(sf, &out) {
                Ok(n) => {
                    println!(
                        "{}: {n} lineitem rows at SF {sf} in {:.1} s",
                        out.display(),
                        started.elapsed().as_secs_f64()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token { user } => {
            let (token, hash) = quiver::auth::new_token();
            println!("token (give to the user; it is not stored): {token}");
            println!("\n# gateway.toml\n[[auth.tokens]]\nsha256 = \"{hash}\"\nuser = \"{user}\"\nroles = [\"ROLE\"]");
            ExitCode::SUCCESS
        }
    }
}

fn check(config: Option<PathBuf>, verbose: bool) -> ExitCode {
    let dir = match config_dir(config) {
        Ok((d, _)) => d,
        Err(code) => return code,
    };
    match quiver::app::load_config(&dir) {
        Ok((_, c)) => {
            if verbose {
                print!("{}", quiver::inspect::describe(&c));
            }
            for w in quiver::inspect::lookup_warnings(&c) {
                eprintln!("warning: {w}");
            }
            let rows: i64 = c.tables.values().flat_map(|t| t.physical.iter()).map(|p| p.total_rows()).sum();
            println!(
                "{}: OK — {} table(s), {} dimension(s), {} metric(s), {} physical table(s), {rows} rows",
                dir.display(),
                c.tables.len(),
                c.dimensions.len(),
                c.metrics.len(),
                c.tables.values().map(|t| t.physical.len()).sum::<usize>()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}: {} problem(s) found:", dir.display(), problems.len());
            for p in &problems {
                eprintln!("  - {p}");
            }
            ExitCode::FAILURE
        }
    }
}

fn rollup(args: RollupArgs) -> ExitCode {
    let dir = match config_dir(args.config) {
        Ok((d, _)) => d,
        Err(code) => return code,
    };
    let (config, catalog) = match quiver::app::load_config(&dir) {
        Ok(s) => s,
        Err(problems) => {
            problems.iter().for_each(|p| eprintln!("error: {p}"));
            return ExitCode::FAILURE;
        }
    };
    let Some(grain) = quiver::time::Grain::parse(&args.grain) else {
        eprintln!("error: '{}' is not a grain", args.grain);
        return ExitCode::FAILURE;
    };
    let spec = quiver::rollup::RollupSpec {
        table: args.table,
        output: args.output.unwrap_or_else(|| format!("data/{}.parquet", args.name)),
        name: args.name,
        grain,
        dimensions: args.dimensions,
        metrics: args.metrics,
    };
    let data_root = config.data_root(&dir);
    let started = std::time::Instant::now();
    match quiver::rollup::build(&catalog, &data_root, &spec) {
        Ok(summary) => {
            let tables_dir = config.tables_dir(&dir);
            match quiver::rollup::add_catalog_entry(&tables_dir, &spec, &summary.catalog_entry) {
                Ok(f) => {
                    println!(
                        "{}: {} rows rolled up into {} rows ({} metrics) in {:.1} s; catalog entry in {}",
                        summary.path.display(),
                        summary.rows_in,
                        summary.rows_out,
                        summary.metrics.len(),
                        started.elapsed().as_secs_f64(),
                        f.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}\nadd this entry yourself:{}", summary.catalog_entry);
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The next delivery of a Unix signal; never, when it could not be installed.
#[cfg(unix)]
async fn received(s: &mut Option<tokio::signal::unix::Signal>) {
    let delivered = match s {
        Some(s) => s.recv().await.is_some(),
        None => false,
    };
    if !delivered {
        std::future::pending::<()>().await;
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = received(&mut term) => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down: no new connections; open requests get the shutdown deadline");
}

/// SIGHUP reloads the catalog and `[auth]` (its default action would kill the process). A
/// reload that fails leaves everything serving as it was.
async fn reload_on_hangup(state: Arc<AppState>) {
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            received(&mut hup).await;
            tracing::info!("SIGHUP received: reloading the configuration");
            let st = state.clone();
            if let Some(Ok(())) = quiver::workers::run(move || st.reload()).await {
                tracing::info!("configuration reloaded");
            }
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}

fn serve(args: ServeArgs) -> ExitCode {
    // mimalloc returns freed pages to the OS by itself 10 ms after they are freed (arenas:
    // 100 ms), at the allocator's next call, so a query that followed a second of quiet
    // faulted its buffers in again (SF 1 Q5 after another query and 1 s idle: 38.7 ms; 28.2 ms
    // with mimalloc's purging off, which would also disable the forced purge below). Ten
    // seconds, the purge thread's PURGE_IDLE, leaves the returning to that thread.
    // SAFETY: sets a process-wide option before the server allocates in earnest.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    init_logging(&args.log_format);
    quiver::http::server::install_panic_hook();
    let (dir, embedded) = match config_dir(args.config) {
        Ok(d) => d,
        Err(code) => return code,
    };
    // The embedded data set's jobs go to the user's state directory, never beside the binary
    // or into a source tree.
    let jobs_dir = args.jobs_dir.or_else(|| embedded.then(|| quiver::embedded::state_home().join("jobs")));
    let mut state = match AppState::load_with_jobs(dir.clone(), jobs_dir) {
        Ok(s) => s,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "{}: {} problem(s); run `quiver check --config {}` for the list",
                dir.display(),
                problems.len(),
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    if let Some(p) = args.port {
        state.config.server.port = p;
    }
    if let Some(b) = args.bind {
        state.config.server.bind = b;
    }
    tracing::info!(config = ?state.config, "effective configuration");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let state = Arc::new(state);
        let (listener, addr) = match quiver::http::bind(&state.config.server.bind, state.config.server.port).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: cannot listen on {}:{}: {e}", state.config.server.bind, state.config.server.port);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!("quiver listening on http://{addr}{}", state.config.server.api_root);
        let shutdown = shutdown_signal();
        // Distinct values of dimensions without a lookup come from a scan of the facts; do it
        // now in the background rather than inside the first metadata request.
        let warm = state.clone();
        tokio::task::spawn_blocking(move || quiver::request::values::warm(&warm.catalog()));
        let reloads = [
            tokio::spawn(reload_on_hangup(state.clone())),
            tokio::spawn(quiver::app::refresh_loop(state.clone())),
            tokio::spawn(quiver::app::cluster_loop(state.clone())),
        ];
        // mimalloc purges freed memory only when some thread next allocates, so what a large
        // query (or the warm-up above) freed stayed resident while the server sat idle, and the
        // scan workers' pages outlive their threads. A quiet thread forces the purge when no
        // data query is running: within 50 ms when the resident set passes RSS_SPIKE (a large
        // query's memory goes back at once), after PURGE_IDLE of quiet when it passes
        // RSS_CUSHION. Freed pages otherwise stay cached so the next query does not fault them
        // in again: a purge after every query made an SF 1 full scan ~25 % slower, and with a
        // second between queries (an analyst's pace) Q5 took 35.5 ms instead of 27.3 ms.
        // Purging under a running query slowed it too.
        let purge_state = state.clone();
        std::thread::Builder::new()
            .name("mem-purge".into())
            .spawn(move || {
                let (mut busy_at, mut seen) = (std::time::Instant::now(), 0);
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    let admission = &purge_state.admission;
                    // A query that came and went between two looks counts as activity too.
                    let started = admission.admitted();
                    if admission.in_flight("").0 > 0 || started != seen {
                        (busy_at, seen) = (std::time::Instant::now(), started);
                        continue;
                    }
                    let mark = if busy_at.elapsed() >= PURGE_IDLE { RSS_CUSHION } else { RSS_SPIKE };
                    if resident_bytes().is_some_and(|rss| rss > mark) {
                        // SAFETY: mi_collect only returns the allocator's own free pages to the
                        // OS; it takes no pointers and may be called from any thread.
                        unsafe { libmimalloc_sys::mi_collect(true) };
                    }
                }
            })
            .ok();
        let jobs = state.jobs.clone();
        let sweeper = {
            let jobs = jobs.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(JOB_SWEEP_SECONDS)).await;
                    let jobs = jobs.clone();
                    quiver::workers::run(move || jobs.sweep()).await;
                }
            })
        };
        quiver::http::serve(state, listener, shutdown).await;
        sweeper.abort();
        reloads.iter().for_each(|r| r.abort());
        let n = jobs.cancel_all();
        tracing::info!("{n} running job(s) interrupted (status failure, JOB_INTERRUPTED); job store closed");
        ExitCode::SUCCESS
    })
}
