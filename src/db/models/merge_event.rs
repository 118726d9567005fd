//! `merge_events`: the history of merges (who was merged into whom, why, when).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::merge_events;
use crate::db::{Conn, DbError};
use crate::with_conn;

/// A row of `merge_events`.
#[derive(Clone, Debug, Queryable, Identifiable, Insertable)]
#[diesel(table_name = merge_events)]
pub struct MergeEventRow {
    /// Event id.
    pub id: String,
    /// The user that remains.
    pub survivor_id: String,
    /// The user that became a tombstone.
    pub merged_id: String,
    /// `login`, `follower_sync`, `webhook` or `admin`.
    pub reason: String,
    /// Who asked for it (an API key's name for admin merges).
    pub actor: Option<String>,
    /// When.
    pub created_at: NaiveDateTime,
}

impl MergeEventRow {
    /// Records an event.
    pub async fn insert(conn: &mut Conn, event: &MergeEventRow) -> Result<(), DbError> {
        let q = diesel::insert_into(merge_events::table).values(event);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Events that involve this user, as survivor or as merged, oldest first.
    pub async fn for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<Self>, DbError> {
        let q = merge_events::table
            .filter(
                merge_events::survivor_id
                    .eq(user_id)
                    .or(merge_events::merged_id.eq(user_id)),
            )
            .order(merge_events::id.asc());
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }
}
