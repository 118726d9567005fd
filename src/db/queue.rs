//! The job queue's writes, below the job runner (`crate::jobs`), so that any layer may queue a
//! job: [`enqueue`] (one per key) and the row of a new job.

use chrono::NaiveDateTime;
use diesel_async::SimpleAsyncConnection as _;

use super::models::job::{JobRow, JobStatus};
use super::models::now;
use super::{Conn, Db, DbError, transaction};
use crate::types::JobId;

/// Queues a one-off job of `kind` with `payload`, to run as soon as a runner is free.
///
/// `key` makes it one per subject (keys are shared by all kinds, so name them like
/// `follower_sync:{app_id}`): while a job with that key is queued, running or paused, that job
/// is returned and nothing is queued, so a second "start" does not start a second job. A
/// finished (completed or failed) job with that key is replaced by the new one. Without a key
/// the job's id is its key.
pub async fn enqueue(
    db: &Db,
    kind: &str,
    key: Option<&str>,
    payload: &serde_json::Value,
) -> Result<JobRow, DbError> {
    let payload = payload.to_string();
    let queued = transaction(db, async |conn: &mut Conn| -> Result<JobRow, DbError> {
        enqueue_in(conn, kind, key, &payload).await
    })
    .await?;
    db.wake_jobs();
    Ok(queued)
}

/// [`enqueue`] inside the caller's transaction, for a job that must not run before rows written
/// in the same transaction exist (it is queued when they are). After the commit the caller
/// wakes this process's runner with [`Db::wake_jobs`] (other instances hear the commit).
pub async fn enqueue_in(
    conn: &mut Conn,
    kind: &str,
    key: Option<&str>,
    payload: &str,
) -> Result<JobRow, DbError> {
    let row = new_row(kind, key, payload, now());
    if let Some(existing) = JobRow::find_by_key_locked(conn, &row.key).await? {
        if !existing.status.is_finished() {
            return Ok(existing);
        }
        JobRow::delete(conn, &existing.id).await?;
    }
    // Two first enqueues of one key: the second violates `jobs_key_key`, and the
    // transaction runs again and finds the first's job.
    JobRow::insert(conn, &row).await?;
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
    }
}
