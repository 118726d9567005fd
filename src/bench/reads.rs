//! `wechat-identity bench-reads`: read throughput on PostgreSQL against PostGraphile v4 and v5
//! and against PostgreSQL alone, on the same data in the same run. Seeds a fresh database
//! (100,000 users, 150,000 identities by default), starts the service in this process and both
//! PostGraphiles (`bench/postgraphile`, `bench/postgraphile5`) beside it, checks that each
//! answers the same data as ours, and drives each server with `wrk` (32 connections) and the
//! database with `pgbench` (as many connections) on (a) `user(id)` with both identity lists, (b)
//! `userByUnionid`, (c) a page of 100 users with their identities, (d) a federation `_entities`
//! lookup of 50 users. Prints req/s and p50/p99 of each server, the floor's transactions/s, and
//! the ratios; a server or pgbench that cannot run shows `n/a (why)` and the rest goes on.

mod check;
mod floor;
mod peers;
mod report;
mod scenarios;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{fresh_database, pg_exec, start_service, stop_service, tempfile_dir};
use crate::config::{ApiKeyConfig, ApiKeyRole, Secret};
use check::{Refused, same_data};
use floor::FloorResult;
use peers::Server;
use wrk::WrkResult;

/// Options.
#[derive(Debug, clap::Args)]
pub struct ReadBenchArgs {
    /// The PostgreSQL server (a fresh database is created on it and dropped afterwards).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database: String,
    /// Users to seed (identities: 1.5 per user).
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds each server is measured on each read, over all rounds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Rounds per read: ours, PostGraphile v4's, v5's and the floor's runs alternate,
    /// `duration / rounds` each, so that other load on the machine falls on all alike.
    #[arg(long, default_value_t = 2)]
    rounds: u64,
    /// Seconds of warm-up before each measured run.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Our database pool size (and each PostGraphile's, split over its workers).
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// PostGraphile's directory (`npm ci` done in it).
    #[arg(long, default_value = "bench/postgraphile")]
    postgraphile: PathBuf,
    /// PostGraphile v5's directory (`npm ci` done in it: it brings its own Node 22).
    #[arg(long, default_value = "bench/postgraphile5")]
    postgraphile5: PathBuf,
    /// PostGraphile cluster workers, v4's and v5's (Node runs JavaScript on one core per process; 2 lets it
    /// use both cores of the bench machine, as our service does).
    #[arg(long, default_value_t = 2)]
    postgraphile_workers: usize,
    /// Only these scenarios (a, b, c, d, e); all when empty.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also measure our service configured otherwise, each a second instance on the same
    /// database measured beside the first: `resolvers` (`graphql.compiled_reads = false`: every
    /// read on the field resolvers), `no-document-cache` (`graphql.document_cache_bytes = 0`).
    #[arg(long, value_delimiter = ',')]
    variant: Vec<Variant>,
    /// Also measure other builds of our service, `NAME=PATH` (e.g. `before=/tmp/wi-old`), each
    /// its own process on the same database measured beside ours, with its RSS after each read:
    /// how a change moved speed and memory, in the same run.
    #[arg(long, value_delimiter = ',', value_parser = external_arg)]
    external: Vec<(String, PathBuf)>,
}

fn external_arg(arg: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = arg.split_once('=').ok_or("NAME=PATH")?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("{name}: a NAME is letters, digits and '-'"));
    }
    let path = std::fs::canonicalize(path).map_err(|e| format!("{path}: {e}"))?;
    Ok((name.to_owned(), path))
}

/// Another configuration of our service, measured beside the default one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Variant {
    Resolvers,
    NoDocumentCache,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Resolvers => "ours, resolvers",
            Variant::NoDocumentCache => "ours, no document cache",
        }
    }

    fn apply(self, config: &mut crate::config::Config) {
        match self {
            Variant::Resolvers => config.graphql.compiled_reads = false,
            Variant::NoDocumentCache => config.graphql.document_cache_bytes = 0,
        }
    }
}

const KEY: &str = "bench-reads-admin-key-0123456789";
/// The peers' names, in the order of [`scenarios::Scenario::peers`].
const PEERS: [&str; 2] = ["PostGraphile v4", "PostGraphile v5"];

/// Runs the benchmark.
pub async fn run(args: ReadBenchArgs) -> Result<(), String> {
    if !args.database.starts_with("postgres") {
        return Err("bench-reads runs on PostgreSQL: --database postgres://…".into());
    }
    let dir = tempfile_dir()?;
    let (url, cleanup) = fresh_database(&dir, &args.database).await?;
    let result = bench(&args, &dir, &url).await;
    if let Some(name) = cleanup {
        pg_exec(
            &args.database,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A server's or the floor's runs of one read so far, or why it has none.
type Runs<T> = Result<Vec<T>, String>;

async fn bench(args: &ReadBenchArgs, dir: &Path, url: &str) -> Result<(), String> {
    let setup = |config: &mut crate::config::Config| {
        config.api_keys.push(ApiKeyConfig {
            name: "bench-reads".into(),
            role: ApiKeyRole::Admin,
            key: Secret::new(KEY),
        });
        config.limits.max_connections_per_ip = config.limits.max_connections;
        config.limits.reserved_connections_percent = 0;
    };
    let (running, stop) = start_service(dir, url.to_owned(), args.pool_size, setup).await?;
    let mut variants = Vec::new();
    for variant in &args.variant {
        let (running, stop) = start_service(dir, url.to_owned(), args.pool_size, |c| {
            setup(c);
            variant.apply(c);
        })
        .await?;
        let endpoint = format!("http://{}/graphql", running.addr);
        variants.push((*variant, endpoint, running, stop));
    }
    let ours = format!("http://{}/graphql", running.addr);
    let mut externals = Vec::new();
    for (name, bin) in &args.external {
        let server = Server::start_ours(bin, dir, name, url, args.pool_size, KEY).await?;
        externals.push((name.clone(), server));
    }
    let t = Instant::now();
    let seed = include_str!("reads/seed.sql").replace("__USERS__", &args.users.to_string());
    pg_exec(url, &seed).await?;
    println!(
        "bench-reads: seeded {} users and their identities in {:.1} s",
        args.users,
        t.elapsed().as_secs_f64()
    );
    // Each server holds `pool_size` connections in all (a PostGraphile's split over its
    // workers), so that with pgbench's they stay within PostgreSQL's default 100.
    let (workers, pool) = (args.postgraphile_workers, args.pool_size);
    let per_worker = pool.div_ceil(workers.max(1));
    let peers: [Result<Server, String>; 2] = [
        match std::fs::canonicalize(&args.postgraphile) {
            Ok(d) => Server::start(&d, url, workers, per_worker).await,
            Err(e) => Err(format!("{}: {e}", args.postgraphile.display())),
        },
        match std::fs::canonicalize(&args.postgraphile5) {
            Ok(d) => Server::start_v5(&d, url, workers, per_worker).await,
            Err(e) => Err(format!("{}: {e}", args.postgraphile5.display())),
        },
    ];
    let round = Duration::from_secs((args.duration / args.rounds.max(1)).max(1));
    println!(
        "bench-reads: our service (this binary) pool {pool}, at {ours}; {}; PostGraphile {workers} worker(s), pool {per_worker} each; wrk -t2 -c{c} and pgbench -M prepared -c{c} -j2, {} rounds of {} s per server and read, alternating (each after {} s of warm-up); machine: {} cores",
        PEERS
            .iter()
            .zip(&peers)
            .map(|(name, p)| match p {
                Ok(p) => format!("{name} at {}", p.endpoint),
                Err(e) => format!("{name} n/a ({e})"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        args.rounds.max(1),
        round.as_secs(),
        args.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        c = args.connections,
    );
    let client = reqwest::Client::new();
    for scenario in scenarios::scenarios(&client, &ours, url).await? {
        if !args.only.is_empty() && !args.only.iter().any(|k| k == scenario.key) {
            continue;
        }
        let mut ours_runs: Runs<WrkResult> = Ok(Vec::new());
        let mut variant_runs: Vec<Runs<WrkResult>> =
            variants.iter().map(|_| Ok(Vec::new())).collect();
        let mut external_runs: Vec<Runs<WrkResult>> =
            externals.iter().map(|_| Ok(Vec::new())).collect();
        let mut peer_runs: [Runs<WrkResult>; 2] = [Ok(Vec::new()), Ok(Vec::new())];
        let mut checks = Vec::new();
        for (i, peer) in peers.iter().enumerate() {
            let peer = match peer {
                Ok(_) if scenario.peers[i].is_empty() => {
                    peer_runs[i] = Err("n/a (not asked of it)".into());
                    continue;
                }
                Ok(p) => p,
                Err(e) => {
                    peer_runs[i] = Err(format!("n/a ({e})"));
                    continue;
                }
            };
            let check = same_data(
                &client,
                (&ours, &scenario.ours),
                (&peer.endpoint, &scenario.peers[i]),
                PEERS[i],
            )
            .await;
            match &check {
                Err(Refused::Ours(e)) => ours_runs = Err(format!("n/a (server error: {e})")),
                Err(Refused::Theirs(e)) => peer_runs[i] = Err(format!("n/a (error: {e})")),
                _ => {}
            }
            checks.push((PEERS[i], check));
        }
        let mut floor_runs: Runs<FloorResult> = match scenario.floor.is_empty() {
            true => Err("n/a (no statement: not on the compiled path)".into()),
            false => Ok(Vec::new()),
        };
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        for _ in 0..args.rounds.max(1) {
            let servers =
                std::iter::once((&mut ours_runs, ours.as_str(), Some(KEY), &scenario.ours));
            let servers = servers.chain(
                variant_runs
                    .iter_mut()
                    .zip(&variants)
                    .map(|(runs, v)| (runs, v.1.as_str(), Some(KEY), &scenario.ours)),
            );
            let servers = servers.chain(
                external_runs
                    .iter_mut()
                    .zip(&externals)
                    .map(|(runs, e)| (runs, e.1.endpoint.as_str(), Some(KEY), &scenario.ours)),
            );
            let others = peer_runs.iter_mut().zip(&peers).zip(&scenario.peers);
            let others = others.filter_map(|((runs, p), bodies)| {
                Some((runs, p.as_ref().ok()?.endpoint.as_str(), None, bodies))
            });
            for (runs, endpoint, key, bodies) in servers.chain(others) {
                if let Ok(done) = runs {
                    match measure(args, dir, endpoint, key, scenario.key, bodies, round).await {
                        Ok(r) => done.push(r),
                        Err(e) => *runs = Err(format!("n/a ({e})")),
                    }
                }
            }
            if let Ok(done) = &mut floor_runs {
                match measure_floor(args, dir, url, scenario.key, &scenario.floor, round).await {
                    Ok(r) => done.push(r),
                    Err(e) => floor_runs = Err(format!("n/a ({e})")),
                }
            }
        }
        let combine = |r: Runs<WrkResult>| r.map(|r| WrkResult::combine(&r));
        let [v4, v5] = peer_runs.map(combine);
        let ours_result = combine(ours_runs);
        report::print(
            &scenario,
            &ours_result,
            [&v4, &v5],
            &floor_runs.map(|r| FloorResult::combine(&r)),
            args.connections,
        );
        for ((variant, ..), runs) in variants.iter().zip(variant_runs) {
            report::print_variant(variant.name(), &ours_result, &combine(runs));
        }
        for ((name, server), runs) in externals.iter().zip(external_runs) {
            report::print_variant(name, &ours_result, &combine(runs));
            let rss = super::followers::rss_kib_of(&server.pid().to_string());
            println!(
                "    {name:>24}: RSS after the read {:.1} MiB",
                rss as f64 / 1024.0
            );
        }
        println!(
            "    this process's RSS (our service{}, and the bench's client) after the read: {:.1} MiB",
            if variants.is_empty() { "" } else { "s" },
            super::followers::rss_kib_of(&std::process::id().to_string()) as f64 / 1024.0
        );
        report::print_checks(&checks, &load);
    }
    drop(peers);
    drop(externals);
    for (_, _, running, stop) in variants {
        let _ = stop.send(());
        let _ = running.handle.await;
    }
    stop_service(running, stop, url, None, dir).await
}

/// A warm-up run, then one measured round of `round`.
async fn measure(
    args: &ReadBenchArgs,
    dir: &Path,
    endpoint: &str,
    key: Option<&str>,
    name: &str,
    bodies: &[String],
    round: Duration,
) -> Result<WrkResult, String> {
    let script = wrk::script(bodies, key);
    let c = args.connections;
    if args.warmup > 0 {
        let warmup = Duration::from_secs(args.warmup);
        wrk::run(dir, name, endpoint, &script, c, warmup).await?;
    }
    wrk::run(dir, name, endpoint, &script, c, round).await
}

/// The floor's warm-up, then one measured round of `round`.
async fn measure_floor(
    args: &ReadBenchArgs,
    dir: &Path,
    url: &str,
    name: &str,
    statements: &[String],
    round: Duration,
) -> Result<FloorResult, String> {
    let c = args.connections;
    if args.warmup > 0 {
        let warmup = Duration::from_secs(args.warmup);
        floor::pgbench(dir, url, name, statements, c, warmup).await?;
    }
    floor::pgbench(dir, url, name, statements, c, round).await
}
