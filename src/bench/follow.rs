//! `wechat-identity bench-follow`: how soon a follow pushed to the webhook is a user. The service
//! runs in this process in sandbox mode on a fresh database, idle but for this: one person at a
//! time follows the demo Official Account (the sandbox pushes the `subscribe` event, signed and
//! encrypted, and waits for WeChat's "success"), then `userByUnionid` is asked until the
//! identity shows, subscribed. Prints p50/p99/max from the follow to the user, and how many
//! were a user already when the push was answered; once with the default poll interval and once
//! with the runner's poll set to a minute: the same figures mean the wake-up, not the poll, does
//! the work.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    ADMIN_KEY as KEY, OA, add_admin_key, backend_name, fresh_database, gql, send_json,
    start_service, stop_service, tempfile_dir,
};

/// Options.
#[derive(Debug, clap::Args)]
pub struct FollowBenchArgs {
    /// `sqlite` (a temp file) or a PostgreSQL server URL (a fresh database is created on it).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// People who follow, one after the other, per round.
    #[arg(long, default_value_t = 200)]
    follows: usize,
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: FollowBenchArgs) -> Result<(), String> {
    for poll_ms in [1_000, 60_000] {
        let dir = tempfile_dir()?;
        let (url, database) = fresh_database(&dir, &args.database).await?;
        let (running, stop) = start_service(&dir, url, 8, |c| {
            c.jobs.poll_interval_ms = poll_ms;
            add_admin_key(c);
        })
        .await?;
        let base = format!("http://{}", running.addr);
        let waits = follows(&base, args.follows, poll_ms).await;
        stop_service(running, stop, &args.database, database, &dir).await?;
        let (mut waits, at_answer) = waits?;
        waits.sort();
        let at = |q: f64| waits[((waits.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "{:<8} runner poll {:>6} ms: {} follows, follow -> subscribed user: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; a user when the push was answered: {}",
            backend_name(&args.database),
            poll_ms,
            waits.len(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            at(1.0).as_secs_f64() * 1e3,
            at_answer,
        );
    }
    Ok(())
}

/// `n` follows one after the other: how long each took from the follow to the user, and how
/// many were a user at the first look after the push was answered.
async fn follows(base: &str, n: usize, poll_ms: u64) -> Result<(Vec<Duration>, usize), String> {
    let client = reqwest::Client::new();
    let endpoint = format!("{base}/graphql");
    let q = "query($u: String!) { userByUnionid(unionid: $u) { officialAccountIdentities { subscribed } } }";
    let mut waits = Vec::with_capacity(n);
    let mut at_answer = 0;
    for i in 0..n {
        let started = Instant::now();
        let follow = client
            .post(format!("{base}/sandbox/wechat/follow"))
            .json(&json!({ "appId": OA, "user": format!("bench-follow-{poll_ms}-{i}") }));
        let followed = send_json(follow).await?;
        if followed["pushed"]["body"] != "success" {
            return Err(format!("the push was not taken: {followed}"));
        }
        let unionid = followed["unionid"].as_str().ok_or("no unionid")?;
        for look in 0.. {
            let data = gql(&client, &endpoint, Some(KEY), q, json!({ "u": unionid })).await?;
            if data["userByUnionid"]["officialAccountIdentities"][0]["subscribed"] == true {
                at_answer += usize::from(look == 0);
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(format!("{unionid} never became a subscribed user"));
            }
        }
        waits.push(started.elapsed());
    }
    Ok((waits, at_answer))
}
