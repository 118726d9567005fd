//! One run of a claimed job: its handler, with the lease renewed beside it, then the write of
//! how it ended (fenced by the claim token, like every write of a runner).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Job, JobContext, JobError, JobOutcome, JobStatus, Runner};
use crate::db::models::job::{JobChange, JobRow};
use crate::db::models::now;
use crate::db::{Conn, DbError, transaction};
use crate::types::JobId;

/// [`Job`] behind a pointer (its `run` returns an unnamed future, and takes its own spec).
pub(super) trait DynJob: Send + Sync {
    /// Parses the claimed job's payload as the handler's spec and runs it.
    fn run_boxed<'a>(
        &'a self,
        ctx: &'a mut JobContext,
    ) -> BoxFuture<'a, Result<JobOutcome, JobError>>;
}

impl<J: Job> DynJob for J {
    fn run_boxed<'a>(
        &'a self,
        ctx: &'a mut JobContext,
    ) -> BoxFuture<'a, Result<JobOutcome, JobError>> {
        Box::pin(async move {
            let job = ctx.payload::<J::Spec>()?;
            self.run(job, ctx).await
        })
    }
}

/// How a run ended, as written.
pub(super) enum Ended {
    /// A one-off job is done.
    Completed,
    /// A periodic job is done, and queued for this time.
    Rearmed(NaiveDateTime),
    /// The handler asked to run again at this time.
    Rescheduled(NaiveDateTime),
    /// It failed; runs again at this time.
    Retry(NaiveDateTime, String),
    /// A one-off job failed its last attempt.
    Failed(String),
    /// A periodic job failed its last attempt; it runs again next period, at this time.
    Skipped(NaiveDateTime, String),
}

/// Longest pause before a failed job runs again.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Longest `last_error` stored.
const MAX_ERROR_CHARS: usize = 1000;

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}

impl Runner {
    /// Runs a job this runner leased: the handler until it returns, or until the lease is
    /// lost; then writes how it ended. A handler that panics counts as a failed run.
    pub(super) async fn execute(self: Arc<Self>, row: JobRow) {
        let Some(handler) = self.handlers.get(row.kind.as_str()).cloned() else {
            return; // claims are for registered kinds only
        };
        let token = row.lease_owner.clone().unwrap_or_default();
        let (kind, id, attempt) = (row.kind.as_str(), row.id.as_str(), row.attempts);
        if handler.every.is_some() {
            // Periodic runs log at debug: a purge every minute would fill the log.
            tracing::debug!(kind, job = id, attempt, "periodic job started");
        } else {
            tracing::info!(kind, job = id, attempt, "job started");
        }
        let mut ctx = JobContext::new(self.db.clone(), row.clone(), token.clone(), self.lease);
        let result = {
            let run = AssertUnwindSafe(handler.job.run_boxed(&mut ctx)).catch_unwind();
            tokio::select! {
                ran = run => Some(ran.unwrap_or_else(|_| Err(JobError::retry("the job's handler panicked")))),
                () = self.heartbeat(&row.id, &token) => None,
            }
        };
        let checkpoint = ctx.into_checkpoint();
        self.finish(&row, &token, handler.every, result, checkpoint)
            .await;
    }

    /// Renews the lease every third of it; returns when it is lost (taken over, paused), or
    /// when renewals failed until it ran out.
    async fn heartbeat(&self, id: &JobId, token: &str) {
        let mut held_until = Instant::now() + self.lease;
        loop {
            tokio::time::sleep(self.lease / 3).await;
            let asked = Instant::now();
            let renewed = async {
                let mut conn = self.db.conn().await?;
                let until = now() + chrono(self.lease);
                JobRow::renew(&mut conn, id, token, until, now()).await
            };
            match renewed.await {
                Ok(true) => held_until = asked + self.lease,
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "renewing a job's lease failed");
                    if Instant::now() >= held_until {
                        return;
                    }
                }
            }
        }
    }

    /// Writes how a run ended (`None`: the lease was lost, nothing is written).
    async fn finish(
        &self,
        row: &JobRow,
        token: &str,
        every: Option<Duration>,
        result: Option<Result<JobOutcome, JobError>>,
        checkpoint: Option<String>,
    ) {
        let (kind, id) = (row.kind.as_str(), row.id.as_str());
        let at = now();
        let base = JobChange {
            checkpoint: checkpoint.clone(),
            ..JobChange::released(row, at)
        };
        let (change, ended) = match result {
            None | Some(Err(JobError::LeaseLost)) => {
                tracing::warn!(
                    kind,
                    job = id,
                    "job stopped: this runner lost its lease (the job was paused, or taken over after a stall)"
                );
                crate::metrics::job(kind, "lease_lost");
                return;
            }
            Some(Ok(JobOutcome::Done)) => match every {
                Some(every) => (
                    self.rearm(row, at, every, base.last_error),
                    Ended::Rearmed(at + chrono(every)),
                ),
                None => (
                    JobChange {
                        status: JobStatus::Completed,
                        finished_at: Some(at),
                        ..base
                    },
                    Ended::Completed,
                ),
            },
            Some(Ok(JobOutcome::Reschedule(run_at))) => (
                JobChange {
                    status: JobStatus::Queued,
                    run_at,
                    attempts: 0,
                    ..base
                },
                Ended::Rescheduled(run_at),
            ),
            Some(Err(e)) => {
                let fatal = matches!(e, JobError::Fatal(_));
                self.after_failure(row, every, e.to_string(), fatal, at, checkpoint)
            }
        };
        // One transaction: the end and a rerun asked for meanwhile are written together.
        let written = transaction(&self.db, async |conn: &mut Conn| -> Result<bool, DbError> {
            JobRow::settle(conn, &row.id, token, &change).await
        });
        match written.await {
            Ok(true) => self.log_end(row, &ended),
            Ok(false) => {
                tracing::warn!(
                    kind,
                    job = id,
                    "job ended, but this runner had lost its lease; its current holder carries on"
                );
                crate::metrics::job(kind, "lease_lost");
            }
            Err(e) => {
                tracing::warn!(kind, job = id, error = %e, "could not record how a job ended; it runs again when its lease runs out")
            }
        }
    }

    /// The write after a failed run: another run after a backoff, or (last attempt, or
    /// `fatal`) a one-off job fails and a periodic one waits for its next period.
    pub(super) fn after_failure(
        &self,
        row: &JobRow,
        every: Option<Duration>,
        error: String,
        fatal: bool,
        at: NaiveDateTime,
        checkpoint: Option<String>,
    ) -> (JobChange, Ended) {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let runs = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let base = JobChange {
            status: JobStatus::Queued,
            checkpoint,
            last_error: Some(error.clone()),
            ..JobChange::released(row, at)
        };
        if !fatal && runs < self.max_attempts {
            let factor = 1u32.checked_shl(runs.saturating_sub(1)).unwrap_or(u32::MAX);
            let run_at = at + chrono(self.backoff.saturating_mul(factor).min(MAX_BACKOFF));
            return (JobChange { run_at, ..base }, Ended::Retry(run_at, error));
        }
        match every {
            Some(every) => (
                self.rearm(row, at, every, Some(error.clone())),
                Ended::Skipped(at + chrono(every), error),
            ),
            None => (
                JobChange {
                    status: JobStatus::Failed,
                    finished_at: Some(at),
                    ..base
                },
                Ended::Failed(error),
            ),
        }
    }

    /// A periodic job queued for its next period, from scratch.
    fn rearm(
        &self,
        row: &JobRow,
        at: NaiveDateTime,
        every: Duration,
        last_error: Option<String>,
    ) -> JobChange {
        JobChange {
            status: JobStatus::Queued,
            run_at: at + chrono(every),
            checkpoint: None,
            attempts: 0,
            last_error,
            ..JobChange::released(row, at)
        }
    }

    /// Logs (and counts) how a run ended; never the payload.
    pub(super) fn log_end(&self, row: &JobRow, ended: &Ended) {
        let (kind, id, attempt) = (row.kind.as_str(), row.id.as_str(), row.attempts);
        let outcome = match ended {
            Ended::Completed => {
                tracing::info!(kind, job = id, attempt, "job completed");
                "completed"
            }
            Ended::Rearmed(next) => {
                tracing::debug!(kind, job = id, %next, "periodic job done");
                "rearmed"
            }
            Ended::Rescheduled(next) => {
                tracing::info!(kind, job = id, %next, "job rescheduled");
                "rescheduled"
            }
            Ended::Retry(next, error) => {
                tracing::warn!(kind, job = id, attempt, %next, error, "job failed; it runs again");
                "retry"
            }
            Ended::Failed(error) => {
                tracing::warn!(kind, job = id, attempt, error, "job failed for good");
                "failed"
            }
            Ended::Skipped(next, error) => {
                tracing::warn!(kind, job = id, attempt, %next, error, "periodic job failed its last attempt; it runs again next period");
                "skipped"
            }
        };
        crate::metrics::job(kind, outcome);
    }
}
