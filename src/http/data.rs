//! `GET /v1/data/{table}/{grain}/{dims…}`: routing into the query lifecycle ([`crate::query`])
//! and rendering its answer: rows in the asked format with the caching headers, 304, a job
//! ticket, or the plan (DESIGN §2).

use super::reply::{self, Ctx};
use super::{body, pagination};
use crate::app::AppState;
use crate::cache::Rendered;
use crate::engine::ScanStats;
use crate::error::{Error, Reason};
use crate::grammar::format::{self, Format};
use crate::query::{self, Answer, Call, RenderSpec, Validators};
use crate::request::Presentation;
use crate::request::data::GroupDim;
use crate::request::dimension_rows;
use crate::response::{self, View};
use arrow::array::RecordBatch;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use warp::reply::Response;

/// What the lifecycle needs from this request.
pub fn call(ctx: &Ctx, segs: &[&str]) -> Call {
    let cache_control = ctx.header("cache-control").unwrap_or("").to_ascii_lowercase();
    Call {
        principal: ctx.principal.clone(),
        catalog: ctx.catalog.clone(),
        caller: ctx.caller(),
        url: ctx.url(),
        request_id: ctx.request_id.clone(),
        segments: segs.iter().map(|s| s.to_string()).collect(),
        params: ctx.params.clone(),
        accept: ctx.header("accept").map(str::to_string),
        no_cache: cache_control.split(',').any(|d| d.trim() == "no-cache"),
        if_none_match: ctx.header("if-none-match").map(str::to_string),
    }
}

/// Answers a data request.
pub async fn data(state: &Arc<AppState>, ctx: &Ctx, segs: &[&str]) -> Result<Response, Error> {
    match query::run(state, call(ctx, segs)).await? {
        Answer::Plan(p) => {
            let mut body = response::debug::explain(&p.resolved.meaning.table, &p.plan, &p.physical, &ctx.request_id);
            if p.physical.engine == crate::catalog::physical::Engine::Distributed {
                body["druidQuery"]["distributed"] = distributed_plan(state, &p.plan).await;
            }
            Ok(reply::json(200, &body))
        }
        Answer::NotModified(v) => {
            let mut r = reply::empty(304);
            validators(state, &mut r, &v);
            Ok(r)
        }
        Answer::Job(job) => Ok(reply::json(202, &job.payload(&ctx.base))),
        Answer::Rows(done) => {
            let e = &done.entry;
            // A repeat of a small answer in the same representation costs no rendering.
            let key = format!("{}|{}", done.validators.etag, ctx.origin);
            let kept = if done.hit { state.bodies.get(&key) } else { None };
            let mut r = match kept {
                Some(body) => response_of(&body),
                None => match render(state, ctx, &e.spec, e.batch.clone(), &done.presentation, done.permit)? {
                    Rendering::Whole(body) => {
                        state.bodies.put(key, body.clone());
                        response_of(&body)
                    }
                    Rendering::Streamed(r) => r,
                },
            };
            validators(state, &mut r, &done.validators);
            reply::set_header(&mut r, "server-timing", &server_timing(&e.stats, done.hit));
            if !done.hit {
                record_stats(&e.stats);
            }
            Ok(r)
        }
    }
}

/// ETag, Last-Modified, Cache-Control and the snapshot version.
fn validators(state: &AppState, r: &mut Response, v: &Validators) {
    reply::set_header(r, "etag", &v.etag);
    if let Some(t) = v.last_modified {
        reply::set_header(r, "last-modified", &httpdate(t));
    }
    let scope = if v.private { "private" } else { "public" };
    reply::set_header(r, "cache-control", &format!("{scope}, max-age={}", state.config.cache.max_age_seconds));
    reply::set_header(r, reply::SNAPSHOT_HEADER, &v.snapshot.to_string());
}

/// An HTTP date (RFC 9110 IMF-fixdate).
fn httpdate(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The DataFusion logical plans a distributed table's query runs as, and the scheduler.
async fn distributed_plan(state: &Arc<AppState>, plan: &crate::engine::plan::QueryPlan) -> serde_json::Value {
    let Some(cluster) = state.cluster.clone() else {
        return serde_json::json!({"error": "no [distributed] scheduler is configured"});
    };
    let plan = plan.clone();
    let c = cluster.clone();
    match crate::workers::run(move || c.explain(&plan)).await {
        Some(Ok(plans)) => serde_json::json!({"scheduler": cluster.settings.scheduler, "logicalPlans": plans}),
        Some(Err(e)) => serde_json::json!({"scheduler": cluster.settings.scheduler, "error": e.to_string()}),
        None => serde_json::json!({"error": "the plan could not be built"}),
    }
}

/// The request's one log line ("served") carries the scan's cost through the span.
fn record_stats(stats: &ScanStats) {
    let span = tracing::Span::current();
    span.record("rows_scanned", stats.rows_scanned);
    span.record("row_groups_pruned", stats.row_groups_pruned);
    span.record("engine_ms", stats.elapsed_ms);
    if let Some(r) = &stats.remote {
        span.record("remote", format!("{} jobs {}", r.scheduler, r.jobs.join(",")));
    }
}

/// A rendered answer: small ones whole (and worth keeping), large ones streaming.
pub enum Rendering {
    Whole(Arc<Rendered>),
    Streamed(Response),
}

impl Rendering {
    /// The HTTP response.
    pub fn into_response(self) -> Response {
        match self {
            Rendering::Whole(r) => response_of(&r),
            Rendering::Streamed(r) => r,
        }
    }
}

/// The response for a rendered body.
pub fn response_of(r: &Rendered) -> Response {
    let mut resp = Response::new(r.body.clone().into());
    for (k, v) in &r.headers {
        reply::set_header(&mut resp, k, v);
    }
    resp
}

/// Renders a shaped result (a fresh one or a job's stored one), keeping a small answer's
/// bytes. The result's bytes count against the caller's and the global in-flight budget, and
/// with `permit` stay held until the response is written or the connection is gone.
pub fn render(
    state: &AppState,
    ctx: &Ctx,
    spec: &RenderSpec,
    batch: RecordBatch,
    out: &Presentation,
    permit: Option<crate::limits::Permit>,
) -> Result<Rendering, Error> {
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
        Format::Csv => {
            let protect = state.config.query.csv_formula_protection;
            let options = response::CsvOptions { protect, spreadsheet_dates: out.spreadsheet_dates };
            (Box::new(response::csv(view, options)), "text/csv; charset=utf-8")
        }
        Format::Arrow => (Box::new(response::typed::arrow(view)), "application/vnd.apache.arrow.stream"),
        Format::Parquet => {
            let bytes = response::typed::parquet(&view).map_err(Error::internal)?;
            (Box::new(std::iter::once(bytes)), "application/vnd.apache.parquet")
        }
    };
    let mut headers = vec![("content-type", content_type.to_string())];
    if let Some(link) = page.as_ref().and_then(|p| p.link_header()) {
        headers.push(("link", link));
    }
    if matches!(out.format, Format::Csv | Format::Arrow | Format::Parquet) || out.filename.is_some() {
        let max = state.config.query.download_file_max_name_length;
        headers.push((
            "content-disposition",
            format::content_disposition(out.filename.as_deref(), &spec.stem, out.format, max),
        ));
    }
    if rows <= body::INLINE_ROWS {
        let bytes: Vec<u8> = chunks.flatten().collect();
        return Ok(Rendering::Whole(Arc::new(Rendered::new(bytes.into(), headers))));
    }
    let mut r = body::streamed(chunks, (permit, held));
    for (k, v) in &headers {
        reply::set_header(&mut r, k, v);
    }
    Ok(Rendering::Streamed(r))
}

type Chunks = Box<dyn Iterator<Item = Vec<u8>> + Send + Sync>;

/// What a response of `rows` rows of `batch` holds while it is written: the result itself
/// and about two chunks of rendered text.
fn in_flight_bytes(batch: &RecordBatch, rows: usize) -> u64 {
    let per_row = 64 + 40 * batch.num_columns() as u64;
    let chunk = per_row * rows.min(response::CHUNK_ROWS) as u64;
    batch.get_array_memory_size() as u64 + 2 * chunk
}

/// `engine;dur=…, rows;desc=…, rowgroups;desc="scanned/pruned", …, cache;desc="hit|miss"`
/// (on a hit, the engine figures are those of the run that filled the cache).
pub fn server_timing(s: &ScanStats, hit: bool) -> String {
    let remote = match &s.remote {
        Some(r) => format!(", remote;desc=\"{} jobs {}\"", r.scheduler, r.jobs.join(" ")),
        None => String::new(),
    };
    let head = format!(
        "engine;dur={:.2}, rows;desc=\"{}\", rowgroups;desc=\"{} scanned, {} pruned\", bytes;desc=\"{}\", cache;desc=\"{}\"",
        s.elapsed_ms,
        s.rows_scanned,
        s.row_groups_scanned,
        s.row_groups_pruned,
        s.bytes_scanned,
        if hit { "hit" } else { "miss" }
    );
    head + &remote
}
