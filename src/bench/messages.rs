//! `wechat-identity bench-messages`: a bulk send to N followers of the sandbox Official Account
//! on a fresh database, with the rate limit off, by a service instance in this process against
//! a sandbox on its own loopback port. Prints messages/s, WeChat calls and RSS; then single
//! `sendWeChatMessage` calls (p50/p99 per send); then a second bulk send whose instance is killed
//! midway (its tasks aborted, its connections closed) and resumed by a new instance, with the
//! number of people who got the message twice (must be 0).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::followers::rss_kib;
use super::{
    ADMIN_KEY as KEY, OA, OneDatabase, add_admin_key, backend_name, fresh_database, gql,
    start_service, stop_service, tempfile_dir,
};
use crate::config::{Config, Secret, sandbox_demo_apps};
use crate::wechat::sandbox::Sandbox;
use crate::wechat::sandbox::messages::TEMPLATE_SHIPPED;

/// Options.
#[derive(Debug, clap::Args)]
pub struct MessageBenchArgs {
    #[command(flatten)]
    db: OneDatabase,
    /// Recipients (followers of the Official Account).
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// `messages.bulk_concurrency`.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Single `sendWeChatMessage` calls timed one by one (32 at once).
    #[arg(long, default_value_t = 2_000)]
    singles: usize,
}

fn tweak(args: &MessageBenchArgs, wechat: &str, url: Option<String>) -> impl FnOnce(&mut Config) {
    let (wechat, concurrency) = (wechat.to_owned(), args.concurrency);
    move |c: &mut Config| {
        c.sandbox = Some(false);
        c.apps = sandbox_demo_apps();
        c.wechat.api_base_url = wechat;
        c.messages.send_rate_per_sec = 0;
        c.messages.bulk_concurrency = concurrency;
        c.jobs.lease_secs = 5;
        c.jobs.poll_interval_ms = 200;
        add_admin_key(c);
        if let Some(url) = url {
            c.database_url = Some(Secret::new(url));
        }
    }
}

const JOB: &str = "query($id: ID!) { wechatMessageJob(id: $id) { status total queued sent delivered failed uncertain } }";

async fn start_bulk(
    client: &reqwest::Client,
    endpoint: &str,
    thing: &str,
) -> Result<String, String> {
    let q = "mutation($i: SendWeChatMessagesInput!) { sendWeChatMessages(input: $i) { id } }";
    let data = json!({ "thing1": { "value": thing }, "time2": { "value": "15:01" } });
    let input = json!({ "filter": {}, "appId": OA, "templateId": TEMPLATE_SHIPPED, "data": data });
    let v = gql(client, endpoint, Some(KEY), q, json!({ "i": input })).await?;
    Ok(v["sendWeChatMessages"]["id"]
        .as_str()
        .ok_or("no job id")?
        .to_owned())
}

/// Runs the benchmark.
pub async fn run(args: MessageBenchArgs) -> Result<(), String> {
    let dir = tempfile_dir()?;
    let (url, cleanup) = fresh_database(&dir, &args.db.database).await?;
    let backend = backend_name(&args.db.database);
    let sandbox = Sandbox::new(&sandbox_demo_apps());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let wechat = sandbox.spawn(listener);
    let (running, stop) = start_service(
        &dir,
        url.clone(),
        args.db.pool_size,
        tweak(&args, &wechat, None),
    )
    .await?;
    sandbox.set_push_target(&format!("http://{}", running.addr));
    let endpoint = format!("http://{}/graphql", running.addr);
    let client = reqwest::Client::new();

    // Setup (not timed): N followers, synced into users; the template registered.
    sandbox.add_followers(OA, "m", 0, args.users)?;
    let q = "mutation($i: RegisterWeChatMessageTemplateInput!) { registerWeChatMessageTemplate(input: $i) { templateId } }";
    let input = json!({ "appId": OA, "templateId": TEMPLATE_SHIPPED, "channel": "OFFICIAL_ACCOUNT_TEMPLATE",
        "fields": [{ "key": "thing1", "type": "THING" }, { "key": "time2", "type": "TIME" }] });
    gql(&client, &endpoint, Some(KEY), q, json!({ "i": input })).await?;
    let sync = gql(
        &client,
        &endpoint,
        Some(KEY),
        &format!("mutation {{ syncOfficialAccountFollowers(appId: \"{OA}\") {{ id }} }}"),
        json!({}),
    )
    .await?;
    let sync_id = sync["syncOfficialAccountFollowers"]["id"]
        .as_str()
        .ok_or("no sync")?
        .to_owned();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = gql(
            &client,
            &endpoint,
            Some(KEY),
            "query($id: ID!) { wechatFollowerSync(id: $id) { status } }",
            json!({ "id": sync_id }),
        )
        .await?;
        if s["wechatFollowerSync"]["status"] == "COMPLETED" {
            break;
        }
    }

    // 1. A bulk send to everyone.
    let calls_before = sandbox.message_calls(OA).template_send;
    let start = Instant::now();
    let job = start_bulk(&client, &endpoint, "账单已出").await?;
    let mut peak_rss = 0;
    let done = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak_rss = peak_rss.max(rss_kib());
        let j = gql(&client, &endpoint, Some(KEY), JOB, json!({ "id": job })).await?["wechatMessageJob"]
            .clone();
        if j["status"] == "COMPLETED" || j["status"] == "FAILED" {
            break j;
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let calls = sandbox.message_calls(OA).template_send - calls_before;
    let sent = done["sent"].as_u64().unwrap_or(0) + done["delivered"].as_u64().unwrap_or(0);
    println!(
        "{backend:8} bulk send: {sent} of {} messages in {secs:.2} s = {:.0} messages/s; {calls} template/send calls; failed {}; concurrency {}; peak RSS {:.1} MiB (service and sandbox)",
        done["total"],
        sent as f64 / secs,
        done["failed"],
        args.concurrency,
        peak_rss as f64 / 1024.0
    );

    // WeChat's delivery reports (TEMPLATESENDJOBFINISH, pushed to the webhook while the job
    // sent) processed: the backlog drains before the next phase.
    let t_reports = Instant::now();
    let reported = loop {
        let j = gql(&client, &endpoint, Some(KEY), JOB, json!({ "id": job })).await?["wechatMessageJob"]
            .clone();
        let delivered = j["delivered"].as_u64().unwrap_or(0);
        let lost = sandbox.pushes_dropped();
        if delivered + lost >= sent || t_reports.elapsed() > Duration::from_secs(300) {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "{backend:8} delivery reports: {reported} of {sent} messages DELIVERED {:.2} s after the job completed; the sandbox dropped {} report pushes (more than {} waiting)",
        t_reports.elapsed().as_secs_f64(),
        sandbox.pushes_dropped(),
        crate::wechat::sandbox::messages::MAX_PENDING_PUSHES,
    );

    // 2. Single sends, timed one by one.
    let q = "mutation($i: SendWeChatMessageInput!) { sendWeChatMessage(input: $i) { status } }";
    let users = gql(
        &client,
        &endpoint,
        Some(KEY),
        "{ users(first: 100) { edges { node { id } } } }",
        json!({}),
    )
    .await?;
    let ids: Arc<Vec<String>> = Arc::new(
        users["users"]["edges"]
            .as_array()
            .ok_or("no users")?
            .iter()
            .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (client, endpoint, ids, next, n) = (
            client.clone(),
            endpoint.clone(),
            ids.clone(),
            next.clone(),
            args.singles,
        );
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return lat;
                }
                let input = json!({ "userId": ids[i % ids.len()], "appId": OA, "templateId": TEMPLATE_SHIPPED,
                    "data": { "thing1": { "value": "单条" }, "time2": { "value": "15:01" } } });
                let t = Instant::now();
                let ok = gql(&client, &endpoint, Some(KEY), q, json!({ "i": input })).await.is_ok();
                lat.push((t.elapsed(), ok));
            }
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.map_err(|e| e.to_string())?);
    }
    let errors = lat.iter().filter(|(_, ok)| !ok).count();
    let mut lat: Vec<Duration> = lat.into_iter().map(|(d, _)| d).collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{backend:8} sendWeChatMessage: {} sends at 32 at once in {:.2} s = {:.0}/s; p50 {:.1} ms, p99 {:.1} ms; {errors} errors",
        lat.len(),
        t0.elapsed().as_secs_f64(),
        lat.len() as f64 / t0.elapsed().as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );

    // 3. A bulk send whose instance dies midway, resumed by another instance. PostgreSQL only:
    // an instance aborted inside this process keeps SQLite's file lock, which a killed process
    // would not.
    if cleanup.is_none() {
        println!("{backend:8} crash and resume: run with --database postgres://… (see the source)");
        drop(stop);
        return stop_service(
            running,
            stop_placeholder(),
            &args.db.database,
            cleanup,
            &dir,
        )
        .await;
    }
    let before = sandbox.delivered(OA, None, 1).map_or(0, |l| l.total);
    let job = start_bulk(&client, &endpoint, "崩溃后继续").await?;
    while sandbox.delivered(OA, None, 1).map_or(0, |l| l.total) < before + args.users / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.handle.abort();
    let access = running.app.identity.access(None).await;
    let public = access.public().map_err(|e| e.to_string())?;
    let probes = (0..args.db.pool_size).map(|_| public.ping());
    futures_util::future::join_all(probes).await;
    drop(running);
    let at_kill = sandbox.delivered(OA, None, 1).map_or(0, |l| l.total) - before;
    let (second, stop2) =
        start_service(&dir, url, args.db.pool_size, tweak(&args, &wechat, None)).await?;
    sandbox.set_push_target(&format!("http://{}", second.addr));
    let endpoint = format!("http://{}/graphql", second.addr);
    let t1 = Instant::now();
    let done = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let j = gql(&client, &endpoint, Some(KEY), JOB, json!({ "id": job })).await?["wechatMessageJob"]
            .clone();
        if j["status"] == "COMPLETED" || j["status"] == "FAILED" {
            break j;
        }
    };
    // This job's messages (its own text) by recipient.
    let list = sandbox
        .delivered(OA, None, usize::MAX)
        .ok_or("no deliveries")?;
    let mut per_person = std::collections::HashMap::new();
    for m in list
        .messages
        .iter()
        .filter(|m| m.data.get("thing1").map(String::as_str) == Some("崩溃后继续"))
    {
        *per_person.entry(m.touser.as_str()).or_insert(0u32) += 1;
    }
    let this_job: u32 = per_person.values().sum();
    let dupes = per_person.values().filter(|n| **n > 1).count();
    println!(
        "{backend:8} crash and resume: killed after {at_kill} of {} sent; resumed and completed in {:.2} s; sent {}, uncertain (in flight at the kill, not sent again) {}, failed {}; delivered to WeChat by this job {this_job}; people who got it twice: {dupes}",
        done["total"],
        t1.elapsed().as_secs_f64(),
        done["sent"].as_u64().unwrap_or(0) + done["delivered"].as_u64().unwrap_or(0),
        done["uncertain"],
        done["failed"],
    );
    drop(stop);
    stop_service(second, stop2, &args.db.database, cleanup, &dir).await
}

/// A stop switch for a service whose own switch was dropped already.
fn stop_placeholder() -> tokio::sync::oneshot::Sender<()> {
    tokio::sync::oneshot::channel().0
}
