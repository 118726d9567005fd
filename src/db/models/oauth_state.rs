//! `oauth_states`: OA web-authorization states, single-use and expiring, at most a fixed number
//! per app (slots); `oauth_state_counters`: how many states each app has issued.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{oauth_state_counters, oauth_states};
use crate::db::{Conn, DbError};
use crate::types::{AppId, OauthStateId};
use crate::with_conn;

/// A row of `oauth_states`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = oauth_states)]
pub struct OauthStateRow {
    /// The random part of the state.
    pub id: OauthStateId,
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
    /// Its place among the app's `limits.max_live_states_per_app` slots (None: stored before
    /// slots existed).
    pub slot: Option<i64>,
}

impl OauthStateRow {
    /// Stores a new state in its app's `slot`, replacing the state there (used or not): with
    /// slots `0..cap` per app (a unique index), an app never holds more than `cap` states,
    /// whatever runs at once.
    pub async fn store_in_slot(conn: &mut Conn, row: &OauthStateRow) -> Result<(), DbError> {
        use diesel::upsert::excluded;
        use oauth_states as s;
        let q = diesel::insert_into(s::table)
            .values(row)
            .on_conflict((s::app_id, s::slot))
            .do_update()
            .set((
                s::id.eq(excluded(s::id)),
                s::scope.eq(excluded(s::scope)),
                s::return_to.eq(excluded(s::return_to)),
                s::browser_binding.eq(excluded(s::browser_binding)),
                s::code_challenge.eq(excluded(s::code_challenge)),
                s::created_at.eq(excluded(s::created_at)),
                s::expires_at.eq(excluded(s::expires_at)),
                s::used_at.eq(excluded(s::used_at)),
            ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Deletes the states in slots `cap` and beyond (left from a larger cap); how many.
    pub async fn purge_beyond_slots(conn: &mut Conn, cap: i64) -> Result<u64, DbError> {
        let q = diesel::delete(oauth_states::table.filter(oauth_states::slot.ge(cap)));
        Ok(with_conn!(conn, c => q.execute(c).await)? as u64)
    }

    /// Counts one more state issued for `app_id`; the count, from 1 (its slot is
    /// `(count - 1) mod cap`). One statement: concurrent callers get different counts.
    pub async fn count_issued(conn: &mut Conn, app_id: &AppId) -> Result<i64, DbError> {
        use oauth_state_counters as c;
        let q = diesel::insert_into(c::table)
            .values((c::app_id.eq(app_id), c::issued.eq(1_i64)))
            .on_conflict(c::app_id)
            .do_update()
            .set(c::issued.eq(c::issued + 1_i64))
            .returning(c::issued);
        Ok(with_conn!(conn, c => q.get_result::<i64>(c).await)?)
    }
}

super::single_use::single_use_table!(OauthStateRow, oauth_states, OauthStateId);
