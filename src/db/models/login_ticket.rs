//! `login_tickets`: one-time, short-lived tickets that the server-driven OA flow hands to the
//! frontend (in the redirect) instead of tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::login_tickets;
use crate::types::{AppId, UserId};

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
    /// The app the person logged in through.
    pub app_id: Option<AppId>,
}

super::single_use::single_use_table!(LoginTicketRow, login_tickets, str);
