//! `login_tickets`: one-time, short-lived tickets that the server-driven OA flow hands to the
//! frontend (in the redirect) instead of tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::login_tickets;
use crate::db::{Conn, DbError};
use crate::types::UserId;
use crate::with_conn;

/// A row of `login_tickets`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = login_tickets)]
pub struct LoginTicketRow {
    /// SHA-256 of the ticket.
    pub token_hash: String,
    /// The user who logged in.
    pub user_id: UserId,
    /// Whether that login created the user.
    pub new_user: bool,
    /// base64url(SHA-256(code verifier)) from the state, when the frontend asked for one.
    pub code_challenge: Option<String>,
    /// Issue time.
    pub created_at: NaiveDateTime,
    /// Expiry.
    pub expires_at: NaiveDateTime,
    /// When it was redeemed.
    pub used_at: Option<NaiveDateTime>,
}

impl LoginTicketRow {
    /// Stores a ticket.
    pub async fn insert(conn: &mut Conn, row: &LoginTicketRow) -> Result<(), DbError> {
        let q = diesel::insert_into(login_tickets::table).values(row);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Deletes tickets that expired before `at`; returns how many.
    pub async fn purge_expired(conn: &mut Conn, at: NaiveDateTime) -> Result<u64, DbError> {
        let q = diesel::delete(login_tickets::table.filter(login_tickets::expires_at.lt(at)));
        Ok(with_conn!(conn, c => q.execute(c).await)? as u64)
    }

    /// The ticket with this hash.
    pub async fn find(conn: &mut Conn, token_hash: &str) -> Result<Option<Self>, DbError> {
        let q = login_tickets::table.find(token_hash);
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// Marks it redeemed if it was not; returns whether this call redeemed it.
    pub async fn mark_used(
        conn: &mut Conn,
        token_hash: &str,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let q = diesel::update(
            login_tickets::table
                .find(token_hash)
                .filter(login_tickets::used_at.is_null()),
        )
        .set(login_tickets::used_at.eq(at));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }
}
