//! What `bench-reads` prints per read: each server's req/s and p50/p99, the floor's
//! transactions/s, the ratios, and the data checks.

use super::check::Refused;
use super::floor::FloorResult;
use super::scenarios::Scenario;
use super::wrk::WrkResult;

fn show(r: &Result<WrkResult, String>) -> String {
    match r {
        Ok(r) => format!(
            "{:7.0} req/s  p50 {:6.2} ms  p99 {:6.2} ms{}",
            r.rps,
            r.p50,
            r.p99,
            if r.errors > 0 {
                format!("  ({} of {} failed)", r.errors, r.requests)
            } else {
                String::new()
            }
        ),
        Err(e) => e.clone(),
    }
}

fn ratio(ours: &Result<WrkResult, String>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Ok(a), Some(b)) if b > 0.0 => format!("{:.2}×", a.rps / b),
        _ => "n/a".into(),
    }
}

/// One read's figures: ours, PostGraphile v4's and v5's (with ours/each and ours/the faster of
/// the two that ran), and the floor's.
pub fn print(
    scenario: &Scenario,
    ours: &Result<WrkResult, String>,
    peers: [&Result<WrkResult, String>; 2],
    floor: &Result<FloorResult, String>,
    connections: usize,
) {
    println!(
        "({}) {:24} ours:            {}",
        scenario.key,
        scenario.name,
        show(ours)
    );
    for (name, (short, r)) in super::PEERS.iter().zip(["v4", "v5"].iter().zip(peers)) {
        let rps = r.as_ref().ok().map(|r| r.rps);
        println!(
            "    {:24} {name}: {}   ours/{short}: {}",
            "",
            show(r),
            ratio(ours, rps)
        );
    }
    let best = peers
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|r| r.rps))
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let (floor_text, floor_tps) = match floor {
        Ok(f) => (
            format!(
                "{:7.0} tps    avg {:6.2} ms{}",
                f.tps,
                f.latency_ms,
                if f.clients < connections {
                    format!("  (-c{}: fewer connections free)", f.clients)
                } else {
                    String::new()
                }
            ),
            Some(f.tps),
        ),
        Err(e) => (e.clone(), None),
    };
    println!(
        "    {:24} floor (pgbench):  {floor_text}   ours/floor: {}",
        "",
        ratio(ours, floor_tps)
    );
    println!("    {:24} ours/max(v4,v5): {}", "", ratio(ours, best));
}

/// The data checks of one read against each peer that ran, and the load average before it.
pub fn print_checks(checks: &[(&str, Result<String, Refused>)], load: &str) {
    let checks: Vec<String> = checks
        .iter()
        .map(|(name, check)| {
            let verdict = match check {
                Ok(n) => format!("yes ({n})"),
                Err(Refused::Differ(e)) => format!("NO: {e}"),
                Err(Refused::Ours(_) | Refused::Theirs(_)) => "not compared".into(),
            };
            format!("{name} {verdict}")
        })
        .collect();
    println!(
        "    same data: {}; load average before: {}",
        if checks.is_empty() {
            "not compared (no peer ran)".into()
        } else {
            checks.join("; ")
        },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// A variant of our service measured beside it: its figures and ours/its.
pub fn print_variant(
    name: &str,
    ours: &Result<WrkResult, String>,
    variant: &Result<WrkResult, String>,
) {
    let theirs = variant.as_ref().ok().map(|v| v.rps);
    println!(
        "    {name:>24}: {}   ours/this: {}",
        show(variant),
        ratio(ours, theirs)
    );
}
