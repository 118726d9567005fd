//! `merge_events`: the history of merges (who was merged into whom, why, when).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::merge_events;
use crate::db::{Conn, DbError};
use crate::types::{IdentityId, MergeEventId, UserId};
use crate::with_conn;

crate::db::text_enum::text_enum! {
    /// Why a merge happened.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum MergeReason mirrored_by merge_reason_variants {
        /// A login brought the unionid that showed two users are one person.
        Login = "login",
        /// A follower sync brought it.
        FollowerSync = "follower_sync",
        /// A webhook event brought it.
        Webhook = "webhook",
        /// An admin merged the users (`mergeUsers`).
        Admin = "admin",
        /// An admin moved one identity to a new user (`unlinkIdentity`).
        Unlink = "unlink",
        /// WeChat vouched for the same phone number on both users
        /// (`identity.merge_on_phone_number`).
        PhoneNumber = "phone_number",
    }
}

/// A row of `merge_events`.
#[derive(Clone, Debug, Queryable, Identifiable, Insertable)]
#[diesel(table_name = merge_events)]
pub struct MergeEventRow {
    /// Event id.
    pub id: MergeEventId,
    /// The user that remains.
    pub survivor_id: UserId,
    /// The user that became a tombstone.
    pub merged_id: UserId,
    /// Why (for an unlink, `survivor_id` is the user the identity left and `merged_id` the new
    /// user it moved to).
    pub reason: MergeReason,
    /// Who asked for it (an API key's name for admin merges).
    pub actor: Option<String>,
    /// When.
    pub created_at: NaiveDateTime,
    /// For an unlink: the identity that moved.
    pub identity_id: Option<IdentityId>,
}

impl MergeEventRow {
    /// Records an event.
    pub async fn insert(conn: &mut Conn, event: &MergeEventRow) -> Result<(), DbError> {
        super::insert(conn, merge_events::table, event).await
    }

    /// Up to `limit` events after the id `after`, oldest first; only those involving `user_id`
    /// (as survivor or merged) when given.
    pub async fn page(
        conn: &mut Conn,
        user_id: Option<&UserId>,
        after: Option<&MergeEventId>,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        // Expanded once per backend, so the boxed query gets each backend's type.
        Ok(with_conn!(conn, c => {
            let mut q = merge_events::table
                .order(merge_events::id.asc())
                .limit(limit)
                .into_boxed();
            if let Some(after) = after {
                q = q.filter(merge_events::id.gt(after.clone()));
            }
            if let Some(user) = user_id {
                q = q.filter(
                    merge_events::survivor_id
                        .eq(user.clone())
                        .or(merge_events::merged_id.eq(user.clone())),
                );
            }
            q.load::<Self>(c).await
        })?)
    }
}
