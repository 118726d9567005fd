//! `wechat_access_tokens`: what the token manager keeps for each app, shared by every
//! instance: its access token and (Official Accounts) its `jsapi_ticket`, one row per app and
//! [`Kept`] kind. Both are kept alike; the force-mode bookkeeping is the access token's only.
//!
//! A refresh is leased: an instance takes `refresh_owner`/`refreshing_until` with one
//! conditional update ([`AccessTokenRow::lease_refresh`]), calls WeChat, and stores the token
//! only while it still holds the lease ([`AccessTokenRow::store`]). Others wait for the stored
//! token (or ticket) instead of calling WeChat themselves.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::wechat_access_tokens as t;
use crate::db::{Conn, DbError};
use crate::types::AppId;
use crate::with_conn;

crate::db::text_enum::text_enum! {
    /// What a row keeps: a secret WeChat hands an app's server for a while.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Kept {
        /// The app's access token for WeChat's server API (`stable_token` or `token`).
        AccessToken = "access_token",
        /// An Official Account's `jsapi_ticket` for JS-SDK signatures (`getticket`).
        JsapiTicket = "jsapi_ticket",
    }
}

/// A row of `wechat_access_tokens`.
#[derive(Clone, Debug, Queryable)]
#[diesel(table_name = t)]
pub struct AccessTokenRow {
    /// The app.
    pub app_id: AppId,
    /// What the row keeps.
    pub kind: Kept,
    /// The token (or ticket), sealed (see `crate::crypto::SecretBox`).
    pub token: Option<String>,
    /// SHA-256 (hex) of the token.
    pub token_hash: Option<String>,
    /// SHA-256 of the token WeChat last refused.
    pub failed_hash: Option<String>,
    /// When the token expires (WeChat's `expires_in` after it was fetched).
    pub expires_at: Option<NaiveDateTime>,
    /// When it was fetched.
    pub fetched_at: Option<NaiveDateTime>,
    /// The instance refreshing it now.
    pub refresh_owner: Option<String>,
    /// Until when that refresh is leased.
    pub refreshing_until: Option<NaiveDateTime>,
    /// Tokens stored so far.
    pub refreshes: i64,
    /// The day (`YYYY-MM-DD`, Beijing time) `force_count` counts.
    pub force_day: Option<String>,
    /// Force-mode refreshes on `force_day`.
    pub force_count: i32,
    /// The last force-mode refresh.
    pub last_force_at: Option<NaiveDateTime>,
}

/// A token to store, with the force-mode bookkeeping when it was forced.
#[derive(Clone, Debug)]
pub struct StoredToken<'a> {
    /// The sealed token.
    pub sealed: &'a str,
    /// Its SHA-256.
    pub hash: &'a str,
    /// Its expiry.
    pub expires_at: NaiveDateTime,
    /// Now.
    pub fetched_at: NaiveDateTime,
    /// Force mode: the day and that day's count after this refresh.
    pub forced: Option<(&'a str, i32)>,
}

impl AccessTokenRow {
    /// The app's row of `kind`, if it has one.
    pub async fn find(
        conn: &mut Conn,
        app_id: &AppId,
        kind: Kept,
    ) -> Result<Option<Self>, DbError> {
        let q = t::table.find((app_id, kind));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// Takes the refresh lease of the app's `kind` for `owner` until `until`, unless another
    /// instance holds an unexpired one; creates the row on its first refresh. Whether it was
    /// taken.
    pub async fn lease_refresh(
        conn: &mut Conn,
        (app_id, kind): (&AppId, Kept),
        owner: &str,
        now: NaiveDateTime,
        until: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let insert = diesel::insert_into(t::table)
            .values((
                t::app_id.eq(app_id),
                t::kind.eq(kind),
                t::refresh_owner.eq(owner),
                t::refreshing_until.eq(until),
            ))
            .on_conflict_do_nothing();
        let inserted = with_conn!(conn, c => insert.execute(c).await)?;
        if inserted == 1 {
            return Ok(true);
        }
        let update = diesel::update(
            t::table.find((app_id, kind)).filter(
                t::refreshing_until
                    .is_null()
                    .or(t::refreshing_until.lt(now)),
            ),
        )
        .set((t::refresh_owner.eq(owner), t::refreshing_until.eq(until)));
        Ok(with_conn!(conn, c => update.execute(c).await)? == 1)
    }

    /// Stores a fresh token (or ticket) and releases `owner`'s lease; false (nothing stored)
    /// if the lease was lost meanwhile.
    pub async fn store(
        conn: &mut Conn,
        (app_id, kind): (&AppId, Kept),
        owner: &str,
        token: &StoredToken<'_>,
    ) -> Result<bool, DbError> {
        let target = t::table
            .find((app_id, kind))
            .filter(t::refresh_owner.eq(owner));
        let set = (
            t::token.eq(token.sealed),
            t::token_hash.eq(token.hash),
            t::expires_at.eq(token.expires_at),
            t::fetched_at.eq(token.fetched_at),
            t::refresh_owner.eq(None::<String>),
            t::refreshing_until.eq(None::<NaiveDateTime>),
            t::refreshes.eq(t::refreshes + 1),
        );
        let updated = match token.forced {
            Some((day, count)) => {
                let q = diesel::update(target).set((
                    set,
                    t::force_day.eq(day),
                    t::force_count.eq(count),
                    t::last_force_at.eq(token.fetched_at),
                ));
                with_conn!(conn, c => q.execute(c).await)?
            }
            None => {
                let q = diesel::update(target).set(set);
                with_conn!(conn, c => q.execute(c).await)?
            }
        };
        Ok(updated == 1)
    }

    /// Gives `owner`'s refresh lease up (the refresh failed).
    pub async fn release(
        conn: &mut Conn,
        (app_id, kind): (&AppId, Kept),
        owner: &str,
    ) -> Result<(), DbError> {
        let q = diesel::update(
            t::table
                .find((app_id, kind))
                .filter(t::refresh_owner.eq(owner)),
        )
        .set((
            t::refresh_owner.eq(None::<String>),
            t::refreshing_until.eq(None::<NaiveDateTime>),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Marks the token (or ticket) with SHA-256 `hash` as refused by WeChat, if it is still
    /// the stored one (one another instance already replaced stays replaced). Whether it was.
    pub async fn invalidate(
        conn: &mut Conn,
        (app_id, kind): (&AppId, Kept),
        hash: &str,
        now: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let q = diesel::update(t::table.find((app_id, kind)).filter(t::token_hash.eq(hash)))
            .set((t::expires_at.eq(now), t::failed_hash.eq(hash)));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }
}
