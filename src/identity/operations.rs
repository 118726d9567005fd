//! What an operator reads: the gauges `/metrics` shows (refreshed from the database at most
//! once a second per instance, whoever scrapes) and `/healthz/details` (admin API keys): each
//! app's last WeChat call and the age of its kept credentials, the job queue, the pool, and
//! where rate limits are kept.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use serde::Serialize;

use super::IdentityError;
use super::access::{Admin, Public};
use crate::db::PoolStatus;
use crate::db::models::operations::{JobCount, Operations};
use crate::metrics::apps::{LastCall, last_call};

/// How often a scrape reads the database at most.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

static LAST_GAUGES: Mutex<Option<Instant>> = Mutex::new(None);

/// `/healthz/details`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthDetails {
    /// Each configured app.
    pub apps: Vec<AppHealth>,
    /// Jobs not completed, by kind and status.
    pub jobs: Vec<JobCount>,
    /// How long the oldest due queued job has waited, in seconds (0: none).
    pub oldest_due_job_secs: i64,
    /// Webhook pushes not processed yet.
    pub webhook_events_pending: i64,
    /// Event deliveries waiting (`pending`) or given up (`failed`).
    pub event_deliveries: Vec<(String, i64)>,
    /// The database pool.
    pub pool: PoolStatus,
    /// `redis` (kept in Redis), `redis-unreachable` (falling back to this instance's own
    /// buckets) or `local`.
    pub rate_limits: &'static str,
}

/// One app's health.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppHealth {
    /// The app id.
    pub app_id: String,
    /// Its kind.
    pub kind: &'static str,
    /// This instance's last call to WeChat for it (None: none since start).
    pub last_wechat_call: Option<LastCall>,
    /// The age of its shared access token in seconds (None: none kept).
    pub access_token_age_secs: Option<i64>,
    /// The age of its `jsapi_ticket` in seconds (Official Accounts; None: none kept).
    pub jsapi_ticket_age_secs: Option<i64>,
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

impl Public<'_> {
    /// Sets the gauges `/metrics` shows from the database and the pool, unless that was done
    /// less than a second ago (then they show that reading).
    pub async fn refresh_gauges(&self) {
        {
            let mut last = LAST_GAUGES.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < GAUGE_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        match self.operations().await {
            Ok(ops) => crate::metrics::set_gauges(&ops, self.0.db.pool_status(), now()),
            Err(e) => tracing::warn!(error = %e, "metrics: the database could not be read"),
        }
    }

    async fn operations(&self) -> Result<Operations, IdentityError> {
        let mut conn = self.0.db.conn().await?;
        Ok(Operations::read(&mut conn).await?)
    }
}

impl Admin<'_> {
    /// `/healthz/details`.
    pub async fn health_details(&self) -> Result<HealthDetails, IdentityError> {
        let ops = Public(self.identity).operations().await?;
        let at = now();
        let age = |app_id: &str, kind: &str| {
            ops.kept
                .iter()
                .find(|k| k.app_id == app_id && k.kind == kind)
                .and_then(|k| k.fetched_at)
                .map(|fetched| (at - fetched).num_seconds())
        };
        let apps = self
            .identity
            .config
            .apps
            .iter()
            .map(|app| AppHealth {
                app_id: app.app_id.as_str().to_owned(),
                kind: app.kind.as_str(),
                last_wechat_call: last_call(app.app_id.as_str()),
                access_token_age_secs: age(app.app_id.as_str(), "access_token"),
                jsapi_ticket_age_secs: age(app.app_id.as_str(), "jsapi_ticket"),
            })
            .collect();
        let oldest_due_job_secs = ops
            .jobs
            .iter()
            .filter(|j| j.status == "queued")
            .filter_map(|j| j.earliest_run_at)
            .map(|run_at| (at - run_at).num_seconds().max(0))
            .max()
            .unwrap_or(0);
        Ok(HealthDetails {
            apps,
            oldest_due_job_secs,
            webhook_events_pending: ops.webhook_pending,
            event_deliveries: ops.deliveries,
            jobs: ops.jobs,
            pool: self.identity.db.pool_status(),
            rate_limits: self.identity.limiter.backend(),
        })
    }
}
