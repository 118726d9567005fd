//! Bulk recipients merged since the job listed them (see `bulk`).

use super::IdentityError;
use crate::db::Conn;
use crate::db::models::message::MessageRow;
use crate::db::models::user::UserRow;
use crate::types::{JobId, UserId};

/// A recipient merged into another user after the job listed it is the same person: its
/// message goes to the user it is now (where its identities are), unless the job already has a
/// message for that user (then the person gets that one, and this one finds no identity). The
/// job lists everyone before it sends, so a user it has no message for now never gets one later.
pub(super) async fn follow_merges(
    conn: &mut Conn,
    job_id: &JobId,
    batch: &mut [MessageRow],
) -> Result<(), IdentityError> {
    let ids: Vec<UserId> = batch.iter().map(|m| m.user_id.clone()).collect();
    let merged: std::collections::HashMap<UserId, UserId> =
        UserRow::merged_of(conn, &ids).await?.into_iter().collect();
    let mut readdressed = std::collections::HashSet::new();
    for message in batch.iter_mut() {
        let Some(survivor) = merged.get(&message.user_id) else {
            continue;
        };
        let Some(live) = UserRow::find_live(conn, survivor).await? else {
            continue;
        };
        if readdressed.contains(&live.id)
            || MessageRow::job_has_user(conn, job_id, &live.id).await?
        {
            continue;
        }
        MessageRow::readdress(conn, &message.id, &live.id).await?;
        tracing::info!(message_id = %message.id, from = %message.user_id, to = %live.id, "bulk recipient merged since listing: message readdressed");
        message.user_id = live.id.clone();
        readdressed.insert(live.id);
    }
    Ok(())
}
