//! Official Account followers: the follower sync (run page by page by the `follower_sync` job),
//! one follower refreshed on demand, and the shared access token handed to other services.
//!
//! Every follower WeChat lists goes through [`sighting::record`] with reason FOLLOWER_SYNC, so a
//! follower who once logged into a bound Mini Program becomes one user with both identities.

use chrono::NaiveDateTime;
use futures_util::StreamExt as _;
use futures_util::stream;

use super::access::{Access, Admin};
use super::rules::MergeReason;
use super::sighting::{self, Seen, Sighting};
use super::wechat_token::AppToken;
use super::{Identity, IdentityError};
use crate::auth::Caller;
use crate::config::AppConfig;
use crate::db::models::follower_sync::{FollowerSyncRow, SyncCounts};
use crate::db::models::now;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::{Conn, transaction};
use crate::types::{AppId, AppKind, OpenId, UnionId, new_row_id};
use crate::wechat::server_api::{BATCHGET_MAX, FollowerInfo};

/// The kind of the follower-sync job (its key is `follower_sync:{appId}`: one per app).
pub const FOLLOWER_SYNC: &str = "follower_sync";

/// Syncs of one app an admin can list at once.
pub const MAX_SYNCS_LISTED: i64 = 100;

/// Where a sync stands; stored lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// Waiting for a runner.
    Queued,
    /// Paging through the followers.
    Running,
    /// Stopped by WeChat's quota (45009); resumes by itself.
    Paused,
    /// Done.
    Completed,
    /// Gave up (see `last_error`).
    Failed,
}

impl SyncStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Queued => "queued",
            SyncStatus::Running => "running",
            SyncStatus::Paused => "paused",
            SyncStatus::Completed => "completed",
            SyncStatus::Failed => "failed",
        }
    }

    /// From its stored form (unknown: failed).
    pub fn parse(s: &str) -> Self {
        [Self::Queued, Self::Running, Self::Paused, Self::Completed]
            .into_iter()
            .find(|x| x.as_str() == s)
            .unwrap_or(Self::Failed)
    }
}

/// What the job hands from run to run: the cursor and the counters.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SyncCheckpoint {
    /// The `next_openid` of the next page ("" first).
    pub next_openid: String,
    /// Counters so far.
    pub counts: SyncCounts,
}

/// The job's payload.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SyncPayload {
    /// The `follower_syncs` row.
    pub sync_id: String,
    /// The Official Account.
    pub app_id: AppId,
}

/// How a page went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageOutcome {
    /// More pages follow.
    More,
    /// That was the last.
    Done,
}

impl Access {
    /// The app's shared access token for another service (admin and service API keys; each
    /// hand-out is logged with the key's name). Other teams use it instead of fetching their
    /// own, which would knock ours out.
    pub async fn wechat_access_token(&self, app_id: &str) -> Result<AppToken, IdentityError> {
        let reader = self.reader()?;
        let name = match self.caller()? {
            Caller::ApiKey { name, .. } => name.clone(),
            _ => String::new(),
        };
        let app = reader.any_app(app_id)?;
        let token = reader.access_tokens.token(app).await?;
        tracing::info!(app = %app.app_id, key = %name, "handed out the app's access token");
        Ok(token)
    }
}

impl Admin<'_> {
    /// Starts a full follower sync of an Official Account on the job runner, or returns the one
    /// that is queued or running (one per app across instances).
    pub async fn start_follower_sync(
        &self,
        app_id: &str,
    ) -> Result<FollowerSyncRow, IdentityError> {
        let app = self.app(app_id, AppKind::OfficialAccount)?;
        self.identity
            .enqueue_follower_sync(&app.app_id, Some(self.name))
            .await
    }

    /// A sync by id.
    pub async fn follower_sync(&self, id: &str) -> Result<Option<FollowerSyncRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(FollowerSyncRow::find(&mut conn, id).await?)
    }

    /// The latest syncs of an app (at most [`MAX_SYNCS_LISTED`]), newest first.
    pub async fn follower_syncs(
        &self,
        app_id: &str,
        limit: i64,
    ) -> Result<Vec<FollowerSyncRow>, IdentityError> {
        let app = self.app(app_id, AppKind::OfficialAccount)?;
        let mut conn = self.db.conn().await?;
        let limit = limit.clamp(1, MAX_SYNCS_LISTED);
        Ok(FollowerSyncRow::for_app(&mut conn, &app.app_id, limit).await?)
    }

    /// Asks WeChat about one person (`user/info`) and records what it says (follow state,
    /// unionid: a merge if it shows two users are one person).
    pub async fn sync_follower(
        &self,
        app_id: &str,
        openid: &str,
    ) -> Result<OfficialAccountIdentityRow, IdentityError> {
        let app = self.app(app_id, AppKind::OfficialAccount)?;
        if super::check_wechat_id("openid", openid).is_err() {
            return Err(IdentityError::BadInput(
                "openid must be 1-64 letters, digits, `-` or `_`".into(),
            ));
        }
        let openid = OpenId::new(openid);
        let info = self
            .access_tokens
            .call(app, |token| {
                let openid = &openid;
                async move { self.wechat.follower_info(&token, openid.as_str()).await }
            })
            .await?;
        let seen = self
            .identity
            .record_followers(app, &[info], MergeReason::FollowerSync, None)
            .await?;
        let mut conn = self.db.conn().await?;
        OfficialAccountIdentityRow::find(&mut conn, &app.app_id, &openid)
            .await?
            .filter(|_| seen.errors == 0)
            .ok_or_else(|| {
                IdentityError::Conflict(
                    "WeChat's unionid for this follower differs from the one on record".into(),
                )
            })
    }
}

impl Identity {
    /// Queues a follower sync (see [`Admin::start_follower_sync`]); `requested_by` none: a
    /// scheduled one.
    pub async fn enqueue_follower_sync(
        &self,
        app_id: &AppId,
        requested_by: Option<&str>,
    ) -> Result<FollowerSyncRow, IdentityError> {
        let sync_id = new_row_id();
        let payload = serde_json::to_value(SyncPayload {
            sync_id: sync_id.clone(),
            app_id: app_id.clone(),
        })
        .map_err(|e| IdentityError::Internal(e.to_string()))?;
        let key = format!("{FOLLOWER_SYNC}:{app_id}");
        let job = crate::db::queue::enqueue(&self.db, FOLLOWER_SYNC, Some(&key), &payload).await?;
        let mut conn = self.db.conn().await?;
        if let Some(existing) = FollowerSyncRow::find_by_job(&mut conn, &job.id).await? {
            return Ok(existing);
        }
        let row = FollowerSyncRow {
            id: sync_id,
            app_id: app_id.clone(),
            job_id: job.id,
            status: SyncStatus::Queued.as_str().into(),
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
        FollowerSyncRow::insert(&mut conn, &row).await?;
        Ok(row)
    }

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

    /// Sets a sync's status (the job's bookkeeping); returns the row as it is now.
    pub async fn set_follower_sync_status(
        &self,
        sync_id: &str,
        status: SyncStatus,
        last_error: Option<&str>,
    ) -> Result<Option<FollowerSyncRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        FollowerSyncRow::set_status(&mut conn, sync_id, status.as_str(), last_error, now()).await?;
        Ok(FollowerSyncRow::find(&mut conn, sync_id).await?)
    }

    /// One page of a sync: `user/get` after the checkpoint's cursor, `batchget` 100 at a time
    /// (`wechat.follower_sync_concurrency` at once), every follower through the sighting
    /// function; the checkpoint moves on and the counters are stored.
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
        let sync_id = sync.id.as_str();
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
        let results: Vec<Result<Tally, IdentityError>> = stream::iter(chunks)
            .map(|chunk| self.sync_chunk(app, chunk, sync_id))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let n = &mut cp.counts;
        for result in results {
            let seen = result?;
            n.followers_seen += seen.followers;
            n.users_created += seen.created;
            n.users_merged += seen.merged;
            n.errors += seen.errors;
        }
        // The list's end is a page with no openids (WeChat's way): not a page of followers.
        if !openids.is_empty() {
            n.pages += 1;
        }
        if n.total.is_none() {
            n.total = Some(page.total);
        }
        let mut conn = self.db.conn().await?;
        FollowerSyncRow::set_counts(&mut conn, &sync.id, n).await?;
        if openids.is_empty() || page.next_openid.is_empty() {
            return Ok(PageOutcome::Done);
        }
        cp.next_openid = page.next_openid;
        Ok(PageOutcome::More)
    }

    /// Up to 100 followers of a sync page: `batchget`, then recorded.
    async fn sync_chunk(
        &self,
        app: &AppConfig,
        chunk: Vec<String>,
        sync_id: &str,
    ) -> Result<Tally, IdentityError> {
        let chunk = &chunk;
        let infos = self
            .access_tokens
            .call(app, |token| async move {
                self.wechat.follower_infos(&token, chunk).await
            })
            .await?;
        self.record_followers(app, &infos, MergeReason::FollowerSync, Some(sync_id))
            .await
    }

    /// Ends a sync: identities it did not list are marked unsubscribed; completed.
    pub async fn finish_follower_sync(&self, sync: &FollowerSyncRow) -> Result<i64, IdentityError> {
        let started = sync.started_at.unwrap_or(sync.created_at);
        let mut conn = self.db.conn().await?;
        let n =
            FollowerSyncRow::mark_unlisted_unsubscribed(&mut conn, &sync.id, &sync.app_id, started)
                .await?;
        FollowerSyncRow::set_status(
            &mut conn,
            &sync.id,
            SyncStatus::Completed.as_str(),
            None,
            now(),
        )
        .await?;
        Ok(n)
    }

    /// Records followers (one transaction): each through [`sighting::record`]; a sync (`sync`)
    /// remembers whom it listed. A follower whose unionid conflicts with the one on record is
    /// counted in `errors` and left as it is.
    pub(super) async fn record_followers(
        &self,
        app: &AppConfig,
        infos: &[FollowerInfo],
        reason: MergeReason,
        sync: Option<&str>,
    ) -> Result<Tally, IdentityError> {
        let parsed: Vec<(OpenId, Option<UnionId>, &FollowerInfo)> = infos
            .iter()
            .filter_map(|i| {
                super::check_wechat_id("openid", &i.openid).ok()?;
                let unionid = match i.unionid.as_deref() {
                    Some(u) => Some(
                        super::check_wechat_id("unionid", u)
                            .ok()
                            .map(|()| UnionId::new(u))?,
                    ),
                    None => None,
                };
                Some((OpenId::new(&i.openid), unionid, i))
            })
            .collect();
        let skipped = (infos.len() - parsed.len()) as i64;
        let parsed = &parsed;
        let mut seen = transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                let mut seen = Tally::default();
                for (openid, unionid, info) in parsed {
                    let s = Sighting {
                        app_id: &app.app_id,
                        openid,
                        unionid: unionid.as_ref(),
                        reason,
                        profile: None,
                        seen: Seen::Follower {
                            subscribed: info.follows(),
                            subscribed_at: info.subscribe_time.and_then(unix_time),
                        },
                    };
                    match sighting::record(conn, &s).await {
                        Ok(r) => {
                            seen.followers += 1;
                            seen.created += i64::from(r.new_user);
                            seen.merged += i64::from(r.merged);
                        }
                        Err(IdentityError::Conflict(message)) => {
                            tracing::warn!(app = %app.app_id, %message, "follower refused");
                            seen.errors += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if let Some(sync) = sync {
                    let listed: Vec<&OpenId> = parsed.iter().map(|(o, _, _)| o).collect();
                    FollowerSyncRow::record_seen(conn, sync, &listed).await?;
                }
                Ok(seen)
            },
        )
        .await?;
        seen.errors += skipped;
        Ok(seen)
    }
}

/// What one batch of followers did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Followers recorded.
    pub followers: i64,
    /// Users created.
    pub created: i64,
    /// Merges.
    pub merged: i64,
    /// Refused or malformed.
    pub errors: i64,
}

/// A Unix time from WeChat as stored (UTC).
pub fn unix_time(secs: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc())
}
