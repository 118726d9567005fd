//! `audit_events`: every admin or service action, newest first to read (`auditEvents`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::audit_events;
use crate::db::{Conn, DbError};
use crate::with_conn;

/// A row of `audit_events`.
#[derive(Clone, Debug, Queryable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    /// The order of writing (the cursor).
    pub seq: i64,
    /// Id (`aud_…`).
    pub id: String,
    /// What was done (`MERGE_USERS`).
    pub action: String,
    /// The API key's name.
    pub actor: String,
    /// The user it was done to, if any.
    pub user_id: Option<String>,
    /// What else an admin needs to know, as JSON text (no secrets).
    pub details: String,
    /// When.
    pub created_at: NaiveDateTime,
}

/// An entry to write.
#[derive(Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    /// Id.
    pub id: &'a str,
    /// What was done.
    pub action: &'a str,
    /// Who.
    pub actor: &'a str,
    /// To whom.
    pub user_id: Option<&'a str>,
    /// Details, as JSON text.
    pub details: &'a str,
    /// When.
    pub created_at: NaiveDateTime,
}

/// Which entries to read (all given conditions hold).
#[derive(Default)]
pub struct AuditFilter<'a> {
    /// Only this actor's.
    pub actor: Option<&'a str>,
    /// Only this action.
    pub action: Option<&'a str>,
    /// Only those about this user.
    pub user_id: Option<&'a str>,
    /// Only those at or after this time.
    pub since: Option<NaiveDateTime>,
}

impl AuditEventRow {
    /// Writes an entry.
    pub async fn insert(conn: &mut Conn, entry: &NewAuditEvent<'_>) -> Result<(), DbError> {
        super::insert(conn, audit_events::table, entry).await
    }

    /// Up to `limit` entries matching `filter` before `before` (a `seq`), newest first.
    pub async fn page(
        conn: &mut Conn,
        filter: &AuditFilter<'_>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEventRow>, DbError> {
        macro_rules! query {
            () => {{
                let mut q = audit_events::table
                    .filter(audit_events::seq.lt(before.unwrap_or(i64::MAX)))
                    .order(audit_events::seq.desc())
                    .limit(limit)
                    .into_boxed();
                if let Some(actor) = filter.actor {
                    q = q.filter(audit_events::actor.eq(actor));
                }
                if let Some(action) = filter.action {
                    q = q.filter(audit_events::action.eq(action));
                }
                if let Some(user_id) = filter.user_id {
                    q = q.filter(audit_events::user_id.eq(user_id));
                }
                if let Some(since) = filter.since {
                    q = q.filter(audit_events::created_at.ge(since));
                }
                q
            }};
        }
        Ok(with_conn!(conn, c => query!().load(c).await)?)
    }

    /// Blanks what an admin wrote about these users (the reasons they were disabled for): an
    /// erasure keeps who did what, not why.
    pub async fn blank_reasons(conn: &mut Conn, users: &[&str]) -> Result<(), DbError> {
        let q = diesel::update(
            audit_events::table
                .filter(audit_events::user_id.eq_any(users))
                .filter(audit_events::action.eq("DISABLE_USER")),
        )
        .set(audit_events::details.eq("{}"));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Deletes the entries written before `before`; returns how many.
    pub async fn purge(conn: &mut Conn, before: NaiveDateTime) -> Result<usize, DbError> {
        let q = diesel::delete(audit_events::table.filter(audit_events::created_at.lt(before)));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }
}
