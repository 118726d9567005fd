//! The job runner (`[jobs]`): how often it looks for due jobs, how long a lease lasts, how many
//! jobs run at once, how failures are retried, and which instance this is.

use serde::Deserialize;
use smart_default::SmartDefault;

/// Job runner settings (`[jobs]`). The purge of expired states and tickets runs every
/// `limits.purge_interval_secs`.
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// How often an idle runner looks for due jobs, in milliseconds.
    #[default(1000)]
    pub poll_interval_ms: u64,
    /// How long a claimed job stays this instance's without a renewal, in seconds. A running
    /// job renews it every third of it; if the instance dies, another one picks the job up
    /// from its checkpoint this long after the last renewal.
    #[default(60)]
    pub lease_secs: u64,
    /// Jobs this instance runs at once.
    #[default(2)]
    pub max_concurrent: usize,
    /// Runs of a job before it is marked failed (a periodic job instead waits for its next
    /// period).
    #[default(5)]
    pub max_attempts: u32,
    /// Pause before the second run of a failed job, in milliseconds; doubled for each further
    /// run, at most an hour.
    #[default(10_000)]
    pub retry_backoff_ms: u64,
    /// This instance's name in `jobs.lease_owner`; default: host name, process id and a random
    /// suffix (unique per start).
    pub instance_id: Option<String>,
}
