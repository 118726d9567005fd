//! The soak's report: Markdown tables (operations, instances, checks) to paste into a README.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::checks::Check;
use super::client::{Client, OpStats};
use super::fleet::Fleet;

/// The value at quantile `q` (nearest rank) of sorted `v`, in ms.
fn quantile(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1000.0
}

fn codes(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} x{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Failures over every operation, by kind, with their codes.
#[derive(Default)]
pub(crate) struct Totals {
    pub wechat: u64,
    pub wechat_codes: BTreeMap<String, u64>,
    pub server: u64,
    pub server_kinds: BTreeMap<String, u64>,
    pub other: u64,
    pub other_codes: BTreeMap<String, u64>,
}

/// The failures of every operation added up.
pub(crate) fn totals(client: &Client) -> Totals {
    let stats = client.stats.lock().unwrap_or_else(|e| e.into_inner());
    let mut t = Totals::default();
    for (op, s) in stats.iter() {
        t.wechat += s.wechat;
        for (k, v) in &s.wechat_kinds {
            *t.wechat_codes.entry(format!("{op}: {k}")).or_default() += v;
        }
        t.server += s.server;
        for (k, v) in &s.server_kinds {
            *t.server_kinds.entry(format!("{op}: {k}")).or_default() += v;
        }
        for (k, v) in &s.other {
            t.other += v;
            *t.other_codes.entry(format!("{op}: {k}")).or_default() += v;
        }
    }
    t
}

/// The operations table.
pub(crate) fn operations(client: &Client) -> String {
    let mut stats = client.stats.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::from(
        "| operation | calls | ok | p50 ms | p99 ms | max ms | WeChat fault | instance down | service error | refused (expected) | other |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n",
    );
    let mut all = OpStats::default();
    for (op, s) in stats.iter_mut() {
        s.latencies.sort_unstable();
        let refused: u64 = s.refused.values().sum();
        let other: u64 = s.other.values().sum();
        let calls = s.latencies.len() as u64 + s.wechat + s.down + s.server + refused + other;
        out.push_str(&format!(
            "| {op} | {calls} | {} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {} | {} |\n",
            s.latencies.len(),
            quantile(&s.latencies, 0.5),
            quantile(&s.latencies, 0.99),
            quantile(&s.latencies, 1.0),
            s.wechat,
            s.down,
            s.server,
            if refused == 0 {
                "0".into()
            } else {
                codes(&s.refused)
            },
            if other == 0 {
                "0".into()
            } else {
                codes(&s.other)
            },
        ));
        all.latencies.extend_from_slice(&s.latencies);
        all.wechat += s.wechat;
        all.down += s.down;
        all.server += s.server;
        for (k, v) in s.refused.iter().chain(&s.other) {
            *all.other.entry(k.clone()).or_default() += v;
        }
    }
    all.latencies.sort_unstable();
    let rest: u64 = all.other.values().sum();
    out.push_str(&format!(
        "| **all** | {} | {} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {rest} (both) | |\n",
        all.latencies.len() as u64 + all.wechat + all.down + all.server + rest,
        all.latencies.len(),
        quantile(&all.latencies, 0.5),
        quantile(&all.latencies, 0.99),
        quantile(&all.latencies, 1.0),
        all.wechat,
        all.down,
        all.server,
    ));
    out.push_str(
        "\nLatencies are of the successful operations, each all its HTTP steps (a login started \
         on one instance finishes on the next; a webhook push waits up to \
         `limits.webhook_answer_wait_ms` for its event to be processed).\n",
    );
    out
}

/// The instances table: requests, RSS at each moment noted, log lines at WARN/ERROR, panics.
pub(crate) fn instances(fleet: &Fleet) -> String {
    let mut out = String::from(
        "| instance | requests | RSS (MiB) | log: warn / error / panic |\n|---|--:|---|---|\n",
    );
    for i in &fleet.instances {
        let rss = i
            .rss
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(label, kib)| format!("{label} {:.1}", *kib as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ");
        let (warn, error, panics) = fleet.log_counts(i.index);
        out.push_str(&format!(
            "| {} (:{}) | {} | {rss} | {warn} / {error} / {panics} |\n",
            i.index,
            i.port,
            i.requests.load(Ordering::Relaxed),
        ));
    }
    out
}

/// The checks table.
pub(crate) fn checks(checks: &[Check]) -> String {
    let mut out = String::from("| check | result | detail |\n|---|---|---|\n");
    for c in checks {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            c.name,
            if c.pass { "PASS" } else { "**FAIL**" },
            c.detail.replace('|', "/")
        ));
    }
    out
}
