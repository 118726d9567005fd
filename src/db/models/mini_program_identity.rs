//! `mini_program_identities`: a person in one Mini Program, keyed by (app_id, openid).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::mini_program_identities as mpi;
use crate::db::{Conn, DbError};
use crate::with_conn;

/// A row of `mini_program_identities`.
#[derive(Clone, Debug, Queryable, Identifiable)]
#[diesel(table_name = mpi)]
pub struct MiniProgramIdentityRow {
    /// Row id.
    pub id: String,
    /// The owning user.
    pub user_id: String,
    /// The Mini Program.
    pub app_id: String,
    /// The person's openid in that Mini Program.
    pub openid: String,
    /// The unionid WeChat reported, if any.
    pub unionid: Option<String>,
    /// The latest session_key, sealed (see `crate::crypto::SecretBox`); never exposed.
    pub session_key: Option<String>,
    /// First sighting.
    pub created_at: NaiveDateTime,
    /// Latest login.
    pub last_login_at: NaiveDateTime,
}

/// A new row of `mini_program_identities`.
#[derive(Debug, Insertable)]
#[diesel(table_name = mpi)]
pub struct NewMiniProgramIdentity<'a> {
    /// Row id.
    pub id: &'a str,
    /// The owning user.
    pub user_id: &'a str,
    /// The Mini Program.
    pub app_id: &'a str,
    /// The openid.
    pub openid: &'a str,
    /// The unionid, if known.
    pub unionid: Option<&'a str>,
    /// The sealed session_key.
    pub session_key: Option<&'a str>,
    /// Now.
    pub created_at: NaiveDateTime,
    /// Now.
    pub last_login_at: NaiveDateTime,
}

impl MiniProgramIdentityRow {
    /// The identity of `openid` in `app_id`, locked until the transaction ends (a row lock on
    /// PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the write lock), so a login and an
    /// unlink of one identity cannot interleave.
    pub async fn find_by_openid(
        conn: &mut Conn,
        app_id: &str,
        openid: &str,
    ) -> Result<Option<Self>, DbError> {
        let q = mpi::table
            .filter(mpi::app_id.eq(app_id))
            .filter(mpi::openid.eq(openid));
        Ok(match conn {
            Conn::Sqlite(c) => q.first::<Self>(&mut **c).await.optional(),
            Conn::Postgres(c) => q.for_update().first::<Self>(&mut **c).await.optional(),
        }?)
    }

    /// The identity with this row id, locked like [`Self::find_by_openid`].
    pub async fn find(conn: &mut Conn, id: &str) -> Result<Option<Self>, DbError> {
        let q = mpi::table.find(id);
        Ok(match conn {
            Conn::Sqlite(c) => q.first::<Self>(&mut **c).await.optional(),
            Conn::Postgres(c) => q.for_update().first::<Self>(&mut **c).await.optional(),
        }?)
    }

    /// Inserts an identity.
    pub async fn insert(conn: &mut Conn, new: &NewMiniProgramIdentity<'_>) -> Result<(), DbError> {
        let q = diesel::insert_into(mpi::table).values(new);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Records a login: the (live) user, new session_key, time, and the unionid to keep (the caller never replaces
    /// a known unionid with another).
    pub async fn record_login(
        conn: &mut Conn,
        id: &str,
        user_id: &str,
        unionid: Option<&str>,
        session_key: Option<&str>,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        let q = diesel::update(mpi::table.find(id)).set((
            mpi::user_id.eq(user_id),
            mpi::last_login_at.eq(at),
            mpi::session_key.eq(session_key),
            mpi::unionid.eq(unionid),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Moves one identity to another user (an unlink).
    pub async fn move_one(conn: &mut Conn, id: &str, to: &str) -> Result<(), DbError> {
        let q = diesel::update(mpi::table.find(id)).set(mpi::user_id.eq(to));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// All identities of these users.
    pub async fn for_users(conn: &mut Conn, user_ids: &[String]) -> Result<Vec<Self>, DbError> {
        let q = mpi::table
            .filter(mpi::user_id.eq_any(user_ids))
            .order((mpi::created_at.asc(), mpi::id.asc()));
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// How many identities of this kind the user has.
    pub async fn count_for_user(conn: &mut Conn, user_id: &str) -> Result<i64, DbError> {
        let q = mpi::table.filter(mpi::user_id.eq(user_id)).count();
        Ok(with_conn!(conn, c => q.get_result::<i64>(c).await)?)
    }

    /// Moves every identity of `from` to `to` (a merge).
    pub async fn move_all(conn: &mut Conn, from: &str, to: &str) -> Result<usize, DbError> {
        let q = diesel::update(mpi::table.filter(mpi::user_id.eq(from))).set(mpi::user_id.eq(to));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }
}
