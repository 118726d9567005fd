//! `official_account_identities`: a person in one Official Account, keyed by (app_id, openid).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::official_account_identities as oai;
use crate::db::{Conn, DbError};
use crate::with_conn;

/// A row of `official_account_identities`.
#[derive(Clone, Debug, Queryable, Identifiable)]
#[diesel(table_name = oai)]
pub struct OfficialAccountIdentityRow {
    /// Row id.
    pub id: String,
    /// The owning user.
    pub user_id: String,
    /// The Official Account.
    pub app_id: String,
    /// The person's openid in that Official Account.
    pub openid: String,
    /// The unionid WeChat reported, if any.
    pub unionid: Option<String>,
    /// The latest web-authorization scope.
    pub scope: Option<String>,
    /// Whether the person follows the account.
    pub subscribed: bool,
    /// When they followed.
    pub subscribed_at: Option<NaiveDateTime>,
    /// Nickname from `/sns/userinfo`.
    pub nickname: Option<String>,
    /// Avatar from `/sns/userinfo`.
    pub avatar_url: Option<String>,
    /// Sex as WeChat reports it (0 unknown, 1 male, 2 female).
    pub sex: Option<i32>,
    /// Province.
    pub province: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// First sighting.
    pub created_at: NaiveDateTime,
    /// Latest login, if they ever logged in (followers may not have).
    pub last_login_at: Option<NaiveDateTime>,
}

/// A new row of `official_account_identities`.
#[derive(Debug, Insertable)]
#[diesel(table_name = oai)]
pub struct NewOfficialAccountIdentity<'a> {
    /// Row id.
    pub id: &'a str,
    /// The owning user.
    pub user_id: &'a str,
    /// The Official Account.
    pub app_id: &'a str,
    /// The openid.
    pub openid: &'a str,
    /// The unionid, if known.
    pub unionid: Option<&'a str>,
    /// The authorization scope.
    pub scope: Option<&'a str>,
    /// Now.
    pub created_at: NaiveDateTime,
    /// Now.
    pub last_login_at: Option<NaiveDateTime>,
}

/// Profile fields `/sns/userinfo` returns; `None` leaves a stored value alone.
#[derive(Clone, Debug, Default, AsChangeset)]
#[diesel(table_name = oai)]
pub struct OfficialAccountProfile {
    /// Nickname.
    pub nickname: Option<String>,
    /// Avatar.
    pub avatar_url: Option<String>,
    /// Sex.
    pub sex: Option<i32>,
    /// Province.
    pub province: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country.
    pub country: Option<String>,
}

impl OfficialAccountProfile {
    /// Whether no field is set (an update would have nothing to write).
    pub fn is_empty(&self) -> bool {
        self.nickname.is_none()
            && self.avatar_url.is_none()
            && self.sex.is_none()
            && self.province.is_none()
            && self.city.is_none()
            && self.country.is_none()
    }
}

impl OfficialAccountIdentityRow {
    /// The identity of `openid` in `app_id`, locked until the transaction ends (a row lock on
    /// PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the write lock), so a login and an
    /// unlink of one identity cannot interleave.
    pub async fn find_by_openid(
        conn: &mut Conn,
        app_id: &str,
        openid: &str,
    ) -> Result<Option<Self>, DbError> {
        let q = oai::table
            .filter(oai::app_id.eq(app_id))
            .filter(oai::openid.eq(openid));
        Ok(match conn {
            Conn::Sqlite(c) => q.first::<Self>(&mut **c).await.optional(),
            Conn::Postgres(c) => q.for_update().first::<Self>(&mut **c).await.optional(),
        }?)
    }

    /// The identity with this row id, locked like [`Self::find_by_openid`].
    pub async fn find(conn: &mut Conn, id: &str) -> Result<Option<Self>, DbError> {
        let q = oai::table.find(id);
        Ok(match conn {
            Conn::Sqlite(c) => q.first::<Self>(&mut **c).await.optional(),
            Conn::Postgres(c) => q.for_update().first::<Self>(&mut **c).await.optional(),
        }?)
    }

    /// Inserts an identity.
    pub async fn insert(
        conn: &mut Conn,
        new: &NewOfficialAccountIdentity<'_>,
    ) -> Result<(), DbError> {
        let q = diesel::insert_into(oai::table).values(new);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Records a login: the (live) user, scope, time, the unionid to keep.
    pub async fn record_login(
        conn: &mut Conn,
        id: &str,
        user_id: &str,
        unionid: Option<&str>,
        scope: &str,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        let q = diesel::update(oai::table.find(id)).set((
            oai::user_id.eq(user_id),
            oai::unionid.eq(unionid),
            oai::scope.eq(scope),
            oai::last_login_at.eq(at),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Stores the profile fields WeChat sent (those that are `Some`).
    pub async fn set_profile(
        conn: &mut Conn,
        id: &str,
        profile: &OfficialAccountProfile,
    ) -> Result<(), DbError> {
        let q = diesel::update(oai::table.find(id)).set(profile);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Moves one identity to another user (an unlink).
    pub async fn move_one(conn: &mut Conn, id: &str, to: &str) -> Result<(), DbError> {
        let q = diesel::update(oai::table.find(id)).set(oai::user_id.eq(to));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// All identities of these users.
    pub async fn for_users(conn: &mut Conn, user_ids: &[String]) -> Result<Vec<Self>, DbError> {
        let q = oai::table
            .filter(oai::user_id.eq_any(user_ids))
            .order((oai::created_at.asc(), oai::id.asc()));
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// How many identities of this kind the user has.
    pub async fn count_for_user(conn: &mut Conn, user_id: &str) -> Result<i64, DbError> {
        let q = oai::table.filter(oai::user_id.eq(user_id)).count();
        Ok(with_conn!(conn, c => q.get_result::<i64>(c).await)?)
    }

    /// Moves every identity of `from` to `to` (a merge).
    pub async fn move_all(conn: &mut Conn, from: &str, to: &str) -> Result<usize, DbError> {
        let q = diesel::update(oai::table.filter(oai::user_id.eq(from))).set(oai::user_id.eq(to));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }
}
