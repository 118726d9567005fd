//! The job runner (`[jobs]`): how often it looks for due jobs, how long a lease lasts, how many
//! jobs run at once, how failures are retried, and which instance this is.

use serde::Deserialize;

/// Job runner settings (`[jobs]`). The purge of expired states and tickets runs every
/// `limits.purge_interval_secs`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// How often an idle runner looks for due jobs, in milliseconds.
    pub poll_interval_ms: u64,
    /// How long a claimed job stays this instance's without a renewal, in seconds. A running
    /// job renews it every third of it; if the instance dies, another one picks the job up
    /// from its checkpoint this long after the last renewal.
    pub lease_secs: u64,
    /// Jobs this instance runs at once.
    pub max_concurrent: usize,
    /// Runs of a job before it is marked failed (a periodic job instead waits for its next
    /// period).
    pub max_attempts: u32,
    /// Pause before the second run of a failed job, in milliseconds; doubled for each further
    /// run, at most an hour.
    pub retry_backoff_ms: u64,
    /// This instance's name in `jobs.lease_owner`; default: host name, process id and a random
    /// suffix (unique per start).
    pub instance_id: Option<String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            lease_secs: 60,
            max_concurrent: 2,
            max_attempts: 5,
            retry_backoff_ms: 10_000,
            instance_id: None,
        }
    }
}
