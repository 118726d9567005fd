//! `event_endpoints`: where user events are delivered (Standard Webhooks), at most
//! [`MAX_ENDPOINTS`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{event_deliveries, event_endpoints};
use crate::db::{Conn, DbError};
use crate::with_conn;

/// The most endpoints a deployment registers.
pub const MAX_ENDPOINTS: i64 = 20;

/// A row of `event_endpoints`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = event_endpoints)]
pub struct EventEndpointRow {
    /// Id (`ep_…`).
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The types it takes, comma-wrapped (`,user.created,user.merged,`).
    pub events: String,
    /// What the admin wrote about it.
    pub description: Option<String>,
    /// The signing secret (`whsec_…`), sealed with the master key.
    pub secret: String,
    /// Whether events are queued for it.
    pub enabled: bool,
    /// Since when its deliveries fail for good (a delivery given up after its retries).
    pub failing_since: Option<NaiveDateTime>,
    /// The last failure, as an admin reads it (no response body).
    pub last_error: Option<String>,
    /// The API key that registered it.
    pub created_by: String,
    /// When registered.
    pub created_at: NaiveDateTime,
    /// Last change.
    pub updated_at: NaiveDateTime,
    /// Nothing is tried before this (a whole batch failed: it looks down).
    pub paused_until: Option<NaiveDateTime>,
}

/// What an update changes (`None`: unchanged).
#[derive(AsChangeset, Default)]
#[diesel(table_name = event_endpoints)]
pub struct EndpointChange {
    /// New URL.
    pub url: Option<String>,
    /// New types.
    pub events: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Enabled or not.
    pub enabled: Option<bool>,
    /// Cleared on an update that enables the endpoint.
    pub failing_since: Option<Option<NaiveDateTime>>,
    /// Cleared with `failing_since`.
    pub last_error: Option<Option<String>>,
    /// The time of the change.
    pub updated_at: Option<NaiveDateTime>,
}

impl EventEndpointRow {
    /// The events list as stored, from the wire names.
    pub fn events_column<'a>(types: impl IntoIterator<Item = &'a str>) -> String {
        let mut s = String::from(",");
        for t in types {
            s.push_str(t);
            s.push(',');
        }
        s
    }

    /// The wire names of the types it takes.
    pub fn event_types(&self) -> impl Iterator<Item = &str> {
        self.events.split(',').filter(|t| !t.is_empty())
    }

    /// Registers an endpoint unless [`MAX_ENDPOINTS`] are there; false if they are (inside a
    /// transaction, which the count and the insert share).
    pub async fn insert(conn: &mut Conn, row: &EventEndpointRow) -> Result<bool, DbError> {
        if let Conn::Postgres(c) = conn {
            // Two registrations at once must not both find room for one.
            diesel::sql_query("LOCK TABLE event_endpoints IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut **c)
                .await?;
        }
        let q = event_endpoints::table.count();
        let count: i64 = with_conn!(conn, c => q.get_result(c).await)?;
        if count >= MAX_ENDPOINTS {
            return Ok(false);
        }
        super::insert(conn, event_endpoints::table, row).await?;
        Ok(true)
    }

    /// Every endpoint, oldest first.
    pub async fn all(conn: &mut Conn) -> Result<Vec<EventEndpointRow>, DbError> {
        let q = event_endpoints::table
            .order((event_endpoints::created_at.asc(), event_endpoints::id.asc()));
        Ok(with_conn!(conn, c => q.load(c).await)?)
    }

    /// The endpoint with this id.
    pub async fn find(conn: &mut Conn, id: &str) -> Result<Option<EventEndpointRow>, DbError> {
        let q = event_endpoints::table.find(id);
        Ok(with_conn!(conn, c => q.first(c).await.optional())?)
    }

    /// Applies `change`; false if there is no such endpoint.
    pub async fn update(
        conn: &mut Conn,
        id: &str,
        change: &EndpointChange,
    ) -> Result<bool, DbError> {
        let q = diesel::update(event_endpoints::table.find(id)).set(change);
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Deletes the endpoint and its deliveries; false if there is no such endpoint.
    pub async fn delete(conn: &mut Conn, id: &str) -> Result<bool, DbError> {
        let q =
            diesel::delete(event_deliveries::table.filter(event_deliveries::endpoint_id.eq(id)));
        with_conn!(conn, c => q.execute(c).await)?;
        let q = diesel::delete(event_endpoints::table.find(id));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Tries nothing for the endpoint before `until` (a whole batch failed).
    pub async fn pause(conn: &mut Conn, id: &str, until: NaiveDateTime) -> Result<(), DbError> {
        let q = diesel::update(event_endpoints::table.find(id))
            .set(event_endpoints::paused_until.eq(until));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Marks the endpoint failing (from `at`, unless it already was) with `error`.
    pub async fn mark_failing(
        conn: &mut Conn,
        id: &str,
        error: &str,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        let q = diesel::update(event_endpoints::table.find(id)).set((
            event_endpoints::failing_since.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
            >("COALESCE(failing_since, ")
            .bind::<diesel::sql_types::Timestamp, _>(at)
            .sql(")")),
            event_endpoints::last_error.eq(error),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }
}
