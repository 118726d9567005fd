//! The `jobs` table and the queue on it (`db::queue`, `db::models::job`, the runner's claims),
//! driven with `Runner::run_pending` by runners of their own pools, as instances would be:
//! claims, leases, checkpoints, retries and one job per key.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use wechat_identity::config::JobsConfig;
use wechat_identity::db::models::job::{JobChange, JobRow, JobStatus};
use wechat_identity::db::models::now;
use wechat_identity::db::queue::{self, JobSpec};
use wechat_identity::db::{Conn, Db, DbError, transaction};
use wechat_identity::jobs::{self, Job, JobContext, JobError, JobOutcome, Runner};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    each_job_is_claimed_by_one_runner_and_a_leased_one_by_no_other,
    an_expired_lease_is_claimed_by_another_runner,
    a_checkpoint_survives_a_claim_by_another_runner,
    failed_runs_are_retried_with_a_doubling_backoff_then_the_job_fails,
    one_job_per_key_while_it_is_pending,
);

/// Runs of a test's handlers: (runner, job id, attempt).
type Runs = Arc<Mutex<Vec<(&'static str, String, u32)>>>;

/// A runner on a pool of its own (another instance), running `job`.
async fn runner(ctx: &Ctx, instance: &str, job: impl Job) -> Runner {
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

async fn row(ctx: &Ctx, id: &str) -> JobRow {
    jobs::find(&ctx.db, id).await.unwrap().expect("the job")
}

/// Every job that waits for a later time is due now (time passes).
async fn time_passes(ctx: &Ctx) {
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
    let mut ran: Vec<String> = runs.lock().unwrap().iter().map(|r| r.1.clone()).collect();
    ran.sort();
    queued.sort();
    assert_eq!(ran, queued, "a job ran twice, or not at all");
    for id in &queued {
        let done = row(&ctx, id).await;
        assert_eq!(
            (done.status(), done.attempts),
            (Some(JobStatus::Completed), 1)
        );
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
    assert_eq!(leased.status(), Some(JobStatus::Running));
    assert!(
        leased.lease_owner.as_deref().unwrap().starts_with("a/"),
        "{leased:?}"
    );
    assert!(leased.lease_until.unwrap() > now());
    open.notify_one();
    assert_eq!(a.await.unwrap().unwrap(), 1);
    let done = row(&ctx, &held.id).await;
    assert_eq!(
        (done.status(), done.attempts, done.lease_owner),
        (Some(JobStatus::Completed), 1, None)
    );
    assert_eq!(runs.lock().unwrap().len(), 21);
}

// --- leases and checkpoints -----------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Steps {
    total: u32,
}

impl JobSpec for Steps {
    const KIND: &'static str = "steps";
}

/// Does steps 1..=total, checkpointing each; with `stall_after`, stops for good after that
/// step (its runner is then killed).
struct DoSteps {
    instance: &'static str,
    done: Arc<Mutex<Vec<(&'static str, u32)>>>,
    resumed_from: Arc<Mutex<Vec<Option<u32>>>>,
    stall_after: Option<(u32, Arc<Notify>)>,
}

impl Job for DoSteps {
    type Spec = Steps;

    async fn run(&self, job: Steps, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let from: Option<u32> = ctx.checkpoint()?;
        self.resumed_from.lock().unwrap().push(from);
        for step in from.unwrap_or(0) + 1..=job.total {
            self.done.lock().unwrap().push((self.instance, step));
            ctx.save_checkpoint(&step).await?;
            if let Some((after, stalled)) = &self.stall_after {
                if *after == step {
                    stalled.notify_one();
                    std::future::pending::<()>().await;
                }
            }
        }
        Ok(JobOutcome::Done)
    }
}

/// Leases job `id` to `owner`, as a claim would, until `until`.
async fn lease(ctx: &Ctx, id: &str, owner: &str, until: chrono::NaiveDateTime) -> JobRow {
    let (id, owner) = (id.to_owned(), owner.to_owned());
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
        (done.status(), done.attempts, done.lease_owner.as_deref()),
        (Some(JobStatus::Completed), 2, None),
        "the dead run counts as an attempt"
    );
    // The dead runner's late writes change nothing.
    let mut conn = ctx.conn().await;
    let late = JobRow::save_checkpoint(&mut conn, &job.id, "dead/1", "9", now(), now());
    assert!(!late.await.unwrap());
    let change = JobChange {
        status: JobStatus::Failed.as_str().to_owned(),
        ..JobChange::released(&done, now())
    };
    assert!(
        !JobRow::settle(&mut conn, &job.id, "dead/1", &change)
            .await
            .unwrap()
    );
    assert_eq!(
        row(&ctx, &job.id).await.status(),
        Some(JobStatus::Completed)
    );
}

async fn a_checkpoint_survives_a_claim_by_another_runner(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let done = Arc::new(Mutex::new(Vec::new()));
    let resumed_from = Arc::new(Mutex::new(Vec::new()));
    let stalled = Arc::new(Notify::new());
    let steps = |instance, stall_after| DoSteps {
        instance,
        done: done.clone(),
        resumed_from: resumed_from.clone(),
        stall_after,
    };
    let job = queue::enqueue(&ctx.db, &Steps { total: 5 }).await.unwrap();
    let a = runner(&ctx, "a", steps("a", Some((3, stalled.clone())))).await;
    let a = tokio::spawn(async move { a.run_pending().await });
    stalled.notified().await;
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

    let b = runner(&ctx, "b", steps("b", None)).await;
    assert_eq!(b.run_pending().await.unwrap(), 1);
    assert_eq!(*resumed_from.lock().unwrap(), [None, Some(3)]);
    assert_eq!(
        *done.lock().unwrap(),
        [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("b", 5)],
        "steps before the checkpoint were done again"
    );
    let finished = row(&ctx, &job.id).await;
    assert_eq!(finished.status(), Some(JobStatus::Completed));
    assert_eq!(finished.checkpoint.as_deref(), Some("5"));
    assert_eq!(finished.attempts, 2);
}

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
    assert_eq!(
        (waiting.status(), waiting.attempts),
        (Some(JobStatus::Queued), 1)
    );
    assert_eq!(waiting.last_error.as_deref(), Some("attempt 1 failed"));
    assert_eq!(waiting.lease_owner, None);
    let backoff = |r: &JobRow| (r.run_at - r.updated_at).num_milliseconds();
    assert_eq!(backoff(&waiting), 100);
    let failed = row(&ctx, &fatal).await;
    assert_eq!(
        (failed.status(), failed.attempts),
        (Some(JobStatus::Failed), 1),
        "a fatal error is not retried"
    );
    assert!(failed.finished_at.is_some());

    // Second runs, after the backoff: the flaky one completes, the hopeless one waits 200 ms.
    time_passes(&ctx).await;
    assert_eq!(a.run_pending().await.unwrap(), 2);
    let completed = row(&ctx, &flaky).await;
    assert_eq!(
        (completed.status(), completed.attempts),
        (Some(JobStatus::Completed), 2)
    );
    assert_eq!(completed.last_error.as_deref(), Some("attempt 1 failed"));
    let waiting = row(&ctx, &hopeless).await;
    assert_eq!((waiting.attempts, backoff(&waiting)), (2, 200));

    // Third run: max_attempts reached, it fails for good.
    time_passes(&ctx).await;
    assert_eq!(a.run_pending().await.unwrap(), 1);
    let gave_up = row(&ctx, &hopeless).await;
    assert_eq!(
        (gave_up.status(), gave_up.attempts),
        (Some(JobStatus::Failed), 3)
    );
    assert_eq!(gave_up.last_error.as_deref(), Some("attempt 3 failed"));
    assert!(gave_up.finished_at.is_some() && gave_up.lease_owner.is_none());
    time_passes(&ctx).await;
    assert_eq!(a.run_pending().await.unwrap(), 0, "a failed job ran again");
    let attempts = |id: &str| -> Vec<u32> {
        let runs = runs.lock().unwrap();
        runs.iter().filter(|r| r.1 == id).map(|r| r.2).collect()
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
    assert_eq!(p.key, p.id);
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
    let ran: Vec<String> = runs.lock().unwrap().iter().map(|r| r.1.clone()).collect();
    assert!(!ran.contains(&paused.id), "the paused job ran");
    let orphan = row(&ctx, &orphan.id).await;
    assert_eq!(
        (orphan.status(), orphan.attempts),
        (Some(JobStatus::Queued), 0),
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
