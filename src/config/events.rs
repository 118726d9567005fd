//! `[events]`: user events to other systems (webhook endpoints and the feed), and the audit log.

use serde::Deserialize;
use smart_default::SmartDefault;

/// User events and the audit log (`[events]`).
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Whether endpoint URLs may point at private, loopback or link-local addresses (unset:
    /// only in sandbox mode). Off, such URLs are refused at registration and at every delivery
    /// (the host is resolved each time).
    pub allow_private_networks: Option<bool>,
    /// Days events and their deliveries are kept (the feed reaches this far back).
    #[default(30)]
    pub retention_days: u32,
    /// Days audit entries are kept.
    #[default(365)]
    pub audit_retention_days: u32,
    /// How long a delivery waits for the endpoint's answer (ms).
    #[default(10_000)]
    pub timeout_ms: u64,
    /// The first retry's delay after a failed delivery (seconds); each retry doubles it.
    #[default(5)]
    pub retry_initial_secs: u64,
    /// The longest delay between retries (seconds).
    #[default(3600)]
    pub retry_max_secs: u64,
    /// A delivery still failing this long after its event is given up (`failed`) and its
    /// endpoint marked failing (seconds).
    #[default(24 * 3600)]
    pub give_up_after_secs: u64,
    /// How often the delivery job looks for due deliveries (ms).
    #[default(1000)]
    pub poll_ms: u64,
    /// Deliveries sent to one endpoint at once.
    #[default(8)]
    pub concurrency: usize,
    /// Deliveries one run of the job sends to one endpoint at most (the next run goes on).
    #[default(1000)]
    pub per_run: usize,
}

impl EventsConfig {
    /// Whether private addresses are allowed (sandbox mode allows them unless told otherwise).
    pub fn private_networks_allowed(&self, sandbox: bool) -> bool {
        self.allow_private_networks.unwrap_or(sandbox)
    }
}
