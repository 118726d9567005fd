//! `wechat-identity soak`: a bounded multi-instance soak test on loopback.
//!
//! Several instances of this binary (`serve`, child processes) on one fresh PostgreSQL
//! database (and Redis when given), one fake WeChat (the sandbox, served by this process so
//! that a code handed out can be exchanged by any instance and a killed instance does not take
//! WeChat with it), and for `--minutes` (at most `--max-requests` calls) a mix of what clients
//! do, round-robin over the instances ([`ops`]): logins of every kind with merges, refreshes,
//! reads, webhook pushes, single sends. Beside it ([`scenario`]): WeChat faults injected every
//! few seconds (busy, 45009, delays past the service's timeout), one follower sync, one bulk
//! send, and one instance SIGKILLed half-way and started again on its port. At the end, once
//! the jobs have drained, [`checks`] look at the database and the sandbox's records, and
//! [`report`] prints Markdown tables; the exit status is non-zero when a check fails.
//!
//! - [`fleet`]: the instances (config, start, readiness, kill, restart, RSS);
//! - [`client`]: the HTTP calls and how their failures are told apart;
//! - [`logins`]: the login flows; [`message_checks`]: the messages against WeChat's record.

mod checks;
mod client;
mod fleet;
mod logins;
mod message_checks;
mod ops;
mod people;
mod report;
mod scenario;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::sandbox_demo_apps;
use crate::wechat::sandbox::Sandbox;

/// Options.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// A PostgreSQL server URL: a fresh database `wi_soak_…` is created on it and dropped at
    /// the end.
    #[arg(long)]
    database: String,
    /// A Redis URL for the instances' rate limits (`WECHAT_IDENTITY_RATE_LIMITS_REDIS_URL`).
    #[arg(long)]
    redis_url: Option<String>,
    /// How long the traffic runs, in minutes (1..=60).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    minutes: u64,
    /// Service instances (2..=5).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..=5))]
    instances: u64,
    /// Concurrent clients (1..=256).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    concurrency: u64,
    /// HTTP calls at most, over the whole run.
    #[arg(long, default_value_t = 200_000)]
    max_requests: u64,
}

/// WeChat's timeout in the instances; the delay faults exceed it by a second.
const WECHAT_TIMEOUT: Duration = Duration::from_millis(2000);
/// How often a fault is injected.
const FAULT_EVERY: Duration = Duration::from_secs(5);
/// How long the jobs may take to drain once the traffic stopped.
const DRAIN_WITHIN: Duration = Duration::from_secs(180);

/// Runs the soak; an error names what failed (a check, or the soak itself).
pub async fn run(args: SoakArgs) -> Result<(), String> {
    if !args.database.starts_with("postgres://") && !args.database.starts_with("postgresql://") {
        return Err("--database must be a PostgreSQL server URL (postgres://…)".into());
    }
    let dir = std::env::temp_dir().join(format!(
        "wechat-identity-soak-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let name = format!("wi_soak_{}", uuid::Uuid::new_v4().simple());
    crate::bench::pg_exec(&args.database, &format!("CREATE DATABASE {name}")).await?;
    let mut url = reqwest::Url::parse(&args.database).map_err(|e| e.to_string())?;
    url.set_path(&name);
    // Ctrl-C or SIGTERM: the instances are killed and the database dropped all the same.
    let started = Arc::new(std::sync::OnceLock::new());
    let result = tokio::select! {
        result = soak(&args, &dir, url.as_str(), &started) => result,
        () = interrupted() => Err("interrupted".to_owned()),
    };
    if let Some(fleet) = started.get() {
        fleet.stop().await;
    }
    let dropped = crate::bench::pg_exec(
        &args.database,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
    match &result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(_) => eprintln!("the instances' logs are kept in {}", dir.display()),
    }
    result.and(dropped)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}

async fn soak(
    args: &SoakArgs,
    dir: &std::path::Path,
    database_url: &str,
    running: &std::sync::OnceLock<Arc<fleet::Fleet>>,
) -> Result<(), String> {
    let duration = Duration::from_secs(args.minutes * 60);
    let sandbox = Sandbox::new(&sandbox_demo_apps());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let origin = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let wechat = sandbox.spawn(listener);
    let landing = format!("{origin}/soak/landing");
    let setup = fleet::FleetSetup {
        dir: dir.to_owned(),
        database_url: database_url.to_owned(),
        wechat: wechat.clone(),
        landing: landing.clone(),
        redis_url: args.redis_url.clone(),
        wechat_timeout: WECHAT_TIMEOUT,
    };
    println!(
        "soak: {} instances on one PostgreSQL database{}, {} clients, {} min, at most {} requests; WeChat is the sandbox at {wechat}",
        args.instances,
        if args.redis_url.is_some() {
            " (Redis passed as WECHAT_IDENTITY_RATE_LIMITS_REDIS_URL)"
        } else {
            ""
        },
        args.concurrency,
        args.minutes,
        args.max_requests
    );
    let started = Instant::now();
    let fleet = Arc::new(fleet::Fleet::start(setup, args.instances as usize).await?);
    let _ = running.set(fleet.clone());
    println!(
        "instances ready in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        fleet
            .instances
            .iter()
            .map(|i| format!("{} (pid {})", i.base, i.pid()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    sandbox.set_push_target(&fleet.instances[0].base);
    let client = client::Client::new(fleet.clone(), args.max_requests)?;
    let ctx = Arc::new(ops::Ctx::new(client, sandbox, wechat, landing));
    let result = traffic(args, &ctx, database_url, duration).await;
    fleet.stop().await;
    result
}

/// What the scenario did, for the report.
#[derive(Default)]
struct Story {
    sync_id: String,
    bulk_id: String,
    kill: String,
}

async fn traffic(
    args: &SoakArgs,
    ctx: &Arc<ops::Ctx>,
    database_url: &str,
    duration: Duration,
) -> Result<(), String> {
    scenario::register_template(ctx).await?;
    let faults = Arc::new(scenario::Faults::default());
    let start = Instant::now();
    let deadline = start + duration;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = people::Rng::new();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && !ctx.client.capped()
            {
                ops::run_one(&ctx, &mut rng).await;
            }
        }));
    }
    let injector = {
        let (ctx, faults, stop) = (ctx.clone(), faults.clone(), stop.clone());
        tokio::spawn(async move {
            let delay = WECHAT_TIMEOUT.as_millis() as u64 + 1000;
            for (path, fault, count) in scenario::cycle(delay).into_iter().cycle() {
                tokio::time::sleep(FAULT_EVERY).await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = scenario::inject(&ctx, &faults, path, fault, count, 0).await {
                    eprintln!("{e}");
                }
            }
        })
    };
    let at = |fraction: f64| start + duration.mul_f64(fraction);
    let story = async {
        let mut story = Story::default();
        tokio::time::sleep_until(at(0.2).into()).await;
        let (sync_id, followers) = scenario::start_sync(ctx, &faults).await?;
        story.sync_id = sync_id;
        println!(
            "{:>5.1} s: follower sync of {followers} followers started",
            start.elapsed().as_secs_f64()
        );
        tokio::time::sleep_until(at(0.4).into()).await;
        let delay = WECHAT_TIMEOUT.as_millis() as u64 + 1000;
        story.bulk_id = scenario::start_bulk(ctx, &faults, delay).await?;
        println!(
            "{:>5.1} s: bulk send started",
            start.elapsed().as_secs_f64()
        );
        tokio::time::sleep_until(at(0.5).into()).await;
        let down_for = duration
            .mul_f64(0.05)
            .clamp(Duration::from_secs(3), Duration::from_secs(20));
        let fallback = ctx.client.fleet.instances.len() - 1;
        let look_for = duration.mul_f64(0.1).min(Duration::from_secs(30));
        story.kill =
            scenario::kill_and_restart(ctx, database_url, (fallback, look_for), down_for).await?;
        println!("{:>5.1} s: {}", start.elapsed().as_secs_f64(), story.kill);
        Ok::<_, String>(story)
    };
    let story = story.await;
    for w in workers {
        let _ = w.await;
    }
    stop.store(true, Ordering::Relaxed);
    injector.abort();
    let traffic_secs = start.elapsed().as_secs_f64();
    let story = story?;
    // Faults still pending would hit the drain's work: WeChat is well again.
    let _ = reqwest::Client::new()
        .delete(format!("{}/faults", ctx.wechat))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let requests = ctx.client.requests.load(Ordering::Relaxed);
    println!(
        "traffic stopped after {traffic_secs:.1} s: {requests} requests ({:.0}/s); waiting for the jobs to drain",
        requests as f64 / traffic_secs
    );
    let drained = checks::drain(ctx, database_url, DRAIN_WITHIN).await;
    for i in &ctx.client.fleet.instances {
        i.note_rss("end");
    }
    finish(ctx, database_url, &faults, &story, drained).await
}

/// The checks and the report.
async fn finish(
    ctx: &ops::Ctx,
    database_url: &str,
    faults: &scenario::Faults,
    story: &Story,
    drained: Result<Duration, String>,
) -> Result<(), String> {
    use checks::Check;
    let mut all = Vec::new();
    all.push(Check::new(
        "jobs drained",
        drained.is_ok(),
        match &drained {
            Ok(d) => format!("{:.1} s after the traffic stopped", d.as_secs_f64()),
            Err(e) => e.clone(),
        },
    ));
    let (people_checks, figures) = checks::people(database_url).await?;
    all.extend(people_checks);
    all.extend(message_checks::messages(ctx, database_url, &story.bulk_id).await?);
    all.extend(checks::jobs(database_url).await?);
    let c = &ctx.client;
    let report::Totals {
        wechat,
        wechat_codes,
        server,
        server_kinds,
        other,
        other_codes,
    } = report::totals(c);
    let http_5xx = c.http_5xx.load(Ordering::Relaxed);
    let http_5xx_wechat = c.http_5xx_wechat.load(Ordering::Relaxed);
    let injected = faults.total();
    all.push(Check::new(
        "5xx only from injected faults",
        http_5xx == http_5xx_wechat && server == 0 && wechat <= u64::from(injected),
        format!(
            "HTTP 5xx: {http_5xx} ({http_5xx_wechat} an OA callback's answer to a WeChat fault); service errors \
             (INTERNAL/UNAVAILABLE/TIMEOUT at HTTP 200, transport failures or timeouts on a live instance): {server} {server_kinds:?}; \
             answers naming a WeChat failure: {wechat} {wechat_codes:?}, faults injected: {injected} calls"
        ),
    ));
    let mismatches = ctx
        .people
        .mismatches
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    all.push(Check::new(
        "no other failures",
        other == 0 && mismatches.is_empty(),
        format!(
            "other refusals: {other} {other_codes:?}; a unionid answered as two users: {} {}; {} unionids seen in answers",
            mismatches.len(),
            mismatches.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
            ctx.people.unionids_seen()
        ),
    ));
    let sync = scenario::sync_status(ctx, &story.sync_id).await?;
    let bulk = scenario::bulk_status(ctx, &story.bulk_id).await?;
    let merged = |reason: &str| {
        figures
            .get(&format!("merges by {reason}"))
            .copied()
            .unwrap_or(0)
    };
    all.push(Check::new(
        "the scenario ran",
        sync["status"] == "COMPLETED"
            && bulk["status"] == "COMPLETED"
            && merged("login") > 0
            && merged("follower_sync") > 0
            && !story.kill.is_empty(),
        format!(
            "follower sync {sync}; bulk send {bulk}; {}; {figures:?}",
            story.kill
        ),
    ));
    println!(
        "\nfaults injected (calls): {:?}",
        faults.injected.lock().unwrap_or_else(|e| e.into_inner())
    );
    println!("\n{}", report::operations(c));
    println!("{}", report::instances(&c.fleet));
    println!("{}", report::checks(&all));
    let failed = all.iter().filter(|c| !c.pass).count();
    if failed > 0 {
        return Err(format!("{failed} of {} checks failed", all.len()));
    }
    println!("all {} checks passed", all.len());
    Ok(())
}
