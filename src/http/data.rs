//! `GET /v1/data/{table}/{grain}/{dims…}`: resolve → plan → execute → shape → annotate →
//! format (DESIGN §2).

use super::reply::{self, Ctx};
use super::{body, pagination};
use crate::app::AppState;
use crate::auth::Scope;
use crate::engine::plan::{CancelToken, QueryPlan};
use crate::engine::{self, EngineError, ScanStats, scan};
use crate::error::{Error, Reason};
use crate::grammar::async_after::AsyncAfter;
use crate::grammar::format::{self, Format};
use crate::plan;
use crate::request::data::GroupDim;
use crate::request::data::{DataInput, DataRequest, resolve};
use crate::request::dimension_rows;
use crate::response::{self, View};
use crate::time::{self, Grain, Interval};
use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use warp::reply::Response;

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
            other => Error::internal(other.to_string()),
        }
    }
}

/// Everything resolved for one data request, before execution.
pub struct Prepared {
    pub req: DataRequest,
    pub plan: QueryPlan,
    pub physical: Arc<crate::catalog::physical::PhysicalTable>,
}

/// Resolves and plans (no I/O beyond dimension rows for non-key filters). The caller's
/// row-level filters are ANDed in before anything else can see the data.
pub fn prepare(state: &AppState, ctx: &Ctx, segs: &[&str]) -> Result<Prepared, Error> {
    let segments: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
    let param = |n: &str| ctx.params.get(n).map(|s| s.to_string());
    let input = DataInput {
        segments: &segments,
        param: &param,
        accept: ctx.header("accept"),
        now: state.clock.now_ms(),
        forced_filters: &ctx.principal.filters,
        unknown_table_is_404: state.auth().enabled(),
    };
    let cat = &ctx.catalog;
    let req = resolve(cat, &state.config, &input)?;
    let table = &cat.tables[&req.table];
    let physical = plan::choose(cat, table, &req)?.clone();
    let plan = plan::build(cat, &state.config, &req, &physical)?;
    Ok(Prepared { req, plan, physical })
}

/// How to render a result later (stored with async jobs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderSpec {
    pub tz: String,
    /// Grouping dimensions and the indices of their shown fields.
    pub dims: Vec<(String, Vec<usize>)>,
    pub missing: Vec<String>,
    /// Default download name without extension.
    pub stem: String,
}

/// Cancels the query when dropped, unless disarmed: a synchronous client that goes away
/// cancels its query; one that became a job keeps running.
struct CancelOnDrop {
    token: CancelToken,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.token.cancel();
        }
    }
}

type Outcome = Result<(RecordBatch, ScanStats), Error>;

pub async fn data(state: &Arc<AppState>, ctx: &Ctx, segs: &[&str]) -> Result<Response, Error> {
    let principal = &ctx.principal;
    principal.require(Scope::Data)?;
    let key = ctx.caller();
    let permit = state.admission.admit(&key, principal.ui, &ctx.url())?;
    let (refreshed, prepared) = prepare_fresh(state, ctx, segs).await?;
    let ctx = refreshed.as_ref().unwrap_or(ctx);
    let table_permit = state.admission.admit_table(&prepared.physical.name, prepared.physical.max_concurrent)?;
    tracing::Span::current().record("table", prepared.req.table.as_str());
    tracing::Span::current().record("grain", prepared.req.grain.name());
    if prepared.req.format == Format::Debug {
        return Ok(debug(ctx, &prepared));
    }
    let Prepared { mut req, plan, physical } = prepared;
    if req.async_after != AsyncAfter::Never && principal.require(Scope::Jobs).is_err() {
        // A job is only readable with the jobs scope: asking for one without it is refused,
        // and the configured default does not apply (the answer is synchronous).
        if ctx.params.get("asyncAfter").is_some() {
            principal.require(Scope::Jobs)?;
        }
        req.async_after = AsyncAfter::Never;
    }
    let spec = RenderSpec {
        tz: req.tz.name().to_string(),
        dims: req.dims.iter().map(|d| (d.dim.name.clone(), d.shown.clone())).collect(),
        missing: if state.config.query.partial_data_enabled {
            missing_intervals(&req, &physical.availability)
        } else {
            vec![]
        },
        stem: download_stem(ctx, &req),
    };
    // The query starts at once on the blocking pool; the permit is held until the response
    // is written (or, for a job, until the job ends).
    let cancel = CancelToken::default();
    let (tx, mut rx) = tokio::sync::oneshot::channel::<Outcome>();
    let (st, token, cat) = (state.clone(), cancel.clone(), ctx.catalog.clone());
    let dims: Vec<Arc<crate::catalog::Dimension>> = req.dims.iter().map(|d| d.dim.clone()).collect();
    let again = Retry { ctx: ctx.clone(), segs: segs.iter().map(|s| s.to_string()).collect(), physical };
    crate::workers::spawn(move || {
        let r = execute_fresh(&st, plan, again, &token);
        drop(table_permit);
        let r = r.and_then(|r| {
            // Warm the dimension rows used to annotate.
            for d in &dims {
                dimension_rows(&cat, d)?;
            }
            Ok((r.batch, r.stats))
        });
        let _ = tx.send(r);
    });
    let mut guard = CancelOnDrop { token: cancel.clone(), armed: true };
    let stopped = || Err(Error::internal("the query task stopped"));
    let finished: Option<Outcome> = match req.async_after {
        AsyncAfter::Never => Some((&mut rx).await.unwrap_or_else(|_| stopped())),
        AsyncAfter::Always => None,
        AsyncAfter::Millis(ms) => {
            tokio::time::timeout(Duration::from_millis(ms), &mut rx).await.ok().map(|r| r.unwrap_or_else(|_| stopped()))
        }
    };
    match finished {
        Some(outcome) => {
            guard.armed = false;
            let (batch, stats) = outcome?;
            let out = Output { format: req.format, paging: req.paging, filename: req.filename.as_deref() };
            let mut r = render(state, ctx, &spec, batch, &out, Some(permit))?;
            reply::set_header(&mut r, reply::SNAPSHOT_HEADER, &ctx.catalog.version.to_string());
            Ok(with_timing(r, &stats))
        }
        None => {
            // Became a job: the query keeps running; the client gets a ticket.
            let spec_json = serde_json::to_string(&spec).unwrap_or_default();
            let job = state.jobs.create(&ctx.url(), &principal.user, &key, &spec_json, cancel.clone())?;
            guard.armed = false;
            let jobs = state.jobs.clone();
            let (ticket, rid) = (job.ticket.clone(), ctx.request_id.clone());
            tokio::spawn(async move {
                let outcome = rx.await.unwrap_or_else(|_| stopped());
                drop(permit);
                let stored = crate::workers::run(move || match outcome {
                    Ok((batch, _)) => jobs.succeed(&ticket, &batch),
                    Err(e) => jobs.fail(&ticket, &e, &rid),
                })
                .await;
                if let Some(Err(e)) = stored {
                    tracing::error!("cannot record a job's outcome: {e}");
                }
            });
            Ok(reply::json(202, &job.payload(&ctx.base)))
        }
    }
}

/// How many times, 200 ms apart, a query waits for a replaced file to be readable again.
const RELOAD_ATTEMPTS: usize = 10;

fn being_replaced(slice: &str) -> Error {
    Error::new(Reason::ServiceUnavailable, format!("The files of '{slice}' are being replaced; try again in a moment."))
}

/// Resolves and plans against files that are what the snapshot says they are. When one was
/// replaced in place since the snapshot was built, a new snapshot is built first, waiting
/// while the file is still being written, so no file is ever read through an old footer: the
/// answer is the new data's, never a stale total. A file that stops changing but still cannot
/// be loaded is broken, not being replaced: 500 DATA_FILE_UNREADABLE, the table degraded.
/// Returns the request's context on the new snapshot when there is one.
async fn prepare_fresh(state: &Arc<AppState>, ctx: &Ctx, segs: &[&str]) -> Result<(Option<Ctx>, Prepared), Error> {
    let prepared = prepare(state, ctx, segs)?;
    if prepared.physical.files_unchanged() {
        return Ok((None, prepared));
    }
    let (mut seen, mut since) = (prepared.physical.disk_state(), std::time::Instant::now());
    for _ in 0..RELOAD_ATTEMPTS {
        let st = state.clone();
        let _ = crate::workers::run(move || st.refresh()).await;
        let mut fresh = ctx.clone();
        fresh.catalog = crate::access::catalog_for(&state.catalog(), &ctx.principal);
        let p = prepare(state, &fresh, segs)?;
        if p.physical.files_unchanged() {
            return Ok((Some(fresh), p));
        }
        let now = p.physical.disk_state();
        if now != seen {
            (seen, since) = (now, std::time::Instant::now());
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

/// How long a changed file must stay unchanged before a failure to load it means it is
/// broken rather than still being written.
const STABLE: Duration = Duration::from_millis(600);

/// What a query needs to be planned again on a newer snapshot.
struct Retry {
    ctx: Ctx,
    segs: Vec<String>,
    physical: Arc<crate::catalog::physical::PhysicalTable>,
}

/// Runs `plan`. When reading fails because a file was replaced while it was read (not a broken
/// file: the file is no longer the one the footer describes), waits for the new snapshot and
/// runs the query again on it, so the caller gets the new data's answer rather than an error.
fn execute_fresh(
    st: &AppState,
    mut plan: QueryPlan,
    mut again: Retry,
    token: &CancelToken,
) -> Result<engine::QueryResult, Error> {
    for _ in 0..RELOAD_ATTEMPTS {
        let r = engine::execute(&plan, token);
        let replaced = matches!(r, Err(EngineError::File { .. })) && !again.physical.files_unchanged();
        if !replaced {
            st.count(&r);
            st.note_table_health(&again.physical.name, &r);
            return r.map_err(Error::from);
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = st.refresh();
        again.ctx.catalog = crate::access::catalog_for(&st.catalog(), &again.ctx.principal);
        let segs: Vec<&str> = again.segs.iter().map(|s| s.as_str()).collect();
        if let Ok(p) = prepare(st, &again.ctx, &segs) {
            (plan, again.physical) = (p.plan, p.physical);
        }
    }
    Err(being_replaced(&again.physical.name))
}

/// How a result is written out (from the request, or from a job-results request).
pub struct Output<'a> {
    pub format: Format,
    pub paging: Option<crate::grammar::paging::Paging>,
    pub filename: Option<&'a str>,
}

fn with_timing(mut r: Response, stats: &ScanStats) -> Response {
    reply::set_header(&mut r, "server-timing", &server_timing(stats));
    // The request's one log line ("served") carries these through the span.
    let span = tracing::Span::current();
    span.record("rows_scanned", stats.rows_scanned);
    span.record("row_groups_pruned", stats.row_groups_pruned);
    span.record("engine_ms", stats.elapsed_ms);
    r
}

/// Renders a shaped result (a fresh one or a job's stored one). The result's bytes count
/// against the caller's and the global in-flight budget, and with `permit` stay held until
/// the response is written or the connection is gone.
pub fn render(
    state: &AppState,
    ctx: &Ctx,
    spec: &RenderSpec,
    batch: RecordBatch,
    out: &Output,
    permit: Option<crate::limits::Permit>,
) -> Result<Response, Error> {
    let mut dims = Vec::new();
    let mut lookups = Vec::new();
    for (name, shown) in &spec.dims {
        let dim =
            ctx.catalog.dimensions.get(name).cloned().ok_or_else(|| {
                Error::new(Reason::DimensionUndefined, format!("Dimension(s) '{name}' do not exist."))
            })?;
        lookups.push(dimension_rows(&ctx.catalog, &dim)?);
        dims.push(GroupDim { dim, shown: shown.clone() });
    }
    let total = batch.num_rows();
    let page = pagination::page(ctx, out.paging, total)?;
    let mut meta = Map::new();
    if !spec.missing.is_empty() {
        meta.insert("missingIntervals".into(), json!(spec.missing));
    }
    if let Some(Value::Object(m)) = page.as_ref().map(|p| p.meta()) {
        meta.extend(m);
    }
    let range = page.as_ref().map(|p| p.range()).unwrap_or(0..total);
    let rows = range.len();
    let held = state.admission.reserve_bytes(&ctx.caller(), in_flight_bytes(&batch, rows))?;
    let view = Arc::new(View {
        tz: spec.tz.parse().unwrap_or(chrono_tz::UTC),
        dims,
        batch,
        range,
        lookups,
        meta: if meta.is_empty() { None } else { Some(Value::Object(meta)) },
    });
    let (chunks, content_type): (Chunks, &str) = match out.format {
        Format::Json | Format::Debug => (Box::new(response::json(view)), "application/json; charset=utf-8"),
        Format::JsonApi => (Box::new(response::jsonapi(view)), "application/json; charset=utf-8"),
        Format::Csv => (Box::new(response::csv(view)), "text/csv; charset=utf-8"),
    };
    let mut r = if rows <= body::INLINE_ROWS { body::whole(chunks) } else { body::streamed(chunks, (permit, held)) };
    reply::set_header(&mut r, "content-type", content_type);
    if let Some(p) = &page {
        p.add_link_header(&mut r);
    }
    if out.format == Format::Csv || out.filename.is_some() {
        let name = format::download_name(
            out.filename,
            &spec.stem,
            out.format,
            state.config.query.download_file_max_name_length,
        );
        reply::set_header(&mut r, "content-disposition", &format!("attachment; filename={name}"));
    }
    Ok(r)
}

type Chunks = Box<dyn Iterator<Item = Vec<u8>> + Send + Sync>;

/// What a response of `rows` rows of `batch` holds while it is written: the result itself
/// and about two chunks of rendered text.
fn in_flight_bytes(batch: &RecordBatch, rows: usize) -> u64 {
    let per_row = 64 + 40 * batch.num_columns() as u64;
    let chunk = per_row * rows.min(response::CHUNK_ROWS) as u64;
    batch.get_array_memory_size() as u64 + 2 * chunk
}

/// `engine;dur=…, rows;desc=…, rowgroups;desc="scanned/pruned"`.
pub fn server_timing(s: &ScanStats) -> String {
    format!(
        "engine;dur={:.2}, rows;desc=\"{}\", rowgroups;desc=\"{} scanned, {} pruned\", bytes;desc=\"{}\"",
        s.elapsed_ms, s.rows_scanned, s.row_groups_scanned, s.row_groups_pruned, s.bytes_scanned
    )
}

/// Fili's default download name: path segments after the API root joined by `-`, then the
/// `dateTime` value.
fn download_stem(ctx: &Ctx, req: &DataRequest) -> String {
    let segs = ctx.segments();
    let parts: Vec<String> =
        segs.iter().skip_while(|s| *s != "data").map(|s| s.split(';').next().unwrap_or("").to_string()).collect();
    let refs: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
    format::default_stem(&refs, &req.date_time_text)
}

/// Requested buckets not fully covered by `availability`, merged, in the request zone.
pub fn missing_intervals(req: &DataRequest, availability: &[Interval]) -> Vec<String> {
    let gaps = time::subtract(&req.intervals, availability);
    let mut out = Vec::new();
    for g in gaps {
        let (s, e) = if req.grain == Grain::All {
            (g.start, g.end)
        } else {
            let s = time::floor(req.grain, req.tz, g.start);
            let fe = time::floor(req.grain, req.tz, g.end);
            let e = if fe == g.end { fe } else { time::add(req.grain, req.tz, fe, 1) };
            (s, e)
        };
        out.push(Interval::new(s, e));
        if out.len() > 10_000 {
            break;
        }
    }
    time::merge(out)
        .iter()
        .map(|i| format!("{}/{}", time::format_local(req.tz, i.start), time::format_local(req.tz, i.end)))
        .collect()
}

/// `format=debug`: the resolved plan, not executed (our "explain").
fn debug(ctx: &Ctx, p: &Prepared) -> Response {
    let plan = &p.plan;
    let (units, pruned) = scan::plan_units(plan);
    let files: Vec<Value> = plan
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let rgs: Vec<usize> = units.iter().filter(|u| u.file == i).map(|u| u.row_group).collect();
            json!({"path": f.name, "rowGroups": f.num_row_groups(), "rowGroupsToScan": rgs})
        })
        .collect();
    let query = json!({
        "table": p.req.table,
        "physicalTable": {
            "name": p.physical.name,
            "kind": if p.physical.kind == crate::catalog::physical::PhysicalKind::Raw { "raw" } else { "rollup" },
            "grain": p.physical.grain.name(),
            "timeZone": p.physical.timezone.name(),
        },
        "grain": plan.grain.name(),
        "baseGrain": engine::base_grain(plan).name(),
        "timeZone": plan.tz.name(),
        "intervals": plan.intervals.iter().map(|i| i.iso_utc()).collect::<Vec<_>>(),
        "files": files,
        "rowGroupsPruned": pruned,
        "groupBy": plan.group_by.iter().map(|g| json!({"name": g.name, "column": g.column})).collect::<Vec<_>>(),
        "filters": plan.filters.iter().map(|f| json!({"column": f.column, "op": format!("{:?}", f.op)})).collect::<Vec<_>>(),
        "aggregations": plan.aggregations.iter().map(|a| json!({
            "name": a.name, "func": a.func.name(), "input": format!("{:?}", a.input),
            "filter": a.filter.as_ref().map(|f| format!("{} {:?}", f.column, f.op)),
        })).collect::<Vec<_>>(),
        "outputs": plan.outputs.iter().map(|o| json!({"name": o.name, "kind": format!("{:?}", o.kind), "hidden": o.hidden})).collect::<Vec<_>>(),
        "having": plan.shape.having.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>(),
        "sort": plan.shape.sort.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>(),
        "topN": plan.shape.top_n,
        "count": plan.shape.count,
    });
    let body = json!({
        "status": 200, "statusName": "OK", "reason": "debug", "description": "DEBUG",
        "druidQuery": query, "requestId": ctx.request_id,
    });
    reply::json(200, &body)
}
