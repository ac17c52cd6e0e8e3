//! The lifecycle of a data query (DESIGN §2): prepared on the caller's view of the serving
//! snapshot → answered from the result cache, or admitted → running → done, or a job when
//! `asyncAfter` runs out first. It owns the asyncAfter race, cancellation of abandoned
//! queries, and the validators (ETag, Last-Modified) that let a client skip a repeat. No HTTP
//! type enters here: the HTTP layer builds a [`Call`] and renders the [`Answer`].

mod fresh;

pub use crate::response::RenderSpec;
pub use fresh::{Prepared, prepare};

use crate::cache;

use crate::app::AppState;
use crate::auth::{Principal, Scope};
use crate::catalog::Catalog;
use crate::engine::ScanStats;
use crate::engine::plan::CancelToken;
use crate::error::Error;
use crate::grammar::async_after::AsyncAfter;
use crate::grammar::format::{self, Format};
use crate::request::Presentation;
use crate::request::data::DataRequest;
use crate::request::params::Params;
use crate::time::{self, Grain, Interval};
use arrow::array::RecordBatch;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Who asks what: everything the lifecycle needs from the request.
#[derive(Clone)]
pub struct Call {
    pub principal: Principal,
    /// The serving snapshot as the principal may see it.
    pub catalog: Arc<Catalog>,
    /// The key limits count under ([`Principal::limit_key`]).
    pub caller: String,
    /// The request's absolute URL (a job's `query`, the admission log).
    pub url: String,
    pub request_id: String,
    /// Decoded path segments after `data/`.
    pub segments: Vec<String>,
    pub params: Params,
    pub accept: Option<String>,
    /// `Cache-Control: no-cache`: run the query even if the answer is cached.
    pub no_cache: bool,
    /// `If-None-Match`, as sent.
    pub if_none_match: Option<String>,
}

/// What lets a client (or a cache in between) reuse an answer.
#[derive(Debug, Clone)]
pub struct Validators {
    /// A strong ETag, quoted.
    pub etag: String,
    /// The newest modification time of the files the answer comes from.
    pub last_modified: Option<SystemTime>,
    /// The snapshot version the answer comes from.
    pub snapshot: u64,
    /// Per-user answers (auth on) may not be stored by shared caches.
    pub private: bool,
}

/// A finished answer, ready to render.
pub struct Done {
    pub entry: Arc<cache::Entry>,
    pub presentation: Presentation,
    pub validators: Validators,
    /// Held until the response is written (none for a cached answer: nothing runs).
    pub permit: Option<crate::limits::Permit>,
    /// Served from the result cache.
    pub hit: bool,
}

/// What a data query comes to.
pub enum Answer {
    Rows(Done),
    /// The client's copy (`If-None-Match`) is current: nothing ran.
    NotModified(Validators),
    /// It became a job.
    Job(crate::jobs::Job),
    /// `format=debug`: the plan, not run.
    Plan(Box<Prepared>),
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

/// Runs one data request through its lifecycle.
pub async fn run(state: &Arc<AppState>, mut call: Call) -> Result<Answer, Error> {
    call.principal.require(Scope::Data)?;
    let prepared = fresh::prepare_fresh(state, &mut call).await?;
    let meaning = &prepared.resolved.meaning;
    tracing::Span::current().record("table", meaning.table.as_str());
    tracing::Span::current().record("grain", meaning.grain.name());
    let presentation = prepared.resolved.presentation.clone();
    if presentation.format == Format::Debug {
        return Ok(Answer::Plan(Box::new(prepared)));
    }
    let key = answer_key(&call, &prepared);
    let validators = Validators {
        etag: etag(&key, &presentation),
        last_modified: prepared.physical.files.iter().filter_map(|f| f.modified).max(),
        snapshot: call.catalog.version,
        private: state.auth().enabled(),
    };
    state.admission.check_rate(&call.caller, &call.url)?;
    if call.if_none_match.as_deref().is_some_and(|h| etag_matches(h, &validators.etag)) {
        return Ok(Answer::NotModified(validators));
    }
    let async_after = effective_async_after(&call, &prepared)?;
    if !call.no_cache
        && async_after != AsyncAfter::Always
        && let Some(entry) = state.cache.get(&key)
    {
        return Ok(Answer::Rows(Done { entry, presentation, validators, permit: None, hit: true }));
    }
    let spec = render_spec(state, &call, &prepared);
    let permit = state.admission.admit_running(&call.caller, call.principal.ui, &call.url)?;
    let table_permit = state.admission.admit_table(&prepared.physical.name, prepared.physical.max_concurrent)?;
    // The query starts at once on the blocking pool; the permit is held until the response
    // is written (or, for a job, until the job ends).
    let cancel = CancelToken::default();
    let (tx, mut rx) = tokio::sync::oneshot::channel::<Outcome>();
    let (st, token, cat) = (state.clone(), cancel.clone(), call.catalog.clone());
    let dims: Vec<Arc<crate::catalog::Dimension>> = meaning.dims.iter().map(|d| d.dim.clone()).collect();
    let Prepared { plan, physical, .. } = prepared;
    let again = call.clone();
    crate::workers::spawn(move || {
        let r = fresh::execute_fresh(&st, plan, again, physical, &token);
        drop(table_permit);
        let r = r.and_then(|r| {
            // Warm the dimension rows used to annotate.
            for d in &dims {
                crate::request::dimension_rows(&cat, d).map_err(Error::from)?;
            }
            Ok((r.batch, r.stats))
        });
        let _ = tx.send(r);
    });
    let mut guard = CancelOnDrop { token: cancel.clone(), armed: true };
    let stopped = || Err(Error::internal("the query task stopped"));
    let finished: Option<Outcome> = match async_after {
        AsyncAfter::Never => Some((&mut rx).await.unwrap_or_else(|_| stopped())),
        AsyncAfter::Always => None,
        AsyncAfter::Millis(ms) => {
            tokio::time::timeout(Duration::from_millis(ms), &mut rx).await.ok().map(|r| r.unwrap_or_else(|_| stopped()))
        }
    };
    guard.armed = false;
    match finished {
        Some(outcome) => {
            let (batch, stats) = outcome?;
            let entry = Arc::new(cache::Entry::new(batch, stats, spec, validators.last_modified));
            state.cache.put(key, entry.clone());
            Ok(Answer::Rows(Done { entry, presentation, validators, permit: Some(permit), hit: false }))
        }
        None => become_job(state, &call, spec, cancel, rx, permit),
    }
}

/// The query keeps running as a job; the client gets its ticket.
fn become_job(
    state: &Arc<AppState>,
    call: &Call,
    spec: RenderSpec,
    cancel: CancelToken,
    rx: tokio::sync::oneshot::Receiver<Outcome>,
    permit: crate::limits::Permit,
) -> Result<Answer, Error> {
    let spec_json = serde_json::to_string(&spec).unwrap_or_default();
    let job = state.jobs.create(&call.url, &call.principal.user, &call.caller, &spec_json, cancel)?;
    let jobs = state.jobs.clone();
    let (ticket, rid) = (job.ticket.clone(), call.request_id.clone());
    tokio::spawn(async move {
        let outcome = rx.await.unwrap_or_else(|_| Err(Error::internal("the query task stopped")));
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
    Ok(Answer::Job(job))
}

/// `asyncAfter` as it applies to the caller: a job is only readable with the `jobs` scope, so
/// asking for one without it is refused, and the configured default does not apply (the
/// answer is synchronous).
fn effective_async_after(call: &Call, p: &Prepared) -> Result<AsyncAfter, Error> {
    let r = &p.resolved;
    if r.async_after != AsyncAfter::Never && call.principal.require(Scope::Jobs).is_err() {
        if r.async_after_given {
            call.principal.require(Scope::Jobs)?;
        }
        return Ok(AsyncAfter::Never);
    }
    Ok(r.async_after)
}

/// The name of an answer: the canonical query without its presentation, the intervals it
/// resolved to, who asks, and the data snapshot (see [`cache`]).
fn answer_key(call: &Call, p: &Prepared) -> String {
    let skip = [&crate::request::PRESENTATION_PARAMS[..], &["asyncAfter"], &crate::share::LINK_PARAMS].concat();
    let canonical = call.params.canonical(&call.segments.join("/"), &skip);
    let intervals: Vec<String> = p.plan.intervals.iter().map(|i| i.iso_utc()).collect();
    let who = &call.principal;
    let mut grants: Vec<&String> = who.tables.iter().flatten().collect();
    grants.sort();
    let filters: Vec<String> = who.filters.iter().map(|c| c.render()).collect();
    let identity = format!(
        "{}|{}|{}",
        if who.authenticated || who.shared { who.user.as_str() } else { "" },
        filters.join(","),
        if who.tables.is_some() { format!("{grants:?}") } else { "*".into() }
    );
    cache::digest(&[&canonical, &intervals.join(","), &identity, &call.catalog.fingerprint])
}

/// A strong ETag: the answer's name and its presentation.
fn etag(key: &str, p: &Presentation) -> String {
    let presentation = format!("{p:?}");
    format!("\"{}\"", &cache::digest(&[key, &presentation])[..32])
}

/// Whether an `If-None-Match` value names `etag` (`*`, or a list, weak tags compared weakly).
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

fn render_spec(state: &AppState, call: &Call, p: &Prepared) -> RenderSpec {
    let req = &p.resolved.meaning;
    let names: Vec<&str> =
        std::iter::once("data").chain(call.segments.iter().map(|s| s.split(';').next().unwrap_or(""))).collect();
    RenderSpec {
        tz: req.tz.name().to_string(),
        dims: req.dims.iter().map(|d| (d.dim.name.clone(), d.shown.clone())).collect(),
        missing: if state.config.query.partial_data_enabled {
            missing_intervals(req, &p.physical.availability)
        } else {
            vec![]
        },
        stem: format::default_stem(&names, &req.date_time_text),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", W/\"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
