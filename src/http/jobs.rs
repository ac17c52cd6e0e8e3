//! `/v1/jobs`, `/v1/jobs/{ticket}` and `/v1/jobs/{ticket}/results` (spec §8).

use super::data::render;
use super::meta;
use super::reply::{self, Ctx};
use crate::app::AppState;
use crate::error::{Error, Reason};
use crate::grammar::async_after::AsyncAfter;
use crate::jobs::{self, Job, JobStatus};
use crate::query::RenderSpec;
use crate::request::Presentation;
use std::sync::Arc;
use std::time::Duration;
use warp::reply::Response;

fn not_found(ticket: &str) -> Error {
    Error::new(Reason::JobNotFound, format!("No job found with job ticket {ticket}"))
}

/// A job the caller may see: their own, or any for admins. Others' tickets are not found.
/// Asking about a job keeps it from being canceled as an orphan.
fn visible(state: &AppState, ctx: &Ctx, ticket: &str) -> Result<Job, Error> {
    if ticket.is_empty() || ticket.len() > 128 || !ticket.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(not_found(ticket));
    }
    match state.jobs.get(ticket)? {
        Some(j) if ctx.principal.admin || j.user == ctx.principal.user => {
            state.jobs.touch(ticket);
            Ok(j)
        }
        _ => Err(not_found(ticket)),
    }
}

pub fn list(state: &AppState, ctx: &Ctx) -> Result<Response, Error> {
    let filters = jobs::parse_filters(ctx.params.get("filters").unwrap_or(""))?;
    let rows = state
        .jobs
        .list()?
        .into_iter()
        .filter(|j| ctx.principal.admin || j.user == ctx.principal.user)
        .filter(|j| jobs::matches_filters(j, &filters))
        .map(|j| j.payload(&ctx.base))
        .collect();
    meta::list(state, ctx, "jobs", rows, "jobs")
}

pub fn job(state: &AppState, ctx: &Ctx, ticket: &str) -> Result<Response, Error> {
    let j = visible(state, ctx, ticket)?;
    Ok(reply::json(200, &j.payload(&ctx.base)))
}

pub async fn results(state: &Arc<AppState>, ctx: &Ctx, ticket: &str) -> Result<Response, Error> {
    let j = visible(state, ctx, ticket)?;
    let presentation = Presentation::read(&ctx.params, ctx.header("accept"))?;
    let wait = ctx.params.async_after(AsyncAfter::Never)?;
    let j = match wait {
        AsyncAfter::Always => j,
        AsyncAfter::Never => state.jobs.wait(ticket, None).await?.unwrap_or(j),
        AsyncAfter::Millis(ms) => state.jobs.wait(ticket, Some(Duration::from_millis(ms))).await?.unwrap_or(j),
    };
    match j.status {
        JobStatus::Success if wait != AsyncAfter::Always => {
            let spec: RenderSpec = serde_json::from_str(j.render.as_deref().unwrap_or(""))
                .map_err(|e| Error::internal(format!("job {ticket} has no rendering information: {e}")))?;
            let (jobs, t) = (state.jobs.clone(), ticket.to_string());
            let batch = crate::workers::run(move || jobs.results(&t))
                .await
                .unwrap_or_else(|| Err(Error::internal("reading the job's results failed")))?;
            Ok(render(state, ctx, &spec, batch, &presentation, None)?.into_response())
        }
        JobStatus::Failure | JobStatus::Canceled => {
            let (status, stored) = j.error.unwrap_or((500, String::new()));
            let body = jobs::failure_body(&stored);
            Ok(reply::body(status, body.into_bytes(), "application/json; charset=utf-8"))
        }
        _ => Ok(reply::json(200, &j.payload(&ctx.base))),
    }
}
