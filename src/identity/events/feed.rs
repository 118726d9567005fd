//! The feed (`userEvents`): the same events the endpoints get, for teams that poll, in a stable
//! order. Events are numbered as they are written, but on PostgreSQL transactions commit in
//! another order than they number, so a cursor over those numbers could pass an event that
//! commits late. The feed's order is `position` instead, given after commit by one sequencer at
//! a time ([`UserEventRow::sequence`], run before each read): an event gets a position only
//! once it is visible, and positions only grow, so a cursor never skips one.

use crate::db::models::audit_event::AuditEventRow;
use crate::db::models::now;
use crate::db::models::user_event::UserEventRow;
use crate::db::{Conn, transaction};
use crate::identity::IdentityError;
use crate::identity::access::{Reader, System};

impl Reader<'_> {
    /// Up to `limit` events after the feed position `after`, oldest first.
    pub async fn user_events(
        &self,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<UserEventRow>, IdentityError> {
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                UserEventRow::sequence(conn, 10_000).await?;
                Ok(())
            },
        )
        .await?;
        Ok(UserEventRow::page(&mut self.db.conn().await?, after, limit).await?)
    }
}

impl System {
    /// Deletes events and deliveries past `events.retention_days`, and audit entries past
    /// `events.audit_retention_days`; returns how many events and entries.
    pub async fn purge_user_events(&self) -> Result<(usize, usize), IdentityError> {
        let days = |d: u32| chrono::Duration::days(i64::from(d));
        let events = &self.config.events;
        let mut conn = self.db.conn().await?;
        let purged = UserEventRow::purge(&mut conn, now() - days(events.retention_days)).await?;
        let audits =
            AuditEventRow::purge(&mut conn, now() - days(events.audit_retention_days)).await?;
        Ok((purged, audits))
    }
}
