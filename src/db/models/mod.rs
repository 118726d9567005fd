//! One module per table: a row struct (read and inserted), changesets where a write touches only
//! some columns, and the queries as functions. `insert` and the single-use tables' queries
//! (`single_use`) are written once for every table that shares them.

use diesel::query_builder::InsertStatement;
use diesel_async::RunQueryDsl;
use diesel_async::methods::ExecuteDsl;

use crate::db::{DbError, PgConn, SqliteConn};

pub mod app_login_identity;
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
pub mod phone_exchange;
pub mod session;
mod single_use;
pub mod user;
pub mod user_list;
pub mod webhook_event;
pub mod webhook_signed_query;
pub mod wechat_access_token;

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
