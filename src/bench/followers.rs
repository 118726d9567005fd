//! `wechat-identity bench-followers`: a full follower sync of N sandbox followers, some of whom
//! logged into a Mini Program first, against a service running in this process with the
//! in-process sandbox, on a fresh database. Prints the sync's time, followers/s, WeChat calls,
//! users created, linked and merged, and the process's RSS during the sync (the in-process
//! sandbox's follower list included).

use std::time::{Duration, Instant};

use super::{
    ADMIN_KEY, APP, OA, OneDatabase, Phase, add_admin_key, backend_name, fresh_database, mp_login,
    start_service, stop_service, tempfile_dir,
};
use crate::wechat::sandbox::CodeRequest;

/// Options.
#[derive(Debug, clap::Args)]
pub struct FollowerBenchArgs {
    #[command(flatten)]
    db: OneDatabase,
    /// Followers of the Official Account.
    #[arg(long, default_value_t = 100_000)]
    followers: u64,
    /// The share of them that logged into a Mini Program first (they become one user).
    #[arg(long, default_value_t = 0.33)]
    known: f64,
    /// `wechat.follower_sync_concurrency`.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// Runs the benchmark.
pub async fn run(args: FollowerBenchArgs) -> Result<(), String> {
    let dir = tempfile_dir()?;
    let (url, cleanup) = fresh_database(&dir, &args.db.database).await?;
    let backend = backend_name(&args.db.database);
    let (running, stop) = start_service(&dir, url, args.db.pool_size, |config| {
        config.wechat.follower_sync_concurrency = args.concurrency;
        add_admin_key(config);
    })
    .await?;
    let sandbox = running.app.sandbox.clone().ok_or("sandbox not running")?;
    let endpoint = format!("http://{}/graphql", running.addr);
    let client = reqwest::Client::new();

    // The known people log into the Mini Program (not timed).
    let known = (args.followers as f64 * args.known) as u64;
    let name = |i: u64| format!("f{i}");
    let logins = (0..known)
        .map(|i| {
            sandbox
                .issue_code(&CodeRequest::new(APP, &name(i)))
                .map(mp_login)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let phase = Phase::run(&client, &endpoint, logins, 32).await;
    phase.print(backend, "setup: MP logins");
    sandbox.add_followers(OA, "f", 0, args.followers)?;

    let gql = |query: String| {
        let (client, endpoint) = (client.clone(), endpoint.clone());
        async move {
            let variables = serde_json::json!({});
            super::gql(&client, &endpoint, Some(ADMIN_KEY), &query, variables).await
        }
    };
    const FIELDS: &str = "id status pages followersSeen usersCreated usersMerged errors lastError startedAt finishedAt";
    let calls_before = crate::metrics::total("wechat_identity_wechat_calls_total", "");
    let start = Instant::now();
    let data = gql(format!(
        "mutation {{ syncOfficialAccountFollowers(appId: \"{OA}\") {{ {FIELDS} }} }}"
    ))
    .await?;
    let id = data["syncOfficialAccountFollowers"]["id"]
        .as_str()
        .ok_or("no sync id")?
        .to_owned();
    let mut peak_rss = 0;
    let sync = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak_rss = peak_rss.max(rss_kib());
        let data = gql(format!(
            "{{ wechatFollowerSync(id: \"{id}\") {{ {FIELDS} }} }}"
        ))
        .await?;
        let sync = data["wechatFollowerSync"].clone();
        match sync["status"].as_str() {
            Some("COMPLETED") => break sync,
            Some("FAILED") => return Err(format!("the sync failed: {sync}")),
            _ if start.elapsed() > Duration::from_secs(1800) => {
                return Err(format!("the sync took over 30 minutes: {sync}"));
            }
            _ => {}
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    let calls = crate::metrics::total("wechat_identity_wechat_calls_total", "") - calls_before;
    let seen = sync["followersSeen"].as_i64().unwrap_or(0);
    let created = sync["usersCreated"].as_i64().unwrap_or(0);
    let errors = sync["errors"].as_i64().unwrap_or(0);
    let follower_calls = sandbox.follower_calls(OA);
    println!(
        "{backend:8} follower sync: {seen} followers in {elapsed:.2} s = {:.0} followers/s; {} pages; {created} users created, {} linked to existing users, {} merges, {errors} errors",
        seen as f64 / elapsed,
        sync["pages"],
        seen - created - errors,
        sync["usersMerged"],
    );
    println!(
        "{backend:8} WeChat calls: {calls} ({} user/get, {} user/info/batchget, the rest tokens); concurrency {}; peak RSS during the sync {:.1} MiB (service and in-process sandbox together)",
        follower_calls.user_get,
        follower_calls.batchget,
        args.concurrency,
        peak_rss as f64 / 1024.0,
    );

    stop_service(running, stop, &args.db.database, cleanup, &dir).await
}

/// This process's resident set size in KiB (0 where /proc is not there).
pub(crate) fn rss_kib() -> u64 {
    rss_kib_of("self")
}

/// The resident set size in KiB of process `pid` (`self`: this one; 0 where /proc or the
/// process is not there).
pub(crate) fn rss_kib_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
