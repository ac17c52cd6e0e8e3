//! Asynchronous jobs (spec §8, DESIGN §6): the lifecycle, the persistent store (SQLite for
//! metadata, Arrow IPC files for results) and waiting for completion (long-poll).

mod store;

use crate::clock::Clock;
use crate::config::JobsConfig;
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
    cfg: JobsConfig,
    watchers: Mutex<HashMap<String, watch::Sender<JobStatus>>>,
    running: Mutex<HashMap<String, CancelToken>>,
    /// The last failed write of results and when (ms), until a write succeeds again or
    /// [`WRITE_ERROR_HOLD_MS`] pass.
    write_error: Mutex<Option<(String, i64)>>,
    /// When [`Jobs::sweep`] last deleted expired jobs (ms).
    last_expiry: std::sync::atomic::AtomicI64,
}

/// How often [`Jobs::sweep`] deletes expired jobs.
const EXPIRY_EVERY_MS: i64 = 3_600_000;

/// The error of a job cut off by a server stop (shutdown, crash or kill).
fn interrupted() -> Error {
    Error::new(
        Reason::JobInterrupted,
        "The job was interrupted: the server stopped before it finished. Run the query again.",
    )
}

/// Free bytes on the file system holding `dir` (Unix), `None` when unknown.
fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Below this many free bytes the job store reports itself unavailable.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// A failure as the store keeps it: the typed error and the request that ran the query (the
/// HTTP body is rendered when the results are asked for).
#[derive(serde::Serialize, serde::Deserialize)]
struct Failure {
    error: Error,
    #[serde(rename = "requestId")]
    request_id: String,
}

/// The stored form of a job's failure.
pub fn stored_failure(e: &Error, request_id: &str) -> String {
    serde_json::to_string(&Failure { error: e.clone(), request_id: request_id.to_string() }).unwrap_or_default()
}

/// The error body of a failed job, in Fili's shape, from its stored form (stores written by
/// earlier versions kept the rendered body, which is returned as it is).
pub fn failure_body(stored: &str) -> String {
    match serde_json::from_str::<Failure>(stored) {
        Ok(f) => serde_json::to_string_pretty(&f.error.body(&f.request_id, None)).unwrap_or_default(),
        Err(_) => stored.to_string(),
    }
}

/// How long a failed result write keeps the store unavailable: long enough that a full disk
/// refuses new jobs at once, short enough that the store is tried again once it is freed (no
/// job could ever succeed to clear it otherwise).
const WRITE_ERROR_HOLD_MS: i64 = 60_000;

/// The job store failed: the detail (which may name server paths) goes to the log and to an
/// operator's `/status`, the caller gets what to do.
fn unavailable(e: impl std::fmt::Display) -> Error {
    tracing::warn!("job store unavailable: {e}");
    Error::new(Reason::JobStoreUnavailable, "The job store is unavailable; try again later or use asyncAfter=never.")
}

impl Jobs {
    /// Opens (or creates) the store in `dir`, marks jobs cut off by a crash or shutdown as
    /// failures and deletes expired jobs. A store that cannot be opened leaves the service
    /// running without async jobs (requests needing one get 503).
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, cfg: &JobsConfig) -> Jobs {
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
            cfg: cfg.clone(),
            watchers: Mutex::default(),
            running: Mutex::default(),
            write_error: Mutex::default(),
            last_expiry: Default::default(),
        };
        let now = jobs.clock.now_ms();
        if let Some(s) = jobs.store.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            match s.fail_pending(now, &interrupted()) {
                Ok(n) if n > 0 => tracing::warn!("{n} job(s) cut off by the last shutdown marked failure"),
                Err(e) => tracing::error!("cannot mark interrupted jobs: {e}"),
                _ => {}
            }
        }
        jobs.expire();
        jobs.last_expiry.store(now, std::sync::atomic::Ordering::Relaxed);
        jobs
    }

    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, String>) -> Result<T, Error> {
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let s = guard.as_mut().ok_or_else(|| unavailable("not open"))?;
        f(s).map_err(unavailable)
    }

    /// Deletes finished jobs older than the expiry, with their result files.
    pub fn expire(&self) -> usize {
        let expiry_ms = (self.cfg.expiry_seconds as i64).saturating_mul(1000);
        let cutoff = self.clock.now_ms().saturating_sub(expiry_ms);
        self.with_store(|s| s.expire(cutoff)).unwrap_or(0)
    }

    /// Whether new jobs can be stored: the store is open, the disk has room, and the last
    /// write of results did not fail. `Err` says why not.
    pub fn health(&self) -> Result<(), String> {
        if self.store.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return Err("the job database could not be opened".into());
        }
        let now = self.clock.now_ms();
        if let Some((e, at)) = self.write_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
            && now - at < WRITE_ERROR_HOLD_MS
        {
            return Err(format!("the last result write failed: {e}"));
        }
        if free_bytes(&self.dir).is_some_and(|b| b < MIN_FREE_BYTES) {
            return Err("the disk holding the job store is full".into());
        }
        Ok(())
    }

    /// A new pending job of `user`, counted against the quotas of the caller `key`.
    pub fn create(&self, query: &str, user: &str, key: &str, render: &str, cancel: CancelToken) -> Result<Job, Error> {
        self.health().map_err(unavailable)?;
        let (pending, stored, bytes) = self.with_store(|s| s.usage(key))?;
        if stored >= self.cfg.max_jobs_per_user {
            return Err(Error::new(
                Reason::JobQuotaExceeded,
                format!(
                    "You have {stored} stored jobs, the most allowed (jobs.max_jobs_per_user). They free up as jobs expire; use asyncAfter=never meanwhile."
                ),
            ));
        }
        if pending >= self.cfg.max_pending_per_user {
            return Err(Error::new(
                Reason::JobQuotaExceeded,
                format!(
                    "You have {pending} pending jobs, the most allowed (jobs.max_pending_per_user). Wait for one to finish, or use asyncAfter=never."
                ),
            ));
        }
        if bytes >= self.cfg.max_result_bytes_per_user {
            return Err(Error::new(
                Reason::JobQuotaExceeded,
                format!(
                    "Your stored job results hold {} MB, the most allowed (jobs.max_result_bytes_per_user). They free up as jobs expire; use asyncAfter=never meanwhile.",
                    bytes >> 20
                ),
            ));
        }
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
        self.with_store(|s| s.insert(&job, key))?;
        let (tx, _) = watch::channel(JobStatus::Pending);
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).insert(job.ticket.clone(), tx);
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(job.ticket.clone(), cancel);
        Ok(job)
    }

    /// Moves a pending job to `to`. A job already finished (an orphan canceled while its
    /// query was still running) stays as it is.
    fn finish(&self, ticket: &str, to: JobStatus, error: Option<(u16, String)>) -> Result<(), Error> {
        let now = self.clock.now_ms();
        let current = self.get(ticket)?.map(|j| j.status).unwrap_or(JobStatus::Pending);
        if current.is_done() {
            return Ok(());
        }
        let to = current.transition(to)?;
        self.with_store(|s| s.update(ticket, to, now, error.as_ref()))?;
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(ticket);
        if let Some(tx) = self.watchers.lock().unwrap_or_else(|p| p.into_inner()).remove(ticket) {
            let _ = tx.send(to);
        }
        Ok(())
    }

    /// Stores the results and marks the job a success (a failure when they cannot be stored).
    pub fn succeed(&self, ticket: &str, batch: &RecordBatch) -> Result<(), Error> {
        if self.get(ticket)?.is_none_or(|j| j.status.is_done()) {
            return Ok(()); // canceled meanwhile: nobody will read these results
        }
        match store::write_results(&self.dir, ticket, batch) {
            Ok((bytes, sha)) => {
                *self.write_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                self.with_store(|s| s.set_result(ticket, bytes, &sha))?;
                self.finish(ticket, JobStatus::Success, None)
            }
            Err(e) => {
                tracing::error!(ticket, "cannot store job results: {e}");
                *self.write_error.lock().unwrap_or_else(|p| p.into_inner()) = Some((e.clone(), self.clock.now_ms()));
                let err = Error::new(
                    Reason::JobStoreUnavailable,
                    "The results could not be stored (the server log says why); run the query again later or with asyncAfter=never.",
                );
                let body = serde_json::to_string_pretty(&err.body("", None)).unwrap_or_default();
                self.finish(ticket, JobStatus::Failure, Some((err.status(), body)))
            }
        }
    }

    /// Marks the job failed with the error it would have returned (`canceled` for a canceled
    /// query or an orphan).
    pub fn fail(&self, ticket: &str, e: &Error, request_id: &str) -> Result<(), Error> {
        let status = if matches!(e.reason, Reason::QueryCanceled | Reason::JobOrphaned) {
            JobStatus::Canceled
        } else {
            JobStatus::Failure
        };
        self.finish(ticket, status, Some((e.status(), stored_failure(e, request_id))))
    }

    pub fn get(&self, ticket: &str) -> Result<Option<Job>, Error> {
        self.with_store(|s| s.get(ticket))
    }

    pub fn list(&self) -> Result<Vec<Job>, Error> {
        self.with_store(|s| s.list())
    }

    /// A job's stored results, checked against their checksum.
    pub fn results(&self, ticket: &str) -> Result<RecordBatch, Error> {
        let sha = self.with_store(|s| s.result_sha256(ticket))?;
        store::read_results(&self.dir, ticket, sha.as_deref()).map_err(|e| match e {
            store::ReadError::Gone(e) => {
                Error::new(Reason::JobNotFound, format!("The results of job {ticket} are gone: {e}"))
            }
            store::ReadError::Corrupt(e) => Error::new(
                Reason::JobResultsCorrupt,
                format!("The stored results of job {ticket} are damaged ({e}); run the query again."),
            ),
        })
    }

    /// Notes that the caller asked about the job, so it is not canceled as an orphan.
    pub fn touch(&self, ticket: &str) {
        let now = self.clock.now_ms();
        let _ = self.with_store(|s| s.touch(ticket, now));
    }

    /// Cancels pending jobs nobody asked about for `jobs.orphan_seconds`; returns how many.
    pub fn cancel_orphans(&self) -> usize {
        if self.cfg.orphan_seconds == 0 {
            return 0;
        }
        let cutoff = self.clock.now_ms().saturating_sub((self.cfg.orphan_seconds as i64).saturating_mul(1000));
        let tickets = self.with_store(|s| s.orphans(cutoff)).unwrap_or_default();
        let e = Error::new(
            Reason::JobOrphaned,
            format!(
                "The job was canceled: nobody asked for its status or results within {} seconds (jobs.orphan_seconds). Run the query again.",
                self.cfg.orphan_seconds
            ),
        );
        for t in &tickets {
            self.stop(t, &e);
        }
        tickets.len()
    }

    /// Ends a pending job with `e` and stops its query.
    fn stop(&self, ticket: &str, e: &Error) {
        // Taken before `fail`, which forgets the running query.
        let token = self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(ticket);
        let _ = self.fail(ticket, e, "");
        if let Some(token) = token {
            token.cancel();
        }
    }

    /// Periodic upkeep: orphans canceled; expired jobs deleted once an hour.
    pub fn sweep(&self) {
        let orphans = self.cancel_orphans();
        let now = self.clock.now_ms();
        let last = self.last_expiry.load(std::sync::atomic::Ordering::Relaxed);
        let expired = if now - last >= EXPIRY_EVERY_MS {
            self.last_expiry.store(now, std::sync::atomic::Ordering::Relaxed);
            self.expire()
        } else {
            0
        };
        if orphans + expired > 0 {
            tracing::info!("{orphans} orphaned job(s) canceled, {expired} expired job(s) deleted");
        }
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

    /// Cancels every running job (shutdown); like jobs cut off by a crash, they become
    /// `failure` with reason `JOB_INTERRUPTED` (503).
    pub fn cancel_all(&self) -> usize {
        let running: Vec<String> = self.running.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        for ticket in &running {
            self.stop(ticket, &interrupted());
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
