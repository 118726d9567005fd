//! `event_delivery`: delivers user events to their endpoints (Standard Webhooks), every
//! `events.poll_ms`, on one instance at a time (a periodic job, leased like every job), through
//! [`System::deliver_events`].

use super::{Job, JobContext, JobError, JobOutcome, JobSpec};
use crate::identity::access::System;

/// The delivery job's payload: none (a periodic job; its key is its kind).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct EventDeliveryPayload {}

impl JobSpec for EventDeliveryPayload {
    const KIND: &'static str = "event_delivery";
}

/// Delivers due user events.
pub struct EventDelivery {
    system: System,
}

impl EventDelivery {
    /// The delivery job of this identity service.
    pub fn new(system: System) -> Self {
        Self { system }
    }
}

impl Job for EventDelivery {
    type Spec = EventDeliveryPayload;

    async fn run(
        &self,
        _: EventDeliveryPayload,
        _: &mut JobContext,
    ) -> Result<JobOutcome, JobError> {
        let run = self
            .system
            .deliver_events()
            .await
            .map_err(JobError::retry)?;
        if run.delivered + run.failed > 0 {
            tracing::debug!(
                delivered = run.delivered,
                failed = run.failed,
                "delivered user events"
            );
        }
        Ok(JobOutcome::Done)
    }
}
