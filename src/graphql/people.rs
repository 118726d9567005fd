//! Taking a person out (`disableUser`, `enableUser`, `deleteUser`) and the audit log
//! (`auditEvents`).

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Json, Object};
use chrono::{DateTime, Utc};

use super::access;
use super::error::gql;
use super::paging::{Page, PageArgs};
use super::query::user_id;
use super::types::{User, utc};
use crate::db::models::audit_event::{AuditEventRow, AuditFilter};
use crate::identity::audit::AuditAction as Action;

super::graphql_mirror!(
    /// What an admin or service key did (see the README's audit log).
    pub enum AuditAction mirrors crate::identity::audit::AuditAction {
    MergeUsers,
    UnlinkIdentity,
    DisableUser,
    EnableUser,
    DeleteUser,
    RevokeSessions,
    RotateSigningKey,
    AccessTokenServed,
    SendMessages,
    RegisterTemplate,
    StartFollowerSync,
    SyncFollower,
    RegisterEventEndpoint,
    UpdateEventEndpoint,
    DeleteEventEndpoint,
}
);

/// One entry of the audit log.
pub struct AuditEvent(AuditEventRow);

/// One entry of the audit log (`auditEvents`): who did what, when, to whom.
#[Object]
impl AuditEvent {
    /// The entry's id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// What was done.
    async fn action(&self) -> Option<AuditAction> {
        Action::parse(&self.0.action).map(AuditAction::from)
    }
    /// Who did it: the API key's name.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// When.
    async fn at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    /// The user it was done to, if any.
    async fn user_id(&self) -> Option<ID> {
        self.0.user_id.clone().map(ID)
    }
    /// What else there is to know (ids, app ids, counts; never secrets).
    async fn details(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.details).unwrap_or_default())
    }
}

/// Which audit entries `auditEvents` lists; all conditions given must hold.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Only this API key's (its name).
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only those done to this user.
    pub user_id: Option<ID>,
    /// Only those at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// The audit query.
#[derive(Default)]
pub struct PeopleQuery;

#[Object]
impl PeopleQuery {
    /// The audit log, newest first, 1-100 at a time (default 20): every admin or service action
    /// with its actor, kept for `events.audit_retention_days` (365).
    /// Admin.
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Which entries.")] filter: Option<AuditEventFilter>,
    ) -> async_graphql::Result<Option<Connection<String, AuditEvent>>> {
        let admin = access::admin(ctx)?;
        let filter = filter.unwrap_or_default();
        if filter.actor.as_ref().is_some_and(|a| a.len() > 128) {
            return Err(gql(crate::error::ApiError::bad_input(
                "filter.actor is at most 128 characters",
            )));
        }
        let user = match &filter.user_id {
            Some(id) => Some(user_id("filter.userId", id)?),
            None => None,
        };
        let args = PageArgs {
            first,
            after: after.as_deref(),
            ..PageArgs::default()
        };
        let page = Page::parse_keyed("audit", &args, |k| k.parse::<i64>().ok())?;
        let query = AuditFilter {
            actor: filter.actor.as_deref(),
            action: filter.action.map(|a| Action::from(a).as_str()),
            user_id: user.as_ref().map(|u| u.as_str()),
            since: filter.since.map(|t| t.naive_utc()),
        };
        let rows = admin
            .audit_events(&query, page.after, page.limit())
            .await
            .map_err(gql)?;
        Ok(Some(page.connection_with(
            rows,
            |e| e.seq.to_string(),
            AuditEvent,
            async_graphql::connection::EmptyFields,
        )))
    }
}

/// The mutations that take a person out.
#[derive(Default)]
pub struct PeopleMutation;

#[Object]
impl PeopleMutation {
    /// Disables a user (a merged id: the person it was merged into): its logins end now (access
    /// tokens within `jwt.revocation_check_secs`), and every login, refresh and message after
    /// is refused with USER_DISABLED until `enableUser`. Unknown is NOT_FOUND. One per request
    /// with the other user and endpoint changes.
    /// Admin.
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
        #[graphql(desc = "Why (at most 500 characters; shown as `disabledReason`).")]
        reason: Option<String>,
    ) -> async_graphql::Result<Option<User>> {
        let admin = access::admin(ctx)?;
        let id = user_id("id", &id)?;
        let user = admin
            .disable_user(&id, reason.as_deref().unwrap_or_default())
            .await
            .map_err(gql)?;
        Ok(Some(User(user)))
    }

    /// Enables a disabled user again. Unknown is NOT_FOUND. One per request with the other user
    /// and endpoint changes.
    /// Admin.
    async fn enable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
    ) -> async_graphql::Result<Option<User>> {
        let admin = access::admin(ctx)?;
        let id = user_id("id", &id)?;
        Ok(Some(User(admin.enable_user(&id).await.map_err(gql)?)))
    }

    /// Erases a person (a merged id: the person it was merged into, tombstones included):
    /// identities, logins, profile, phone, subscribe permissions, WeChat pushes and the content
    /// of their messages go; the user stays as a tombstone (`id`, `deletedAt`, merge links).
    /// Their next login is a new user. Returns the tombstone. Unknown is NOT_FOUND. One per
    /// request with the other user and endpoint changes.
    /// Admin.
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
    ) -> async_graphql::Result<Option<User>> {
        let admin = access::admin(ctx)?;
        let id = user_id("id", &id)?;
        Ok(Some(User(admin.delete_user(&id).await.map_err(gql)?)))
    }
}
