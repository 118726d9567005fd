//! `purge_expired`: deletes expired OA web-authorization states and login tickets, every
//! `limits.purge_interval_secs`, on one instance at a time.

use super::{Job, JobContext, JobError, JobOutcome};
use crate::identity::Identity;

/// The kind (and key) of the purge job.
pub const PURGE_EXPIRED: &str = "purge_expired";

/// Deletes expired states and login tickets (through [`Identity::purge_expired`]).
pub struct PurgeExpired {
    identity: Identity,
}

impl PurgeExpired {
    /// The purge job of this identity service.
    pub fn new(identity: Identity) -> Self {
        Self { identity }
    }
}

impl Job for PurgeExpired {
    fn kind(&self) -> &'static str {
        PURGE_EXPIRED
    }

    async fn run(&self, _ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let (states, tickets) = self
            .identity
            .purge_expired()
            .await
            .map_err(JobError::retry)?;
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
