//! `MergeEvent`: the history of merges and unlinks, for admins.

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use super::types::{User, related_user};
use crate::db::models::merge_event::MergeEventRow;
use crate::identity::rules;

rules::merge_reason_variants! {
    /// Why users were merged, or an identity moved.
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "rules::MergeReason")]
    pub enum MergeReason
}

/// A merge event row, shown as `MergeEvent`.
pub struct MergeEvent(pub MergeEventRow);

/// One merge (or unlink) in the history: two users found to be one person, or an identity
/// moved to a user of its own.
#[Object]
impl MergeEvent {
    /// Event id (events sort by it, oldest first).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Why it happened.
    async fn reason(&self) -> MergeReason {
        self.0.reason.into()
    }
    /// The user that remained. For UNLINK: the user the identity was taken from.
    async fn survivor(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        related_user(ctx, &self.0.survivor_id, "the event's user").await
    }
    /// The user that became a tombstone. For UNLINK: the new user that took the identity.
    async fn merged(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        related_user(ctx, &self.0.merged_id, "the event's user").await
    }
    /// For UNLINK: the identity that moved; null for merges.
    async fn identity_id(&self) -> Option<ID> {
        self.0.identity_id.as_ref().map(|id| ID(id.to_string()))
    }
    /// Who: the API key's name for ADMIN and UNLINK; for the others, the app whose login,
    /// follower sync or webhook event brought the unionid.
    async fn actor(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }
    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.and_utc()
    }
}
