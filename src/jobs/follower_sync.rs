//! `follower_sync`: a full sync of an Official Account's followers, page by page, resumable
//! (the checkpoint is the `next_openid` cursor and the counters), one per app at a time (its key
//! is `follower_sync:{appId}`). WeChat's daily quota (45009) pauses it with a clear status and
//! it resumes later by itself. The work itself is the identity layer's
//! ([`System::follower_sync_page`]).

use std::time::Duration;

use super::{Job, JobContext, JobError, JobOutcome};
use crate::identity::IdentityError;
use crate::identity::access::System;
use crate::identity::server_side::follower_sync::{
    PageOutcome, SyncCheckpoint, SyncPayload, SyncStatus,
};
use crate::wechat::WechatError;

/// Runs follower syncs.
pub struct FollowerSync {
    system: System,
}

impl FollowerSync {
    /// The follower-sync job of this identity service.
    pub fn new(system: System) -> Self {
        Self { system }
    }
}

impl Job for FollowerSync {
    type Spec = SyncPayload;

    async fn run(
        &self,
        payload: SyncPayload,
        ctx: &mut JobContext,
    ) -> Result<JobOutcome, JobError> {
        let mut cp: SyncCheckpoint = ctx.checkpoint()?.unwrap_or_default();
        let Some(sync) = self
            .system
            .set_follower_sync_status(&payload.sync_id, SyncStatus::Running, None)
            .await
            .map_err(JobError::retry)?
        else {
            return Err(JobError::fatal(format!(
                "follower sync {} does not exist",
                payload.sync_id
            )));
        };
        if sync.status == SyncStatus::Completed {
            // Run again after its end (the runner could not record that it was done).
            return Ok(JobOutcome::Done);
        }
        loop {
            match self.system.follower_sync_page(&sync, &mut cp).await {
                Ok(PageOutcome::More) => ctx.save_checkpoint(&cp).await?,
                Ok(PageOutcome::Done) => {
                    let unsubscribed = self
                        .system
                        .finish_follower_sync(&sync, &cp.counts)
                        .await
                        .map_err(JobError::fatal)?
                        .unwrap_or(0);
                    tracing::info!(sync = %sync.id, app = %sync.app_id, seen = cp.counts.followers_seen, created = cp.counts.users_created, merged = cp.counts.users_merged, unsubscribed, "follower sync completed");
                    return Ok(JobOutcome::Done);
                }
                Err(IdentityError::Wechat(WechatError::RateLimited { errcode })) => {
                    let pause = Duration::from_secs(self.system.config().wechat.quota_pause_secs);
                    let message = format!(
                        "WeChat's API quota is used up (errcode {errcode}); the sync carries on from page {} in {} s",
                        cp.counts.pages + 1,
                        pause.as_secs()
                    );
                    tracing::warn!(sync = %sync.id, app = %sync.app_id, errcode, "follower sync paused by WeChat's quota");
                    ctx.save_checkpoint(&cp).await?;
                    self.system
                        .set_follower_sync_status(&sync.id, SyncStatus::Paused, Some(&message))
                        .await
                        .map_err(JobError::retry)?;
                    return Ok(JobOutcome::reschedule_in(pause));
                }
                Err(e) => {
                    let message = e.to_string();
                    ctx.save_checkpoint(&cp).await?;
                    // The row says why; the runner retries the job from the checkpoint (the
                    // read side shows FAILED once the job itself has failed).
                    let _ = self
                        .system
                        .set_follower_sync_status(&sync.id, SyncStatus::Running, Some(&message))
                        .await;
                    return Err(JobError::retry(e));
                }
            }
        }
    }
}
