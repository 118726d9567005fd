//! Admin actions on the merged view: merge two users, unlink an identity into a user of its
//! own, and read the history of both. Every action is one transaction and one merge event.

use serde_json::json;

use super::IdentityError;
use super::access::Admin;
use super::audit::{self, AuditAction};
use super::events::{self, Change, IdentityKey};
use super::rules::{self, MergePair, MergeReason};
use crate::db::models::identity::IdentityRef;
use crate::db::models::merge_event::MergeEventRow;
use crate::db::models::now;
use crate::db::models::session::SessionRow;
use crate::db::models::user::UserRow;
use crate::db::{Conn, transaction};
use crate::types::{IdentityId, MergeEventId, UserId};

impl Admin<'_> {
    /// Merges `pair.source` into `pair.target` (both live): see [`rules::merge`]. Refused
    /// (CONFLICT) when both have different unionids or either is a tombstone.
    pub async fn merge_users(&self, pair: MergePair<'_>) -> Result<UserRow, IdentityError> {
        let actor = self.name;
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                let survivor = rules::merge(conn, pair, MergeReason::Admin, Some(actor)).await?;
                let details = json!({"sourceId": pair.source, "targetId": pair.target});
                audit::record(
                    conn,
                    actor,
                    AuditAction::MergeUsers,
                    Some(&survivor.id),
                    details,
                )
                .await?;
                Ok(survivor)
            },
        )
        .await
    }

    /// Moves one identity (Mini Program or Official Account) to a new user of its own and
    /// returns that user; the old user's sessions are revoked (their access tokens are refused
    /// within `jwt.revocation_check_secs`). Refused when the identity carries a unionid (WeChat says it is this
    /// person; its next sighting would merge it right back) or is its user's only identity.
    pub async fn unlink_identity(
        &self,
        identity_id: &IdentityId,
    ) -> Result<UserRow, IdentityError> {
        let actor = self.name;
        let fresh = transaction(&self.db, async |conn: &mut Conn| -> Result<_, IdentityError> {
            // The identity row is locked first (as a sighting locks it), then its user.
            let (kind, identity) = IdentityRef::find(conn, identity_id).await?.ok_or_else(|| {
                IdentityError::NotFound(format!("identity {identity_id} does not exist"))
            })?;
            if identity.unionid.is_some() {
                return Err(IdentityError::Conflict(
                    "the identity carries a unionid: WeChat says it belongs to this user, and its next login would merge it back".into(),
                ));
            }
            let user = rules::lock_live(conn, &identity.user_id).await?;
            if IdentityRef::count_for_user(conn, &user.id).await? <= 1 {
                return Err(IdentityError::Conflict(
                    "this is the user's only identity; there is nothing to unlink it from".into(),
                ));
            }
            let fresh = rules::create_user(conn, None, None).await?.user;
            IdentityRef::move_one(conn, kind, &identity.id, &fresh.id).await?;
            let (app_id, openid) = IdentityRef::key(conn, kind, &identity.id)
                .await?
                .ok_or_else(|| IdentityError::Internal("an identity vanished".into()))?;
            let key = IdentityKey { id: &identity.id, app_id: &app_id, kind, openid: &openid };
            let unlinked = Change::Unlinked { user: &user.id, identity: key, to: &fresh.id };
            events::emit(conn, unlinked).await?;
            let linked = Change::Linked { user: &fresh.id, identity: key, unionid: None };
            events::emit(conn, linked).await?;
            let details = json!({"identityId": identity.id, "newUserId": fresh.id});
            audit::record(conn, actor, AuditAction::UnlinkIdentity, Some(&user.id), details)
                .await?;
            rules::record_event(
                conn,
                &user.id,
                &fresh.id,
                MergeReason::Unlink,
                Some(actor),
                Some(&identity.id),
            )
            .await?;
            // Sessions do not say which identity opened them: end them all, so whoever the
            // identity belongs to logs in again and lands on the right user.
            SessionRow::revoke_user(conn, &user.id, now()).await?;
            tracing::info!(from = %user.id, to = %fresh.id, identity = %identity.id, actor, "unlinked an identity");
            Ok(fresh)
        })
        .await;
        if fresh.is_ok() {
            self.live_logins.forget();
        }
        fresh
    }

    /// Merge and unlink events, oldest first, `limit` after the event id `after`; only those
    /// involving `user_id` when given.
    pub async fn merge_events(
        &self,
        user_id: Option<&UserId>,
        after: Option<&MergeEventId>,
        limit: i64,
    ) -> Result<Vec<MergeEventRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(MergeEventRow::page(&mut conn, user_id, after, limit).await?)
    }
}
