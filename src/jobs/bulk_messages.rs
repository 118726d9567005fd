//! `bulk_messages`: one message to many users (see `identity::messages::bulk`): lists the
//! recipients page by page, then sends them batch by batch; resumable from its checkpoint, and
//! never sends anyone a second copy.

use super::{Job, JobContext, JobError, JobOutcome};
use crate::identity::access::System;
use crate::identity::messages::bulk::{BatchEnd, BulkCheckpoint, BulkPayload};

/// Runs bulk message jobs.
pub struct BulkMessages {
    system: System,
}

impl BulkMessages {
    /// The bulk-message job of this identity service.
    pub fn new(system: System) -> Self {
        Self { system }
    }
}

impl Job for BulkMessages {
    type Spec = BulkPayload;

    async fn run(
        &self,
        payload: BulkPayload,
        ctx: &mut JobContext,
    ) -> Result<JobOutcome, JobError> {
        let mut cp: BulkCheckpoint = ctx.checkpoint()?.unwrap_or_default();
        let job_id = ctx.id().to_owned();
        // A template unregistered since, or data that no longer fits it: the job cannot go on.
        let routes = self
            .system
            .bulk_resume(&job_id, &payload)
            .await
            .map_err(|e| match e {
                crate::identity::IdentityError::Db(_) => JobError::retry(e),
                e => JobError::fatal(e),
            })?;
        while !cp.listed {
            self.system
                .bulk_list_page(&job_id, &payload, &routes, &mut cp)
                .await
                .map_err(JobError::retry)?;
            ctx.save_checkpoint(&cp).await?;
        }
        loop {
            match self
                .system
                .bulk_send_batch(&job_id, &routes)
                .await
                .map_err(JobError::retry)?
            {
                BatchEnd::More => ctx.renew_lease().await?,
                BatchEnd::Done => return Ok(JobOutcome::Done),
                BatchEnd::Pause(wait) => return Ok(JobOutcome::reschedule_in(wait)),
            }
        }
    }
}
