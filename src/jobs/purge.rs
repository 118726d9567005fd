//! `purge_expired`: the periodic chores, every `limits.purge_interval_secs`, on one instance at
//! a time: deletes expired OA web-authorization states and login tickets, processed webhook
//! events past `limits.webhook_retention_secs`, webhook signed queries past the freshness
//! window, phone-code claims past the codes' life and signing keys whose tokens have all expired
//! (retired by a rotation), queues the processing of webhook events still
//! pending, and queues the scheduled follower syncs (`apps[].follower_sync_interval_secs`).

use super::{Job, JobContext, JobError, JobOutcome, JobSpec};
use crate::identity::access::System;

/// The purge job's payload: none (a periodic job; its key is its kind).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PurgePayload {}

impl JobSpec for PurgePayload {
    const KIND: &'static str = "purge_expired";
}

/// Deletes expired states and login tickets (through [`System::purge_expired`]).
pub struct PurgeExpired {
    system: System,
}

impl PurgeExpired {
    /// The purge job of this identity service.
    pub fn new(system: System) -> Self {
        Self { system }
    }
}

impl Job for PurgeExpired {
    type Spec = PurgePayload;

    async fn run(&self, _: PurgePayload, _: &mut JobContext) -> Result<JobOutcome, JobError> {
        let (states, tickets) = self.system.purge_expired().await.map_err(JobError::retry)?;
        let events = self
            .system
            .purge_webhook_events()
            .await
            .map_err(JobError::retry)?;
        let queries = self
            .system
            .purge_webhook_signed_queries()
            .await
            .map_err(JobError::retry)?;
        let phone_codes = self
            .system
            .purge_phone_code_exchanges()
            .await
            .map_err(JobError::retry)?;
        let keys = self
            .system
            .purge_signing_keys()
            .await
            .map_err(JobError::retry)?;
        if keys > 0 {
            tracing::info!(keys, "retired signing keys whose tokens have all expired");
        }
        let (user_events, audits) = self
            .system
            .purge_user_events()
            .await
            .map_err(JobError::retry)?;
        if user_events + audits > 0 {
            tracing::debug!(
                user_events,
                audits,
                "purged user events and audit entries past their retention"
            );
        }
        self.system
            .requeue_pending_webhook_events()
            .await
            .map_err(JobError::retry)?;
        self.system
            .expire_stuck_messages()
            .await
            .map_err(JobError::retry)?;
        self.system
            .forget_finished_sync_lists()
            .await
            .map_err(JobError::retry)?;
        self.system
            .schedule_follower_syncs()
            .await
            .map_err(JobError::retry)?;
        if events + queries > 0 {
            tracing::debug!(
                events,
                queries,
                "purged processed webhook events and expired signed queries"
            );
        }
        if phone_codes > 0 {
            tracing::debug!(phone_codes, "purged expired phone-code claims");
        }
        if states + tickets > 0 {
            tracing::debug!(
                states,
                tickets,
                "purged expired OA states and login tickets"
            );
        }
        Ok(JobOutcome::Done)
    }
}
