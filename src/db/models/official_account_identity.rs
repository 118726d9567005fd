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

impl OfficialAccountIdentityRow {
    /// All identities of these users.
    pub async fn for_users(conn: &mut Conn, user_ids: &[String]) -> Result<Vec<Self>, DbError> {
        let q = oai::table
            .filter(oai::user_id.eq_any(user_ids))
            .order((oai::created_at.asc(), oai::id.asc()));
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// Moves every identity of `from` to `to` (a merge).
    pub async fn move_all(conn: &mut Conn, from: &str, to: &str) -> Result<usize, DbError> {
        let q = diesel::update(oai::table.filter(oai::user_id.eq(from))).set(oai::user_id.eq(to));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }
}
