//! `phone_code_exchanges`: each paid `getuserphonenumber` exchange of a phone code, kept for the
//! code's life so that the same code submitted again by the same Mini Program identity is
//! answered without paying WeChat twice, and refused to anyone else. The code itself is not
//! stored, only its SHA-256.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Claim;
use crate::db::schema::phone_code_exchanges as p;
use crate::db::{Conn, DbError};
use crate::types::{AppId, OpenId};
use crate::with_conn;

/// A row of `phone_code_exchanges`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = p)]
pub struct PhoneExchangeRow {
    /// SHA-256 (hex) of the phone code.
    pub code_hash: String,
    /// The Mini Program the code was submitted for.
    pub app_id: AppId,
    /// The identity (openid in that Mini Program) that submitted it first.
    pub openid: OpenId,
    /// The number WeChat answered (E.164); null while the first exchange is in flight.
    pub phone_number: Option<String>,
    /// When the code was first submitted.
    pub created_at: NaiveDateTime,
    /// When the code can no longer be exchanged (the purge may delete the row then).
    pub expires_at: NaiveDateTime,
}

impl PhoneExchangeRow {
    /// Stores the claim unless the code was claimed already, in which case the stored row is
    /// returned. Concurrent first submissions race on the primary key: one inserts, the others
    /// find its row.
    pub async fn claim(conn: &mut Conn, row: &Self) -> Result<Claim<Self>, DbError> {
        // The stored row may be released or purged between our insert and our read.
        super::claim!(
            conn,
            diesel::insert_into(p::table)
                .values(row)
                .on_conflict(p::code_hash)
                .do_nothing(),
            p::table.find(&row.code_hash)
        )
    }

    /// The row of this code, if any.
    pub async fn find(conn: &mut Conn, code_hash: &str) -> Result<Option<Self>, DbError> {
        let q = p::table.find(code_hash);
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// Records the number WeChat answered for the claimed code.
    pub async fn finish(conn: &mut Conn, code_hash: &str, phone: &str) -> Result<(), DbError> {
        let q = diesel::update(p::table.find(code_hash)).set(p::phone_number.eq(phone));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Gives up a claim whose exchange failed (nothing was paid): the code may be tried again.
    pub async fn release(conn: &mut Conn, code_hash: &str) -> Result<(), DbError> {
        let q = diesel::delete(
            p::table
                .filter(p::code_hash.eq(code_hash))
                .filter(p::phone_number.is_null()),
        );
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Deletes the rows that expired before `at`; how many.
    pub async fn purge_expired(conn: &mut Conn, at: NaiveDateTime) -> Result<usize, DbError> {
        let d = diesel::delete(p::table.filter(p::expires_at.lt(at)));
        Ok(with_conn!(conn, c => d.execute(c).await)?)
    }
}
