//! Runs translated plans on a Ballista cluster: submits each logical plan to the scheduler,
//! streams the Arrow batches back from the executors over Arrow Flight, and cancels the
//! Ballista job when the caller cancels (a client that went away, an orphaned job), when the
//! result grows past the group limit, or when the cluster does not answer within the timeout.

use super::translate::{self, Frames};
use super::{Probe, RemoteGroups, Settings};
use crate::engine::EngineError;
use crate::engine::plan::{CancelToken, QueryPlan};
use arrow::array::RecordBatch;
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::extension::SessionStateExt;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelJobParams, GetJobStatusParams, job_status};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion_proto::protobuf::LogicalPlanNode;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::Channel;

/// A connection to one Ballista scheduler, with its own small runtime so that callers on the
/// blocking pool (and tests) can run queries synchronously.
pub struct Client {
    settings: Settings,
    /// `http://host:port`, what the gRPC client dials.
    url: String,
    /// One Ballista session for every query: its function registry is built once, and the
    /// executors keep one session runtime for the gateway instead of one per query.
    ctx: SessionContext,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn unavailable(s: &Settings, what: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable(format!("The distributed engine at {} {what}.", s.scheduler))
}

impl Client {
    /// A client for `settings` (no connection is made until a query or probe).
    pub fn new(settings: Settings) -> Result<Client, String> {
        let url = format!("http://{}:{}", settings.host, settings.port);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("quiver-cluster")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the distributed client: {e}"))?;
        let ctx = session(&url).map_err(|e| format!("cannot start the distributed client: {e}"))?;
        Ok(Client { settings, url, ctx, runtime: Some(runtime) })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives as long as the client")
    }

    /// Runs the aggregation of `plan` remotely; the rest of the query stays with the caller.
    pub fn execute(&self, plan: &QueryPlan, cancel: &CancelToken) -> Result<RemoteGroups, EngineError> {
        if plan.files.is_empty() || plan.intervals.is_empty() {
            // Nothing to read: no rows, whatever the cluster's state.
            return Ok(RemoteGroups { main: vec![], nested: vec![], jobs: vec![] });
        }
        let deadline = Instant::now() + self.settings.timeout;
        self.rt().block_on(async {
            let ctx = &self.ctx;
            let frames = tokio::time::timeout_at(deadline, translate::frames(ctx, plan))
                .await
                .map_err(|_| unavailable(&self.settings, "did not plan the query in time"))?
                .map_err(planning)?;
            let Frames { main, nested } = frames;
            let mut jobs = Vec::new();
            let main = self.collect(ctx, main, cancel, deadline, plan.limits.max_groups, &mut jobs).await?;
            let mut nested_out = Vec::new();
            for (name, df) in nested {
                nested_out
                    .push((name, self.collect(ctx, df, cancel, deadline, plan.limits.max_groups, &mut jobs).await?));
            }
            Ok(RemoteGroups { main, nested: nested_out, jobs })
        })
    }

    /// The logical plans `plan` would run, as DataFusion prints them (for `format=debug`).
    pub fn explain(&self, plan: &QueryPlan) -> Result<Vec<String>, EngineError> {
        self.rt().block_on(async {
            let frames = translate::frames(&self.ctx, plan).await.map_err(planning)?;
            let mut out = vec![frames.main.logical_plan().display_indent().to_string()];
            out.extend(frames.nested.iter().map(|(n, df)| format!("{n}:\n{}", df.logical_plan().display_indent())));
            Ok(out)
        })
    }

    async fn collect(
        &self,
        ctx: &SessionContext,
        df: DataFrame,
        cancel: &CancelToken,
        deadline: Instant,
        max_rows: usize,
        jobs: &mut Vec<String>,
    ) -> Result<Vec<RecordBatch>, EngineError> {
        let physical = df.create_physical_plan().await.map_err(planning)?;
        let mut stream = physical.execute(0, ctx.task_ctx()).map_err(|e| self.failed(e))?;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut batches, mut rows) = (Vec::new(), 0usize);
        let outcome = loop {
            tokio::select! {
                next = stream.next() => match next {
                    None => break Ok(()),
                    Some(Ok(b)) => {
                        rows += b.num_rows();
                        if rows > max_rows {
                            break Err(EngineError::TooManyGroups(max_rows));
                        }
                        batches.push(b);
                    }
                    Some(Err(e)) => break Err(self.failed(e)),
                },
                _ = tick.tick() => if cancel.is_canceled() {
                    break Err(EngineError::Canceled);
                },
                _ = tokio::time::sleep_until(deadline) => {
                    break Err(unavailable(
                        &self.settings,
                        format_args!("did not answer within {} s", self.settings.timeout.as_secs_f64()),
                    ));
                }
            }
        };
        if outcome.is_err() && job_of(&physical).is_none() {
            // Stopped while the scheduler was accepting the job: let the submission finish
            // (at most 2 s) so the job has a name to cancel rather than running unwatched.
            let until = Instant::now() + Duration::from_secs(2);
            while job_of(&physical).is_none() && Instant::now() < until {
                tokio::select! {
                    next = stream.next() => if next.is_none() { break },
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        }
        drop(stream);
        let job = job_of(&physical).map(|j| j.to_string());
        if let Some(j) = &job {
            jobs.push(j.clone());
        }
        if let (Err(e), Some(j)) = (&outcome, &job) {
            tracing::info!(job = %j, error = %e, "canceling the Ballista job");
            self.cancel_job(j);
        }
        outcome.map(|_| batches)
    }

    /// A failure reported while the job ran: the cluster is unreachable or lost an executor.
    /// The detail (which may name files) goes to the log, not to the caller.
    fn failed(&self, e: DataFusionError) -> EngineError {
        tracing::warn!(error = %e, scheduler = %self.settings.scheduler, "distributed query failed");
        let text = e.to_string();
        let what = if text.contains("onnect") || text.contains("transport") || text.contains("Unavailable") {
            "cannot be reached"
        } else {
            "failed to run the query (the gateway log has the detail)"
        };
        unavailable(&self.settings, what)
    }

    /// Asks the scheduler to cancel `job`, in the background: a job still being planned
    /// (queued) only has its state failed and would then run anyway, so the cancel is repeated
    /// every 100 ms while the job is queued or running, for at most 10 s.
    fn cancel_job(&self, job: &str) {
        let (url, job) = (self.url.clone(), job.to_string());
        tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(10);
            let (mut client, mut canceled) = (None, false);
            while Instant::now() < until {
                match tokio::time::timeout(Duration::from_secs(2), cancel_once(&mut client, &url, &job)).await {
                    Ok(Ok(true)) => {
                        if !canceled {
                            tracing::info!(job, "Ballista job canceled");
                        }
                        canceled = true;
                    }
                    Ok(Ok(false)) => return,
                    Ok(Err(e)) => {
                        tracing::warn!(job, error = %e, "cannot cancel the Ballista job");
                        client = None;
                    }
                    Err(_) => tracing::warn!(job, "canceling the Ballista job timed out"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    /// Whether the scheduler answers, and how many executors it has registered, from its REST
    /// API (`/api/executors`), within `probe_timeout`.
    pub fn probe(&self) -> Probe {
        let (host, port, timeout) = (self.settings.host.clone(), self.settings.port, self.settings.probe_timeout);
        self.rt().block_on(async move {
            match tokio::time::timeout(timeout, super::probe::executors(&host, port)).await {
                Ok(Ok(n)) => Probe { reachable: true, executors: n, error: None },
                Ok(Err(e)) => Probe { reachable: false, executors: 0, error: Some(e) },
                Err(_) => Probe { reachable: false, executors: 0, error: Some("no answer in time".into()) },
            }
        })
    }
}

/// A Ballista session on the scheduler at `url`, with pull tracking: the scheduler names a
/// job when it accepts it, so the job can be canceled at any time (push tracking names it
/// with the first status update, which may come only when the job ends). It polls the job's
/// status every 50 ms.
fn session(url: &str) -> datafusion::error::Result<SessionContext> {
    let mut state = SessionState::new_ballista_state(url.to_string())?;
    state.config_mut().options_mut().set(ballista_core::config::BALLISTA_CLIENT_PULL, "true")?;
    Ok(SessionContext::new_with_state(state))
}

/// Cancels `job` if it is still queued or running; `false` when it has ended.
async fn cancel_once(client: &mut Option<SchedulerGrpcClient<Channel>>, url: &str, job: &str) -> Result<bool, String> {
    let c = match client {
        Some(c) => c,
        None => client.insert(SchedulerGrpcClient::connect(url.to_string()).await.map_err(|e| e.to_string())?),
    };
    let status = c
        .get_job_status(GetJobStatusParams { job_id: job.to_string() })
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .status
        .and_then(|s| s.status);
    if matches!(status, Some(job_status::Status::Failed(_)) | Some(job_status::Status::Successful(_))) {
        return Ok(false);
    }
    c.cancel_job(CancelJobParams { job_id: job.to_string() }).await.map_err(|e| e.to_string())?;
    Ok(true)
}

/// The Ballista job of the plan (its `DistributedQueryExec`, wherever the session's physical
/// optimizer put it), once the scheduler has named it.
fn job_of(p: &Arc<dyn ExecutionPlan>) -> Option<ballista_core::JobId> {
    if let Some(d) = p.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>() {
        return d.job_id();
    }
    p.children().into_iter().find_map(job_of)
}

/// A plan that cannot be built is the gateway's problem, not the cluster's.
fn planning(e: DataFusionError) -> EngineError {
    match e {
        DataFusionError::NotImplemented(m) => {
            EngineError::Unsupported(format!("The distributed engine cannot run {m}."))
        }
        other => EngineError::Unsupported(format!("The distributed plan could not be built: {other}")),
    }
}
