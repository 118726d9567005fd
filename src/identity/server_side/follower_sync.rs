//! The follower sync, page by page (the `follower_sync` job runs it; see `crate::jobs`): queued
//! one per app, `user/get` after the checkpoint's cursor, `batchget` 100 at a time, every
//! follower through the sighting function (`record_followers`), and at the end the
//! identities it did not list marked unsubscribed.

use futures_util::StreamExt as _;
use futures_util::stream;

use super::followers::Tally;
use crate::config::AppConfig;
pub use crate::db::models::follower_sync::SyncStatus;
use crate::db::models::follower_sync::{FollowerSyncRow, SyncCounts};
use crate::db::models::now;
use crate::db::queue::{JobSpec, enqueue_in};
use crate::db::{Conn, transaction};
use crate::identity::access::System;
use crate::identity::rules::MergeReason;
use crate::identity::{IdentityError, Parts};
use crate::types::{AppId, AppKind, FollowerSyncId, OpenId};
use crate::wechat::server_api::BATCHGET_MAX;

/// What the job hands from run to run: the cursor and the counters.
///
/// Of the counters, `pages`, `listed` and `total` are the checkpoint's own (a page done again
/// after a crash is counted once). `followers_seen`, `users_created`, `users_merged` and `errors`
/// are a copy of the sync row's, which each chunk's transaction adds to as it writes its
/// followers: the row is exact whatever page a crash hit, and a resumed run ignores these copies
/// (so a checkpoint written before the row kept them resumes just the same).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SyncCheckpoint {
    /// The `next_openid` of the next page ("" first).
    pub next_openid: String,
    /// Counters so far.
    pub counts: SyncCounts,
}

/// The follower-sync job, one per app (its key is `follower_sync:{appId}`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SyncPayload {
    /// The `follower_syncs` row.
    pub sync_id: FollowerSyncId,
    /// The Official Account.
    pub app_id: AppId,
}

impl JobSpec for SyncPayload {
    const KIND: &'static str = "follower_sync";

    fn dedup_key(&self) -> Option<String> {
        Some(self.app_id.to_string())
    }
}

/// How a page went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageOutcome {
    /// More pages follow.
    More,
    /// That was the last.
    Done,
}

impl Parts {
    /// Queues a follower sync (see [`Admin::start_follower_sync`]); `requested_by` none: a
    /// scheduled one.
    pub(in crate::identity) async fn enqueue_follower_sync(
        &self,
        app_id: &AppId,
        requested_by: Option<&str>,
    ) -> Result<FollowerSyncRow, IdentityError> {
        let sync_id = FollowerSyncId::generate();
        let payload = SyncPayload {
            sync_id: sync_id.clone(),
            app_id: app_id.clone(),
        };
        // The job and its sync row in one transaction: a runner woken by the job finds the row.
        let sync = transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<FollowerSyncRow, IdentityError> {
                let job = enqueue_in(conn, &payload).await?;
                if let Some(existing) = FollowerSyncRow::find_by_job(conn, &job.id).await? {
                    return Ok(existing);
                }
                let row = FollowerSyncRow {
                    id: sync_id.clone(),
                    app_id: app_id.clone(),
                    job_id: job.id.clone(),
                    status: SyncStatus::Queued,
                    requested_by: requested_by.map(str::to_owned),
                    total: None,
                    pages: 0,
                    followers_seen: 0,
                    users_created: 0,
                    users_merged: 0,
                    unsubscribed: 0,
                    errors: 0,
                    last_error: None,
                    created_at: now(),
                    started_at: None,
                    finished_at: None,
                };
                FollowerSyncRow::insert(conn, &row).await?;
                Ok(row)
            },
        )
        .await?;
        self.db.wake_jobs();
        Ok(sync)
    }
}

impl System {
    /// Deletes the lists of finished syncs (one that failed leaves its list behind).
    pub async fn forget_finished_sync_lists(&self) -> Result<usize, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(FollowerSyncRow::forget_seen_of_finished(&mut conn).await?)
    }
}

impl Parts {
    /// The sync as it stands: one whose job gave up for good (or is gone) is marked failed with
    /// the job's error first.
    pub(in crate::identity) async fn reconciled_sync(
        &self,
        row: FollowerSyncRow,
    ) -> Result<FollowerSyncRow, IdentityError> {
        if row.status.is_finished() {
            return Ok(row);
        }
        let mut conn = self.db.conn().await?;
        let job = crate::db::models::job::JobRow::find(&mut conn, &row.job_id).await?;
        let error = match &job {
            None => "its job no longer exists".to_owned(),
            Some(j) if j.status == crate::db::models::job::JobStatus::Failed => j
                .last_error
                .clone()
                .unwrap_or_else(|| "its job failed".into()),
            Some(_) => return Ok(row),
        };
        FollowerSyncRow::fail(&mut conn, &row.id, &error, now()).await?;
        Ok(FollowerSyncRow::find(&mut conn, &row.id)
            .await?
            .unwrap_or(row))
    }
}

impl System {
    /// Queues a sync of every Official Account whose `follower_sync_interval_secs` has passed
    /// since its last sync ended (the purge job's sweep); how many were queued.
    pub async fn schedule_follower_syncs(&self) -> Result<usize, IdentityError> {
        let mut queued = 0;
        for app in &self.config.apps {
            let Some(every) = app.follower_sync_interval_secs else {
                continue;
            };
            let mut conn = self.db.conn().await?;
            let latest = FollowerSyncRow::latest(&mut conn, &app.app_id).await?;
            drop(conn);
            let latest = match latest {
                Some(row) => Some(self.reconciled_sync(row).await?),
                None => None,
            };
            let due = match &latest {
                None => true,
                Some(s) => s
                    .finished_at
                    .is_some_and(|at| now() - at >= chrono::TimeDelta::seconds(every as i64)),
            };
            if due {
                self.enqueue_follower_sync(&app.app_id, None).await?;
                queued += 1;
            }
        }
        Ok(queued)
    }
}

impl System {
    /// Sets a sync's status (the job's bookkeeping); returns the row as it is now.
    pub async fn set_follower_sync_status(
        &self,
        sync_id: &FollowerSyncId,
        status: SyncStatus,
        last_error: Option<&str>,
    ) -> Result<Option<FollowerSyncRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        FollowerSyncRow::set_status(&mut conn, sync_id, status, last_error, now()).await?;
        Ok(FollowerSyncRow::find(&mut conn, sync_id).await?)
    }
}

impl System {
    /// One page of a sync: `user/get` after the checkpoint's cursor, `batchget` 100 at a time
    /// (`wechat.follower_sync_concurrency` at once), every follower through the sighting
    /// function (each chunk adding to the row's counters as it commits); the checkpoint moves on
    /// and the pages done are stored.
    pub async fn follower_sync_page(
        &self,
        sync: &FollowerSyncRow,
        cp: &mut SyncCheckpoint,
    ) -> Result<PageOutcome, IdentityError> {
        let app = self.app(sync.app_id.as_str(), AppKind::OfficialAccount)?;
        let cursor = cp.next_openid.clone();
        let page = self
            .access_tokens
            .call(app, |token| {
                let cursor = cursor.clone();
                async move { self.wechat.followers(&token, &cursor).await }
            })
            .await?;
        let sync_id = &sync.id;
        let openids = page.openids();
        // Each chunk in flight holds a connection: leave half the pool to everyone else.
        let concurrency = self
            .config
            .wechat
            .follower_sync_concurrency
            .min(self.config.database_pool_size / 2)
            .max(1);
        let chunks: Vec<Vec<String>> = openids
            .chunks(BATCHGET_MAX)
            .map(<[String]>::to_vec)
            .collect();
        // Each chunk adds its counts to the sync's row as it commits (see `record_followers`).
        let results: Vec<Result<Tally, IdentityError>> = stream::iter(chunks)
            .map(|chunk| self.sync_chunk(app, chunk, sync_id))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for result in results {
            result?;
        }
        let n = &mut cp.counts;
        n.listed += openids.len() as i64;
        // The list's end is a page with no openids (WeChat's way): not a page of followers.
        if !openids.is_empty() {
            n.pages += 1;
        }
        // The latest count: followers come and go while the sync runs.
        n.total = Some(page.total);
        let mut conn = self.db.conn().await?;
        FollowerSyncRow::set_progress(&mut conn, &sync.id, n).await?;
        // The checkpoint carries the row's counters along (for the log); the row is the record.
        if let Some(row) = FollowerSyncRow::find(&mut conn, &sync.id).await? {
            n.followers_seen = row.followers_seen;
            n.users_created = row.users_created;
            n.users_merged = row.users_merged;
            n.errors = row.errors;
        }
        if openids.is_empty() || page.next_openid.is_empty() {
            return Ok(PageOutcome::Done);
        }
        cp.next_openid = page.next_openid;
        Ok(PageOutcome::More)
    }
}

impl Parts {
    /// Up to 100 followers of a sync page: `batchget`, then recorded.
    async fn sync_chunk(
        &self,
        app: &AppConfig,
        chunk: Vec<String>,
        sync_id: &FollowerSyncId,
    ) -> Result<Tally, IdentityError> {
        let chunk = &chunk;
        let infos = self
            .access_tokens
            .call(app, |token| async move {
                self.wechat.follower_infos(&token, chunk).await
            })
            .await?;
        // Whom `user/get` listed counts as listed, whatever batchget said of them.
        let listed: Vec<OpenId> = chunk.iter().map(OpenId::new).collect();
        self.record_followers(
            app,
            &infos,
            MergeReason::FollowerSync,
            Some((sync_id, &listed)),
        )
        .await
    }
}

impl System {
    /// Ends a sync: completed, and the identities it did not list marked unsubscribed, in one
    /// transaction that happens once (a job run again after it changes nothing). Nobody is
    /// marked when the sync listed fewer followers than WeChat counts (a list cut short is not
    /// a list of who left): the sync fails and says so. `None`: it had ended already.
    pub async fn finish_follower_sync(
        &self,
        sync: &FollowerSyncRow,
        counts: &SyncCounts,
    ) -> Result<Option<i64>, IdentityError> {
        let total = counts.total.unwrap_or(0);
        if counts.listed * 100 < total * 99 {
            let message = format!(
                "WeChat counted {total} followers but listed {}; nobody was marked unsubscribed",
                counts.listed
            );
            let mut conn = self.db.conn().await?;
            FollowerSyncRow::fail(&mut conn, &sync.id, &message, now()).await?;
            return Err(IdentityError::Wechat(
                crate::wechat::WechatError::Unavailable {
                    reason: message,
                    errcode: None,
                },
            ));
        }
        let started = sync.started_at.unwrap_or(sync.created_at);
        let (id, app_id) = (&sync.id, &sync.app_id);
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                Ok(
                    FollowerSyncRow::complete_and_mark_unlisted(conn, id, app_id, started, now())
                        .await?,
                )
            },
        )
        .await
    }
}
