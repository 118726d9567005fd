//! The job runner wakes when work arrives: a job queued in this process runs at once, and on
//! PostgreSQL so does one queued by another instance (LISTEN/NOTIFY). Every runner here polls
//! once a minute, so a job done within seconds was woken, not polled.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use wechat_identity::db::Db;
use wechat_identity::jobs::{
    self, Job, JobContext, JobError, JobOutcome, JobSpec, JobStatus, Runner,
};

use crate::common::runners::{Scratch, settings, start, until_status};
use crate::common::{Backend, OA, TestApp, eventually};
use crate::on_both_backends;

on_both_backends!(
    a_queued_job_runs_at_once_not_at_the_next_poll,
    a_pushed_follow_is_processed_at_once,
);

/// A runner's poll, long enough that a test waiting a few seconds never sees one.
const MINUTE_POLL: u64 = 60_000;
/// How long the tests wait for a woken job (the wake takes milliseconds; this is for a loaded
/// machine, and still far below the poll).
const WOKEN_WITHIN: u64 = 15;

#[derive(Serialize, Deserialize)]
struct Numbered {
    n: u32,
}

impl JobSpec for Numbered {
    const KIND: &'static str = "noop";
}

struct Noop;

impl Job for Noop {
    type Spec = Numbered;

    async fn run(&self, _: Numbered, _: &mut JobContext) -> Result<JobOutcome, JobError> {
        Ok(JobOutcome::Done)
    }
}

fn runner(db: Db, instance: &str) -> Runner {
    let mut config = settings(instance, 30);
    config.poll_interval_ms = MINUTE_POLL;
    Runner::new(db, &config).register(Noop)
}

/// Queues three jobs through `queue_on`, one after the other, each seen completed (through
/// `runs_on`) long before `runs_on`'s runner would poll.
async fn three_jobs_run_at_once(queue_on: &Db, runs_on: &Db, what: &str) {
    for n in 0..3 {
        let job = jobs::enqueue(queue_on, &Numbered { n }).await.unwrap();
        let done = until_status(runs_on, &job.id, JobStatus::Completed, WOKEN_WITHIN).await;
        assert!(done.finished_at.is_some(), "{what}: {done:?}");
    }
}

async fn a_queued_job_runs_at_once_not_at_the_next_poll(backend: Backend) {
    let scratch = Scratch::new(backend);
    let db = scratch.db().await;
    // The runner's first look (at its start) may find the first job; the others arrive later.
    let started = start(runner(db.clone(), "one"));
    three_jobs_run_at_once(&db, &db, "the queued job ran").await;
    started.stop().await;
}

/// PostgreSQL: another instance (a pool of its own, whose in-process wake-up this runner never
/// hears) queues the job; the NOTIFY sent at its commit wakes this runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_job_queued_by_another_instance_wakes_this_one() {
    let scratch = Scratch::new(Backend::Postgres);
    let here = scratch.db().await;
    let elsewhere = scratch.db().await;
    let started = start(runner(here.clone(), "here"));
    eventually(Duration::from_secs(10), "the runner listens", || {
        someone_listens(&here)
    })
    .await;
    three_jobs_run_at_once(&elsewhere, &here, "the job queued elsewhere ran here").await;
    started.stop().await;
}

/// Whether a session on `db`'s database listens (its last statement was a LISTEN).
async fn someone_listens(db: &Db) -> bool {
    use diesel::sql_types::BigInt;
    let q = diesel::select(diesel::dsl::sql::<BigInt>(
        "(SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'LISTEN %')",
    ));
    let mut conn = db.conn().await.unwrap();
    let n: i64 = wechat_identity::with_conn!(&mut conn, c => {
        diesel_async::RunQueryDsl::get_result(q, c).await
    })
    .unwrap();
    n > 0
}

/// The README's messages walk-through depends on it: a follow pushed to the webhook is a user,
/// subscribed, by the time the next command runs.
async fn a_pushed_follow_is_processed_at_once(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.jobs.poll_interval_ms = MINUTE_POLL;
        // As long as WeChat allows: on a loaded machine the runner is slow, not asleep.
        c.limits.webhook_answer_wait_ms = 4_000;
    })
    .await;
    for user in ["wake-alice", "wake-bob"] {
        let (status, followed) = app
            .sandbox_post("/follow", json!({ "appId": OA, "user": user }))
            .await;
        assert_eq!(status, 200, "{followed}");
        assert_eq!(followed["pushed"]["body"], "success", "{followed}");
        // Processed by the time the push is answered: the next command finds the user.
        let user = app
            .user_by_unionid(followed["unionid"].as_str().unwrap())
            .await;
        assert_eq!(
            user["officialAccountIdentities"][0]["appId"], OA,
            "{user:#}"
        );
        assert_eq!(user["officialAccountIdentities"][0]["subscribed"], true);
    }
}
