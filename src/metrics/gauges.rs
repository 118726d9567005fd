//! Gauges read from the database and the pool when `/metrics` is scraped (at most once a
//! second per instance: see `System::operations`).

use std::collections::BTreeSet;
use std::sync::Mutex;

use chrono::NaiveDateTime;
use metrics::{describe_gauge, gauge};

use crate::db::PoolStatus;
use crate::db::models::operations::Operations;

pub(super) fn describe() {
    describe_gauge!(
        "wechat_identity_jobs",
        "Background jobs not completed, by kind and status (queued, running, paused, failed)"
    );
    describe_gauge!(
        "wechat_identity_job_queue_oldest_age_seconds",
        "How long the oldest queued job of a kind has been due (0: none due)"
    );
    describe_gauge!(
        "wechat_identity_webhook_events_pending",
        "Webhook pushes stored and not processed yet"
    );
    describe_gauge!(
        "wechat_identity_event_deliveries",
        "Outbound user-event deliveries by status (pending, failed)"
    );
    describe_gauge!(
        "wechat_identity_db_pool_connections",
        "Database pool connections by state (max, open, in_use)"
    );
    describe_gauge!(
        "wechat_identity_db_pool_waiting",
        "Callers waiting for a database connection"
    );
}

/// Label sets set before: set to 0 when a scrape no longer sees them.
static SEEN: Mutex<BTreeSet<(&'static str, String, String)>> = Mutex::new(BTreeSet::new());

/// Sets every gauge from a snapshot taken at `now`.
pub fn set_gauges(ops: &Operations, pool: PoolStatus, now: NaiveDateTime) {
    let mut current = BTreeSet::new();
    for job in &ops.jobs {
        gauge!("wechat_identity_jobs", "kind" => job.kind.clone(), "status" => job.status.clone())
            .set(job.count as f64);
        current.insert(("jobs", job.kind.clone(), job.status.clone()));
        if job.status == "queued" {
            let due = job
                .earliest_run_at
                .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
            gauge!("wechat_identity_job_queue_oldest_age_seconds", "kind" => job.kind.clone())
                .set(due);
            current.insert(("age", job.kind.clone(), String::new()));
        }
    }
    for (status, count) in &ops.deliveries {
        gauge!("wechat_identity_event_deliveries", "status" => status.clone()).set(*count as f64);
        current.insert(("deliveries", status.clone(), String::new()));
    }
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    for gone in seen.difference(&current) {
        match gone.0 {
            "jobs" => {
                gauge!("wechat_identity_jobs", "kind" => gone.1.clone(), "status" => gone.2.clone())
                    .set(0.0)
            }
            "age" => {
                gauge!("wechat_identity_job_queue_oldest_age_seconds", "kind" => gone.1.clone())
                    .set(0.0)
            }
            _ => gauge!("wechat_identity_event_deliveries", "status" => gone.1.clone()).set(0.0),
        }
    }
    *seen = current;
    gauge!("wechat_identity_webhook_events_pending").set(ops.webhook_pending as f64);
    for (state, value) in [
        ("max", pool.max),
        ("open", pool.open),
        ("in_use", pool.in_use),
    ] {
        gauge!("wechat_identity_db_pool_connections", "state" => state).set(value as f64);
    }
    gauge!("wechat_identity_db_pool_waiting").set(pool.waiting as f64);
}
