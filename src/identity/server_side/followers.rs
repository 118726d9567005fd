//! Official Account followers: what admins may do with follower syncs (the sync itself is
//! `follower_sync`), one follower refreshed on demand, the shared access token handed to other
//! services, and `record_followers`, which the sync and the webhook feed.
//!
//! Every follower WeChat lists goes through [`sighting::record`] with reason FOLLOWER_SYNC, so a
//! follower who once logged into a bound Mini Program becomes one user with both identities.

use crate::identity::audit::AuditAction;
use chrono::NaiveDateTime;

use super::wechat_token::KeptSecret;
use crate::auth::Caller;
use crate::config::AppConfig;
use crate::db::models::follower_sync::{FollowerSyncRow, SyncCounts};
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::{Conn, transaction};
use crate::identity::access::{Access, Admin};
use crate::identity::rules::MergeReason;
use crate::identity::sighting::{self, Seen, Sighting};
use crate::identity::{IdentityError, Parts};
use crate::types::{AppKind, FollowerSyncId, OpenId, UnionId};
use crate::wechat::server_api::FollowerInfo;

/// Syncs of one app listed per page at most.
pub const MAX_SYNCS_LISTED: i64 = 100;

impl Access {
    /// The app's shared access token for another service (admin and service API keys; each
    /// hand-out is logged with the key's name). Other teams use it instead of fetching their
    /// own, which would knock ours out.
    pub async fn wechat_access_token(&self, app_id: &str) -> Result<KeptSecret, IdentityError> {
        let reader = self.reader()?;
        let name = match self.caller()? {
            Caller::ApiKey { name, .. } => name.clone(),
            _ => String::new(),
        };
        let app = reader.any_app(app_id)?;
        if !matches!(app.kind, AppKind::MiniProgram | AppKind::OfficialAccount) {
            return Err(IdentityError::BadInput(format!(
                "a {} has no server-API access token (only Mini Programs and Official Accounts do)",
                app.kind.name()
            )));
        }
        let token = reader.access_tokens.token(app).await?;
        tracing::info!(app = %app.app_id, key = %name, "handed out the app's access token");
        let details = serde_json::json!({"appId": app.app_id});
        reader
            .audit(&name, AuditAction::AccessTokenServed, None, details)
            .await;
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
        let sync = self
            .identity
            .enqueue_follower_sync(&app.app_id, Some(self.name))
            .await?;
        let details = serde_json::json!({"appId": app.app_id, "syncId": sync.id});
        self.audit(self.name, AuditAction::StartFollowerSync, None, details)
            .await;
        Ok(sync)
    }

    /// A sync by id.
    pub async fn follower_sync(&self, id: &str) -> Result<Option<FollowerSyncRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        let row = FollowerSyncRow::find(&mut conn, &FollowerSyncId::new(id)).await?;
        drop(conn);
        match row {
            Some(row) => Ok(Some(self.identity.reconciled_sync(row).await?)),
            None => Ok(None),
        }
    }

    /// The syncs of an app, newest first, older than the sync `before` if given; at most
    /// [`MAX_SYNCS_LISTED`] (one more is read to tell whether there is a next page).
    pub async fn follower_syncs(
        &self,
        app_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FollowerSyncRow>, IdentityError> {
        let app = self.app(app_id, AppKind::OfficialAccount)?;
        let mut conn = self.db.conn().await?;
        let limit = limit.clamp(1, MAX_SYNCS_LISTED + 1);
        let rows = FollowerSyncRow::for_app(&mut conn, &app.app_id, before, limit).await?;
        drop(conn);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.identity.reconciled_sync(row).await?);
        }
        Ok(out)
    }

    /// Asks WeChat about one person (`user/info`) and records what it says (follow state,
    /// unionid: a merge if it shows two users are one person).
    pub async fn sync_follower(
        &self,
        app_id: &str,
        openid: &str,
    ) -> Result<OfficialAccountIdentityRow, IdentityError> {
        let app = self.app(app_id, AppKind::OfficialAccount)?;
        if crate::identity::check_wechat_id("openid", openid).is_err() {
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
        let details = serde_json::json!({"appId": app.app_id});
        self.audit(self.name, AuditAction::SyncFollower, None, details)
            .await;
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

impl Parts {
    /// Records followers (one transaction): each through [`sighting::record`]. A follower whose
    /// unionid conflicts with the one on record, or whose ids are malformed, is counted in
    /// `errors` and left as it is. A sync (`sync`: its id and the openids `user/get` listed)
    /// remembers whom it listed and adds the chunk's counts to its row in the same transaction,
    /// counting only followers it had not listed before: a chunk done again after a crash
    /// (committed, but its page not checkpointed) counts nothing twice, and nothing is lost.
    pub(in crate::identity) async fn record_followers(
        &self,
        app: &AppConfig,
        infos: &[FollowerInfo],
        reason: MergeReason,
        sync: Option<(&FollowerSyncId, &[OpenId])>,
    ) -> Result<Tally, IdentityError> {
        let parsed: Vec<_> = infos.iter().map(|i| (parse_follower(i), i)).collect();
        let parsed = &parsed;
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                let done_before = match sync {
                    Some((id, listed)) => FollowerSyncRow::already_seen(conn, id, listed).await?,
                    None => Default::default(),
                };
                let mut seen = Tally::default();
                for (follower, info) in parsed {
                    let fresh = !done_before.contains(&OpenId::new(&info.openid));
                    let Some((openid, unionid)) = follower else {
                        seen.errors += i64::from(fresh);
                        continue;
                    };
                    let s = Sighting {
                        app_id: &app.app_id,
                        openid,
                        unionid: unionid.as_ref(),
                        reason,
                        profile: None,
                        phone: None,
                        seen: Seen::Follower {
                            subscribed: info.follows(),
                            subscribed_at: info.subscribe_time.and_then(unix_time),
                        },
                    };
                    match sighting::record(conn, &s).await {
                        Ok(r) => {
                            seen.followers += i64::from(fresh);
                            seen.created += i64::from(r.new_user);
                            seen.merged += i64::from(r.merged);
                        }
                        Err(IdentityError::Conflict(message)) => {
                            tracing::warn!(app = %app.app_id, %message, "follower refused");
                            seen.errors += i64::from(fresh);
                        }
                        Err(e) => return Err(e),
                    }
                }
                if let Some((id, listed)) = sync {
                    FollowerSyncRow::record_seen(conn, id, listed).await?;
                    FollowerSyncRow::add_counts(conn, id, &seen.counts()).await?;
                }
                Ok(seen)
            },
        )
        .await
    }
}

/// A follower's ids, checked (`None`: malformed).
fn parse_follower(info: &FollowerInfo) -> Option<(OpenId, Option<UnionId>)> {
    crate::identity::check_wechat_id("openid", &info.openid).ok()?;
    let unionid = match info.unionid.as_deref() {
        Some(u) => {
            crate::identity::check_wechat_id("unionid", u).ok()?;
            Some(UnionId::new(u))
        }
        None => None,
    };
    Some((OpenId::new(&info.openid), unionid))
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

impl Tally {
    /// As a sync's counters (the rest zero).
    fn counts(&self) -> SyncCounts {
        SyncCounts {
            followers_seen: self.followers,
            users_created: self.created,
            users_merged: self.merged,
            errors: self.errors,
            ..SyncCounts::default()
        }
    }
}

/// A Unix time from WeChat as stored (UTC).
pub fn unix_time(secs: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc())
}
