//! `follower_syncs`: one row per follower sync of an Official Account. Its counters of what the
//! followers did are added in the transaction that writes them (exact after any crash); the
//! pages done and WeChat's count are written page by page (the cursor is the job's checkpoint).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{
    follower_sync_seen as seen, follower_syncs as f, official_account_identities as oa,
};
use crate::db::{Conn, DbError};
use crate::types::{AppId, FollowerSyncId, JobId, OpenId};
use crate::with_conn;

crate::db::text_enum::text_enum! {
    /// Where a follower sync stands.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum SyncStatus mirrored_by sync_status_variants {
        /// Waiting for a job runner.
        Queued = "queued",
        /// Paging through the followers.
        Running = "running",
        /// Stopped by WeChat's API quota (45009); it resumes by itself (see `lastError`).
        Paused = "paused",
        /// Done: every follower was recorded, those no longer listed marked unsubscribed.
        Completed = "completed",
        /// Gave up (see `lastError`).
        Failed = "failed",
    }
}

impl SyncStatus {
    /// Whether the sync will not run again.
    pub fn is_finished(self) -> bool {
        matches!(self, SyncStatus::Completed | SyncStatus::Failed)
    }
}

/// The finished statuses.
const FINISHED: [SyncStatus; 2] = [SyncStatus::Completed, SyncStatus::Failed];

/// A row of `follower_syncs`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = f)]
pub struct FollowerSyncRow {
    /// UUID.
    pub id: FollowerSyncId,
    /// The Official Account.
    pub app_id: AppId,
    /// The job that runs it.
    pub job_id: JobId,
    /// Where it stands.
    pub status: SyncStatus,
    /// The admin key that asked for it (none: scheduled).
    pub requested_by: Option<String>,
    /// Followers in all, as WeChat counted them on the first page.
    pub total: Option<i64>,
    /// Pages of `user/get` done.
    pub pages: i32,
    /// Followers fed to the sighting function.
    pub followers_seen: i64,
    /// Users those sightings created.
    pub users_created: i64,
    /// Merges those sightings caused.
    pub users_merged: i64,
    /// Identities marked unsubscribed at the end (no longer listed).
    pub unsubscribed: i64,
    /// Followers whose sighting was refused (a unionid conflict).
    pub errors: i64,
    /// Why the sync paused or failed last.
    pub last_error: Option<String>,
    /// When it was asked for.
    pub created_at: NaiveDateTime,
    /// When its first page started.
    pub started_at: Option<NaiveDateTime>,
    /// When it completed or failed.
    pub finished_at: Option<NaiveDateTime>,
}

/// The counters of a sync so far (what its checkpoint holds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncCounts {
    /// Followers in all (WeChat's count on the first page).
    pub total: Option<i64>,
    /// Pages done.
    pub pages: i32,
    /// Followers seen.
    pub followers_seen: i64,
    /// Users created.
    pub users_created: i64,
    /// Merges.
    pub users_merged: i64,
    /// Refused sightings.
    pub errors: i64,
    /// Openids `user/get` listed (whether or not their sighting succeeded).
    #[serde(default)]
    pub listed: i64,
}

impl FollowerSyncRow {
    /// Stores a new sync unless its job has one already (then the caller reads that one).
    pub async fn insert(conn: &mut Conn, row: &FollowerSyncRow) -> Result<(), DbError> {
        let q = diesel::insert_into(f::table)
            .values(row)
            .on_conflict(f::job_id)
            .do_nothing();
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// The sync with this id.
    pub async fn find(conn: &mut Conn, id: &FollowerSyncId) -> Result<Option<Self>, DbError> {
        let q = f::table.find(id);
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The sync its job runs.
    pub async fn find_by_job(conn: &mut Conn, job_id: &JobId) -> Result<Option<Self>, DbError> {
        let q = f::table.filter(f::job_id.eq(job_id)).limit(1);
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The syncs of an app, newest first (by id: UUIDv7s, in creation order), older than the
    /// sync `before` if given; at most `limit`.
    pub async fn for_app(
        conn: &mut Conn,
        app_id: &AppId,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        Ok(with_conn!(conn, c => {
            let mut q = f::table
                .filter(f::app_id.eq(app_id))
                .order(f::id.desc())
                .limit(limit)
                .into_boxed();
            if let Some(b) = before {
                q = q.filter(f::id.lt(b.to_owned()));
            }
            q.load::<Self>(c).await
        })?)
    }

    /// The newest sync of an app, if any.
    pub async fn latest(conn: &mut Conn, app_id: &AppId) -> Result<Option<Self>, DbError> {
        Ok(Self::for_app(conn, app_id, None, 1)
            .await?
            .into_iter()
            .next())
    }

    /// Sets the status (and `started_at` the first time it runs, `finished_at` when it ends).
    pub async fn set_status(
        conn: &mut Conn,
        id: &FollowerSyncId,
        status: SyncStatus,
        last_error: Option<&str>,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        let finished = status.is_finished().then_some(at);
        // A finished sync stays finished (a job run again after its end changes nothing).
        let q = diesel::update(f::table.find(id).filter(f::status.ne_all(FINISHED))).set((
            f::status.eq(status),
            f::last_error.eq(last_error),
            f::finished_at.eq(finished),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        if status == SyncStatus::Running {
            let q = diesel::update(f::table.find(id).filter(f::started_at.is_null()))
                .set(f::started_at.eq(at));
            with_conn!(conn, c => q.execute(c).await)?;
        }
        Ok(())
    }

    /// Writes how far the sync got: WeChat's latest count and the pages done (the checkpoint's;
    /// the other counters are added by [`Self::add_counts`] as the followers are written).
    pub async fn set_progress(
        conn: &mut Conn,
        id: &FollowerSyncId,
        n: &SyncCounts,
    ) -> Result<(), DbError> {
        let q = diesel::update(f::table.find(id)).set((f::total.eq(n.total), f::pages.eq(n.pages)));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Adds what a chunk of followers did (`followers_seen`, `users_created`, `users_merged`,
    /// `errors` of `n`) to the sync's counters. Run it in the transaction that wrote those
    /// followers: the counters then count each write once, whenever a crash comes.
    pub async fn add_counts(
        conn: &mut Conn,
        id: &FollowerSyncId,
        n: &SyncCounts,
    ) -> Result<(), DbError> {
        let q = diesel::update(f::table.find(id)).set((
            f::followers_seen.eq(f::followers_seen + n.followers_seen),
            f::users_created.eq(f::users_created + n.users_created),
            f::users_merged.eq(f::users_merged + n.users_merged),
            f::errors.eq(f::errors + n.errors),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Which of `openids` the sync has listed already (a chunk done again after a crash).
    pub async fn already_seen(
        conn: &mut Conn,
        id: &FollowerSyncId,
        openids: &[OpenId],
    ) -> Result<std::collections::HashSet<OpenId>, DbError> {
        if openids.is_empty() {
            return Ok(Default::default());
        }
        let q = seen::table
            .filter(seen::sync_id.eq(id))
            .filter(seen::openid.eq_any(openids))
            .select(seen::openid);
        let found: Vec<OpenId> = with_conn!(conn, c => q.load(c).await)?;
        Ok(found.into_iter().collect())
    }

    /// Remembers that the sync listed these openids.
    pub async fn record_seen(
        conn: &mut Conn,
        id: &FollowerSyncId,
        openids: &[OpenId],
    ) -> Result<(), DbError> {
        if openids.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = openids
            .iter()
            .map(|o| (seen::sync_id.eq(id), seen::openid.eq(o)))
            .collect();
        // A page done again after a crash lists the same openids again.
        match conn {
            // diesel-async has no multi-row insert for SQLite; a row a statement costs little
            // in process.
            Conn::Sqlite(c) => {
                for row in rows {
                    let q = diesel::insert_or_ignore_into(seen::table).values(row);
                    q.execute(&mut **c).await?;
                }
            }
            Conn::Postgres(c) => {
                let q = diesel::insert_into(seen::table)
                    .values(rows)
                    .on_conflict_do_nothing();
                q.execute(&mut **c).await?;
            }
        }
        Ok(())
    }

    /// Completes the sync (if it is not finished already: then nothing happens and `None`
    /// comes back) and marks the app's identities that it did not list, and that did not follow
    /// again since it started (`started`), as unsubscribed; forgets what it listed; stores and
    /// returns how many. Run it inside a transaction, so that the three happen together.
    pub async fn complete_and_mark_unlisted(
        conn: &mut Conn,
        id: &FollowerSyncId,
        app_id: &AppId,
        started: NaiveDateTime,
        at: NaiveDateTime,
    ) -> Result<Option<i64>, DbError> {
        let q = diesel::update(f::table.find(id).filter(f::status.ne_all(FINISHED))).set((
            f::status.eq(SyncStatus::Completed),
            f::last_error.eq(None::<String>),
            f::finished_at.eq(at),
        ));
        if with_conn!(conn, c => q.execute(c).await)? == 0 {
            return Ok(None);
        }
        let listed = seen::table
            .filter(seen::sync_id.eq(id))
            .filter(seen::openid.eq(oa::openid));
        let q = diesel::update(
            oa::table
                .filter(oa::app_id.eq(app_id))
                .filter(oa::subscribed.eq(true))
                .filter(
                    oa::subscribed_at
                        .is_null()
                        .or(oa::subscribed_at.lt(started)),
                )
                .filter(diesel::dsl::not(diesel::dsl::exists(listed))),
        )
        .set(oa::subscribed.eq(false));
        let n = with_conn!(conn, c => q.execute(c).await)? as i64;
        let q = diesel::update(f::table.find(id)).set(f::unsubscribed.eq(n));
        with_conn!(conn, c => q.execute(c).await)?;
        Self::forget_seen(conn, id).await?;
        Ok(Some(n))
    }

    /// Forgets what finished syncs listed (a sync that failed leaves its list behind); how
    /// many rows.
    pub async fn forget_seen_of_finished(conn: &mut Conn) -> Result<usize, DbError> {
        let finished = f::table.filter(f::status.eq_any(FINISHED)).select(f::id);
        let q = diesel::delete(seen::table.filter(seen::sync_id.eq_any(finished)));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Marks a sync whose job gave up as failed (with the job's error), if it is not finished.
    pub async fn fail(
        conn: &mut Conn,
        id: &FollowerSyncId,
        error: &str,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        Self::set_status(conn, id, SyncStatus::Failed, Some(error), at).await
    }

    /// Forgets what the sync listed.
    pub async fn forget_seen(conn: &mut Conn, id: &FollowerSyncId) -> Result<(), DbError> {
        let q = diesel::delete(seen::table.filter(seen::sync_id.eq(id)));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }
}
