//! `webhook_events`: what WeChat pushed to `/wechat/{appId}/events`, deduplicated on
//! (app_id, dedupe_key), processed in order by the `webhook_events` job.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::webhook_events as w;
use crate::db::{Conn, DbError};
use crate::types::{AppId, OpenId, WebhookEventId};
use crate::with_conn;

/// A row of `webhook_events`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = w)]
pub struct WebhookEventRow {
    /// UUID.
    pub id: WebhookEventId,
    /// The app it was pushed for.
    pub app_id: AppId,
    /// MsgId, or FromUserName + CreateTime + Event (WeChat's own advice).
    pub dedupe_key: String,
    /// `event`, `text`, ...
    pub msg_type: String,
    /// The event (`subscribe`, `TEMPLATESENDJOBFINISH`, ...).
    pub event: Option<String>,
    /// FromUserName: the person's openid.
    pub openid: OpenId,
    /// CreateTime.
    pub event_at: NaiveDateTime,
    /// The message (decrypted) as WeChat sent it.
    pub payload: String,
    /// When it arrived.
    pub received_at: NaiveDateTime,
    /// When it was processed (or given up on).
    pub processed_at: Option<NaiveDateTime>,
    /// Processing attempts.
    pub attempts: i32,
    /// The last processing error.
    pub error: Option<String>,
}

impl WebhookEventRow {
    /// Stores an event unless one with its (app, dedupe key) is stored already; whether it was
    /// new.
    pub async fn insert_new(conn: &mut Conn, row: &WebhookEventRow) -> Result<bool, DbError> {
        let q = diesel::insert_into(w::table)
            .values(row)
            .on_conflict((w::app_id, w::dedupe_key))
            .do_nothing();
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Whether the event `id` has been processed (or given up on).
    pub async fn is_processed(conn: &mut Conn, id: &WebhookEventId) -> Result<bool, DbError> {
        let q = w::table.find(id).select(w::processed_at.is_not_null());
        Ok(with_conn!(conn, c => q.first::<bool>(c).await.optional())?.unwrap_or(true))
    }

    /// The oldest unprocessed events of an app.
    pub async fn pending(
        conn: &mut Conn,
        app_id: &AppId,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        let q = w::table
            .filter(w::app_id.eq(app_id))
            .filter(w::processed_at.is_null())
            .order((w::received_at.asc(), w::id.asc()))
            .limit(limit);
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// Apps with unprocessed events.
    pub async fn apps_pending(conn: &mut Conn) -> Result<Vec<AppId>, DbError> {
        let q = w::table
            .filter(w::processed_at.is_null())
            .select(w::app_id)
            .distinct();
        Ok(with_conn!(conn, c => q.load::<AppId>(c).await)?)
    }

    /// Records the outcome of processing an event: done (`processed`), or failed with `error`
    /// (kept pending unless `processed`).
    pub async fn record_attempt(
        conn: &mut Conn,
        id: &WebhookEventId,
        processed: Option<NaiveDateTime>,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        let q = diesel::update(w::table.find(id)).set((
            w::processed_at.eq(processed),
            w::attempts.eq(w::attempts + 1),
            w::error.eq(error),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Deletes processed events received before `before`; how many.
    pub async fn purge_processed(conn: &mut Conn, before: NaiveDateTime) -> Result<usize, DbError> {
        let q = diesel::delete(
            w::table
                .filter(w::processed_at.is_not_null())
                .filter(w::received_at.lt(before)),
        );
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Events of an app, newest first (tests and admins).
    pub async fn recent(conn: &mut Conn, app_id: &AppId, limit: i64) -> Result<Vec<Self>, DbError> {
        let q = w::table
            .filter(w::app_id.eq(app_id))
            .order((w::received_at.desc(), w::id.desc()))
            .limit(limit);
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }
}
