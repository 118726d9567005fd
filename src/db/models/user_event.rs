//! `user_events`: the transactional outbox and the feed (`userEvents`). An event is written in
//! the transaction of the change it reports, together with one `event_deliveries` row per
//! endpoint subscribed to its type ([`UserEventRow::insert`]). The feed's order is `position`,
//! given after commit by [`UserEventRow::sequence`].

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
use diesel_async::RunQueryDsl;

use crate::db::schema::{event_deliveries, event_endpoints, user_events};
use crate::db::{Conn, DbError};
use crate::types::UserId;
use crate::with_conn;

/// What an erased person's event keeps as its `data` (SQL over the row): its user's id.
const ERASED_DATA: &str = "'{\"userId\":\"' || user_id || '\",\"erased\":true}'";

/// A row of `user_events`.
#[derive(Clone, Debug, Queryable)]
#[diesel(table_name = user_events)]
pub struct UserEventRow {
    /// The order of writing.
    pub seq: i64,
    /// The event id (`webhook-id`), e.g. `evt_…`.
    pub id: String,
    /// The type as on the wire (`user.merged`).
    pub event_type: String,
    /// The user it is about (a merge's survivor).
    pub user_id: UserId,
    /// The event's `data`, as JSON text.
    pub data: String,
    /// When it happened.
    pub created_at: NaiveDateTime,
    /// Its place in the feed, once sequenced.
    pub position: Option<i64>,
}

/// An event to write.
#[derive(Insertable)]
#[diesel(table_name = user_events)]
pub struct NewUserEvent<'a> {
    /// The event id.
    pub id: &'a str,
    /// The type as on the wire.
    pub event_type: &'a str,
    /// The user it is about.
    pub user_id: &'a UserId,
    /// The `data`, as JSON text.
    pub data: &'a str,
    /// When.
    pub created_at: NaiveDateTime,
}

impl UserEventRow {
    /// Writes the event and queues it for every enabled endpoint subscribed to its type (after
    /// the pending ones of its user and of `also`, a merge's source); returns how many
    /// deliveries were queued.
    pub async fn insert(
        conn: &mut Conn,
        event: &NewUserEvent<'_>,
        also: Option<&UserId>,
    ) -> Result<usize, DbError> {
        let pattern = format!("%,{},%", event.event_type);
        if let Conn::Postgres(c) = conn {
            // One round trip: the event, and its deliveries from what it returns.
            return Ok(diesel::sql_query(
                "WITH e AS (INSERT INTO user_events (id, event_type, user_id, data, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING seq) \
                 INSERT INTO event_deliveries (endpoint_id, event_seq, user_id, status, attempts, \
                 next_attempt_at, created_at, also_user_id) \
                 SELECT ep.id, e.seq, $3, 'pending', 0, $5, $5, $6 FROM e CROSS JOIN event_endpoints ep \
                 WHERE ep.enabled AND ep.events LIKE $7",
            )
            .bind::<Text, _>(event.id)
            .bind::<Text, _>(event.event_type)
            .bind::<Text, _>(event.user_id.as_str())
            .bind::<Text, _>(event.data)
            .bind::<Timestamp, _>(event.created_at)
            .bind::<Nullable<Text>, _>(also.map(UserId::as_str))
            .bind::<Text, _>(&pattern)
            .execute(&mut **c)
            .await?);
        }
        let q = diesel::insert_into(user_events::table)
            .values(event)
            .returning(user_events::seq);
        let seq: i64 = with_conn!(conn, c => q.get_result(c).await)?;
        let endpoints = event_endpoints::table
            .filter(event_endpoints::enabled.eq(true))
            .filter(event_endpoints::events.like(pattern))
            .select((
                event_endpoints::id,
                seq.into_sql::<BigInt>(),
                event.user_id.as_str().into_sql::<Text>(),
                "pending".into_sql::<Text>(),
                0.into_sql::<Integer>(),
                event.created_at.into_sql::<Timestamp>(),
                event.created_at.into_sql::<Timestamp>(),
                also.map(UserId::as_str).into_sql::<Nullable<Text>>(),
            ));
        let q = diesel::insert_into(event_deliveries::table)
            .values(endpoints)
            .into_columns((
                event_deliveries::endpoint_id,
                event_deliveries::event_seq,
                event_deliveries::user_id,
                event_deliveries::status,
                event_deliveries::attempts,
                event_deliveries::next_attempt_at,
                event_deliveries::created_at,
                event_deliveries::also_user_id,
            ));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Gives the events committed since the last call their feed positions, in the order they
    /// were written; inside a transaction. One sequencer at a time (an advisory lock on
    /// PostgreSQL; SQLite has one writer), so positions only grow and a feed cursor never
    /// passes an event that is not sequenced yet. At most `limit` per call.
    pub async fn sequence(conn: &mut Conn, limit: i64) -> Result<usize, DbError> {
        Ok(match conn {
            Conn::Postgres(c) => {
                diesel::sql_query("SELECT pg_advisory_xact_lock(7231001)")
                    .execute(&mut **c)
                    .await?;
                diesel::sql_query(
                    "UPDATE user_events e SET position = n.pos FROM (\
                     SELECT seq, (SELECT COALESCE(MAX(position), 0) FROM user_events) \
                     + ROW_NUMBER() OVER (ORDER BY seq) AS pos \
                     FROM user_events WHERE position IS NULL ORDER BY seq LIMIT $1) n \
                     WHERE e.seq = n.seq",
                )
                .bind::<BigInt, _>(limit)
                .execute(&mut **c)
                .await?
            }
            Conn::Sqlite(c) => {
                diesel::sql_query(
                    "UPDATE user_events SET position = seq WHERE seq IN \
                     (SELECT seq FROM user_events WHERE position IS NULL ORDER BY seq LIMIT ?)",
                )
                .bind::<BigInt, _>(limit)
                .execute(&mut **c)
                .await?
            }
        })
    }

    /// Up to `limit` sequenced events after the position `after`, in feed order.
    pub async fn page(
        conn: &mut Conn,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<UserEventRow>, DbError> {
        let q = user_events::table
            .filter(user_events::position.gt(after.unwrap_or(0)))
            .order(user_events::position.asc())
            .limit(limit);
        Ok(with_conn!(conn, c => q.load(c).await)?)
    }

    /// Blanks the personal part of these users' events (an erasure): every event but a merge's
    /// (ids only) keeps only its user's id.
    pub async fn scrub(conn: &mut Conn, users: &[UserId]) -> Result<(), DbError> {
        let q = diesel::update(
            user_events::table
                .filter(user_events::user_id.eq_any(users))
                .filter(user_events::event_type.ne("user.merged")),
        )
        .set(user_events::data.eq(sql::<Text>(ERASED_DATA)));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Deletes the events (and their deliveries) written before `before`; returns how many
    /// events.
    /// The event with the greatest feed position stays, so the next positions go on from it
    /// (a cursor read before the purge stays valid).
    pub async fn purge(conn: &mut Conn, before: NaiveDateTime) -> Result<usize, DbError> {
        let q =
            diesel::delete(event_deliveries::table.filter(event_deliveries::created_at.lt(before)));
        with_conn!(conn, c => q.execute(c).await)?;
        let q = user_events::table.select(diesel::dsl::max(user_events::position));
        let last: Option<i64> = with_conn!(conn, c => q.first(c).await)?;
        let q = diesel::delete(
            user_events::table
                .filter(user_events::created_at.lt(before))
                .filter(
                    user_events::position
                        .is_null()
                        .or(user_events::position.ne(last.unwrap_or(-1))),
                ),
        );
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Blanks the personal part of every identity event whose data names one of `openids` (an
    /// erasure: an unlink's event is filed under the user the identity left).
    pub async fn scrub_openids(conn: &mut Conn, openids: &[&str]) -> Result<(), DbError> {
        let find = match conn {
            Conn::Postgres(_) => "strpos",
            Conn::Sqlite(_) => "instr",
        };
        for openid in openids {
            let needle = format!("\"openid\":\"{openid}\"");
            let names = sql::<diesel::sql_types::Bool>(&format!("{find}(data, "))
                .bind::<Text, _>(needle)
                .sql(") > 0");
            let q = diesel::update(
                user_events::table
                    .filter(user_events::event_type.like("identity.%"))
                    .filter(names),
            )
            .set(user_events::data.eq(sql::<Text>(ERASED_DATA)));
            with_conn!(conn, c => q.execute(c).await)?;
        }
        Ok(())
    }
}
