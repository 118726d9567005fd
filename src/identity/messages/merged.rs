//! Bulk recipients merged since the job listed them (see `bulk`).

use std::collections::HashMap;

use super::IdentityError;
use super::route::{CheckedRoute, Reach};
use crate::db::Conn;
use crate::db::models::message::MessageRow;
use crate::db::models::user::UserRow;
use crate::identity::Parts;
use crate::types::{JobId, UserId};

impl Parts {
    /// What each route knows of the batch's recipients, each message first readdressed to the
    /// user its recipient is now ([`follow_merges`]), and once more for those the batch reaches
    /// nowhere: a merge may have moved their identities between that look and the reach.
    pub(super) async fn reach_following_merges(
        &self,
        job_id: &JobId,
        routes: &[CheckedRoute],
        batch: &mut [MessageRow],
    ) -> Result<HashMap<UserId, Vec<Reach>>, IdentityError> {
        follow_merges(&mut self.db.conn().await?, job_id, batch).await?;
        let users: Vec<UserId> = batch.iter().map(|m| m.user_id.clone()).collect();
        let mut reach = self.reach(routes, &users).await?;
        let unreached: Vec<usize> = (0..batch.len())
            .filter(|&i| {
                reach
                    .get(&batch[i].user_id)
                    .is_none_or(|r| r.iter().all(|x| x.openid.is_none()))
            })
            .collect();
        if unreached.is_empty() {
            return Ok(reach);
        }
        let mut again: Vec<MessageRow> = unreached.iter().map(|&i| batch[i].clone()).collect();
        follow_merges(&mut self.db.conn().await?, job_id, &mut again).await?;
        let mut moved = Vec::new();
        for (i, message) in unreached.into_iter().zip(again) {
            if message.user_id != batch[i].user_id {
                moved.push(message.user_id.clone());
                batch[i].user_id = message.user_id;
            }
        }
        if !moved.is_empty() {
            reach.extend(self.reach(routes, &moved).await?);
        }
        Ok(reach)
    }
}

/// A recipient merged into another user after the job listed it is the same person: its
/// message goes to the user it is now (where its identities are), unless the job already has a
/// message for that user (then the person gets that one, and this one finds no identity). The
/// job lists everyone before it sends, so a user it has no message for now never gets one later.
async fn follow_merges(
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
