//! Background jobs, leased through the database, so that with several instances on one
//! PostgreSQL exactly one runs a given job at a time, and a job survives a crash.
//!
//! - A kind of job is a [`JobSpec`]: its payload type, which names its kind and its key. A job is
//!   a row of `jobs` ([`JobRow`]): the kind (which [`Job`] handler runs it), a unique key, the
//!   payload as JSON and a JSON checkpoint. One-off jobs are [`enqueue`]d (one per key);
//!   periodic jobs (key = kind) are re-armed after every run. The handler of a kind is given
//!   the payload as the spec's type ([`Job::Spec`]), so the compiler checks both ends.
//! - A [`Runner`] claims the oldest due job in one transaction (on PostgreSQL with
//!   `FOR UPDATE SKIP LOCKED`, see [`JobRow::next_due`]) and leases it: `lease_owner` is a token
//!   of this claim, `lease_until` lies `jobs.lease_secs` ahead. While the handler runs the lease
//!   is renewed every third of that, and whenever the handler saves a checkpoint; every write
//!   is fenced by the token, so a runner that lost its lease stops and changes nothing.
//! - If an instance dies mid-job its lease runs out, and another runner (or the restarted one)
//!   claims the job again: its handler reads the last checkpoint and carries on from there.
//! - A failed run is retried after `jobs.retry_backoff_ms` (doubling), up to
//!   `jobs.max_attempts` runs; then a one-off job is `failed` with `last_error`, and a periodic
//!   one waits for its next period.
//!
//! Why not a crate: apalis, fang, graphile_worker and sqlxmq each bring their own database
//! driver (sqlx or tokio-postgres) next to diesel, and none runs on both of our backends; the
//! lease + `SKIP LOCKED` pattern on our own table is a few hundred lines.
//!
//! Handlers must keep secrets out of their error messages: those are logged and stored in
//! `last_error`. Payloads and checkpoints are never logged.

mod bulk_messages;
mod context;
mod event_delivery;
mod follower_sync;
mod purge;
mod run;
mod runner;
mod webhook;

use std::future::Future;
use std::time::Duration;

use chrono::NaiveDateTime;

pub use crate::db::models::job::{JobRow, JobStatus};
use crate::db::models::now;
pub use crate::db::queue::{JobSpec, enqueue, enqueue_in};
use crate::db::{Db, DbError, Race, Retryable};
use crate::types::JobId;
pub use bulk_messages::BulkMessages;
pub use context::JobContext;
pub use event_delivery::{EventDelivery, EventDeliveryPayload};
pub use follower_sync::FollowerSync;
pub use purge::{PurgeExpired, PurgePayload};
pub use runner::Runner;
pub use webhook::WebhookEvents;

/// A job handler: runs the jobs of one kind, [`Job::Spec`]'s.
///
/// ```text
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Steps { total: u32 }
/// impl JobSpec for Steps { const KIND: &'static str = "steps"; }
///
/// struct RunSteps;
/// impl Job for RunSteps {
///     type Spec = Steps;
///     async fn run(&self, job: Steps, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
///         let from: u32 = ctx.checkpoint()?.unwrap_or(0);
///         for step in from + 1..=job.total {
///             // ... do step ...
///             ctx.save_checkpoint(&step).await?;
///         }
///         Ok(JobOutcome::Done)
///     }
/// }
/// // Elsewhere: `enqueue(&db, &Steps { total: 3 })`, and `Runner::register(RunSteps)`.
/// ```
pub trait Job: Send + Sync + 'static {
    /// The jobs it runs: their kind, key and payload. A payload that does not parse as this
    /// fails the job (another run would not do better).
    type Spec: JobSpec;

    /// Runs the job `job`, from its checkpoint if it has one (a run that died or gave up saved
    /// it).
    fn run(
        &self,
        job: Self::Spec,
        ctx: &mut JobContext,
    ) -> impl Future<Output = Result<JobOutcome, JobError>> + Send;
}

/// How a run ended well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished: a one-off job is completed, a periodic one is queued for its next period.
    Done,
    /// Not finished: run it again at this time (UTC), from its checkpoint (e.g. WeChat asked
    /// us to slow down). Not a failure: attempts start over.
    Reschedule(NaiveDateTime),
}

impl JobOutcome {
    /// [`JobOutcome::Reschedule`] `after` from now.
    pub fn reschedule_in(after: Duration) -> Self {
        JobOutcome::Reschedule(now() + chrono::Duration::from_std(after).unwrap_or_default())
    }
}

/// How a run ended badly. The message is logged and stored: no secrets in it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another run, after a backoff (until `jobs.max_attempts`).
    #[error("{0}")]
    Retry(String),
    /// Another run would fail the same way (e.g. a bad payload): the job fails now.
    #[error("{0}")]
    Fatal(String),
    /// This runner no longer holds the job (it was paused, or taken over after this runner
    /// stalled past its lease): stop; nothing is written.
    #[error("the job's lease was lost")]
    LeaseLost,
    /// The database failed (retried like [`JobError::Retry`]).
    #[error(transparent)]
    Db(#[from] DbError),
}

impl JobError {
    /// A [`JobError::Retry`] with `error`'s message.
    pub fn retry(error: impl std::fmt::Display) -> Self {
        JobError::Retry(error.to_string())
    }

    /// A [`JobError::Fatal`] with `error`'s message.
    pub fn fatal(error: impl std::fmt::Display) -> Self {
        JobError::Fatal(error.to_string())
    }
}

impl Retryable for JobError {
    fn race(&self) -> Option<Race> {
        match self {
            JobError::Db(e) => e.race(),
            _ => None,
        }
    }
}

/// The job with this id (for its status, attempts and last error).
pub async fn find(db: &Db, id: &JobId) -> Result<Option<JobRow>, DbError> {
    let mut conn = db.conn().await?;
    JobRow::find(&mut conn, id).await
}

/// Pauses a queued or running job (a runner running it stops at its next lease renewal or
/// checkpoint, and its work so far is kept); false if it was neither.
pub async fn pause(db: &Db, id: &JobId) -> Result<bool, DbError> {
    let mut conn = db.conn().await?;
    JobRow::pause(&mut conn, id, now()).await
}

/// Queues a paused job again, to carry on from its checkpoint; false if it was not paused.
pub async fn resume(db: &Db, id: &JobId) -> Result<bool, DbError> {
    let mut conn = db.conn().await?;
    JobRow::resume(&mut conn, id, now()).await
}
