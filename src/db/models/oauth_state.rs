//! `oauth_states`: OA web-authorization states, single-use and expiring.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::oauth_states;
use crate::db::{Conn, DbError};
use crate::types::AppId;
use crate::with_conn;

/// A row of `oauth_states`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = oauth_states)]
pub struct OauthStateRow {
    /// The random part of the state.
    pub id: String,
    /// The Official Account it was issued for.
    pub app_id: AppId,
    /// `snsapi_base` or `snsapi_userinfo`.
    pub scope: String,
    /// Where the server-driven flow sends the browser afterwards (None: frontend-driven).
    pub return_to: Option<String>,
    /// Server-driven: SHA-256 of the nonce in the cookie of the browser that started the login.
    pub browser_binding: Option<String>,
    /// base64url(SHA-256(code verifier)), when the frontend bound the login to a verifier.
    pub code_challenge: Option<String>,
    /// Issue time.
    pub created_at: NaiveDateTime,
    /// Expiry.
    pub expires_at: NaiveDateTime,
    /// When it was used.
    pub used_at: Option<NaiveDateTime>,
}

impl OauthStateRow {
    /// Deletes `app_id`'s unused states beyond the `keep` newest; returns how many.
    pub async fn evict_oldest_live(
        conn: &mut Conn,
        app_id: &AppId,
        keep: i64,
    ) -> Result<u64, DbError> {
        let beyond = oauth_states::table
            .filter(oauth_states::app_id.eq(app_id))
            .filter(oauth_states::used_at.is_null())
            .order((oauth_states::created_at.desc(), oauth_states::id.desc()))
            .limit(i64::MAX)
            .offset(keep)
            .select(oauth_states::id);
        let ids: Vec<String> = with_conn!(conn, c => beyond.load(c).await)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let q = diesel::delete(oauth_states::table.filter(oauth_states::id.eq_any(&ids)));
        Ok(with_conn!(conn, c => q.execute(c).await)? as u64)
    }
}

super::single_use::single_use_table!(OauthStateRow, oauth_states);
