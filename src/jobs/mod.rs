//! Asynchronous jobs (spec §8, DESIGN §6): the lifecycle, the persistent store (SQLite for
//! metadata, Arrow IPC files for results) and waiting for completion (long-poll).

mod store;

use crate::app::Clock;
use crate::engine::plan::CancelToken;
use crate::error::{Error, Reason};
use arrow::array::RecordBatch;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Store;
use tokio::sync::watch;

/// A job's status. `Pending` is the only non-terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Success,
    Failure,
    Canceled,
}

impl JobStatus {
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Success => "success",
            JobStatus::Failure => "failure",
            JobStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        [JobStatus::Pending, JobStatus::Success, JobStatus::Failure, JobStatus::Canceled]
            .into_iter()
            .find(|j| j.name() == s)
    }

    /// The one place transitions are decided: pending → success | failure | canceled;
    /// a finished job never changes again.
    pub fn transition(self, to: JobStatus) -> Result<JobStatus, Error> {
        match (self, to) {
            (JobStatus::Pending, JobStatus::Success | JobStatus::Failure | JobStatus::Canceled) => Ok(to),
            _ => Err(Error::internal(format!("a job cannot go from {} to {}", self.name(), to.name()))),
        }
    }

    pub fn is_done(self) -> bool {
        self != JobStatus::Pending
    }
}

/// A job's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub ticket: String,
    /// The full request URI.
    pub query: String,
    pub user: String,
    pub status: JobStatus,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// For failures: the HTTP status and error body to return.
    pub error: Option<(u16, String)>,
    /// How to render the results (JSON of `RenderSpec`).
    pub render: Option<String>,
}

impl Job {
    /// Fili's job payload; every value a string.
    pub fn payload(&self, base: &str) -> Value {
        let url = format!("{base}/jobs/{}", self.ticket);
        json!({
            "query": self.query,
            "results": format!("{url}/results"),
            "syncResults": format!("{url}/results?asyncAfter=never"),
            "self": url,
            "status": self.status.name(),
            "jobTicket": self.ticket,
            "dateCreated": crate::time::iso_utc(self.created_ms),
            "dateUpdated": crate::time::iso_utc(self.updated_ms),
            "userId": self.user,
        })
    }
}

/// The job service: store, watchers and running queries.
pub struct Jobs {
    store: Mutex<Option<Store>>,
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    expiry_ms: i64,
    watchers: Mutex<HashMap<String, watch::Sender<JobStatus>>>,
    running: Mutex<HashMap<String, CancelToken>>,
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::new(
        Reason::JobStoreUnavailable,
        format!("The job store is unavailable ({e}); try again later or use asyncAfter=never."),
    )
}

impl Jobs {
    /// Opens (or creates) the store in `dir`, marks jobs cut off by a crash or shutdown as
    /// failures and deletes expired jobs. A store that cannot be opened leaves the service
    /// running without async jobs (requests needing one get 503).
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, expiry_seconds: u64) -> Jobs {
        let expiry_ms = (expiry_seconds as i64).saturating_mul(1000);
        let store = match Store::open(dir) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("job store in {} unavailable: {e}", dir.display());
                None
            }
        };
        let jobs = Jobs {
            store: Mutex::new(store),
            dir: dir.to_path_buf(),
            clock,
            expiry_ms,
            watchers: Mutex::default(),
            running: Mutex::default(),
        };
        let now = jobs.clock.now_ms();
        if let Some(s) = jobs.store.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            match s.fail_pending(now, "The job was interrupted: the server stopped before it finished.") {
                Ok(n) if n > 0 => tracing::warn!("{n} job(s) cut off by the last shutdown marked failure"),
                Err(e) => tracing::error!("cannot mark interrupted jobs: {e}"),
                _ => {}
            }
        }
        jobs.expire();
        jobs
    }

    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, String>) -> Result<T, Error> {
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let s = guard.as_mut().ok_or_else(|| unavailable("not open"))?;
        f(s).map_err(unavailable)
    }

    /// Deletes finished jobs older than the expiry, with their result files.
    pub fn expire(&self) -> usize {
        let cutoff = self.clock.now_ms().saturating_sub(self.expiry_ms);
        self.with_store(|s| s.expire(cutoff)).unwrap_or(0)
    }

    /// A new pending job.
    pub fn create(&self, query: &str, user: &str, render: &str, cancel: CancelToken) -> Result<Job, Error> {
        let now = self.clock.now_ms();
        let job = Job {
            ticket: uuid::Uuid::new_v4().simple().to_string(),
            query: query.to_string(),
            user: user.to_string(),
            status: JobStatus::Pending,
            created_ms: now,
            updated_ms: now,
            error: None,
            render: Some(render.to_string()),
        };
        self.with_store(|s| s.insert(&job))?;
        let (tx, _) = watch::channel(JobStatus::Pending);
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).insert(job.ticket.clone(), tx);
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(job.ticket.clone(), cancel);
        Ok(job)
    }

    fn finish(&self, ticket: &str, to: JobStatus, error: Option<(u16, String)>) -> Result<(), Error> {
        let now = self.clock.now_ms();
        let current = self.get(ticket)?.map(|j| j.status).unwrap_or(JobStatus::Pending);
        let to = current.transition(to)?;
        self.with_store(|s| s.update(ticket, to, now, error.as_ref()))?;
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(ticket);
        if let Some(tx) = self.watchers.lock().unwrap_or_else(|p| p.into_inner()).remove(ticket) {
            let _ = tx.send(to);
        }
        Ok(())
    }

    /// Stores the results and marks the job a success.
    pub fn succeed(&self, ticket: &str, batch: &RecordBatch) -> Result<(), Error> {
        if let Err(e) = store::write_results(&self.dir, ticket, batch) {
            let err = Error::new(Reason::JobStoreUnavailable, format!("The results could not be stored: {e}"));
            let body = serde_json::to_string(&err.body("", None)).unwrap_or_default();
            return self.finish(ticket, JobStatus::Failure, Some((err.status(), body)));
        }
        self.finish(ticket, JobStatus::Success, None)
    }

    /// Marks the job failed with the error it would have returned.
    pub fn fail(&self, ticket: &str, e: &Error, request_id: &str) -> Result<(), Error> {
        let status = if e.reason == Reason::QueryCanceled { JobStatus::Canceled } else { JobStatus::Failure };
        let body = serde_json::to_string_pretty(&e.body(request_id, None)).unwrap_or_default();
        self.finish(ticket, status, Some((e.status(), body)))
    }

    pub fn get(&self, ticket: &str) -> Result<Option<Job>, Error> {
        self.with_store(|s| s.get(ticket))
    }

    pub fn list(&self) -> Result<Vec<Job>, Error> {
        self.with_store(|s| s.list())
    }

    pub fn results(&self, ticket: &str) -> Result<RecordBatch, Error> {
        store::read_results(&self.dir, ticket)
            .map_err(|e| Error::new(Reason::JobNotFound, format!("The results of job {ticket} are gone: {e}")))
    }

    /// Waits until the job is done or `timeout` passes (`None`: no limit); returns the job.
    pub async fn wait(&self, ticket: &str, timeout: Option<Duration>) -> Result<Option<Job>, Error> {
        let rx = self.watchers.lock().unwrap_or_else(|p| p.into_inner()).get(ticket).map(|tx| tx.subscribe());
        if let Some(mut rx) = rx {
            let done = async {
                while !rx.borrow().is_done() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            };
            match timeout {
                Some(t) => {
                    let _ = tokio::time::timeout(t, done).await;
                }
                None => done.await,
            }
        }
        self.get(ticket)
    }

    /// Cancels every running job (shutdown); their rows become `canceled`.
    pub fn cancel_all(&self) -> usize {
        let running: Vec<(String, CancelToken)> =
            self.running.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        for (ticket, token) in &running {
            token.cancel();
            let e = Error::new(Reason::QueryCanceled, "The job was canceled: the server is shutting down.");
            let _ = self.fail(ticket, &e, "");
        }
        running.len()
    }
}

/// Job-field filters of `/jobs` (spec §8): `field-op[values]`, clauses ANDed.
pub fn matches_filters(job: &Job, filters: &[(String, String, Vec<String>)]) -> bool {
    filters.iter().all(|(field, op, values)| {
        let v = match field.as_str() {
            "query" => job.query.clone(),
            "status" => job.status.name().to_string(),
            "jobTicket" => job.ticket.clone(),
            "dateCreated" => crate::time::iso_utc(job.created_ms),
            "dateUpdated" => crate::time::iso_utc(job.updated_ms),
            "userId" => job.user.clone(),
            _ => return false,
        };
        match op.as_str() {
            "in" | "eq" => values.contains(&v),
            "notin" => !values.contains(&v),
            "startswith" => values.iter().any(|x| v.starts_with(x.as_str())),
            "contains" => values.iter().any(|x| v.contains(x.as_str())),
            _ => false,
        }
    })
}

/// Parses `/jobs` filters; errors name the clause.
pub fn parse_filters(s: &str) -> Result<Vec<(String, String, Vec<String>)>, Error> {
    if s.is_empty() {
        return Ok(vec![]);
    }
    let fields = ["query", "status", "jobTicket", "dateCreated", "userId", "dateUpdated"];
    let mut out = Vec::new();
    for clause in crate::grammar::tokens::split_clauses(s) {
        let invalid = || Error::new(Reason::FilterInvalid, format!("Filter expression '{clause}' is invalid."));
        let (head, values) = crate::grammar::tokens::bracketed(clause).ok_or_else(invalid)?;
        let (field, op) = head.split_once('-').ok_or_else(invalid)?;
        if !fields.contains(&field) {
            return Err(Error::new(
                Reason::FilterFieldUndefined,
                format!("Job field '{field}' does not exist. Use one of {}.", fields.join(", ")),
            ));
        }
        if !["in", "eq", "notin", "startswith", "contains"].contains(&op) {
            return Err(Error::new(Reason::FilterOperatorInvalid, format!("Filter operator '{op}' is invalid.")));
        }
        let vals = crate::grammar::tokens::split_values(values).map_err(|_| {
            Error::new(
                Reason::FilterValuesInvalid,
                format!("Filter expression '{clause}' resulted in the following error: Set of values '{values}' cannot be processed.  Empty strings, commas, and leading or trailing whitespace must be quoted."),
            )
        })?;
        out.push((field.to_string(), op.to_string(), vals));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_transitions() {
        use JobStatus::*;
        for to in [Success, Failure, Canceled] {
            assert_eq!(Pending.transition(to).unwrap(), to);
        }
        for from in [Success, Failure, Canceled] {
            for to in [Pending, Success, Failure, Canceled] {
                assert!(from.transition(to).is_err(), "{from:?} -> {to:?}");
            }
        }
        assert!(Pending.transition(Pending).is_err());
        assert_eq!(JobStatus::parse("failure"), Some(Failure));
    }

    #[test]
    fn job_filters() {
        let j = Job {
            ticket: "t1".into(),
            query: "http://x/v1/data/a".into(),
            user: "ann".into(),
            status: JobStatus::Success,
            created_ms: 0,
            updated_ms: 0,
            error: None,
            render: None,
        };
        let f = parse_filters("userId-eq[ann],status-in[success,failure]").unwrap();
        assert!(matches_filters(&j, &f));
        assert!(!matches_filters(&j, &parse_filters("userId-notin[ann]").unwrap()));
        assert!(matches_filters(&j, &parse_filters("query-contains[/data/]").unwrap()));
        assert_eq!(parse_filters("owner-eq[x]").unwrap_err().status(), 400);
        assert_eq!(parse_filters("userId-like[x]").unwrap_err().message, "Filter operator 'like' is invalid.");
    }
}
