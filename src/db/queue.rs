//! The job queue's writes, below the job runner (`crate::jobs`), so that any layer may queue a
//! job. A kind of job is a [`JobSpec`]: its payload type, which names its kind and its key.
//! [`enqueue`] stores one (one per key), [`enqueue_in`] does so inside the caller's
//! transaction, and the job's handler (`crate::jobs::Job::Spec`) gets the same type back.

use chrono::NaiveDateTime;
use diesel::result::Error as DieselError;
use diesel_async::SimpleAsyncConnection as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::models::job::{JobRow, JobStatus};
use super::models::now;
use super::{Conn, Db, DbError, transaction};
use crate::types::JobId;

/// A kind of job, as its payload: what [`enqueue`] stores in `jobs.payload` and what the
/// handler of [`JobSpec::KIND`] is given back, so both ends are the one type.
///
/// ```text
/// #[derive(serde::Serialize, serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// pub struct WebhookEventsPayload { pub app_id: AppId }
///
/// impl JobSpec for WebhookEventsPayload {
///     const KIND: &'static str = "webhook_events";
///     fn dedup_key(&self) -> Option<String> {
///         Some(self.app_id.to_string()) // one per app: key `webhook_events:{appId}`
///     }
/// }
/// ```
pub trait JobSpec: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind: which handler runs it (one handler per kind in a runner), as stored in
    /// `jobs.kind`; a periodic job's key too. Unique in the service.
    const KIND: &'static str;

    /// The subject that makes it one per subject (the stored key is `{KIND}:{dedup_key}`, see
    /// [`key_of`]): while a job with that key is queued, running or paused, [`enqueue`] returns
    /// it and queues nothing. `None` (the default): every enqueue is a job of its own.
    fn dedup_key(&self) -> Option<String> {
        None
    }

    /// With a key: whether an [`enqueue`] that finds the job *running* asks it to run once more
    /// when this run ends (its last look for work may have come before the work that asked for
    /// it), instead of only returning it. For jobs that work through whatever is pending (the
    /// webhook's events); a follower sync started twice stays one sync.
    const RERUN_IF_ASKED_WHILE_RUNNING: bool = false;
}

/// The key `job` is stored under: `{KIND}:{dedup_key}`, or none (the job's id is its key).
pub fn key_of<J: JobSpec>(job: &J) -> Option<String> {
    job.dedup_key()
        .map(|subject| format!("{}:{subject}", J::KIND))
}

/// Queues a one-off job, to run as soon as a runner is free.
///
/// With a key ([`JobSpec::dedup_key`]): while a job with that key is queued, running or paused,
/// that job is returned and nothing is queued, so a second "start" does not start a second job
/// (it is looked for without a lock first, so repeating a start takes no write lock). A
/// finished (completed or failed) job with that key is replaced by the new one.
pub async fn enqueue<J: JobSpec>(db: &Db, job: &J) -> Result<JobRow, DbError> {
    if let Some(key) = key_of(job) {
        let current = JobRow::find_by_key(&mut db.conn().await?, &key).await?;
        let asks_rerun =
            |j: &JobRow| J::RERUN_IF_ASKED_WHILE_RUNNING && j.status == JobStatus::Running;
        if let Some(live) = current.filter(|j| !j.status.is_finished() && !asks_rerun(j)) {
            return Ok(live);
        }
    }
    let payload = payload_of(job)?;
    let queued = transaction(db, async |conn: &mut Conn| -> Result<JobRow, DbError> {
        queue_row(
            conn,
            J::KIND,
            key_of(job).as_deref(),
            &payload,
            J::RERUN_IF_ASKED_WHILE_RUNNING,
        )
        .await
    })
    .await?;
    db.wake_jobs();
    Ok(queued)
}

/// [`enqueue`] inside the caller's transaction, for a job that must not run before rows written
/// in the same transaction exist (it is queued when they are). After the commit the caller
/// wakes this process's runner with [`Db::wake_jobs`] (other instances hear the commit).
pub async fn enqueue_in<J: JobSpec>(conn: &mut Conn, job: &J) -> Result<JobRow, DbError> {
    let rerun = J::RERUN_IF_ASKED_WHILE_RUNNING;
    queue_row(
        conn,
        J::KIND,
        key_of(job).as_deref(),
        &payload_of(job)?,
        rerun,
    )
    .await
}

/// The job stored under `job`'s key, whatever its status (none for a job without a key).
pub async fn find_same<J: JobSpec>(db: &Db, job: &J) -> Result<Option<JobRow>, DbError> {
    match key_of(job) {
        Some(key) => JobRow::find_by_key(&mut db.conn().await?, &key).await,
        None => Ok(None),
    }
}

/// `row`'s payload as `J`: none if the row is of another kind, an error if it does not parse.
pub fn spec<J: JobSpec>(row: &JobRow) -> Result<Option<J>, DbError> {
    if row.kind != J::KIND {
        return Ok(None);
    }
    serde_json::from_str(&row.payload)
        .map(Some)
        .map_err(|e| DbError::Query(DieselError::DeserializationError(Box::new(e))))
}

fn payload_of<J: JobSpec>(job: &J) -> Result<String, DbError> {
    serde_json::to_string(job)
        .map_err(|e| DbError::Query(DieselError::SerializationError(Box::new(e))))
}

async fn queue_row(
    conn: &mut Conn,
    kind: &str,
    key: Option<&str>,
    payload: &str,
    rerun_if_running: bool,
) -> Result<JobRow, DbError> {
    let row = new_row(kind, key, payload, now());
    if let Some(existing) = JobRow::find_by_key_locked(conn, &row.key).await? {
        // Locked: it cannot end between this look and the ask.
        if rerun_if_running && existing.status == JobStatus::Running {
            JobRow::ask_rerun(conn, &existing.id).await?;
            return Ok(existing);
        }
        if !existing.status.is_finished() {
            return Ok(existing);
        }
        JobRow::delete(conn, &existing.id).await?;
    }
    // Two first enqueues of one key: the second violates `jobs_key_key`, and the
    // transaction runs again and finds the first's job.
    JobRow::insert(conn, &row).await?;
    tracing::info!(kind, job = %row.id, "job queued");
    if let Conn::Postgres(c) = conn {
        // Delivered at commit, to every instance's runner (see `super::wake`).
        c.batch_execute(&format!("NOTIFY {}", super::wake::CHANNEL))
            .await?;
    }
    Ok(row)
}

/// A new queued job row (key: `key`, or its id).
pub(crate) fn new_row(kind: &str, key: Option<&str>, payload: &str, at: NaiveDateTime) -> JobRow {
    let id = JobId::generate();
    JobRow {
        key: key.map_or_else(|| id.as_str().to_owned(), str::to_owned),
        id,
        kind: kind.to_owned(),
        payload: payload.to_owned(),
        checkpoint: None,
        status: JobStatus::Queued,
        run_at: at,
        lease_owner: None,
        lease_until: None,
        attempts: 0,
        last_error: None,
        created_at: at,
        updated_at: at,
        finished_at: None,
        rerun: false,
    }
}
