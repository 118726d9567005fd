//! `webhook_signed_queries`: the signed queries (signature, timestamp, nonce) of accepted
//! webhook pushes, with their app and body digest, kept for the freshness window so that a
//! replay with another body, or on another app, is refused by every instance.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

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

/// What [`WebhookSignedQueryRow::claim`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The first sighting of this signed query: stored now.
    New,
    /// Seen before: the row stored then (compare its app and body digest).
    Seen(WebhookSignedQueryRow),
}

impl WebhookSignedQueryRow {
    /// Stores the row unless its signed query is stored already, in which case the stored row
    /// is returned. Concurrent first sightings race on the primary key: one inserts, the others
    /// find its row (no transaction to retry).
    pub async fn claim(conn: &mut Conn, row: &Self) -> Result<Claim, DbError> {
        // Twice at most: the stored row may be purged between our insert and our read (only
        // once it expired, so the second insert then succeeds).
        for _ in 0..2 {
            let insert = diesel::insert_into(q::table)
                .values(row)
                .on_conflict((q::signature, q::push_timestamp, q::nonce))
                .do_nothing();
            if with_conn!(conn, c => insert.execute(c).await)? == 1 {
                return Ok(Claim::New);
            }
            let find = q::table.find((&row.signature, &row.push_timestamp, &row.nonce));
            if let Some(seen) = with_conn!(conn, c => find.first::<Self>(c).await.optional())? {
                return Ok(Claim::Seen(seen));
            }
        }
        Err(DbError::Query(diesel::result::Error::NotFound))
    }

    /// Deletes the rows that expired before `at`; how many.
    pub async fn purge_expired(conn: &mut Conn, at: NaiveDateTime) -> Result<usize, DbError> {
        let d = diesel::delete(q::table.filter(q::expires_at.lt(at)));
        Ok(with_conn!(conn, c => d.execute(c).await)?)
    }
}
