//! One module per table: a row struct, an insertable, and the queries as functions.

pub mod fast_login;
pub mod identity;
pub mod job;
pub mod login_ticket;
pub mod merge_event;
pub mod mini_program_identity;
pub mod oauth_state;
pub mod official_account_identity;
pub mod session;
mod single_use;
pub mod user;

/// The current time as stored in the database (UTC, no zone).
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
