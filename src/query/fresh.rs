//! Planning and running against the right files: a query is planned on the caller's view of
//! the serving snapshot, and never reads a file through a footer that no longer describes it
//! (a file replaced in place makes the query wait for the new snapshot and run on it).

use super::Call;
use crate::app::AppState;
use crate::catalog::physical::{Engine, PhysicalTable};
use crate::engine::plan::{CancelToken, QueryPlan};
use crate::engine::{self, EngineError};
use crate::error::{Error, Reason};
use crate::plan;
use crate::request::data::{DataInput, Resolved, resolve};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::TooManyGroups(_) | EngineError::TooManyBytes(_) => Error::new(
                Reason::ResultTooLarge,
                "Result set too large. Try reducing interval, dimensions, or sketch metrics.",
            ),
            EngineError::TooManyBuckets(n) => Error::new(
                Reason::IntervalTooMany,
                format!(
                    "The requested intervals span more than {n} time buckets at this grain. Use a coarser grain or a shorter interval."
                ),
            ),
            EngineError::Canceled => Error::new(Reason::QueryCanceled, "The query was canceled."),
            EngineError::File { .. } => Error::new(Reason::DataFileUnreadable, e.to_string()),
            EngineError::Unavailable(m) => Error::new(Reason::ClusterUnavailable, m),
            other => Error::internal(other.to_string()),
        }
    }
}

/// Everything resolved for one data request, before execution.
pub struct Prepared {
    pub resolved: Resolved,
    pub plan: QueryPlan,
    pub physical: Arc<PhysicalTable>,
}

/// Resolves and plans on `call.catalog` (no I/O beyond dimension rows for non-key filters).
/// The caller's row-level filters are ANDed in before anything else can see the data.
pub fn prepare(state: &AppState, call: &Call) -> Result<Prepared, Error> {
    let input = DataInput {
        segments: &call.segments,
        params: &call.params,
        accept: call.accept.as_deref(),
        default_async_after: state.default_async_after,
        now: state.clock.now_ms(),
        forced_filters: &call.principal.filters,
        unknown_table_is_404: state.auth().enabled(),
    };
    let cat = &call.catalog;
    let resolved = resolve(cat, &state.config, &input)?;
    let table = &cat.tables[&resolved.meaning.table];
    let physical = plan::choose(cat, table, &resolved.meaning)?.clone();
    let plan = plan::build(cat, &state.config, &resolved.meaning, &physical)?;
    Ok(Prepared { resolved, plan, physical })
}

/// How many times, 200 ms apart, a query waits for a replaced file to be readable again.
const RELOAD_ATTEMPTS: usize = 10;

/// How long a changed file must stay unchanged before a failure to load it means it is
/// broken rather than still being written.
const STABLE: Duration = Duration::from_millis(600);

fn being_replaced(slice: &str) -> Error {
    Error::new(Reason::ServiceUnavailable, format!("The files of '{slice}' are being replaced; try again in a moment."))
}

/// Resolves and plans against files that are what the snapshot says they are. When one was
/// replaced in place since the snapshot was built, a new snapshot is built first, waiting
/// while the file is still being written, so no file is ever read through an old footer: the
/// answer is the new data's, never a stale total. A file that stops changing but still cannot
/// be loaded is broken, not being replaced: 500 DATA_FILE_UNREADABLE, the table degraded.
/// `call` moves to the new snapshot when there is one.
pub async fn prepare_fresh(state: &Arc<AppState>, call: &mut Call) -> Result<Prepared, Error> {
    let prepared = prepare(state, call)?;
    if prepared.physical.files_unchanged() {
        return Ok(prepared);
    }
    let (mut seen, mut since) = (prepared.physical.disk_state(), Instant::now());
    for _ in 0..RELOAD_ATTEMPTS {
        let st = state.clone();
        let _ = crate::workers::run(move || st.refresh()).await;
        call.catalog = crate::access::catalog_for(&state.catalog(), &call.principal);
        let p = prepare(state, call)?;
        if p.physical.files_unchanged() {
            return Ok(p);
        }
        let now = p.physical.disk_state();
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() >= STABLE {
            let changed: Vec<&str> =
                p.physical.files.iter().filter(|f| !f.unchanged_on_disk()).map(|f| f.name.as_str()).collect();
            let msg = format!(
                "Data file '{}' cannot be read: it changed on disk and is not a readable Parquet file with the columns of '{}'.",
                changed.join("', '"),
                p.physical.name
            );
            state.mark_degraded(&p.physical.name, &msg);
            return Err(Error::new(Reason::DataFileUnreadable, msg));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(being_replaced(&prepared.physical.name))
}

/// Runs `plan` on the engine of `physical`: this process's, or the cluster's.
fn run(
    st: &AppState,
    plan: &QueryPlan,
    physical: &PhysicalTable,
    token: &CancelToken,
) -> Result<engine::QueryResult, EngineError> {
    match physical.engine {
        Engine::Local => engine::execute(plan, token),
        Engine::Distributed => match &st.cluster {
            Some(c) => c.execute(plan, token),
            None => Err(EngineError::Unavailable(format!(
                "The distributed engine of '{}' is not configured: set [distributed] scheduler in gateway.toml.",
                physical.name
            ))),
        },
    }
}

/// Runs `plan` (from `call`, on `physical`). When reading fails because a file was replaced
/// while it was read (not a broken file: the file is no longer the one the footer describes),
/// waits for the new snapshot and runs the query again on it, so the caller gets the new
/// data's answer rather than an error.
pub fn execute_fresh(
    st: &AppState,
    mut plan: QueryPlan,
    mut call: Call,
    mut physical: Arc<PhysicalTable>,
    token: &CancelToken,
) -> Result<engine::QueryResult, Error> {
    for _ in 0..RELOAD_ATTEMPTS {
        let r = run(st, &plan, &physical, token);
        let replaced = matches!(r, Err(EngineError::File { .. })) && !physical.files_unchanged();
        if !replaced {
            st.count(&r);
            st.note_table_health(&physical.name, &r);
            return r.map_err(Error::from);
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = st.refresh();
        call.catalog = crate::access::catalog_for(&st.catalog(), &call.principal);
        if let Ok(p) = prepare(st, &call) {
            (plan, physical) = (p.plan, p.physical);
        }
    }
    Err(being_replaced(&physical.name))
}
