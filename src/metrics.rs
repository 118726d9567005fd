//! Process-wide counters, exported in Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

static COUNTERS: Mutex<BTreeMap<(&'static str, String), u64>> = Mutex::new(BTreeMap::new());

fn bump(name: &'static str, labels: String) {
    let mut counters = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    *counters.entry((name, labels)).or_insert(0) += 1;
}

/// Counts one call to WeChat's API.
pub fn wechat_call(endpoint: &'static str, outcome: &'static str) {
    bump(
        "wechat_identity_wechat_calls_total",
        format!("endpoint=\"{endpoint}\",outcome=\"{outcome}\""),
    );
}

/// Counts one login attempt.
pub fn login(kind: &'static str, outcome: &'static str) {
    bump(
        "wechat_identity_logins_total",
        format!("kind=\"{kind}\",outcome=\"{outcome}\""),
    );
}

/// Counts one merge of two users.
pub fn merge(reason: &'static str) {
    bump(
        "wechat_identity_merges_total",
        format!("reason=\"{reason}\""),
    );
}

/// Counts one attempt to deliver a user event to an endpoint, by how it ended (`delivered`,
/// `retry`, `failed`: given up).
pub fn event_delivery(outcome: &'static str) {
    bump(
        "wechat_identity_event_deliveries_total",
        format!("outcome=\"{outcome}\""),
    );
}

/// Counts one database transaction by how it ended (`commit`, `rollback`, `retry`).
pub fn transaction(outcome: &'static str) {
    bump(
        "wechat_identity_db_transactions_total",
        format!("outcome=\"{outcome}\""),
    );
}

/// Counts one run of a background job by how it ended (`completed`, `rearmed`,
/// `rescheduled`, `retry`, `failed`, `lease_lost`, ...).
pub fn job(kind: &str, outcome: &'static str) {
    bump(
        "wechat_identity_jobs_total",
        format!("kind=\"{kind}\",outcome=\"{outcome}\""),
    );
}

/// The sum of a counter over all label sets whose labels contain `label_filter`.
pub fn total(name: &str, label_filter: &str) -> u64 {
    let counters = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    counters
        .iter()
        .filter(|((n, labels), _)| *n == name && labels.contains(label_filter))
        .map(|(_, v)| *v)
        .sum()
}

/// The counters in Prometheus text format.
pub fn render() -> String {
    let counters = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::new();
    let mut last = "";
    for ((name, labels), value) in counters.iter() {
        if *name != last {
            let _ = writeln!(out, "# TYPE {name} counter");
            last = name;
        }
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
    out
}
