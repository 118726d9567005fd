//! One module per table: a row struct (read and inserted), changesets where a write touches only
//! some columns, and the queries as functions. `insert` and the single-use tables' queries
//! (`single_use`) are written once for every table that shares them.

use diesel::query_builder::InsertStatement;
use diesel_async::RunQueryDsl;
use diesel_async::methods::ExecuteDsl;

use crate::db::{DbError, PgConn, SqliteConn};

pub mod app_login_identity;
pub mod audit_event;
pub mod erasure;
pub mod event_delivery;
pub mod event_endpoint;
pub mod fast_login;
pub mod follower_sync;
pub mod identity;
pub mod job;
pub mod login_ticket;
pub mod merge_event;
pub mod message;
pub mod message_report;
pub mod message_template;
pub mod mini_program_identity;
pub mod oauth_state;
pub mod official_account_identity;
pub mod operations;
pub mod phone_exchange;
pub mod session;
pub mod signing_key;
mod single_use;
pub mod user;
pub mod user_event;
pub mod user_json;
pub mod user_list;
pub mod webhook_event;
pub mod webhook_signed_query;
pub mod wechat_access_token;

/// What a claim of a key found (see [`claim!`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Claim<R> {
    /// The key was free: the row is stored now.
    New,
    /// The key was taken: the row stored then.
    Seen(R),
}

/// Stores a row unless its key is taken, in which case the stored row is found: `$insert` is the
/// insert with `ON CONFLICT … DO NOTHING`, `$find` the read of the key. Concurrent first claims
/// race on the key: one inserts, the others find its row (no transaction to retry). Twice at
/// most: the stored row may be deleted (purged, released) between our insert and our read, and
/// then the second insert succeeds. Evaluates to `Result<Claim<Row>, DbError>`.
macro_rules! claim {
    ($conn:expr, $insert:expr, $find:expr) => {{
        use diesel::OptionalExtension as _;
        let mut claimed = Err($crate::db::DbError::Query(diesel::result::Error::NotFound));
        for _ in 0..2 {
            let insert = $insert;
            if $crate::with_conn!($conn, c => insert.execute(c).await)? == 1 {
                claimed = Ok($crate::db::models::Claim::New);
                break;
            }
            let find = $find;
            if let Some(seen) = $crate::with_conn!($conn, c => find.first(c).await.optional())? {
                claimed = Ok($crate::db::models::Claim::Seen(seen));
                break;
            }
        }
        claimed
    }};
}
pub(crate) use claim;

/// The current time as stored in the database (UTC, no zone).
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Inserts `values` into `table`, on either backend: every model's `insert`.
async fn insert<T, V>(conn: &mut crate::db::Conn, table: T, values: V) -> Result<(), DbError>
where
    T: diesel::Table,
    V: diesel::Insertable<T>,
    InsertStatement<T, V::Values>: ExecuteDsl<PgConn> + ExecuteDsl<SqliteConn> + Send,
{
    let q = diesel::insert_into(table).values(values);
    crate::with_conn!(conn, c => q.execute(c).await)?;
    Ok(())
}
