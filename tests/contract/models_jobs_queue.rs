//! The `jobs` table and the queue on it, continued (see `models_jobs.rs`): failed runs retried
//! with a doubling backoff until the job fails, and one job per key while it is pending.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wechat_identity::db::models::job::{JobRow, JobStatus};
use wechat_identity::db::queue::{self, JobSpec};
use wechat_identity::db::{Conn, DbError, transaction};
use wechat_identity::jobs::{self, Job, JobContext, JobError, JobOutcome};
use wechat_identity::types::JobId;

use crate::common::*;
use crate::models_jobs::{Runs, row, runner, time_passes};
use crate::on_both_backends;

on_both_backends!(
    failed_runs_are_retried_with_a_doubling_backoff_then_the_job_fails,
    one_job_per_key_while_it_is_pending,
);

// --- retries ----------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Flaky {
    fail_times: u32,
    fatal: bool,
}

impl JobSpec for Flaky {
    const KIND: &'static str = "flaky";
}

/// Fails the first `fail_times` runs (fatally if `fatal`), then succeeds.
struct RunFlaky {
    runs: Runs,
}

impl Job for RunFlaky {
    type Spec = Flaky;

    async fn run(&self, job: Flaky, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let attempt = ctx.attempt();
        self.runs
            .lock()
            .unwrap()
            .push(("a", ctx.id().to_owned(), attempt));
        if attempt > job.fail_times {
            return Ok(JobOutcome::Done);
        }
        let message = format!("attempt {attempt} failed");
        Err(if job.fatal {
            JobError::Fatal(message)
        } else {
            JobError::Retry(message)
        })
    }
}

async fn failed_runs_are_retried_with_a_doubling_backoff_then_the_job_fails(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let runs: Runs = Arc::default();
    let a = runner(&ctx, "a", RunFlaky { runs: runs.clone() }).await;
    let enqueue = async |fail_times, fatal| {
        let job = Flaky { fail_times, fatal };
        queue::enqueue(&ctx.db, &job).await.unwrap().id
    };
    let hopeless = enqueue(99, false).await;
    let flaky = enqueue(1, false).await;
    let fatal = enqueue(99, true).await;

    // First runs: the retried ones wait 100 ms, the fatal one fails at once.
    assert_eq!(a.run_pending().await.unwrap(), 3);
    assert_eq!(a.run_pending().await.unwrap(), 0, "ran before its backoff");
    let waiting = row(&ctx, &hopeless).await;
    assert_eq!((waiting.status, waiting.attempts), (JobStatus::Queued, 1));
    assert_eq!(waiting.last_error.as_deref(), Some("attempt 1 failed"));
    assert_eq!(waiting.lease_owner, None);
    let backoff = |r: &JobRow| (r.run_at - r.updated_at).num_milliseconds();
    assert_eq!(backoff(&waiting), 100);
    let failed = row(&ctx, &fatal).await;
    assert_eq!(
        (failed.status, failed.attempts),
        (JobStatus::Failed, 1),
        "a fatal error is not retried"
    );
    assert!(failed.finished_at.is_some());

    // Second runs, after the backoff: the flaky one completes, the hopeless one waits 200 ms.
    time_passes(&ctx).await;
    assert_eq!(a.run_pending().await.unwrap(), 2);
    let completed = row(&ctx, &flaky).await;
    assert_eq!(
        (completed.status, completed.attempts),
        (JobStatus::Completed, 2)
    );
    assert_eq!(completed.last_error.as_deref(), Some("attempt 1 failed"));
    let waiting = row(&ctx, &hopeless).await;
    assert_eq!((waiting.attempts, backoff(&waiting)), (2, 200));

    // Third run: max_attempts reached, it fails for good.
    time_passes(&ctx).await;
    assert_eq!(a.run_pending().await.unwrap(), 1);
    let gave_up = row(&ctx, &hopeless).await;
    assert_eq!((gave_up.status, gave_up.attempts), (JobStatus::Failed, 3));
    assert_eq!(gave_up.last_error.as_deref(), Some("attempt 3 failed"));
    assert!(gave_up.finished_at.is_some() && gave_up.lease_owner.is_none());
    time_passes(&ctx).await;
    assert_eq!(a.run_pending().await.unwrap(), 0, "a failed job ran again");
    let attempts = |id: &JobId| -> Vec<u32> {
        let runs = runs.lock().unwrap();
        runs.iter().filter(|r| &r.1 == id).map(|r| r.2).collect()
    };
    assert_eq!(attempts(&hopeless), [1, 2, 3]);
    assert_eq!(attempts(&flaky), [1, 2]);
    assert_eq!(attempts(&fatal), [1]);
}

// --- keys ---------------------------------------------------------------------------------------

/// One per subject.
#[derive(Serialize, Deserialize)]
struct PerSubject {
    subject: Option<String>,
    n: u32,
}

impl JobSpec for PerSubject {
    const KIND: &'static str = "per_subject";

    fn dedup_key(&self) -> Option<String> {
        self.subject.clone()
    }
}

/// A kind no runner here runs.
#[derive(Serialize, Deserialize)]
struct Orphan {}

impl JobSpec for Orphan {
    const KIND: &'static str = "nobody_runs_this";
}

struct Count {
    runs: Runs,
}

impl Job for Count {
    type Spec = PerSubject;

    async fn run(&self, _: PerSubject, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let run = ("a", ctx.id().to_owned(), ctx.attempt());
        self.runs.lock().unwrap().push(run);
        Ok(JobOutcome::Done)
    }
}

async fn one_job_per_key_while_it_is_pending(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let db = &ctx.db;
    let job = |subject: Option<&str>, n| PerSubject {
        subject: subject.map(str::to_owned),
        n,
    };
    let first = queue::enqueue(db, &job(Some("app1"), 1)).await.unwrap();
    assert_eq!(first.key, "per_subject:app1");
    let second = queue::enqueue(db, &job(Some("app1"), 2)).await.unwrap();
    assert_eq!(second.id, first.id, "a second start returns the queued job");
    let kept = queue::spec::<PerSubject>(&second).unwrap().unwrap();
    assert_eq!(kept.n, 1, "the queued job's payload is kept");
    // Inside a transaction too.
    let third = transaction(db, async |conn: &mut Conn| -> Result<JobRow, DbError> {
        queue::enqueue_in(conn, &job(Some("app1"), 3)).await
    })
    .await
    .unwrap();
    assert_eq!(third.id, first.id);
    // Two first starts at once: one job (the loser's insert hits jobs_key_key and retries).
    let app2 = job(Some("app2"), 1);
    let (x, y) = tokio::join!(queue::enqueue(db, &app2), queue::enqueue(db, &app2));
    assert_eq!(x.unwrap().id, y.unwrap().id);
    // Without a key, every enqueue is a job of its own.
    let p = queue::enqueue(db, &job(None, 1)).await.unwrap();
    let q = queue::enqueue(db, &job(None, 1)).await.unwrap();
    assert_ne!(p.id, q.id);
    assert_eq!(p.key, p.id.as_str());
    let orphan = queue::enqueue(db, &Orphan {}).await.unwrap();
    assert_eq!(
        ctx.count("jobs").await,
        5,
        "app1, app2, two without a key, the orphan"
    );
    // A paused job is still pending: starting its key again returns it, and it does not run.
    let paused = queue::enqueue(db, &job(Some("app3"), 1)).await.unwrap();
    assert!(jobs::pause(db, &paused.id).await.unwrap());
    let again = queue::enqueue(db, &job(Some("app3"), 2)).await.unwrap();
    assert_eq!(again.id, paused.id);

    let runs: Runs = Arc::default();
    let a = runner(&ctx, "a", Count { runs: runs.clone() }).await;
    assert_eq!(a.run_pending().await.unwrap(), 4);
    let ran: Vec<JobId> = runs.lock().unwrap().iter().map(|r| r.1.clone()).collect();
    assert!(!ran.contains(&paused.id), "the paused job ran");
    let orphan = row(&ctx, &orphan.id).await;
    assert_eq!(
        (orphan.status, orphan.attempts),
        (JobStatus::Queued, 0),
        "claimed a kind it has no handler for"
    );
    assert!(jobs::resume(db, &paused.id).await.unwrap());
    assert!(
        !jobs::resume(db, &paused.id).await.unwrap(),
        "not paused any more"
    );
    assert_eq!(a.run_pending().await.unwrap(), 1);

    // Once the job of a key finished, starting again makes a new job, replacing it.
    let renewed = queue::enqueue(db, &job(Some("app1"), 4)).await.unwrap();
    assert_ne!(renewed.id, first.id);
    assert!(jobs::find(db, &first.id).await.unwrap().is_none());
    assert_eq!(a.run_pending().await.unwrap(), 1);
    assert_eq!(runs.lock().unwrap().len(), 6);
}
