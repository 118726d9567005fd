//! `merge_events`: the history of merges (who was merged into whom, why, when).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::merge_events;
use crate::db::{Conn, DbError};
use crate::types::{IdentityId, UserId};
use crate::with_conn;

/// A row of `merge_events`.
#[derive(Clone, Debug, Queryable, Identifiable, Insertable)]
#[diesel(table_name = merge_events)]
pub struct MergeEventRow {
    /// Event id.
    pub id: String,
    /// The user that remains.
    pub survivor_id: UserId,
    /// The user that became a tombstone.
    pub merged_id: UserId,
    /// `login`, `follower_sync`, `webhook`, `admin` or `unlink` (then `survivor_id` is the user
    /// the identity left and `merged_id` the new user it moved to).
    pub reason: String,
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
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        // Expanded once per backend, so the boxed query gets each backend's type.
        Ok(with_conn!(conn, c => {
            let mut q = merge_events::table
                .order(merge_events::id.asc())
                .limit(limit)
                .into_boxed();
            if let Some(after) = after {
                q = q.filter(merge_events::id.gt(after.to_owned()));
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
