//! Metadata endpoints with Fili's JSON shapes (spec §2.2): tables, dimensions (and their
//! values), metrics, slices, and `/status`.

use super::pagination;
use super::reply::{self, Ctx};
use crate::access;
use crate::app::AppState;
use crate::catalog::{Dimension, LogicalTable, Metric};
use crate::error::{Error, Reason};
use crate::grammar::format;
use crate::request::clause_matches;
use crate::time::{self, Grain, Interval};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use warp::reply::Response;

type Res = Result<Response, Error>;

fn table_summary(ctx: &Ctx, t: &LogicalTable, g: Grain) -> Value {
    json!({
        "category": t.category, "name": t.name, "longName": t.long_name,
        "granularity": g.name(), "uri": format!("{}/tables/{}/{}", ctx.base, t.name, g.name()),
    })
}

/// The number of values of `d` the caller may see.
fn cardinality(state: &AppState, ctx: &Ctx, d: &Dimension) -> usize {
    access::dimension_rows(&ctx.catalog, &state.config, &ctx.principal, d).map(|r| r.len()).unwrap_or(0)
}

fn dimension_summary(state: &AppState, ctx: &Ctx, d: &Dimension) -> Value {
    json!({
        "category": d.category, "name": d.name, "longName": d.long_name,
        "uri": format!("{}/dimensions/{}", ctx.base, d.name),
        "cardinality": cardinality(state, ctx, d), "storageStrategy": d.storage_strategy(),
    })
}

fn fields_json(d: &Dimension) -> Value {
    Value::Array(
        d.fields
            .iter()
            .map(|f| {
                let mut m = Map::new();
                m.insert("name".into(), json!(f.name));
                m.insert("description".into(), json!(f.description));
                if let Some(l) = &f.long_name {
                    m.insert("longName".into(), json!(l));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

fn metric_summary(ctx: &Ctx, m: &Metric) -> Value {
    json!({
        "category": m.category, "name": m.name, "longName": m.long_name, "type": m.type_name,
        "uri": format!("{}/metrics/{}", ctx.base, m.name),
    })
}

fn table_or_404<'a>(ctx: &'a Ctx, name: &str) -> Result<&'a LogicalTable, Error> {
    ctx.catalog
        .tables
        .get(name)
        .ok_or_else(|| Error::new(Reason::TableNotFound, format!("Table with name '{name}' does not exist.")))
}

fn grain_of(g: &str) -> Result<Grain, Error> {
    Grain::parse(g).ok_or_else(|| {
        Error::new(
            Reason::GrainInvalid,
            format!("'{g}' is not a valid granularity. Try 'day', 'week', 'month', 'year' or 'all'"),
        )
    })
}

/// A list response: `{"<key>": rows, "meta"?}` in JSON, or CSV; always paginated.
pub fn list(state: &AppState, ctx: &Ctx, key: &str, rows: Vec<Value>, stem: &str) -> Res {
    let fmt = ctx.params.format(ctx.header("accept"))?;
    let (page, show_meta) = pagination::metadata_page(ctx, state.config.query.default_per_page, rows.len())?;
    let slice = &rows[page.range()];
    let mut r = if fmt == format::Format::Csv {
        reply::body(200, metadata_csv(slice, state.config.query.csv_formula_protection), "text/csv; charset=utf-8")
    } else {
        let mut body = Map::new();
        body.insert(key.into(), Value::Array(slice.to_vec()));
        if show_meta {
            body.insert("meta".into(), page.meta());
        }
        reply::json(200, &Value::Object(body))
    };
    page.add_link_header(&mut r);
    download_header(state, ctx, &mut r, fmt, stem);
    Ok(r)
}

fn download_header(state: &AppState, ctx: &Ctx, r: &mut Response, fmt: format::Format, stem: &str) {
    let given = ctx.params.filename();
    if fmt == format::Format::Csv || given.is_some() {
        let max = state.config.query.download_file_max_name_length;
        reply::set_header(r, "content-disposition", &format::content_disposition(given, stem, fmt, max));
    }
}

/// CSV of metadata rows: header from the first row's keys; nested values as JSON text.
fn metadata_csv(rows: &[Value], protect: bool) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if let Some(Value::Object(first)) = rows.first() {
        let keys: Vec<&String> = first.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k).collect();
        let _ = w.write_record(keys.iter().map(|k| k.as_str()));
        for row in rows {
            let rec: Vec<String> = keys
                .iter()
                .map(|k| match row.get(k.as_str()) {
                    Some(Value::String(s)) if protect => crate::response::neutralized(s).into_owned(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(v) => v.to_string(),
                })
                .collect();
            let _ = w.write_record(&rec);
        }
    }
    w.into_inner().unwrap_or_default()
}

pub fn tables(state: &AppState, ctx: &Ctx) -> Res {
    let cat = &ctx.catalog;
    if ctx.params.get("format").is_some_and(|f| f.eq_ignore_ascii_case("fullview")) {
        return Ok(reply::json(200, &fullview(state, ctx)));
    }
    let rows = cat.tables.values().flat_map(|t| t.grains.iter().map(|g| table_summary(ctx, t, *g))).collect();
    list(state, ctx, "rows", rows, "tables")
}

fn fullview(state: &AppState, ctx: &Ctx) -> Value {
    let cat = &ctx.catalog;
    let tables: Vec<Value> = cat
        .tables
        .values()
        .map(|t| {
            let grains: Vec<Value> = t
                .grains
                .iter()
                .map(|g| {
                    let dims: Vec<Value> = t
                        .dimensions
                        .iter()
                        .filter_map(|d| cat.dimensions.get(d))
                        .map(|d| json!({
                            "category": d.category, "name": d.name, "longName": d.long_name,
                            "cardinality": cardinality(state, ctx, d), "fields": fields_json(d), "storageStrategy": d.storage_strategy(),
                        }))
                        .collect();
                    let metrics: Vec<Value> = t
                        .metrics_at(cat, *g)
                        .iter()
                        .map(|m| json!({"category": m.category, "name": m.name, "longName": m.long_name, "type": m.type_name}))
                        .collect();
                    json!({
                        "name": g.name(), "longName": g.long_name(),
                        "description": format!("The {} {} grain", t.name, g.name()),
                        "retention": t.retention, "dimensions": dims, "metrics": metrics,
                    })
                })
                .collect();
            json!({"name": t.name, "longName": t.long_name, "description": t.description, "category": t.category, "timeGrains": grains})
        })
        .collect();
    json!({ "tables": tables })
}

pub fn table(state: &AppState, ctx: &Ctx, name: &str) -> Res {
    let t = table_or_404(ctx, name)?;
    let rows = t.grains.iter().map(|g| table_summary(ctx, t, *g)).collect();
    list(state, ctx, "rows", rows, &format!("tables-{name}"))
}

pub fn table_grain(state: &AppState, ctx: &Ctx, name: &str, grain: &str, dims: &[&str]) -> Res {
    let cat = &ctx.catalog;
    let t = table_or_404(ctx, name)?;
    let g = grain_of(grain)?;
    if !t.grains.contains(&g) {
        return Err(Error::new(
            Reason::TableGrainInvalid,
            format!("Invalid pair of granularity '{grain}' and table '{name}'."),
        ));
    }
    let mut availability = access::table_availability(cat, &state.config, &ctx.principal, t, |_| true)?;
    if !dims.is_empty() || ctx.params.get("metrics").is_some() || ctx.params.get("dateTime").is_some() {
        availability = constrained_availability(state, ctx, t, g, dims)?;
    }
    let dim_list: Vec<Value> =
        t.dimensions.iter().filter_map(|d| cat.dimensions.get(d)).map(|d| dimension_summary(state, ctx, d)).collect();
    let metric_list: Vec<Value> = t.metrics_at(cat, g).iter().map(|m| metric_summary(ctx, m)).collect();
    let body = json!({
        "category": t.category, "name": t.name, "longName": t.long_name, "retention": t.retention,
        "granularity": g.name(), "description": t.description, "dimensions": dim_list, "metrics": metric_list,
        "availableIntervals": availability.iter().map(|i| i.iso_utc()).collect::<Vec<_>>(),
    });
    Ok(reply::json(200, &body))
}

/// Availability narrowed to the physical tables holding the requested dimensions and to the
/// requested intervals (spec §10, constrained table request).
fn constrained_availability(
    state: &AppState,
    ctx: &Ctx,
    t: &LogicalTable,
    g: Grain,
    dims: &[&str],
) -> Result<Vec<Interval>, Error> {
    let cat = &ctx.catalog;
    let now = state.clock.now_ms();
    let (names, intervals) = crate::request::meta::constrained(cat, &state.config, t, g, dims, &ctx.params, now)?;
    let avail = access::table_availability(cat, &state.config, &ctx.principal, t, |p| {
        names.iter().all(|d| p.dimensions.contains(d))
    })?;
    Ok(time::intersect(&avail, &intervals))
}

pub fn dimensions(state: &AppState, ctx: &Ctx) -> Res {
    let rows = ctx.catalog.dimensions.values().map(|d| dimension_summary(state, ctx, d)).collect();
    list(state, ctx, "rows", rows, "dimensions")
}

fn dimension_or_404<'a>(ctx: &'a Ctx, name: &str) -> Result<&'a Arc<Dimension>, Error> {
    ctx.catalog
        .dimensions
        .get(name)
        .ok_or_else(|| Error::new(Reason::DimensionNotFound, format!("Dimension(s) '{name}' do not exist.")))
}

pub fn dimension(state: &AppState, ctx: &Ctx, name: &str) -> Res {
    let cat = &ctx.catalog;
    let d = dimension_or_404(ctx, name)?;
    let tables: Vec<Value> = cat
        .tables_with_dimension(name)
        .iter()
        .flat_map(|t| t.grains.iter().map(|g| table_summary(ctx, t, *g)).collect::<Vec<_>>())
        .collect();
    let body = json!({
        "category": d.category, "name": d.name, "longName": d.long_name, "description": d.description,
        "fields": fields_json(d), "values": format!("{}/dimensions/{}/values", ctx.base, d.name),
        "cardinality": cardinality(state, ctx, d), "storageStrategy": d.storage_strategy(), "tables": tables,
    });
    Ok(reply::json(200, &body))
}

/// `desc` → `description` in value rows (Fili renames any field containing `desc`).
fn value_field_name(f: &str) -> String {
    if f.contains("desc") && !f.contains("description") { f.replace("desc", "description") } else { f.to_string() }
}

/// The values of a dimension the caller may see, filtered by its own fields.
pub fn dimension_values(state: &AppState, ctx: &Ctx, name: &str) -> Res {
    let d = dimension_or_404(ctx, name)?;
    let clauses = crate::request::meta::value_filters(d, &ctx.params)?;
    // Row-level security: only the values occurring in the caller's rows.
    let rows = access::dimension_rows(&ctx.catalog, &state.config, &ctx.principal, d)?;
    let out: Vec<Value> = rows
        .rows()
        .iter()
        .filter(|r| clauses.iter().all(|c| clause_matches(c.op, &c.values, &r[d.field_index(&c.field).unwrap_or(0)])))
        .map(|r| {
            let mut m = Map::new();
            for (f, v) in d.fields.iter().zip(r.iter()) {
                m.insert(value_field_name(&f.name), json!(v));
            }
            Value::Object(m)
        })
        .collect();
    list(state, ctx, "rows", out, &format!("dimensions-{name}-values"))
}

pub fn metrics(state: &AppState, ctx: &Ctx) -> Res {
    let rows = ctx.catalog.metrics.values().map(|m| metric_summary(ctx, m)).collect();
    list(state, ctx, "rows", rows, "metrics")
}

pub fn metric(ctx: &Ctx, name: &str) -> Res {
    let cat = &ctx.catalog;
    let m = cat
        .metrics
        .get(name)
        .ok_or_else(|| Error::new(Reason::MetricNotFound, format!("Metric(s) '{name}' do not exist.")))?;
    let tables: Vec<Value> = cat
        .tables_with_metric(name)
        .iter()
        .flat_map(|t| {
            t.grains
                .iter()
                .filter(|g| cat.metric_valid_at(m, **g))
                .map(|g| table_summary(ctx, t, *g))
                .collect::<Vec<_>>()
        })
        .collect();
    let body = json!({
        "category": m.category, "name": m.name, "longName": m.long_name, "type": m.type_name,
        "description": m.description, "tables": tables,
    });
    Ok(reply::json(200, &body))
}

pub fn slices(state: &AppState, ctx: &Ctx) -> Res {
    let rows = ctx
        .catalog
        .tables
        .values()
        .flat_map(|t| t.physical.iter())
        .map(|p| json!({"name": p.name, "timeGrain": p.grain.name(), "uri": format!("{}/slices/{}", ctx.base, p.name)}))
        .collect();
    list(state, ctx, "rows", rows, "slices")
}

pub fn slice(state: &AppState, ctx: &Ctx, name: &str) -> Res {
    let (t, p) = ctx
        .catalog
        .slice(name)
        .ok_or_else(|| Error::new(Reason::SliceUndefined, format!("Slice with name '{name}' does not exist.")))?;
    let availability = access::availability(&ctx.catalog, &state.config, &ctx.principal, t, p)?;
    let intervals: Vec<String> = availability.iter().map(|i| i.iso_utc()).collect();
    let dims: Vec<Value> = p
        .dimensions
        .iter()
        .map(|d| json!({"name": d, "factName": p.column_for(d), "uri": format!("{}/dimensions/{}", ctx.base, d), "intervals": intervals}))
        .collect();
    let metric_names: Vec<&String> =
        if p.metrics.is_empty() { t.metrics.iter().collect() } else { p.metrics.iter().collect() };
    let metrics: Vec<Value> = metric_names.iter().map(|m| json!({"name": m, "intervals": intervals})).collect();
    let mut body = json!({
        "name": p.name, "timeGrain": p.grain.name(), "timeZone": p.timezone.name(),
        "dimensions": dims, "metrics": metrics, "segmentInfo": {},
        "table": t.name,
        "kind": if p.kind == crate::catalog::physical::PhysicalKind::Raw { "raw" } else { "rollup" },
    });
    // Files, row counts and sizes describe every tenant's rows: not for a row-level role.
    if ctx.principal.filters.is_empty() {
        body["files"] = p
            .files
            .iter()
            .map(|f| json!({"path": f.name, "rows": f.num_rows(), "rowGroups": f.num_row_groups(), "bytes": f.size_bytes}))
            .collect();
    }
    Ok(reply::json(200, &body))
}

/// Health. Anyone gets the overall state (`ok`, or `degraded` when a table's files fail to
/// read or the job store is unavailable); an operator (see
/// [`crate::auth::Auth::is_operator`]) also gets the detail: per table, the job store, the
/// last errors. The service answers 200 either way so the other tables keep serving.
pub fn status(state: &AppState, operator: bool) -> Response {
    let degraded = state.degraded.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let jobs = state.jobs.health();
    let snap = state.snapshots.status();
    let healthy = degraded.is_empty() && jobs.is_ok() && snap.last_error.is_none();
    let overall = if healthy { "ok" } else { "degraded" };
    if !operator {
        return reply::json(200, &json!({ "status": overall, "healthy": true }));
    }
    let tables: Map<String, Value> = state
        .catalog()
        .tables
        .values()
        .map(|t| {
            let errors: Map<String, Value> =
                t.physical.iter().filter_map(|p| degraded.get(&p.name).map(|e| (p.name.clone(), json!(e)))).collect();
            let mut v = json!({
                "status": if errors.is_empty() { "ok" } else { "degraded" },
                "physicalTables": t.physical.len(),
                "rows": t.physical.iter().map(|p| p.total_rows()).max().unwrap_or(0),
            });
            if !errors.is_empty() {
                v["errors"] = Value::Object(errors);
            }
            (t.name.clone(), v)
        })
        .collect();
    let mut body = json!({
        "status": overall,
        "healthy": true,
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "jobStore": if jobs.is_ok() { "ok" } else { "unavailable" },
        "snapshot": snapshot_json(&snap),
        "tables": tables,
    });
    if let Err(e) = jobs {
        body["jobStoreError"] = json!(e);
    }
    if let Some(c) = &state.cluster {
        let probe = state.cluster_probe.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut d = json!({"scheduler": c.settings.scheduler, "timeoutSeconds": c.settings.timeout.as_secs_f64()});
        if let Some((p, at)) = probe {
            d["reachable"] = json!(p.reachable);
            d["executors"] = json!(p.executors);
            d["checkedAt"] = json!(time::iso_utc(at));
            if let Some(e) = p.error {
                d["error"] = json!(e);
            }
        }
        body["distributed"] = d;
    }
    reply::json(200, &body)
}

/// The serving snapshot and the last reload, for `/status`.
fn snapshot_json(s: &crate::snapshot::ReloadStatus) -> Value {
    let iso = time::iso_utc;
    let mut v = json!({"version": s.version, "loadedAt": iso(s.loaded_at_ms), "checkedAt": iso(s.checked_at_ms)});
    if let (Some(e), Some(at)) = (&s.last_error, s.last_error_at_ms) {
        v["lastReloadError"] = json!(e);
        v["lastReloadErrorAt"] = json!(iso(at));
    }
    v
}
