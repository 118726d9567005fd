//! `jobs`: background jobs, leased through the database (see [`crate::jobs`]).
//!
//! A runner holds a job while `lease_owner` is its claim token and `lease_until` lies ahead;
//! every write a runner makes to a job it holds is fenced by that token, so a runner that lost
//! its lease (it stalled, another runner took the job over) changes nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::lock::for_update;
use crate::db::schema::jobs;
use crate::db::{Conn, DbError};
use crate::types::JobId;
use crate::with_conn;

crate::db::text_enum::text_enum! {
    /// Where a job stands.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum JobStatus {
        /// Waiting for `run_at`.
        Queued = "queued",
        /// Held by a runner (or by a runner that died: then its lease runs out).
        Running = "running",
        /// Done (one-off jobs; a periodic job is queued again instead).
        Completed = "completed",
        /// Gave up after its last attempt; `last_error` says why.
        Failed = "failed",
        /// Not run until resumed.
        Paused = "paused",
    }
}

impl JobStatus {
    /// Whether the job will not run again.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed)
    }
}

/// A row of `jobs`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = jobs)]
pub struct JobRow {
    /// UUID.
    pub id: JobId,
    /// Which handler runs it.
    pub kind: String,
    /// Unique: a periodic job's kind, a one-off job's subject (one per key), or its id.
    pub key: String,
    /// JSON input of the handler (may hold what must not be logged).
    pub payload: String,
    /// JSON cursor the handler saved; where a resumed run carries on.
    pub checkpoint: Option<String>,
    /// Where it stands.
    pub status: JobStatus,
    /// Not run before this.
    pub run_at: NaiveDateTime,
    /// The claim token (instance id and a random part) of the runner holding it.
    pub lease_owner: Option<String>,
    /// Until when that runner holds it.
    pub lease_until: Option<NaiveDateTime>,
    /// Runs started since it was queued (or last re-armed).
    pub attempts: i32,
    /// The error of the last failed run.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: NaiveDateTime,
    /// Last change.
    pub updated_at: NaiveDateTime,
    /// When it completed or failed.
    pub finished_at: Option<NaiveDateTime>,
    /// Asked for again while it ran ([`crate::db::queue::JobSpec::RERUN_IF_ASKED_WHILE_RUNNING`]):
    /// queued once more when this run completes.
    pub rerun: bool,
}

/// The columns a runner sets when it is done with a run (all of them, `None` as NULL).
#[derive(Clone, Debug, AsChangeset)]
#[diesel(table_name = jobs, treat_none_as_null = true)]
pub struct JobChange {
    /// New status.
    pub status: JobStatus,
    /// Next run.
    pub run_at: NaiveDateTime,
    /// Checkpoint to keep.
    pub checkpoint: Option<String>,
    /// Lease owner (None: released).
    pub lease_owner: Option<String>,
    /// Lease end.
    pub lease_until: Option<NaiveDateTime>,
    /// Attempts.
    pub attempts: i32,
    /// Last error.
    pub last_error: Option<String>,
    /// Now.
    pub updated_at: NaiveDateTime,
    /// When it finished, if it did.
    pub finished_at: Option<NaiveDateTime>,
}

impl JobChange {
    /// The row as it is, with its lease released: a base to change a few columns of.
    pub fn released(row: &JobRow, at: NaiveDateTime) -> Self {
        Self {
            status: row.status,
            run_at: row.run_at,
            checkpoint: row.checkpoint.clone(),
            lease_owner: None,
            lease_until: None,
            attempts: row.attempts,
            last_error: row.last_error.clone(),
            updated_at: at,
            finished_at: row.finished_at,
        }
    }
}

/// The job `id` while `owner` holds its lease: the fence of every write a runner makes.
#[diesel::dsl::auto_type(no_type_alias)]
fn held_by<'a>(id: &'a JobId, owner: &'a str) -> _ {
    let running: JobStatus = JobStatus::Running;
    jobs::table
        .find(id)
        .filter(jobs::lease_owner.eq(owner))
        .filter(jobs::status.eq(running))
}

/// The jobs of one of `kinds` that are due at `now` and free (queued, or running under an
/// expired lease).
#[diesel::dsl::auto_type(no_type_alias)]
fn free_due<'a>(kinds: &'a [String], now: NaiveDateTime) -> _ {
    let live: [JobStatus; 2] = [JobStatus::Queued, JobStatus::Running];
    jobs::table
        .filter(jobs::status.eq_any(live))
        .filter(jobs::run_at.le(now))
        .filter(jobs::lease_until.is_null().or(jobs::lease_until.lt(now)))
        .filter(jobs::kind.eq_any(kinds))
}

impl JobRow {
    /// Stores a new job.
    pub async fn insert(conn: &mut Conn, row: &JobRow) -> Result<(), DbError> {
        super::insert(conn, jobs::table, row).await
    }

    /// The job with this id.
    pub async fn find(conn: &mut Conn, id: &JobId) -> Result<Option<Self>, DbError> {
        let q = jobs::table.find(id);
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The job with this key.
    pub async fn find_by_key(conn: &mut Conn, key: &str) -> Result<Option<Self>, DbError> {
        let q = jobs::table.filter(jobs::key.eq(key));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The job with this key, locked until the transaction ends.
    pub async fn find_by_key_locked(conn: &mut Conn, key: &str) -> Result<Option<Self>, DbError> {
        let q = for_update(jobs::table.filter(jobs::key.eq(key)).limit(1));
        Ok(with_conn!(conn, c => q.get_result::<Self>(c).await.optional())?)
    }

    /// Deletes a job.
    pub async fn delete(conn: &mut Conn, id: &JobId) -> Result<(), DbError> {
        let q = diesel::delete(jobs::table.find(id));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Whether a job of one of `kinds` is due at `now` and free (a plain read, so that an idle
    /// poll opens no transaction: on SQLite that would take the database's write lock).
    pub async fn any_due(
        conn: &mut Conn,
        kinds: &[String],
        now: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let q = free_due(kinds, now).select(jobs::id).limit(1);
        let found: Option<JobId> = with_conn!(conn, c => q.get_result(c).await.optional())?;
        Ok(found.is_some())
    }

    /// The oldest job of one of `kinds` that is due at `now` and free (queued, or running under
    /// an expired lease), locked until the transaction ends.
    ///
    /// Written per backend, on purpose: on PostgreSQL it is `FOR UPDATE SKIP LOCKED`, so
    /// instances claiming at once each take a different job instead of queueing on one row's
    /// lock (a row they skip is being claimed, and is no longer free once that commits). On
    /// SQLite it is the plain select: the transaction began IMMEDIATE and holds the one write
    /// lock.
    pub async fn next_due(
        conn: &mut Conn,
        kinds: &[String],
        now: NaiveDateTime,
    ) -> Result<Option<Self>, DbError> {
        let due = || {
            free_due(kinds, now)
                .order((jobs::run_at.asc(), jobs::created_at.asc(), jobs::id.asc()))
                .limit(1)
        };
        let row = match conn {
            Conn::Postgres(c) => {
                let c: &mut crate::db::PgConn = c;
                due().for_update().skip_locked().get_result::<Self>(c).await
            }
            Conn::Sqlite(c) => {
                let c: &mut crate::db::SqliteConn = c;
                due().get_result::<Self>(c).await
            }
        };
        Ok(row.optional()?)
    }

    /// Leases a job (found by [`JobRow::next_due`] in this transaction) to `owner` until
    /// `until`: running, one more attempt. Returns the leased row.
    pub async fn take_lease(
        conn: &mut Conn,
        id: &JobId,
        owner: &str,
        until: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<Self, DbError> {
        let q = diesel::update(jobs::table.find(id)).set((
            jobs::status.eq(JobStatus::Running),
            jobs::lease_owner.eq(owner),
            jobs::lease_until.eq(until),
            jobs::attempts.eq(jobs::attempts + 1),
            jobs::updated_at.eq(now),
        ));
        Ok(with_conn!(conn, c => q.get_result::<Self>(c).await)?)
    }

    /// Extends `owner`'s lease to `until`; false if it is no longer `owner`'s (taken over,
    /// paused).
    pub async fn renew(
        conn: &mut Conn,
        id: &JobId,
        owner: &str,
        until: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let q = diesel::update(held_by(id, owner))
            .set((jobs::lease_until.eq(until), jobs::updated_at.eq(now)));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Stores `owner`'s checkpoint and extends its lease; false if the lease is not `owner`'s.
    pub async fn save_checkpoint(
        conn: &mut Conn,
        id: &JobId,
        owner: &str,
        checkpoint: &str,
        until: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let q = diesel::update(held_by(id, owner)).set((
            jobs::checkpoint.eq(checkpoint),
            jobs::lease_until.eq(until),
            jobs::updated_at.eq(now),
        ));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Writes how `owner`'s run ended; false (nothing written) if the lease is not `owner`'s. A
    /// run that completed a job asked for again meanwhile ([`Self::ask_rerun`]) queues it once
    /// more, due now.
    pub async fn settle(
        conn: &mut Conn,
        id: &JobId,
        owner: &str,
        change: &JobChange,
    ) -> Result<bool, DbError> {
        let q =
            diesel::update(jobs::table.find(id).filter(jobs::lease_owner.eq(owner))).set(change);
        if with_conn!(conn, c => q.execute(c).await)? != 1 {
            return Ok(false);
        }
        if change.status == JobStatus::Completed {
            let again = diesel::update(
                jobs::table
                    .find(id)
                    .filter(jobs::rerun)
                    .filter(jobs::status.eq(JobStatus::Completed)),
            )
            .set((
                jobs::status.eq(JobStatus::Queued),
                jobs::rerun.eq(false),
                jobs::run_at.eq(change.updated_at),
                jobs::attempts.eq(0),
                jobs::finished_at.eq(None::<NaiveDateTime>),
            ));
            with_conn!(conn, c => again.execute(c).await)?;
        }
        Ok(true)
    }

    /// Asks the running job `id` to run once more when this run ends; false if it is not
    /// running (any more).
    pub async fn ask_rerun(conn: &mut Conn, id: &JobId) -> Result<bool, DbError> {
        let q = diesel::update(
            jobs::table
                .find(id)
                .filter(jobs::status.eq(JobStatus::Running)),
        )
        .set(jobs::rerun.eq(true));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Gives `owner`'s job back (its runner is shutting down before the job finished): queued
    /// again at once, keeping its checkpoint; the interrupted run does not count as an attempt.
    pub async fn release(
        conn: &mut Conn,
        id: &JobId,
        owner: &str,
        now: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let q = diesel::update(held_by(id, owner)).set((
            jobs::status.eq(JobStatus::Queued),
            jobs::lease_owner.eq(None::<String>),
            jobs::lease_until.eq(None::<NaiveDateTime>),
            jobs::attempts.eq(jobs::attempts - 1),
            jobs::updated_at.eq(now),
        ));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Writes `change` whoever holds the job (callers lock the row first).
    pub async fn update(conn: &mut Conn, id: &JobId, change: &JobChange) -> Result<(), DbError> {
        let q = diesel::update(jobs::table.find(id)).set(change);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Pauses a queued or running job (a runner holding it loses its lease); false if it was
    /// neither.
    pub async fn pause(conn: &mut Conn, id: &JobId, now: NaiveDateTime) -> Result<bool, DbError> {
        let q = diesel::update(
            jobs::table
                .find(id)
                .filter(jobs::status.eq_any([JobStatus::Queued, JobStatus::Running])),
        )
        .set((
            jobs::status.eq(JobStatus::Paused),
            jobs::lease_owner.eq(None::<String>),
            jobs::lease_until.eq(None::<NaiveDateTime>),
            jobs::updated_at.eq(now),
        ));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Queues a paused job to run now; false if it was not paused.
    pub async fn resume(conn: &mut Conn, id: &JobId, now: NaiveDateTime) -> Result<bool, DbError> {
        let q = diesel::update(
            jobs::table
                .find(id)
                .filter(jobs::status.eq(JobStatus::Paused)),
        )
        .set((
            jobs::status.eq(JobStatus::Queued),
            jobs::run_at.eq(now),
            jobs::updated_at.eq(now),
        ));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }
}
