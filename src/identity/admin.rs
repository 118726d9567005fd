//! Admin actions on the merged view: merge two users, unlink an identity into a user of its
//! own, and read the history of both. Every action is one transaction and one merge event.

use super::rules::{self, MergeReason};
use super::{Identity, IdentityError};
use crate::db::Conn;
use crate::db::models::merge_event::MergeEventRow;
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::now;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::session::SessionRow;
use crate::db::models::user::UserRow;
use crate::db::transaction;
use crate::types::new_row_id;

/// An identity of either kind, as far as an unlink cares.
struct AnyIdentity {
    id: String,
    user_id: String,
    unionid: Option<String>,
    mini_program: bool,
}

async fn find_identity(conn: &mut Conn, id: &str) -> Result<Option<AnyIdentity>, IdentityError> {
    if let Some(i) = MiniProgramIdentityRow::find(conn, id).await? {
        return Ok(Some(AnyIdentity {
            id: i.id,
            user_id: i.user_id,
            unionid: i.unionid,
            mini_program: true,
        }));
    }
    Ok(OfficialAccountIdentityRow::find(conn, id)
        .await?
        .map(|i| AnyIdentity {
            id: i.id,
            user_id: i.user_id,
            unionid: i.unionid,
            mini_program: false,
        }))
}

/// Locks a user that must exist and be live; a tombstone is a CONFLICT naming its survivor.
async fn lock_existing_live(
    conn: &mut Conn,
    id: &str,
    role: &str,
) -> Result<UserRow, IdentityError> {
    let user = UserRow::find_for_update(conn, id)
        .await?
        .ok_or_else(|| IdentityError::NotFound(format!("{role} user {id} does not exist")))?;
    if let Some(survivor) = &user.merged_into {
        return Err(IdentityError::Conflict(format!(
            "{role} user {id} was already merged into {survivor}"
        )));
    }
    Ok(user)
}

impl Identity {
    /// Merges `source_id` into `target_id` (both live): identities and sessions move, the
    /// target's empty profile fields are filled, the target takes the source's unionid if it has
    /// none, the source becomes a tombstone. Refused (CONFLICT) when both have different unionids.
    pub async fn merge_users(
        &self,
        source_id: &str,
        target_id: &str,
        actor: &str,
    ) -> Result<UserRow, IdentityError> {
        if source_id == target_id {
            return Err(IdentityError::BadInput(
                "sourceId and targetId are the same user".into(),
            ));
        }
        transaction(&self.db, async |conn: &mut Conn| -> Result<_, IdentityError> {
            // Lock in id order, so two opposite merges cannot deadlock.
            let (source, target) = if source_id < target_id {
                let s = lock_existing_live(conn, source_id, "source").await?;
                (s, lock_existing_live(conn, target_id, "target").await?)
            } else {
                let t = lock_existing_live(conn, target_id, "target").await?;
                (lock_existing_live(conn, source_id, "source").await?, t)
            };
            if let (Some(s), Some(t)) = (&source.unionid, &target.unionid) {
                if s != t {
                    tracing::warn!(source = %source.id, target = %target.id, "admin merge of users with different unionids refused");
                    return Err(IdentityError::Conflict(
                        "the users have different unionids: WeChat says they are different people".into(),
                    ));
                }
            }
            let merged = rules::merge(conn, &source, &target, MergeReason::Admin, Some(actor)).await?;
            match (&source.unionid, &merged.unionid) {
                (Some(u), None) => {
                    // The source is a tombstone now, so its unionid is free for the target.
                    UserRow::set_unionid(conn, &merged.id, u).await?;
                    Ok(UserRow::find(conn, &merged.id).await?.unwrap_or(merged))
                }
                _ => Ok(merged),
            }
        }).await
    }

    /// Moves one identity (Mini Program or Official Account) to a new user of its own and
    /// returns that user; the old user's sessions are revoked (access tokens run out within
    /// their lifetime). Refused when the identity carries a unionid (WeChat says it is this
    /// person; its next sighting would merge it right back) or is its user's only identity.
    pub async fn unlink_identity(
        &self,
        identity_id: &str,
        actor: &str,
    ) -> Result<UserRow, IdentityError> {
        transaction(&self.db, async |conn: &mut Conn| -> Result<_, IdentityError> {
            // The identity row is locked first (as a login locks it), then its user.
            let identity = find_identity(conn, identity_id).await?
                .ok_or_else(|| IdentityError::NotFound(format!("identity {identity_id} does not exist")))?;
            if identity.unionid.is_some() {
                return Err(IdentityError::Conflict(
                    "the identity carries a unionid: WeChat says it belongs to this user, and its next login would merge it back".into(),
                ));
            }
            let user = rules::lock_live(conn, &identity.user_id).await?;
            let count = MiniProgramIdentityRow::count_for_user(conn, &user.id).await?
                + OfficialAccountIdentityRow::count_for_user(conn, &user.id).await?;
            if count <= 1 {
                return Err(IdentityError::Conflict(
                    "this is the user's only identity; there is nothing to unlink it from".into(),
                ));
            }
            let fresh = rules::create_user(conn, None).await?.user;
            if identity.mini_program {
                MiniProgramIdentityRow::move_one(conn, &identity.id, &fresh.id).await?;
            } else {
                OfficialAccountIdentityRow::move_one(conn, &identity.id, &fresh.id).await?;
            }
            MergeEventRow::insert(conn, &MergeEventRow {
                id: new_row_id(),
                survivor_id: user.id.clone(),
                merged_id: fresh.id.clone(),
                reason: MergeReason::Unlink.as_str().to_owned(),
                actor: Some(actor.to_owned()),
                created_at: now(),
                identity_id: Some(identity.id.clone()),
            }).await?;
            // Sessions do not say which identity opened them: end them all, so whoever the
            // identity belongs to logs in again and lands on the right user.
            SessionRow::revoke_user(conn, &user.id, now()).await?;
            crate::metrics::merge(MergeReason::Unlink.as_str());
            tracing::info!(from = %user.id, to = %fresh.id, identity = %identity.id, actor, "unlinked an identity");
            Ok(fresh)
        }).await
    }

    /// Merge and unlink events, oldest first, `limit` after the event id `after`; only those
    /// involving `user_id` when given.
    pub async fn merge_events(
        &self,
        user_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MergeEventRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(MergeEventRow::page(&mut conn, user_id, after, limit).await?)
    }
}
