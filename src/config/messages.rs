//! `[messages]`: how messages to users are sent.

use serde::Deserialize;
use smart_default::SmartDefault;

/// Messages to users (`[messages]`).
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesConfig {
    /// Bulk messages sent per second per app at most, on each instance (0: unlimited; an app's
    /// `message_rate_per_sec` overrides it).
    #[default(50)]
    pub send_rate_per_sec: u32,
    /// Sends a bulk job has in flight at once.
    #[default(8)]
    pub bulk_concurrency: usize,
    /// Messages a bulk job routes and marks per batch (a crash leaves at most one batch
    /// `uncertain`).
    #[default(200)]
    pub bulk_batch: usize,
}
