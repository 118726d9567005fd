//! `webhook_events`: processes the events WeChat pushed to an app's webhook, in order (one job
//! per app at a time: key `webhook_events:{appId}`). The receiving route stores an event and
//! queues this job; the purge job queues it again for any app whose events are still pending
//! (a push stored while the app's job was finishing, or one that failed and waits for a retry).

use std::time::Duration;

use super::{Job, JobContext, JobError, JobOutcome};
use crate::identity::IdentityError;
use crate::identity::access::System;
use crate::identity::server_side::webhook::WebhookEventsPayload;
use crate::wechat::WechatError;

/// How long processing waits after WeChat's quota errors.
pub const QUOTA_WAIT: Duration = Duration::from_secs(60);

/// Processes stored webhook events.
pub struct WebhookEvents {
    system: System,
}

impl WebhookEvents {
    /// The webhook-events job of this identity service.
    pub fn new(system: System) -> Self {
        Self { system }
    }
}

impl Job for WebhookEvents {
    type Spec = WebhookEventsPayload;

    async fn run(
        &self,
        payload: WebhookEventsPayload,
        _: &mut JobContext,
    ) -> Result<JobOutcome, JobError> {
        match self.system.process_webhook_events(&payload.app_id).await {
            Ok(n) => {
                tracing::debug!(app = %payload.app_id, events = n, "processed webhook events");
                Ok(JobOutcome::Done)
            }
            Err(IdentityError::Wechat(WechatError::RateLimited { .. })) => {
                Ok(JobOutcome::reschedule_in(QUOTA_WAIT))
            }
            Err(e) => Err(JobError::retry(e)),
        }
    }
}
