//! The load generator of `bench-reads`: `wrk`, with a Lua script per scenario that POSTs a list
//! of GraphQL bodies in turn and counts answers with errors.

use std::path::Path;
use std::time::Duration;

/// What one wrk run measured.
#[derive(Clone, Debug)]
pub struct WrkResult {
    /// Requests per second.
    pub rps: f64,
    /// Median latency (ms).
    pub p50: f64,
    /// 99th percentile latency (ms).
    pub p99: f64,
    /// Requests completed.
    pub requests: u64,
    /// Answers that were not 200 or carried `"errors"`, plus socket errors and timeouts.
    pub errors: u64,
}

impl WrkResult {
    /// Several rounds as one: requests and errors added up, req/s over the rounds' time, the
    /// rounds' mean p50 and worst p99.
    pub fn combine(rounds: &[WrkResult]) -> WrkResult {
        let n = rounds.len().max(1) as f64;
        let secs: f64 = rounds
            .iter()
            .map(|r| r.requests as f64 / r.rps.max(1e-9))
            .sum();
        let requests = rounds.iter().map(|r| r.requests).sum();
        WrkResult {
            rps: requests as f64 / secs.max(1e-9),
            p50: rounds.iter().map(|r| r.p50).sum::<f64>() / n,
            p99: rounds.iter().map(|r| r.p99).fold(0.0, f64::max),
            requests,
            errors: rounds.iter().map(|r| r.errors).sum(),
        }
    }
}

/// Lua for wrk: POSTs `bodies` round-robin (each thread from its own start), with an
/// `Authorization` header if given; prints one `RESULT` line when done.
pub fn script(bodies: &[String], bearer: Option<&str>) -> String {
    let mut lua = String::from(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Accept\"] = \"application/json\"\n",
    );
    if let Some(key) = bearer {
        lua.push_str(&format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {key}\"\n"
        ));
    }
    lua.push_str("local bodies = {\n");
    for body in bodies {
        lua.push_str(&format!("[==[{body}]==],\n"));
    }
    lua.push_str(
        r#"}
local threads = {}
local started = 0
function setup(thread)
  started = started + 1
  thread:set("start", started * 7919)
  table.insert(threads, thread)
end
function init(args)
  i = start
  failed = 0
end
function request()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])
end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    failed = failed + 1
  end
end
function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do failed = failed + t:get("failed") end
  local e = summary.errors
  failed = failed + e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), failed))
end
"#,
    );
    lua
}

/// Runs wrk against `url` with `script` (written to `dir/name.lua`).
pub async fn run(
    dir: &Path,
    name: &str,
    url: &str,
    script: &str,
    connections: usize,
    duration: Duration,
) -> Result<WrkResult, String> {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new("wrk");
    command
        .args(["-t2", &format!("-c{connections}")])
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--timeout", "10s", "-s"])
        .arg(&path)
        .arg(url);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot run wrk (is it installed?): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| {
            format!(
                "wrk printed no result: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let n: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let [requests, micros, p50, p99, errors] = n[..] else {
        return Err(format!("wrk result not understood: {line}"));
    };
    Ok(WrkResult {
        rps: requests as f64 / (micros.max(1) as f64 / 1e6),
        p50: p50 as f64 / 1000.0,
        p99: p99 as f64 / 1000.0,
        requests,
        errors,
    })
}
