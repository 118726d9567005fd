//! The job runner on a real database (a fresh SQLite file or PostgreSQL database per test):
//! several runners on one database, a runner that dies mid-job, retries, one job per key, and
//! the purge job of the running service.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use wechat_identity::config::JobsConfig;
use wechat_identity::db::Db;
use wechat_identity::jobs::{
    self, Job, JobContext, JobError, JobOutcome, JobRow, JobStatus, Runner,
};
use wechat_identity::types::JobId;

use crate::common::{Backend, OA, TestApp, pg_admin, pg_admin_url};
use crate::on_both_backends;

on_both_backends!(
    two_runners_run_a_periodic_job_once_per_period_never_at_once,
    a_job_whose_runner_dies_resumes_elsewhere_from_its_checkpoint,
    a_job_running_at_shutdown_is_given_back_with_its_checkpoint,
    failed_runs_are_retried_with_backoff_then_the_job_fails,
    one_job_per_key_and_paused_jobs_wait,
    the_service_purges_expired_states_and_tickets_in_a_job,
);

/// A fresh, empty database (dropped at the end on PostgreSQL).
pub(crate) struct Scratch {
    url: String,
    _dir: TempDir,
    pg: Option<String>,
}

impl Scratch {
    pub(crate) fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Scratch {
                url: format!("sqlite://{}", dir.path().join("jobs.db").display()),
                _dir: dir,
                pg: None,
            },
            Backend::Postgres => {
                let name = format!("wi_jobs_{}", uuid::Uuid::new_v4().simple());
                pg_admin(format!("CREATE DATABASE {name}"));
                let mut url = reqwest::Url::parse(&pg_admin_url()).unwrap();
                url.set_path(&name);
                Scratch {
                    url: url.to_string(),
                    _dir: dir,
                    pg: Some(name),
                }
            }
        }
    }

    /// A pool of its own: each runner gets one, as each instance of the service would.
    pub(crate) async fn db(&self) -> Db {
        Db::connect(&self.url, 4).await.expect("database opens")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(name) = self.pg.take() {
            pg_admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

pub(crate) fn settings(instance: &str, lease_secs: u64) -> JobsConfig {
    JobsConfig {
        poll_interval_ms: 20,
        lease_secs,
        max_concurrent: 2,
        max_attempts: 3,
        retry_backoff_ms: 100,
        instance_id: Some(instance.to_owned()),
    }
}

/// A running runner and the switch that stops it.
pub(crate) struct Started {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub(crate) fn start(runner: Runner) -> Started {
    let (stop, stopped) = watch::channel(false);
    Started {
        stop,
        task: runner.spawn(stopped),
    }
}

impl Started {
    /// Shuts it down the way the service does, and waits for it.
    pub(crate) async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the runner stops")
            .unwrap();
    }
}

/// Polls `check` until it yields something, failing after `secs`.
pub(crate) async fn eventually<T, F: Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn job(db: &Db, id: &JobId) -> JobRow {
    jobs::find(db, id).await.unwrap().expect("the job exists")
}

pub(crate) async fn status_is(db: &Db, id: &JobId, status: JobStatus) -> Option<JobRow> {
    let row = job(db, id).await;
    (row.status == status).then_some(row)
}

// --- (1) several runners, one periodic job ----------------------------------------------------

/// Which instance ran the job, from when to when.
type Runs = Arc<Mutex<Vec<(&'static str, Instant, Instant)>>>;

/// Runs 1.3 s (longer than the 1 s lease: only its renewals keep it) and logs when it ran.
struct Slow {
    instance: &'static str,
    runs: Runs,
    in_flight: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl Job for Slow {
    fn kind(&self) -> &'static str {
        "slow_periodic"
    }

    async fn run(&self, _ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
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
    eventually(12, "the periodic job ran three times", || async {
        (runs.lock().unwrap().len() >= 3).then_some(())
    })
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

/// Does steps 1..=5, checkpointing each; one instance hangs after step 3 (to be killed there).
struct Steps {
    instance: &'static str,
    hang_after: Option<u32>,
    done: Arc<Mutex<Vec<(&'static str, u32)>>>,
    resumed_from: Arc<Mutex<Vec<Option<u32>>>>,
    hanging: Arc<Notify>,
}

impl Job for Steps {
    fn kind(&self) -> &'static str {
        "steps"
    }

    async fn run(&self, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let from: Option<u32> = ctx.checkpoint()?;
        self.resumed_from.lock().unwrap().push(from);
        let total: u32 = ctx.payload::<Value>()?["steps"].as_u64().unwrap() as u32;
        for step in from.unwrap_or(0) + 1..=total {
            self.done.lock().unwrap().push((self.instance, step));
            ctx.save_checkpoint(&step).await?;
            if self.hang_after == Some(step) {
                self.hanging.notify_one();
                std::future::pending::<()>().await;
            }
        }
        Ok(JobOutcome::Done)
    }
}

async fn a_job_whose_runner_dies_resumes_elsewhere_from_its_checkpoint(backend: Backend) {
    let scratch = Scratch::new(backend);
    let db = scratch.db().await;
    let done = Arc::new(Mutex::new(Vec::new()));
    let resumed_from = Arc::new(Mutex::new(Vec::new()));
    let hanging = Arc::new(Notify::new());
    let steps = |instance, hang_after| Steps {
        instance,
        hang_after,
        done: done.clone(),
        resumed_from: resumed_from.clone(),
        hanging: hanging.clone(),
    };
    let queued = jobs::enqueue(&db, "steps", Some("steps:subject"), &json!({ "steps": 5 }))
        .await
        .unwrap();
    let a = start(
        Runner::new(scratch.db().await, &settings("instance-a", 1))
            .register(steps("instance-a", Some(3))),
    );
    tokio::time::timeout(Duration::from_secs(5), hanging.notified())
        .await
        .expect("instance-a reached step 3");

    // While instance-a lives, its lease is renewed: instance-b, polling, does not take over.
    let b = start(
        Runner::new(scratch.db().await, &settings("instance-b", 1))
            .register(steps("instance-b", None)),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        done.lock().unwrap().len(),
        3,
        "taken over from a live runner"
    );
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
    let finished = eventually(8, "instance-b finished the job", || {
        status_is(&db, &queued.id, JobStatus::Completed)
    })
    .await;
    b.stop().await;

    assert_eq!(
        *done.lock().unwrap(),
        [
            ("instance-a", 1),
            ("instance-a", 2),
            ("instance-a", 3),
            ("instance-b", 4),
            ("instance-b", 5)
        ],
        "steps before the checkpoint were done again"
    );
    assert_eq!(*resumed_from.lock().unwrap(), [None, Some(3)]);
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
    let done = Arc::new(Mutex::new(Vec::new()));
    let resumed_from = Arc::new(Mutex::new(Vec::new()));
    let hanging = Arc::new(Notify::new());
    let steps = |instance, hang_after| Steps {
        instance,
        hang_after,
        done: done.clone(),
        resumed_from: resumed_from.clone(),
        hanging: hanging.clone(),
    };
    let queued = jobs::enqueue(&db, "steps", None, &json!({ "steps": 3 }))
        .await
        .unwrap();
    let a = start(
        Runner::new(scratch.db().await, &settings("instance-a", 30))
            .shutdown_grace(Duration::from_millis(100))
            .register(steps("instance-a", Some(2))),
    );
    tokio::time::timeout(Duration::from_secs(5), hanging.notified())
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
            .register(steps("instance-b", None)),
    );
    eventually(5, "instance-b finished the job", || {
        status_is(&db, &queued.id, JobStatus::Completed)
    })
    .await;
    b.stop().await;
    assert_eq!(*resumed_from.lock().unwrap(), [None, Some(2)]);
    assert_eq!(
        *done.lock().unwrap(),
        [("instance-a", 1), ("instance-a", 2), ("instance-b", 3)]
    );
}

// --- (3) failures ---------------------------------------------------------------------------

/// Fails its first `fail_times` runs (fatally if `fatal`), then succeeds.
struct Flaky {
    calls: Arc<Mutex<Vec<(String, u32, Instant)>>>,
}

impl Job for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
    }

    async fn run(&self, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let payload: Value = ctx.payload()?;
        let attempt = ctx.attempt();
        self.calls
            .lock()
            .unwrap()
            .push((ctx.id().to_string(), attempt, Instant::now()));
        if u64::from(attempt) > payload["fail_times"].as_u64().unwrap() {
            return Ok(JobOutcome::Done);
        }
        let message = format!("attempt {attempt} failed");
        if payload["fatal"] == json!(true) {
            Err(JobError::Fatal(message))
        } else {
            Err(JobError::Retry(message))
        }
    }
}

async fn failed_runs_are_retried_with_backoff_then_the_job_fails(backend: Backend) {
    let scratch = Scratch::new(backend);
    let db = scratch.db().await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let enqueue = |payload: Value| {
        let db = db.clone();
        async move { jobs::enqueue(&db, "flaky", None, &payload).await.unwrap() }
    };
    let hopeless = enqueue(json!({ "fail_times": 99 })).await;
    let flaky = enqueue(json!({ "fail_times": 1 })).await;
    let fatal = enqueue(json!({ "fail_times": 99, "fatal": true })).await;
    let runner = start(
        Runner::new(scratch.db().await, &settings("instance-a", 5)).register(Flaky {
            calls: calls.clone(),
        }),
    );

    let failed = eventually(8, "the hopeless job failed", || {
        status_is(&db, &hopeless.id, JobStatus::Failed)
    })
    .await;
    let completed = eventually(5, "the flaky job completed", || {
        status_is(&db, &flaky.id, JobStatus::Completed)
    })
    .await;
    let fatal = eventually(5, "the fatal job failed", || {
        status_is(&db, &fatal.id, JobStatus::Failed)
    })
    .await;
    runner.stop().await;

    assert_eq!(failed.attempts, 3, "max_attempts runs: {failed:?}");
    assert_eq!(failed.last_error.as_deref(), Some("attempt 3 failed"));
    assert!(failed.finished_at.is_some() && failed.lease_owner.is_none());
    assert_eq!(completed.attempts, 2);
    assert_eq!(completed.last_error.as_deref(), Some("attempt 1 failed"));
    assert_eq!(fatal.attempts, 1, "a fatal error is not retried");
    assert_eq!(fatal.last_error.as_deref(), Some("attempt 1 failed"));

    let calls = calls.lock().unwrap();
    let runs_of = |id: &str| -> Vec<(u32, Instant)> {
        calls
            .iter()
            .filter(|(job, ..)| job == id)
            .map(|(_, attempt, at)| (*attempt, *at))
            .collect()
    };
    let hopeless_runs = runs_of(hopeless.id.as_str());
    assert_eq!(
        hopeless_runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Backoff: 100 ms before the second run, 200 ms before the third.
    let gaps: Vec<Duration> = hopeless_runs.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps[0] >= Duration::from_millis(90), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(190), "{gaps:?}");
    assert_eq!(runs_of(flaky.id.as_str()).len(), 2);
    assert_eq!(runs_of(fatal.id.as_str()).len(), 1);
}

// --- (4) one job per key, pause and resume ----------------------------------------------------

struct Noop {
    ran: Arc<Mutex<Vec<String>>>,
}

impl Job for Noop {
    fn kind(&self) -> &'static str {
        "noop"
    }

    async fn run(&self, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        self.ran.lock().unwrap().push(ctx.id().to_string());
        Ok(JobOutcome::Done)
    }
}

async fn one_job_per_key_and_paused_jobs_wait(backend: Backend) {
    let scratch = Scratch::new(backend);
    let db = scratch.db().await;
    let first = jobs::enqueue(&db, "noop", Some("noop:app1"), &json!({ "n": 1 }))
        .await
        .unwrap();
    let second = jobs::enqueue(&db, "noop", Some("noop:app1"), &json!({ "n": 2 }))
        .await
        .unwrap();
    assert_eq!(second.id, first.id, "a second start returns the queued job");
    assert_eq!(second.payload, r#"{"n":1}"#);
    // Two first starts at once: one job (the loser's insert hits jobs_key_key and retries).
    let empty = json!({});
    let (x, y) = tokio::join!(
        jobs::enqueue(&db, "noop", Some("noop:app2"), &empty),
        jobs::enqueue(&db, "noop", Some("noop:app2"), &empty),
    );
    assert_eq!(x.unwrap().id, y.unwrap().id);
    // Without a key, every enqueue is a job of its own.
    let (p, q) = (
        jobs::enqueue(&db, "noop", None, &json!({})).await.unwrap(),
        jobs::enqueue(&db, "noop", None, &json!({})).await.unwrap(),
    );
    assert_ne!(p.id, q.id);
    assert_eq!(p.key, p.id.as_str());
    let orphan = jobs::enqueue(&db, "nobody_runs_this", None, &json!({}))
        .await
        .unwrap();
    assert!(jobs::pause(&db, &q.id).await.unwrap());

    let ran = Arc::new(Mutex::new(Vec::new()));
    let runner = start(
        Runner::new(scratch.db().await, &settings("instance-a", 5))
            .register(Noop { ran: ran.clone() }),
    );
    eventually(5, "the other jobs completed", || async {
        (ran.lock().unwrap().len() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        ran.lock().unwrap().len(),
        3,
        "a job ran twice, or the paused one ran"
    );
    assert!(!ran.lock().unwrap().contains(&q.id.to_string()));
    assert_eq!(job(&db, &q.id).await.status, JobStatus::Paused);
    let orphan = job(&db, &orphan.id).await;
    assert_eq!(
        (orphan.status, orphan.attempts),
        (JobStatus::Queued, 0),
        "claimed a kind it has no handler for"
    );

    assert!(jobs::resume(&db, &q.id).await.unwrap());
    assert!(
        !jobs::resume(&db, &q.id).await.unwrap(),
        "not paused any more"
    );
    eventually(5, "the resumed job completed", || {
        status_is(&db, &q.id, JobStatus::Completed)
    })
    .await;
    // Once the job of a key finished, starting again makes a new job.
    let again = jobs::enqueue(&db, "noop", Some("noop:app1"), &json!({ "n": 3 }))
        .await
        .unwrap();
    assert_ne!(again.id, first.id);
    eventually(5, "the new job completed", || {
        status_is(&db, &again.id, JobStatus::Completed)
    })
    .await;
    assert!(
        jobs::find(&db, &first.id).await.unwrap().is_none(),
        "the finished job was replaced"
    );
    runner.stop().await;
    assert_eq!(ran.lock().unwrap().len(), 5);
}

// --- (5) the service's purge job ----------------------------------------------------------------

async fn the_service_purges_expired_states_and_tickets_in_a_job(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.limits.purge_interval_secs = 1;
        c.jobs.poll_interval_ms = 50;
    })
    .await;
    // The purge runs at start; wait for that run, so that what follows is purged by a later one.
    eventually(5, "the purge job ran once", || async {
        let ran =
            "jobs WHERE key = 'purge_expired' AND status = 'queued' AND updated_at > created_at";
        (app.count(ran).await == 1).then_some(())
    })
    .await;
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
    eventually(8, "the expired state and ticket are purged", || async {
        (left().await == (0, 0)).then_some(())
    })
    .await;
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
