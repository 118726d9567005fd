//! The audit log: every admin or service action, with the API key's name as the actor and, where
//! there is one, the user it was done to. Written in the action's transaction where it has one
//! ([`record`]), else right after it succeeded ([`Parts::audit`]). Details never hold secrets,
//! tokens or personal data (ids, app ids, counts).

use serde_json::Value;

use super::access::Admin;
use super::{IdentityError, Parts};
use crate::db::models::audit_event::{AuditEventRow, AuditFilter, NewAuditEvent};
use crate::db::models::now;
use crate::db::{Conn, DbError};
use crate::types::UserId;

macro_rules! audit_actions {
    ($($variant:ident = $name:literal),+ $(,)?) => {
        /// What an admin or service key did.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum AuditAction { $(#[doc = $name] $variant),+ }

        impl AuditAction {
            /// Every action.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant),+];

            /// The action as stored and shown (`MERGE_USERS`).
            pub fn as_str(self) -> &'static str {
                match self { $(AuditAction::$variant => $name),+ }
            }

            /// The action of a stored name.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(AuditAction::$variant),)+ _ => None }
            }
        }
    };
}

audit_actions!(
    MergeUsers = "MERGE_USERS",
    UnlinkIdentity = "UNLINK_IDENTITY",
    DisableUser = "DISABLE_USER",
    EnableUser = "ENABLE_USER",
    DeleteUser = "DELETE_USER",
    RevokeSessions = "REVOKE_SESSIONS",
    RotateSigningKey = "ROTATE_SIGNING_KEY",
    AccessTokenServed = "ACCESS_TOKEN_SERVED",
    SendMessages = "SEND_MESSAGES",
    RegisterTemplate = "REGISTER_TEMPLATE",
    StartFollowerSync = "START_FOLLOWER_SYNC",
    SyncFollower = "SYNC_FOLLOWER",
    RegisterEventEndpoint = "REGISTER_EVENT_ENDPOINT",
    UpdateEventEndpoint = "UPDATE_EVENT_ENDPOINT",
    DeleteEventEndpoint = "DELETE_EVENT_ENDPOINT",
);

/// Writes an audit entry inside the caller's transaction.
pub async fn record(
    conn: &mut Conn,
    actor: &str,
    action: AuditAction,
    user: Option<&UserId>,
    details: Value,
) -> Result<(), DbError> {
    let id = uuid::Uuid::now_v7().to_string();
    let details = details.to_string();
    let entry = NewAuditEvent {
        id: &id,
        action: action.as_str(),
        actor,
        user_id: user.map(UserId::as_str),
        details: &details,
        created_at: now(),
    };
    AuditEventRow::insert(conn, &entry).await
}

impl Parts {
    /// Writes an audit entry for an action that has no transaction of its own, after it
    /// succeeded. A failure is logged, not returned: the action happened, and a caller told
    /// otherwise would do it again (a message sent twice).
    pub(crate) async fn audit(
        &self,
        actor: &str,
        action: AuditAction,
        user: Option<&UserId>,
        details: Value,
    ) {
        let written = match self.db.conn().await {
            Ok(mut conn) => record(&mut conn, actor, action, user, details).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::error!(action = action.as_str(), actor, error = %e, "an audit entry was not written");
        }
    }
}

impl Admin<'_> {
    /// Up to `limit` audit entries matching `filter` before the entry `before` (its `seq`),
    /// newest first.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter<'_>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEventRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(AuditEventRow::page(&mut conn, filter, before, limit).await?)
    }
}
