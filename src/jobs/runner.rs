//! The runner: arms the periodic jobs, looks for due jobs when one is queued and at each poll, claims at most `max_concurrent` at
//! a time and runs each in its own task (see [`super::run`] for one run); on shutdown it stops
//! claiming and lets running jobs finish within the grace period, then gives the rest back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::run::{DynJob, Ended};
use super::{Job, JobSpec, JobStatus};
use crate::config::JobsConfig;
use crate::db::models::job::{JobChange, JobRow};
use crate::db::models::now;
use crate::db::queue::new_row;
use crate::db::{Conn, Db, DbError, transaction};
use crate::types::JobId;

/// A registered handler.
#[derive(Clone)]
pub(super) struct Handler {
    pub(super) job: Arc<dyn DynJob>,
    /// Periodic jobs: the pause between the end of a run and the next.
    pub(super) every: Option<Duration>,
    /// Periodic jobs: the payload their row is armed with (the spec's default).
    payload: String,
}

/// Runs the jobs of the registered kinds, leased through the database. Build it with
/// [`Runner::new`], add handlers with [`Runner::register`] (one-off jobs) and
/// [`Runner::periodic`], then [`Runner::run`] it until the shutdown signal.
#[derive(Clone)]
pub struct Runner {
    pub(super) db: Db,
    pub(super) instance_id: String,
    pub(super) poll: Duration,
    pub(super) lease: Duration,
    pub(super) max_concurrent: usize,
    pub(super) max_attempts: u32,
    pub(super) backoff: Duration,
    pub(super) grace: Duration,
    pub(super) handlers: HashMap<&'static str, Handler>,
}

/// What a claim found.
enum Claim {
    /// A job, leased to this runner.
    Job(JobRow),
    /// A job whose every run so far died with its runner: given up on instead of run again.
    GaveUp(JobRow, Ended),
    /// Nothing due.
    Nothing,
}

/// A job a task of this runner is running: (job id, kind, claim token).
type Held = (JobId, String, String);

impl Runner {
    /// A runner on `db` with the `[jobs]` settings and no handlers yet.
    pub fn new(db: Db, config: &JobsConfig) -> Self {
        Self {
            db,
            instance_id: config
                .instance_id
                .clone()
                .unwrap_or_else(default_instance_id),
            poll: Duration::from_millis(config.poll_interval_ms),
            lease: Duration::from_secs(config.lease_secs),
            max_concurrent: config.max_concurrent,
            max_attempts: config.max_attempts,
            backoff: Duration::from_millis(config.retry_backoff_ms),
            grace: Duration::from_secs(10),
            handlers: HashMap::new(),
        }
    }

    /// How long running jobs may go on after the shutdown signal (default 10 s); the rest are
    /// given back to the queue and resume elsewhere from their checkpoints.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Adds the handler of a kind of one-off jobs ([`super::enqueue`]d as its [`Job::Spec`]).
    ///
    /// # Panics
    /// If a handler of that kind was added already.
    pub fn register(self, job: impl Job) -> Self {
        self.add(job, None, String::new())
    }

    /// Adds a periodic job: run once `every` on one instance at a time, the first time as soon
    /// as the runner starts (unless another instance ran it less than `every` ago), with its
    /// spec's default as the payload.
    ///
    /// # Panics
    /// If a handler of that kind was added already, or the default spec does not serialize.
    pub fn periodic<J: Job>(self, job: J, every: Duration) -> Self
    where
        J::Spec: Default,
    {
        let payload = serde_json::to_string(&J::Spec::default())
            .expect("a periodic job's default payload serializes");
        self.add(job, Some(every), payload)
    }

    fn add<J: Job>(mut self, job: J, every: Option<Duration>, payload: String) -> Self {
        let kind = <J::Spec as JobSpec>::KIND;
        let handler = Handler {
            job: Arc::new(job),
            every,
            payload,
        };
        let added = self.handlers.insert(kind, handler).is_none();
        assert!(added, "a job handler of kind `{kind}` was added twice");
        self
    }

    /// This instance's name in `jobs.lease_owner`.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Runs until `stopped` turns true (or its sender is dropped), then winds down (see
    /// [`Runner::shutdown_grace`]).
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let kinds: Vec<String> = this.handlers.keys().map(|k| (*k).to_owned()).collect();
        tracing::info!(instance = %this.instance_id, ?kinds, "job runner started");
        let mut tasks = JoinSet::new();
        let mut held: HashMap<tokio::task::Id, Held> = HashMap::new();
        let mut ticks = tokio::time::interval(this.poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut armed = false;
        // Woken when a job is queued (here, or on PostgreSQL anywhere); the poll is the fallback.
        let listener = {
            let (db, stopped) = (this.db.clone(), stopped.clone());
            tokio::spawn(async move { db.listen_for_jobs(stopped).await })
        };
        loop {
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                _ = ticks.tick() => {}
                () = this.db.job_queued() => {}
                Some(done) = tasks.join_next_with_id() => reap(done, &mut held),
            }
            while let Some(done) = tasks.try_join_next_with_id() {
                reap(done, &mut held);
            }
            if !armed {
                armed = this.arm_periodic().await;
            }
            while tasks.len() < this.max_concurrent {
                match this.claim(&kinds).await {
                    Ok(Claim::Job(row)) => {
                        let job = (row.id.clone(), row.kind.clone(), token(&row));
                        let task = tasks.spawn(this.clone().execute(row));
                        held.insert(task.id(), job);
                    }
                    Ok(Claim::GaveUp(row, ended)) => this.log_end(&row, &ended),
                    Ok(Claim::Nothing) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a job failed; trying again at the next poll");
                        break;
                    }
                }
            }
        }
        listener.abort();
        this.wind_down(tasks, held).await;
    }

    /// Runs every job of its kinds that is due now, one after another in this task and each to
    /// its end, until none is (a job that a run queues, due at once, runs too); arms the
    /// periodic jobs first, as [`Runner::run`] does. Returns how many runs there were. For a
    /// process that drives the queue itself instead of running the runner (the tests: what a
    /// test waits for is done when this returns); the jobs are leased as usual.
    pub async fn run_pending(&self) -> Result<usize, DbError> {
        let this = Arc::new(self.clone());
        let kinds: Vec<String> = this.handlers.keys().map(|k| (*k).to_owned()).collect();
        this.arm_periodic().await;
        let mut runs = 0;
        loop {
            match this.claim(&kinds).await? {
                Claim::Job(row) => {
                    this.clone().execute(row).await;
                    runs += 1;
                }
                Claim::GaveUp(row, ended) => this.log_end(&row, &ended),
                Claim::Nothing => return Ok(runs),
            }
        }
    }

    /// Spawns [`Runner::run`].
    pub fn spawn(self, stopped: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(stopped))
    }

    /// Makes sure every periodic job has its row, queued (again) if it finished, and not
    /// further off than one period (the period may have been shortened). False if the database
    /// failed (tried again at the next poll).
    async fn arm_periodic(&self) -> bool {
        for (kind, handler) in &self.handlers {
            let Some(every) = handler.every else { continue };
            let every = chrono::Duration::from_std(every).unwrap_or_default();
            let armed = transaction(&self.db, async |conn: &mut Conn| -> Result<(), DbError> {
                let at = now();
                let Some(row) = JobRow::find_by_key_locked(conn, kind).await? else {
                    let row = new_row(kind, Some(kind), &handler.payload, at);
                    return JobRow::insert(conn, &row).await;
                };
                let run_at = match row.status {
                    JobStatus::Queued if row.run_at > at + every => at + every,
                    JobStatus::Completed | JobStatus::Failed => at,
                    _ => return Ok(()),
                };
                let change = JobChange {
                    status: JobStatus::Queued,
                    run_at,
                    finished_at: None,
                    ..JobChange::released(&row, at)
                };
                JobRow::update(conn, &row.id, &change).await
            })
            .await;
            if let Err(e) = armed {
                tracing::warn!(kind, error = %e, "arming a periodic job failed; trying again at the next poll");
                return false;
            }
        }
        true
    }

    /// Leases the oldest due job of our kinds to this runner, in one transaction.
    async fn claim(&self, kinds: &[String]) -> Result<Claim, DbError> {
        let at = now();
        if !JobRow::any_due(&mut self.db.conn().await?, kinds, at).await? {
            return Ok(Claim::Nothing);
        }
        let suffix = crate::crypto::hex(&crate::crypto::random_bytes::<4>());
        let token = format!("{}/{suffix}", self.instance_id);
        let until = at + chrono::Duration::from_std(self.lease).unwrap_or_default();
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<Claim, DbError> {
                let Some(row) = JobRow::next_due(conn, kinds, at).await? else {
                    return Ok(Claim::Nothing);
                };
                // Running under an expired lease: its last run died with its runner. A job whose
                // every run dies (one that kills the process, say) is not run for ever.
                let runs = u32::try_from(row.attempts).unwrap_or(u32::MAX);
                if row.status == JobStatus::Running && runs >= self.max_attempts {
                    let every = self.handlers.get(row.kind.as_str()).and_then(|h| h.every);
                    let error = format!("its lease ran out on all {runs} runs (the runner died)");
                    let checkpoint = row.checkpoint.clone();
                    let (change, ended) =
                        self.after_failure(&row, every, error, false, at, checkpoint);
                    JobRow::update(conn, &row.id, &change).await?;
                    return Ok(Claim::GaveUp(row, ended));
                }
                let row = JobRow::take_lease(conn, &row.id, &token, until, at).await?;
                Ok(Claim::Job(row))
            },
        )
        .await
    }

    /// After the shutdown signal: waits up to the grace period for running jobs, then aborts
    /// the rest and gives them back (if that fails, their leases run out instead).
    async fn wind_down(&self, mut tasks: JoinSet<()>, mut held: HashMap<tokio::task::Id, Held>) {
        if !tasks.is_empty() {
            tracing::info!(
                running = tasks.len(),
                "job runner stopping; waiting for running jobs"
            );
        }
        let deadline = tokio::time::sleep(self.grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                done = tasks.join_next_with_id() => match done {
                    Some(done) => reap(done, &mut held),
                    None => break,
                },
                () = &mut deadline => {
                    tasks.abort_all();
                    while let Some(done) = tasks.join_next_with_id().await {
                        if let Ok((id, ())) = done {
                            held.remove(&id);
                        }
                    }
                    break;
                }
            }
        }
        for (id, kind, token) in held.into_values() {
            let released = async {
                let mut conn = self.db.conn().await?;
                JobRow::release(&mut conn, &id, &token, now()).await
            };
            match released.await {
                Ok(_) => {
                    tracing::warn!(%kind, job = %id, "job interrupted by shutdown; queued again from its checkpoint")
                }
                Err(e) => {
                    tracing::warn!(%kind, job = %id, error = %e, "job interrupted by shutdown; it resumes when its lease runs out")
                }
            }
        }
        tracing::info!(instance = %self.instance_id, "job runner stopped");
    }
}

/// Forgets a finished task; a task can only fail by panicking outside its handler.
fn reap(done: Result<(tokio::task::Id, ()), JoinError>, held: &mut HashMap<tokio::task::Id, Held>) {
    let id = match &done {
        Ok((id, ())) => *id,
        Err(e) => e.id(),
    };
    let job = held.remove(&id);
    if let (Err(e), Some((job, kind, _))) = (done, job) {
        tracing::warn!(%kind, %job, error = %e, "job task ended abnormally; the job resumes when its lease runs out");
    }
}

/// The claim token of a row this runner leased.
fn token(row: &JobRow) -> String {
    row.lease_owner.clone().unwrap_or_default()
}

/// Host name, process id and a random suffix.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let suffix = crate::crypto::hex(&crate::crypto::random_bytes::<3>());
    format!("{host}-{}-{suffix}", std::process::id())
}
