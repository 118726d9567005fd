//! `official_account_identities`: a person in one Official Account, keyed by (app_id, openid).
//! What it shares with Mini Program identities is in [`super::identity`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::official_account_identities as oai;
use crate::db::{Conn, DbError};
use crate::types::{AppId, IdentityId, OpenId, UnionId, UserId};
use crate::with_conn;

/// A row of `official_account_identities`, as read and as inserted.
#[derive(Clone, Debug, Queryable, Identifiable, Insertable)]
#[diesel(table_name = oai)]
pub struct OfficialAccountIdentityRow {
    /// Row id.
    pub id: IdentityId,
    /// The owning user.
    pub user_id: UserId,
    /// The Official Account.
    pub app_id: AppId,
    /// The person's openid in that Official Account.
    pub openid: OpenId,
    /// The unionid WeChat reported, if any.
    pub unionid: Option<UnionId>,
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

/// A sighting of a known Official Account identity: its (live) user and the unionid to keep,
/// and what else the sighting tells (`None` leaves a column alone).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = oai)]
pub struct OfficialAccountSeen<'a> {
    /// The live user.
    pub user_id: &'a UserId,
    /// The unionid to keep (never another one than on record).
    #[diesel(treat_none_as_null = true)]
    pub unionid: Option<&'a UnionId>,
    /// The web-authorization scope of a login.
    pub scope: Option<&'a str>,
    /// The login time of a login.
    pub last_login_at: Option<NaiveDateTime>,
    /// Whether the person follows the account, when the sighting tells.
    pub subscribed: Option<bool>,
    /// When they followed, when the sighting tells.
    pub subscribed_at: Option<Option<NaiveDateTime>>,
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
    /// Inserts an identity.
    pub async fn insert(conn: &mut Conn, row: &Self) -> Result<(), DbError> {
        super::insert(conn, oai::table, row).await
    }

    /// Records a sighting of the identity `id`.
    pub async fn record_seen(
        conn: &mut Conn,
        id: &IdentityId,
        seen: &OfficialAccountSeen<'_>,
    ) -> Result<(), DbError> {
        let q = diesel::update(oai::table.find(id)).set(seen);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Stores the profile fields WeChat sent (those that are `Some`).
    pub async fn set_profile(
        conn: &mut Conn,
        id: &IdentityId,
        profile: &OfficialAccountProfile,
    ) -> Result<(), DbError> {
        let q = diesel::update(oai::table.find(id)).set(profile);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// The identity (app, openid), if there is one.
    pub async fn find(
        conn: &mut Conn,
        app_id: &AppId,
        openid: &OpenId,
    ) -> Result<Option<Self>, DbError> {
        let q = oai::table
            .filter(oai::app_id.eq(app_id))
            .filter(oai::openid.eq(openid));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }
}

super::identity::identity_reads!(OfficialAccountIdentityRow, oai);
