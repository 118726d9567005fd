//! The `jobs` table and the queue on it (`db::queue`, `db::models::job`, the runner's claims),
//! driven with `Runner::run_pending` by runners of their own pools, as instances would be:
//! claims, leases and checkpoints here; retries and one job per key in `models_jobs_queue.rs`.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use wechat_identity::config::JobsConfig;
use wechat_identity::db::models::job::{JobChange, JobRow, JobStatus};
use wechat_identity::db::models::now;
use wechat_identity::db::queue::{self, JobSpec};
use wechat_identity::db::{Conn, Db, DbError, transaction};
use wechat_identity::jobs::{self, Job, JobContext, JobError, JobOutcome, Runner};
use wechat_identity::types::JobId;

use crate::common::steps::{StepLog, StepsJob};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    each_job_is_claimed_by_one_runner_and_a_leased_one_by_no_other,
    an_expired_lease_is_claimed_by_another_runner,
    a_checkpoint_survives_a_claim_by_another_runner,
);

/// Runs of a test's handlers: (runner, job id, attempt).
pub type Runs = Arc<Mutex<Vec<(&'static str, JobId, u32)>>>;

/// A runner on a pool of its own (another instance), running `job`.
pub async fn runner(ctx: &Ctx, instance: &str, job: impl Job) -> Runner {
    let db = Db::connect(&ctx.url, 2).await.expect("a second pool");
    let config = JobsConfig {
        lease_secs: 60,
        max_attempts: 3,
        retry_backoff_ms: 100,
        instance_id: Some(instance.to_owned()),
        ..JobsConfig::default()
    };
    Runner::new(db, &config).register(job)
}

pub async fn row(ctx: &Ctx, id: &JobId) -> JobRow {
    jobs::find(&ctx.db, id).await.unwrap().expect("the job")
}

/// Every job that waits for a later time is due now (time passes).
pub async fn time_passes(ctx: &Ctx) {
    use diesel_async::SimpleAsyncConnection as _;
    let mut conn = ctx.conn().await;
    let sql = "UPDATE jobs SET run_at = created_at WHERE status = 'queued'";
    wechat_identity::with_conn!(&mut conn, c => c.batch_execute(sql).await).unwrap();
}

// --- claims -------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Task {
    n: u32,
}

impl JobSpec for Task {
    const KIND: &'static str = "task";
}

/// Records each run; with a gate, holds the job until the gate opens.
struct Record {
    instance: &'static str,
    runs: Runs,
    gate: Option<(Arc<Notify>, Arc<Notify>)>,
}

impl Job for Record {
    type Spec = Task;

    async fn run(&self, _: Task, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let run = (self.instance, ctx.id().to_owned(), ctx.attempt());
        self.runs.lock().unwrap().push(run);
        if let Some((started, open)) = &self.gate {
            started.notify_one();
            open.notified().await;
        }
        Ok(JobOutcome::Done)
    }
}

async fn each_job_is_claimed_by_one_runner_and_a_leased_one_by_no_other(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let runs: Runs = Arc::default();
    let record = |instance| Record {
        instance,
        runs: runs.clone(),
        gate: None,
    };
    // Two runners claim from one queue at once: every job runs once.
    let mut queued = Vec::new();
    for n in 0..20 {
        queued.push(queue::enqueue(&ctx.db, &Task { n }).await.unwrap().id);
    }
    let (a, b) = (
        runner(&ctx, "a", record("a")).await,
        runner(&ctx, "b", record("b")).await,
    );
    let (ran_a, ran_b) = tokio::join!(a.run_pending(), b.run_pending());
    assert_eq!(ran_a.unwrap() + ran_b.unwrap(), 20);
    let mut ran: Vec<JobId> = runs.lock().unwrap().iter().map(|r| r.1.clone()).collect();
    ran.sort();
    queued.sort();
    assert_eq!(ran, queued, "a job ran twice, or not at all");
    for id in &queued {
        let done = row(&ctx, id).await;
        assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
    }

    // A job leased to a runner (its handler still running) is not claimed by another.
    let (started, open) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let holder = Record {
        instance: "a",
        runs: runs.clone(),
        gate: Some((started.clone(), open.clone())),
    };
    let a = runner(&ctx, "a", holder).await;
    let held = queue::enqueue(&ctx.db, &Task { n: 99 }).await.unwrap();
    let a = tokio::spawn(async move { a.run_pending().await });
    started.notified().await;
    assert_eq!(b.run_pending().await.unwrap(), 0, "claimed a leased job");
    let leased = row(&ctx, &held.id).await;
    assert_eq!(leased.status, JobStatus::Running);
    assert!(
        leased.lease_owner.as_deref().unwrap().starts_with("a/"),
        "{leased:?}"
    );
    assert!(leased.lease_until.unwrap() > now());
    open.notify_one();
    assert_eq!(a.await.unwrap().unwrap(), 1);
    let done = row(&ctx, &held.id).await;
    assert_eq!(
        (done.status, done.attempts, done.lease_owner),
        (JobStatus::Completed, 1, None)
    );
    assert_eq!(runs.lock().unwrap().len(), 21);
}

// --- leases and checkpoints -----------------------------------------------------------------

/// Leases job `id` to `owner`, as a claim would, until `until`.
async fn lease(ctx: &Ctx, id: &JobId, owner: &str, until: chrono::NaiveDateTime) -> JobRow {
    let (id, owner) = (id.clone(), owner.to_owned());
    transaction(
        &ctx.db,
        async |conn: &mut Conn| -> Result<JobRow, DbError> {
            JobRow::take_lease(conn, &id, &owner, until, now()).await
        },
    )
    .await
    .unwrap()
}

async fn an_expired_lease_is_claimed_by_another_runner(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let runs: Runs = Arc::default();
    let b = runner(
        &ctx,
        "b",
        Record {
            instance: "b",
            runs: runs.clone(),
            gate: None,
        },
    )
    .await;
    let job = queue::enqueue(&ctx.db, &Task { n: 1 }).await.unwrap();
    // A runner that died holds it: while its lease lasts, nobody else runs it.
    let minute = chrono::Duration::seconds(60);
    let leased = lease(&ctx, &job.id, "dead/1", now() + minute).await;
    assert_eq!(leased.attempts, 1);
    assert_eq!(b.run_pending().await.unwrap(), 0, "claimed a live lease");
    // Its lease runs out (it renewed it for the last time a minute ago).
    let mut conn = ctx.conn().await;
    let renewed = JobRow::renew(&mut conn, &job.id, "dead/1", now() - minute, now()).await;
    assert!(renewed.unwrap());
    drop(conn);
    assert_eq!(b.run_pending().await.unwrap(), 1);
    assert_eq!(*runs.lock().unwrap(), [("b", job.id.clone(), 2)]);
    let done = row(&ctx, &job.id).await;
    assert_eq!(
        (done.status, done.attempts, done.lease_owner.as_deref()),
        (JobStatus::Completed, 2, None),
        "the dead run counts as an attempt"
    );
    // The dead runner's late writes change nothing.
    let mut conn = ctx.conn().await;
    let late = JobRow::save_checkpoint(&mut conn, &job.id, "dead/1", "9", now(), now());
    assert!(!late.await.unwrap());
    let change = JobChange {
        status: JobStatus::Failed,
        ..JobChange::released(&done, now())
    };
    assert!(
        !JobRow::settle(&mut conn, &job.id, "dead/1", &change)
            .await
            .unwrap()
    );
    assert_eq!(row(&ctx, &job.id).await.status, JobStatus::Completed);
}

async fn a_checkpoint_survives_a_claim_by_another_runner(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let log = StepLog::default();
    let five = StepsJob {
        steps: 5,
        subject: None,
    };
    let job = queue::enqueue(&ctx.db, &five).await.unwrap();
    let a = runner(&ctx, "a", log.handler("a", Some(3))).await;
    let a = tokio::spawn(async move { a.run_pending().await });
    log.hanging().await;
    // Runner a dies after step 3, its checkpoint saved; its lease runs out.
    a.abort();
    assert!(a.await.unwrap_err().is_cancelled());
    let held = row(&ctx, &job.id).await;
    assert_eq!(held.checkpoint.as_deref(), Some("3"));
    let owner = held.lease_owner.clone().unwrap();
    let mut conn = ctx.conn().await;
    let past = now() - chrono::Duration::seconds(1);
    assert!(
        JobRow::renew(&mut conn, &job.id, &owner, past, now())
            .await
            .unwrap()
    );
    drop(conn);

    let b = runner(&ctx, "b", log.handler("b", None)).await;
    assert_eq!(b.run_pending().await.unwrap(), 1);
    assert_eq!(log.resumed_from(), [None, Some(3)]);
    assert_eq!(
        log.done(),
        [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("b", 5)],
        "steps before the checkpoint were done again"
    );
    let finished = row(&ctx, &job.id).await;
    assert_eq!(finished.status, JobStatus::Completed);
    assert_eq!(finished.checkpoint.as_deref(), Some("5"));
    assert_eq!(finished.attempts, 2);
}
