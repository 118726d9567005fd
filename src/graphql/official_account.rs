//! The Official Account server side in GraphQL: the shared access token, follower syncs and a
//! single follower refreshed from WeChat.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::access;
use super::error::gql;
use super::paging::Page;
use super::types::OfficialAccountIdentity;
use crate::db::models::follower_sync::FollowerSyncRow;

/// An app's access token for WeChat's server API, shared by every instance of this service.
#[derive(SimpleObject)]
pub struct WeChatAccessToken {
    /// The token. Use it until `expiresAt`; never fetch one from WeChat yourself (that would
    /// replace ours).
    pub token: String,
    /// When it expires (this service refreshes it a few minutes before).
    pub expires_at: DateTime<Utc>,
}

crate::db::models::follower_sync::sync_status_variants! {
    /// Where a follower sync stands.
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "crate::db::models::follower_sync::SyncStatus")]
    pub enum WeChatFollowerSyncStatus
}

/// A follower sync row, shown as `WeChatFollowerSync`.
pub struct WeChatFollowerSync(pub FollowerSyncRow);

/// One full sync of an Official Account's followers (`syncOfficialAccountFollowers`, or
/// scheduled by `apps[].follower_sync_interval_secs`), and how far it got.
#[Object]
impl WeChatFollowerSync {
    /// Sync id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The Official Account.
    async fn app_id(&self) -> &str {
        self.0.app_id.as_str()
    }
    /// Where it stands.
    async fn status(&self) -> WeChatFollowerSyncStatus {
        self.0.status.into()
    }
    /// The name of the admin key that asked for it; null for a scheduled sync.
    async fn requested_by(&self) -> Option<&str> {
        self.0.requested_by.as_deref()
    }
    /// When it was asked for.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.and_utc()
    }
    /// When its first page started; null while queued.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at.map(|t| t.and_utc())
    }
    /// When it completed or failed; null until then.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at.map(|t| t.and_utc())
    }
    /// Followers in all, as WeChat counted them; null until its first page.
    async fn total(&self) -> Option<i64> {
        self.0.total
    }
    /// Pages of up to 10,000 followers done.
    async fn pages(&self) -> i32 {
        self.0.pages
    }
    /// Followers recorded so far.
    async fn followers_seen(&self) -> i64 {
        self.0.followers_seen
    }
    /// Users created for followers seen for the first time.
    async fn users_created(&self) -> i64 {
        self.0.users_created
    }
    /// Merges: followers whose unionid showed they were already a user (e.g. from a Mini
    /// Program login).
    async fn users_merged(&self) -> i64 {
        self.0.users_merged
    }
    /// Identities marked unsubscribed because WeChat no longer lists them.
    async fn unsubscribed(&self) -> i64 {
        self.0.unsubscribed
    }
    /// Followers that could not be recorded (a unionid other than the one on record, or a
    /// malformed id from WeChat).
    async fn errors(&self) -> i64 {
        self.0.errors
    }
    /// Why it paused or last failed; null if it never did.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
}

/// Official Account queries (merged into the query root).
#[derive(Default)]
pub struct OfficialAccountQuery;

#[Object]
impl OfficialAccountQuery {
    /// The app's current access token for WeChat's server API; every hand-out is logged with
    /// the key's name. Other services use this one instead of fetching their own, which would
    /// replace it. Null, with the error, when WeChat cannot give one now (WECHAT_RATE_LIMITED,
    /// WECHAT_UNAVAILABLE). Counts against `limits.wechat_fields_per_request`.
    /// Admin or service.
    async fn wechat_access_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The app (a Mini Program or an Official Account).")] app_id: String,
    ) -> async_graphql::Result<Option<WeChatAccessToken>> {
        let token = access::access(ctx)
            .wechat_access_token(&app_id)
            .await
            .map_err(gql)?;
        Ok(Some(WeChatAccessToken {
            token: token.secret,
            expires_at: token.expires_at.and_utc(),
        }))
    }

    /// A follower sync by id; null if there is none.
    /// Admin.
    async fn wechat_follower_sync(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The sync's id (`WeChatFollowerSync.id`).")] id: ID,
    ) -> async_graphql::Result<Option<WeChatFollowerSync>> {
        let row = access::admin(ctx)?.follower_sync(&id).await.map_err(gql)?;
        Ok(row.map(WeChatFollowerSync))
    }

    /// An Official Account's follower syncs, newest first, a page of 1-100 at a time (default
    /// 20).
    /// Admin.
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
    async fn wechat_follower_syncs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Official Account.")] app_id: String,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Option<Connection<String, WeChatFollowerSync>>> {
        let admin = access::admin(ctx)?;
        let page = Page::parse("followerSync", first, after.as_deref())?;
        let rows = admin
            .follower_syncs(&app_id, page.after.as_deref(), page.limit())
            .await
            .map_err(gql)?;
        Ok(Some(page.connection(
            rows,
            |s| s.id.as_str(),
            WeChatFollowerSync,
        )))
    }
}

/// Official Account mutations (merged into the mutation root).
#[derive(Default)]
pub struct OfficialAccountMutation;

#[Object]
impl OfficialAccountMutation {
    /// Starts a full follower sync of an Official Account on the job runner, or returns the
    /// one already queued or running: one per app at a time, across instances. Every follower
    /// is recorded with its unionid, merging them with users known from other apps; followers
    /// no longer listed are marked unsubscribed. Counts against
    /// `limits.wechat_fields_per_request`.
    /// Admin.
    async fn sync_official_account_followers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Official Account.")] app_id: String,
    ) -> async_graphql::Result<Option<WeChatFollowerSync>> {
        let row = access::admin(ctx)?
            .start_follower_sync(&app_id)
            .await
            .map_err(gql)?;
        Ok(Some(WeChatFollowerSync(row)))
    }

    /// Asks WeChat about one person of an Official Account (`user/info`) and records what it
    /// says: follow state and unionid (merging users where it shows they are one person).
    /// Counts against `limits.wechat_fields_per_request`.
    /// Admin.
    async fn sync_official_account_follower(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Official Account.")] app_id: String,
        #[graphql(desc = "The person's openid in it.")] openid: String,
    ) -> async_graphql::Result<Option<OfficialAccountIdentity>> {
        let row = access::admin(ctx)?
            .sync_follower(&app_id, &openid)
            .await
            .map_err(gql)?;
        Ok(Some(OfficialAccountIdentity(row)))
    }
}
