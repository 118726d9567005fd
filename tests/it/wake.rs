//! The job runner wakes when work arrives: a job queued in this process runs at once, and on
//! PostgreSQL so does one queued by another instance (LISTEN/NOTIFY). Every runner here polls
//! once a minute, so a job done within seconds was woken, not polled.

use std::time::Duration;

use serde_json::json;
use wechat_identity::db::Db;
use wechat_identity::jobs::{self, Job, JobContext, JobError, JobOutcome, JobStatus, Runner};

use crate::common::{Backend, OA, TestApp};
use crate::jobs::{Scratch, eventually, settings, start, status_is};
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

struct Noop;

impl Job for Noop {
    fn kind(&self) -> &'static str {
        "noop"
    }

    async fn run(&self, _ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
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
        let job = jobs::enqueue(queue_on, "noop", None, &json!({ "n": n }))
            .await
            .unwrap();
        eventually(WOKEN_WITHIN, what, || {
            status_is(runs_on, &job.id, JobStatus::Completed)
        })
        .await;
    }
}

async fn a_queued_job_runs_at_once_not_at_the_next_poll(backend: Backend) {
    let scratch = Scratch::new(backend);
    let db = scratch.db().await;
    let started = start(runner(db.clone(), "one"));
    // Past the runner's first look (at its start), then queued.
    tokio::time::sleep(Duration::from_millis(200)).await;
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    three_jobs_run_at_once(&elsewhere, &here, "the job queued elsewhere ran here").await;
    started.stop().await;
}

/// The README's messages walk-through depends on it: a follow pushed to the webhook is a user,
/// subscribed, by the time the next command runs.
async fn a_pushed_follow_is_processed_at_once(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.jobs.poll_interval_ms = MINUTE_POLL).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for user in ["wake-alice", "wake-bob"] {
        let (status, followed) = app
            .sandbox_post("/follow", json!({ "appId": OA, "user": user }))
            .await;
        assert_eq!(status, 200, "{followed}");
        assert_eq!(followed["pushed"]["body"], "success", "{followed}");
        let unionid = followed["unionid"].as_str().unwrap().to_owned();
        // `wait_user` waits 10 s at most: far below the poll.
        let user = app
            .wait_user(&unionid, |u| {
                u["officialAccountIdentities"][0]["subscribed"] == true
            })
            .await;
        assert_eq!(user["officialAccountIdentities"][0]["appId"], OA);
    }
}
