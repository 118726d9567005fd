//! Taking a person out: an admin disables a user (every login refused with USER_DISABLED, its
//! logins ended, messages to it refused) and enables it again, or erases it (`deleteUser`): the
//! user and its tombstones keep only ids, times and merge links; identities, logins, consents,
//! phone claims, webhook pushes and the content of its messages go, and its events keep only
//! ids. The openids are free again, so the person's next login is a new user. Each is one
//! transaction with its event and its audit entry.

use serde_json::json;

use super::IdentityError;
use super::access::Admin;
use super::audit::{self, AuditAction};
use super::events::{self, Change};
use super::rules;
use crate::db::models::audit_event::AuditEventRow;
use crate::db::models::erasure::erase_person;
use crate::db::models::now;
use crate::db::models::session::SessionRow;
use crate::db::models::user::UserRow;
use crate::db::models::user_event::UserEventRow;
use crate::db::{Conn, transaction};
use crate::types::UserId;

/// The longest reason an admin gives for disabling a user.
pub const MAX_REASON_LEN: usize = 500;

/// The live user behind `id` (a tombstone's survivor), locked; NOT_FOUND if there is none,
/// CONFLICT if the person was deleted.
async fn lock_person(conn: &mut Conn, id: &UserId) -> Result<UserRow, IdentityError> {
    let unknown = || IdentityError::NotFound(format!("user {id} does not exist"));
    if UserRow::find(conn, id).await?.is_none() {
        return Err(unknown());
    }
    let user = rules::lock_live(conn, id).await?;
    if user.deleted_at.is_some() {
        return Err(IdentityError::Conflict(format!("user {id} was deleted")));
    }
    Ok(user)
}

impl Admin<'_> {
    /// Disables the user (the live user behind a tombstone's id): its logins end now (access
    /// tokens within `jwt.revocation_check_secs`), and new ones, refreshes and messages are
    /// refused with USER_DISABLED. Disabling a disabled user changes only nothing.
    pub async fn disable_user(&self, id: &UserId, reason: &str) -> Result<UserRow, IdentityError> {
        if reason.chars().count() > MAX_REASON_LEN {
            return Err(IdentityError::BadInput(format!(
                "reason: at most {MAX_REASON_LEN} characters"
            )));
        }
        let actor = self.name;
        let user = transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                let user = lock_person(conn, id).await?;
                if user.disabled_at.is_none() {
                    UserRow::set_disabled(conn, &user.id, Some((reason, now()))).await?;
                    let ended = SessionRow::revoke_user(conn, &user.id, now()).await?;
                    events::emit(
                        conn,
                        Change::Disabled {
                            user: &user.id,
                            reason,
                        },
                    )
                    .await?;
                    let details = json!({"reason": reason, "loginsEnded": ended});
                    audit::record(
                        conn,
                        actor,
                        AuditAction::DisableUser,
                        Some(&user.id),
                        details,
                    )
                    .await?;
                }
                Ok(UserRow::find(conn, &user.id).await?)
            },
        )
        .await?;
        self.live_logins.forget();
        user.ok_or_else(|| IdentityError::Internal(format!("user {id} vanished")))
    }

    /// Enables a disabled user again (its people log in anew; ended logins stay ended).
    pub async fn enable_user(&self, id: &UserId) -> Result<UserRow, IdentityError> {
        let actor = self.name;
        let user = transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                let user = lock_person(conn, id).await?;
                if user.disabled_at.is_some() {
                    UserRow::set_disabled(conn, &user.id, None).await?;
                    events::emit(conn, Change::Enabled { user: &user.id }).await?;
                    audit::record(
                        conn,
                        actor,
                        AuditAction::EnableUser,
                        Some(&user.id),
                        json!({}),
                    )
                    .await?;
                }
                Ok(UserRow::find(conn, &user.id).await?)
            },
        )
        .await?;
        user.ok_or_else(|| IdentityError::Internal(format!("user {id} vanished")))
    }

    /// Erases the person behind `id` (see the module docs) and returns the tombstone of its
    /// live user. Deleting a deleted user returns its tombstone again.
    pub async fn delete_user(&self, id: &UserId) -> Result<UserRow, IdentityError> {
        let actor = self.name;
        let user = transaction(&self.db, async |conn: &mut Conn| -> Result<_, IdentityError> {
            let found = UserRow::find(conn, id)
                .await?
                .ok_or_else(|| IdentityError::NotFound(format!("user {id} does not exist")))?;
            let user = rules::lock_live(conn, &found.id).await?;
            if user.deleted_at.is_some() {
                return Ok(user);
            }
            let mut ids = vec![user.id.clone()];
            ids.extend(UserRow::merged_into_ids(conn, &user.id).await?);
            let openids = erase_person(conn, &ids).await?;
            let identities = openids.len();
            let at = now();
            UserRow::erase(conn, &ids, at).await?;
            UserEventRow::scrub(conn, &ids).await?;
            let openids: Vec<&str> = openids.iter().map(String::as_str).collect();
            UserEventRow::scrub_openids(conn, &openids).await?;
            let id_texts: Vec<&str> = ids.iter().map(UserId::as_str).collect();
            AuditEventRow::blank_reasons(conn, &id_texts).await?;
            events::emit(conn, Change::Deleted { user: &user.id, ids: &ids }).await?;
            let details = json!({"deletedIds": ids, "identitiesRemoved": identities});
            audit::record(conn, actor, AuditAction::DeleteUser, Some(&user.id), details).await?;
            tracing::info!(user = %user.id, users = ids.len(), identities, actor, "erased a person");
            UserRow::find(conn, &user.id)
                .await?
                .ok_or_else(|| IdentityError::Internal(format!("user {id} vanished")))
        })
        .await?;
        self.live_logins.forget();
        Ok(user)
    }
}
