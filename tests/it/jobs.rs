//! The job runner running, on a real database (a fresh SQLite file or PostgreSQL database per
//! test): several runners on one database, a runner that dies mid-job and one shut down
//! mid-job, and the purge job of the service. (Claims, leases, checkpoints, retries and keys
//! one step at a time: the jobs contract suite, `tests/contract/models_jobs.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wechat_identity::jobs::{
    self, Job, JobContext, JobError, JobOutcome, JobRow, JobSpec, JobStatus, Runner,
};

use crate::common::runners::{Scratch, job, settings, start, until_status};
use crate::common::steps::{StepLog, StepsJob};
use crate::common::{Backend, OA, TestApp, eventually};
use crate::on_both_backends;

on_both_backends!(
    two_runners_run_a_periodic_job_once_per_period_never_at_once,
    a_job_whose_runner_dies_resumes_elsewhere_from_its_checkpoint,
    a_job_running_at_shutdown_is_given_back_with_its_checkpoint,
    the_service_purges_expired_states_and_tickets_in_a_job,
);

// --- (1) several runners, one periodic job ----------------------------------------------------

/// Which instance ran the job, from when to when.
type Runs = Arc<Mutex<Vec<(&'static str, Instant, Instant)>>>;

/// The periodic job of the first test.
#[derive(Default, Serialize, Deserialize)]
struct Tick {}

impl JobSpec for Tick {
    const KIND: &'static str = "slow_periodic";
}

/// Runs 1.3 s (longer than the 1 s lease: only its renewals keep it) and logs when it ran.
struct Slow {
    instance: &'static str,
    runs: Runs,
    in_flight: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl Job for Slow {
    type Spec = Tick;

    async fn run(&self, _: Tick, _: &mut JobContext) -> Result<JobOutcome, JobError> {
        let now_running = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now_running, Ordering::SeqCst);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(1300)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let ended = Instant::now();
        self.runs
            .lock()
            .unwrap()
            .push((self.instance, started, ended));
        Ok(JobOutcome::Done)
    }
}

async fn two_runners_run_a_periodic_job_once_per_period_never_at_once(backend: Backend) {
    let scratch = Scratch::new(backend);
    let runs = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let every = Duration::from_millis(300);
    let mut runners = Vec::new();
    for instance in ["instance-a", "instance-b"] {
        let handler = Slow {
            instance,
            runs: runs.clone(),
            in_flight: in_flight.clone(),
            most_at_once: most_at_once.clone(),
        };
        let runner =
            Runner::new(scratch.db().await, &settings(instance, 1)).periodic(handler, every);
        runners.push(start(runner));
    }
    eventually(
        Duration::from_secs(12),
        "the periodic job ran three times",
        || async { runs.lock().unwrap().len() >= 3 },
    )
    .await;
    for runner in runners {
        runner.stop().await;
    }

    assert_eq!(
        most_at_once.load(Ordering::SeqCst),
        1,
        "the job ran on both runners at once"
    );
    let mut runs = runs.lock().unwrap().clone();
    runs.sort_by_key(|(_, started, _)| *started);
    for pair in runs.windows(2) {
        let ((_, _, ended), (_, next, _)) = (pair[0], pair[1]);
        let gap = next.saturating_duration_since(ended);
        assert!(next >= ended, "runs overlap: {runs:?}");
        // Re-armed one period after a run ends; claimed within a few polls of that.
        assert!(
            gap >= every - Duration::from_millis(30),
            "ran again after {gap:?}, before its period"
        );
        assert!(
            gap < every + Duration::from_millis(1000),
            "ran again only after {gap:?}"
        );
    }
    let db = scratch.db().await;
    let mut conn = db.conn().await.unwrap();
    let rows = rows_of_kind(&mut conn, "slow_periodic").await;
    assert_eq!(rows.len(), 1, "one row for the periodic job");
    assert_eq!(rows[0].key, "slow_periodic");
    assert_eq!(rows[0].status, JobStatus::Queued, "re-armed: {:?}", rows[0]);
    assert_eq!(rows[0].attempts, 0);
}

async fn rows_of_kind(conn: &mut wechat_identity::db::Conn, kind: &str) -> Vec<JobRow> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use wechat_identity::db::schema::jobs::dsl;
    let q = dsl::jobs.filter(dsl::kind.eq(kind.to_owned()));
    wechat_identity::with_conn!(conn, c => q.load::<JobRow>(c).await).unwrap()
}

// --- (2) crash and resume -----------------------------------------------------------------------

async fn a_job_whose_runner_dies_resumes_elsewhere_from_its_checkpoint(backend: Backend) {
    let scratch = Scratch::new(backend);
    let db = scratch.db().await;
    let log = StepLog::default();
    let subject = Some("subject".to_owned());
    let queued = jobs::enqueue(&db, &StepsJob { steps: 5, subject })
        .await
        .unwrap();
    assert_eq!(queued.key, "steps:subject");
    let a = start(
        Runner::new(scratch.db().await, &settings("instance-a", 1))
            .register(log.handler("instance-a", Some(3))),
    );
    tokio::time::timeout(Duration::from_secs(5), log.hanging())
        .await
        .expect("instance-a reached step 3");

    // While instance-a lives, its lease is renewed: instance-b, polling, does not take over.
    let b = start(
        Runner::new(scratch.db().await, &settings("instance-b", 1))
            .register(log.handler("instance-b", None)),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(log.done().len(), 3, "taken over from a live runner");
    let held = job(&db, &queued.id).await;
    assert_eq!(held.status, JobStatus::Running);
    assert_eq!(held.checkpoint.as_deref(), Some("3"));
    assert!(
        held.lease_owner
            .as_deref()
            .unwrap()
            .starts_with("instance-a/"),
        "{held:?}"
    );

    // instance-a dies: no shutdown, its task and the job's are simply gone.
    a.task.abort();
    assert!(a.task.await.unwrap_err().is_cancelled());
    let finished = until_status(&db, &queued.id, JobStatus::Completed, 8).await;
    b.stop().await;

    assert_eq!(
        log.done(),
        [
            ("instance-a", 1),
            ("instance-a", 2),
            ("instance-a", 3),
            ("instance-b", 4),
            ("instance-b", 5)
        ],
        "steps before the checkpoint were done again"
    );
    assert_eq!(log.resumed_from(), [None, Some(3)]);
    assert_eq!(finished.attempts, 2);
    assert_eq!(finished.checkpoint.as_deref(), Some("5"));
    assert!(
        finished.lease_owner.is_none() && finished.finished_at.is_some(),
        "{finished:?}"
    );
}

async fn a_job_running_at_shutdown_is_given_back_with_its_checkpoint(backend: Backend) {
    let scratch = Scratch::new(backend);
    let db = scratch.db().await;
    let log = StepLog::default();
    let three = StepsJob {
        steps: 3,
        subject: None,
    };
    let queued = jobs::enqueue(&db, &three).await.unwrap();
    let a = start(
        Runner::new(scratch.db().await, &settings("instance-a", 30))
            .shutdown_grace(Duration::from_millis(100))
            .register(log.handler("instance-a", Some(2))),
    );
    tokio::time::timeout(Duration::from_secs(5), log.hanging())
        .await
        .expect("instance-a reached step 2");
    a.stop().await;
    // Given back at once (not after its 30 s lease), and the cut-short run is not an attempt.
    let given_back = job(&db, &queued.id).await;
    assert_eq!(given_back.status, JobStatus::Queued, "{given_back:?}");
    assert_eq!(given_back.lease_owner, None);
    assert_eq!(given_back.attempts, 0);
    assert_eq!(given_back.checkpoint.as_deref(), Some("2"));

    let b = start(
        Runner::new(scratch.db().await, &settings("instance-b", 30))
            .register(log.handler("instance-b", None)),
    );
    until_status(&db, &queued.id, JobStatus::Completed, 5).await;
    b.stop().await;
    assert_eq!(log.resumed_from(), [None, Some(2)]);
    assert_eq!(
        log.done(),
        [("instance-a", 1), ("instance-a", 2), ("instance-b", 3)]
    );
}

// --- (3) the service's purge job ----------------------------------------------------------------

async fn the_service_purges_expired_states_and_tickets_in_a_job(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    // The periodic jobs (the purge, the event delivery) run first when the jobs do; what
    // follows is purged by a later run.
    assert_eq!(
        app.run_jobs().await,
        2,
        "the purge and the delivery ran, once each"
    );
    let ran = "jobs WHERE key = 'purge_expired' AND status = 'queued' AND updated_at > created_at";
    assert_eq!(
        app.count(ran).await,
        1,
        "the purge waits for its next period"
    );
    let old = "'2000-01-01 00:00:00'";
    let future = "'2999-01-01 00:00:00'";
    app.exec(&format!(
        "INSERT INTO oauth_states (id, app_id, scope, created_at, expires_at) VALUES
            ('expired-state', '{OA}', 'snsapi_base', {old}, {old}),
            ('live-state', '{OA}', 'snsapi_base', {old}, {future});
         INSERT INTO users (id, created_at, updated_at) VALUES ('purge-user', {old}, {old});
         INSERT INTO login_tickets (token_hash, user_id, new_user, created_at, expires_at) VALUES
            ('expired-ticket', 'purge-user', FALSE, {old}, {old}),
            ('live-ticket', 'purge-user', FALSE, {old}, {future});"
    ))
    .await;
    let left = || async {
        (
            app.count("oauth_states WHERE id = 'expired-state'").await,
            app.count("login_tickets WHERE token_hash = 'expired-ticket'")
                .await,
        )
    };
    app.run_jobs().await;
    assert_eq!(
        left().await,
        (1, 1),
        "purged before the purge's next period"
    );
    app.run_jobs_after_waits().await;
    assert_eq!(
        left().await,
        (0, 0),
        "the expired state and ticket are purged"
    );
    assert_eq!(app.count("oauth_states WHERE id = 'live-state'").await, 1);
    assert_eq!(
        app.count("login_tickets WHERE token_hash = 'live-ticket'")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "jobs WHERE key = 'purge_expired' AND kind = 'purge_expired' AND last_error IS NULL"
        )
        .await,
        1,
        "one purge job, which never failed"
    );
}
