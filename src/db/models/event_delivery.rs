//! `event_deliveries`: one event to one endpoint, from its queueing (in the event's
//! transaction) to delivered or given up. Per endpoint and user, only the oldest pending
//! delivery is due ([`EventDeliveryRow::due`]), so a user's events arrive in order.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::user_event::UserEventRow;
use crate::db::schema::{event_deliveries, event_endpoints, user_events};
use crate::db::{Conn, DbError};
use crate::with_conn;

/// A row of `event_deliveries`.
#[derive(Clone, Debug, Queryable)]
#[diesel(table_name = event_deliveries)]
pub struct EventDeliveryRow {
    /// The endpoint.
    pub endpoint_id: String,
    /// The event (`user_events.seq`).
    pub event_seq: i64,
    /// The event's user (deliveries of one user go in order).
    pub user_id: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is due (pending only).
    pub next_attempt_at: NaiveDateTime,
    /// The last attempt.
    pub last_attempt_at: Option<NaiveDateTime>,
    /// The HTTP status the endpoint last answered.
    pub response_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When queued.
    pub created_at: NaiveDateTime,
    /// When delivered.
    pub delivered_at: Option<NaiveDateTime>,
    /// A merge's source: its pending deliveries go first too.
    pub also_user_id: Option<String>,
}

/// How an attempt ended, to record.
pub struct Attempt<'a> {
    /// When.
    pub at: NaiveDateTime,
    /// The HTTP status, if there was an answer.
    pub response_status: Option<i32>,
    /// `None`: delivered; else why not.
    pub error: Option<&'a str>,
    /// A failure: retry then (`None`: give up, `failed`).
    pub retry_at: Option<NaiveDateTime>,
}

impl EventDeliveryRow {
    /// The enabled endpoints, not paused at `at`, with a delivery due then (one probe of the
    /// due index per endpoint, at most 20).
    pub async fn endpoints_due(conn: &mut Conn, at: NaiveDateTime) -> Result<Vec<String>, DbError> {
        let due = event_deliveries::table
            .filter(event_deliveries::endpoint_id.eq(event_endpoints::id))
            .filter(event_deliveries::status.eq("pending"))
            .filter(event_deliveries::next_attempt_at.le(at));
        let q = event_endpoints::table
            .filter(event_endpoints::enabled.eq(true))
            .filter(
                event_endpoints::paused_until
                    .is_null()
                    .or(event_endpoints::paused_until.le(at)),
            )
            .filter(diesel::dsl::exists(due))
            .select(event_endpoints::id);
        Ok(with_conn!(conn, c => q.load(c).await)?)
    }

    /// Up to `limit` deliveries to `endpoint` due at `at`, oldest first, each the oldest pending
    /// one of its user (so at most one per user; a merge also waits for its source's), with
    /// their events.
    pub async fn due(
        conn: &mut Conn,
        endpoint: &str,
        at: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<(EventDeliveryRow, UserEventRow)>, DbError> {
        let earlier = diesel::alias!(event_deliveries as earlier);
        let q = event_deliveries::table
            .inner_join(user_events::table)
            .filter(event_deliveries::endpoint_id.eq(endpoint))
            .filter(event_deliveries::status.eq("pending"))
            .filter(event_deliveries::next_attempt_at.le(at))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                earlier
                    .filter(earlier.field(event_deliveries::endpoint_id).eq(endpoint))
                    .filter(
                        earlier
                            .field(event_deliveries::user_id)
                            .eq(event_deliveries::user_id)
                            .nullable()
                            .or(earlier
                                .field(event_deliveries::user_id)
                                .nullable()
                                .eq(event_deliveries::also_user_id)),
                    )
                    .filter(earlier.field(event_deliveries::status).eq("pending"))
                    .filter(
                        earlier
                            .field(event_deliveries::event_seq)
                            .lt(event_deliveries::event_seq),
                    ),
            )))
            .order(event_deliveries::event_seq.asc())
            .limit(limit)
            .select((event_deliveries::all_columns, user_events::all_columns));
        Ok(with_conn!(conn, c => q.load(c).await)?)
    }

    /// Records an attempt at the delivery of `event_seq` to `endpoint`.
    pub async fn record(
        conn: &mut Conn,
        endpoint: &str,
        event_seq: i64,
        attempt: &Attempt<'_>,
    ) -> Result<(), DbError> {
        let status = match (attempt.error, attempt.retry_at) {
            (None, _) => "delivered",
            (Some(_), Some(_)) => "pending",
            (Some(_), None) => "failed",
        };
        let q = diesel::update(event_deliveries::table.find((endpoint, event_seq))).set((
            event_deliveries::status.eq(status),
            event_deliveries::attempts.eq(event_deliveries::attempts + 1),
            event_deliveries::next_attempt_at.eq(attempt.retry_at.unwrap_or(attempt.at)),
            event_deliveries::last_attempt_at.eq(attempt.at),
            event_deliveries::response_status.eq(attempt.response_status),
            event_deliveries::last_error.eq(attempt.error),
            event_deliveries::delivered_at.eq(attempt.error.is_none().then_some(attempt.at)),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Up to `limit` deliveries to `endpoint` (only those with `status` when given) after the
    /// event `after`, oldest first, with their events.
    pub async fn page(
        conn: &mut Conn,
        endpoint: &str,
        status: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(EventDeliveryRow, UserEventRow)>, DbError> {
        let statuses = match status {
            Some(status) => vec![status],
            None => vec!["pending", "delivered", "failed"],
        };
        let q = event_deliveries::table
            .inner_join(user_events::table)
            .filter(event_deliveries::endpoint_id.eq(endpoint))
            .filter(event_deliveries::status.eq_any(statuses))
            .filter(event_deliveries::event_seq.gt(after.unwrap_or(0)))
            .order(event_deliveries::event_seq.asc())
            .limit(limit)
            .select((event_deliveries::all_columns, user_events::all_columns));
        Ok(with_conn!(conn, c => q.load(c).await)?)
    }
}
