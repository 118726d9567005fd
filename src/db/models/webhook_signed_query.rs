//! `webhook_signed_queries`: the signed queries (signature, timestamp, nonce) of accepted
//! webhook pushes, with their app and body digest, kept for the freshness window so that a
//! replay with another body, or on another app, is refused by every instance.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Claim;
use crate::db::schema::webhook_signed_queries as q;
use crate::db::{Conn, DbError};
use crate::types::AppId;
use crate::with_conn;

/// A row of `webhook_signed_queries`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = q)]
pub struct WebhookSignedQueryRow {
    /// The query's `signature`: sha1 of the sorted token, timestamp and nonce.
    pub signature: String,
    /// The query's `timestamp`, as sent (it is what was signed).
    pub push_timestamp: String,
    /// The query's `nonce`, as sent.
    pub nonce: String,
    /// The app it was accepted for.
    pub app_id: AppId,
    /// SHA-256 (hex) of the body it came with.
    pub body_sha256: String,
    /// When it was first accepted.
    pub seen_at: NaiveDateTime,
    /// When the purge may delete it (the timestamp can no longer pass the freshness check).
    pub expires_at: NaiveDateTime,
}

impl WebhookSignedQueryRow {
    /// Stores the row unless its signed query is stored already, in which case the stored row
    /// is returned. Concurrent first sightings race on the primary key: one inserts, the others
    /// find its row (no transaction to retry).
    pub async fn claim(conn: &mut Conn, row: &Self) -> Result<Claim<Self>, DbError> {
        // The stored row may be purged between our insert and our read (only once it expired).
        super::claim!(
            conn,
            diesel::insert_into(q::table)
                .values(row)
                .on_conflict((q::signature, q::push_timestamp, q::nonce))
                .do_nothing(),
            q::table.find((&row.signature, &row.push_timestamp, &row.nonce))
        )
    }

    /// Deletes the rows that expired before `at`; how many.
    pub async fn purge_expired(conn: &mut Conn, at: NaiveDateTime) -> Result<usize, DbError> {
        let d = diesel::delete(q::table.filter(q::expires_at.lt(at)));
        Ok(with_conn!(conn, c => d.execute(c).await)?)
    }
}
