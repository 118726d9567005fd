//! `mini_program_identities`: a person in one Mini Program, keyed by (app_id, openid). What it
//! shares with Official Account identities is in [`super::identity`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::mini_program_identities as mpi;
use crate::db::{Conn, DbError};
use crate::types::{AppId, IdentityId, OpenId, UnionId, UserId};
use crate::with_conn;

/// A row of `mini_program_identities`, as read and as inserted (Mini Program identities are only
/// ever seen in a login, so a new one has a session_key and a login time).
#[derive(Clone, Debug, Queryable, Identifiable, Insertable)]
#[diesel(table_name = mpi)]
pub struct MiniProgramIdentityRow {
    /// Row id.
    pub id: IdentityId,
    /// The owning user.
    pub user_id: UserId,
    /// The Mini Program.
    pub app_id: AppId,
    /// The person's openid in that Mini Program.
    pub openid: OpenId,
    /// The unionid WeChat reported, if any.
    pub unionid: Option<UnionId>,
    /// The latest session_key, sealed (see `crate::crypto::SecretBox`); never exposed.
    pub session_key: Option<String>,
    /// First sighting.
    pub created_at: NaiveDateTime,
    /// Latest login.
    pub last_login_at: NaiveDateTime,
}

/// A login of a known Mini Program identity: its (live) user, the unionid to keep, the new
/// session_key and the time.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = mpi)]
pub struct MiniProgramLogin<'a> {
    /// The live user.
    pub user_id: &'a UserId,
    /// The unionid to keep (never another one than on record).
    #[diesel(treat_none_as_null = true)]
    pub unionid: Option<&'a UnionId>,
    /// The sealed session_key.
    pub session_key: &'a str,
    /// Now.
    pub last_login_at: NaiveDateTime,
}

impl MiniProgramIdentityRow {
    /// Inserts an identity.
    pub async fn insert(conn: &mut Conn, row: &Self) -> Result<(), DbError> {
        super::insert(conn, mpi::table, row).await
    }

    /// Records a login of the identity `id`.
    pub async fn record_login(
        conn: &mut Conn,
        id: &IdentityId,
        login: &MiniProgramLogin<'_>,
    ) -> Result<(), DbError> {
        let q = diesel::update(mpi::table.find(id)).set(login);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// The user's identity in the Mini Program `app_id` (the latest logged in, should a merge
    /// have given the user two there).
    pub async fn of_user(
        conn: &mut Conn,
        user_id: &UserId,
        app_id: &AppId,
    ) -> Result<Option<Self>, DbError> {
        let q = mpi::table
            .filter(mpi::user_id.eq(user_id))
            .filter(mpi::app_id.eq(app_id))
            .order(mpi::last_login_at.desc())
            .limit(1);
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }
}

super::identity::identity_reads!(MiniProgramIdentityRow, mpi);
