//! `wechat-identity bench-reads`: read throughput on PostgreSQL against PostGraphile v4 on the
//! same data in the same run. Seeds a fresh database (100,000 users, 150,000 identities by
//! default), starts the service in this process and PostGraphile (`bench/postgraphile`) beside
//! it, checks that both answer the same data, and drives each with `wrk` (32 connections):
//! (a) `user(id)` with both identity lists, (b) `userByUnionid`, (c) a page of 100 users with
//! their identities, (d) a federation `_entities` lookup of 50 users. Prints req/s and p50/p99
//! for both and the ratio.

mod check;
mod wrk;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{fresh_database, gql, pg_exec, start_service, stop_service, tempfile_dir};
use crate::config::{ApiKeyConfig, ApiKeyRole, Secret};
use check::{Refused, same_data};
use wrk::{PostGraphile, WrkResult};

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
    /// Rounds per read: ours and PostGraphile's runs alternate, `duration / rounds` each, so
    /// that other load on the machine falls on both alike.
    #[arg(long, default_value_t = 2)]
    rounds: u64,
    /// Seconds of warm-up before each measured run.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Our database pool size (and PostGraphile's, per worker).
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// PostGraphile's directory (`npm ci` done in it).
    #[arg(long, default_value = "bench/postgraphile")]
    postgraphile: PathBuf,
    /// PostGraphile cluster workers (Node runs JavaScript on one core per process; 2 lets it
    /// use both cores of the bench machine, as our service does).
    #[arg(long, default_value_t = 2)]
    postgraphile_workers: usize,
    /// Only these scenarios (a, b, c, d); all when empty.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

const KEY: &str = "bench-reads-admin-key-0123456789";
/// The fields asked of a user in every scenario, ours and PostGraphile's (whose relations are
/// aliased to our names).
const OURS: &str = "fragment U on User { id unionid nickname createdAt miniProgramIdentities { id appId openid unionid } officialAccountIdentities { id appId openid subscribed } }";
const THEIRS: &str = "fragment U on User { id unionid nickname createdAt miniProgramIdentities: miniProgramIdentitiesByUserIdList { id appId openid unionid } officialAccountIdentities: officialAccountIdentitiesByUserIdList { id appId openid subscribed } }";

/// One read, as our query and PostGraphile's, with the request bodies wrk cycles through.
struct Scenario {
    key: &'static str,
    name: &'static str,
    ours: Vec<String>,
    theirs: Vec<String>,
}

fn bodies(query: &str, fragment: &str, variables: impl Iterator<Item = Value>) -> Vec<String> {
    let query = format!("{query} {fragment}");
    variables
        .map(|v| json!({ "query": query, "variables": v }).to_string())
        .collect()
}

/// Runs the benchmark.
pub async fn run(args: ReadBenchArgs) -> Result<(), String> {
    if !args.database.starts_with("postgres") {
        return Err("bench-reads runs on PostgreSQL: --database postgres://…".into());
    }
    let postgraphile = std::fs::canonicalize(&args.postgraphile)
        .map_err(|e| format!("{}: {e}", args.postgraphile.display()))?;
    let dir = tempfile_dir()?;
    let (url, cleanup) = fresh_database(&dir, &args.database).await?;
    let result = bench(&args, &postgraphile, &dir, &url).await;
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

async fn bench(
    args: &ReadBenchArgs,
    postgraphile: &std::path::Path,
    dir: &std::path::Path,
    url: &str,
) -> Result<(), String> {
    let (running, stop) = start_service(dir, url.to_owned(), args.pool_size, |config| {
        config.api_keys.push(ApiKeyConfig {
            name: "bench-reads".into(),
            role: ApiKeyRole::Admin,
            key: Secret::new(KEY),
        });
        config.limits.max_connections_per_ip = config.limits.max_connections;
        config.limits.reserved_connections_percent = 0;
    })
    .await?;
    let ours = format!("http://{}/graphql", running.addr);
    let t = Instant::now();
    let seed = include_str!("reads/seed.sql").replace("__USERS__", &args.users.to_string());
    pg_exec(url, &seed).await?;
    println!(
        "bench-reads: seeded {} users and their identities in {:.1} s",
        args.users,
        t.elapsed().as_secs_f64()
    );
    let pg =
        PostGraphile::start(postgraphile, url, args.postgraphile_workers, args.pool_size).await?;
    println!(
        "bench-reads: PostGraphile v4 with {} worker(s), pool {} each, at {}; our service (this release binary) pool {}, at {ours}; wrk -t2 -c{} {} s per server and read, in {} alternating rounds (each after {} s of warm-up); machine: {} cores",
        args.postgraphile_workers,
        args.pool_size,
        pg.endpoint,
        args.pool_size,
        args.connections,
        args.duration,
        args.rounds,
        args.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let client = reqwest::Client::new();
    for scenario in scenarios(&client, &ours, url).await? {
        if !args.only.is_empty() && !args.only.iter().any(|k| k == scenario.key) {
            continue;
        }
        let check = same_data(&client, &ours, &pg.endpoint, &scenario).await;
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let mut ours_runs = match &check {
            Err(Refused::Ours(e)) => Err(format!("n/a (server error: {e})")),
            _ => Ok(Vec::new()),
        };
        let mut theirs_runs = match &check {
            Err(Refused::Theirs(e)) => Err(format!("n/a (PostGraphile error: {e})")),
            _ => Ok(Vec::new()),
        };
        for _ in 0..args.rounds.max(1) {
            for (runs, endpoint, key, bodies) in [
                (&mut ours_runs, ours.as_str(), Some(KEY), &scenario.ours),
                (
                    &mut theirs_runs,
                    pg.endpoint.as_str(),
                    None,
                    &scenario.theirs,
                ),
            ] {
                if let Ok(done) = runs {
                    match measure(args, dir, endpoint, key, scenario.key, bodies).await {
                        Ok(r) => done.push(r),
                        Err(e) => *runs = Err(e),
                    }
                }
            }
        }
        let ours_result = ours_runs.map(|r| WrkResult::combine(&r));
        let theirs_result = theirs_runs.map(|r| WrkResult::combine(&r));
        print_row(&scenario, &ours_result, &theirs_result);
        println!(
            "    same data: {}; load average before: {}",
            match &check {
                Ok(n) => format!("yes ({n})"),
                Err(Refused::Differ(e)) => format!("NO: {e}"),
                Err(Refused::Ours(_) | Refused::Theirs(_)) => "not compared".into(),
            },
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    drop(pg);
    stop_service(running, stop, url, None, dir).await
}

/// The four reads, with request bodies over a spread of seeded users.
async fn scenarios(
    client: &reqwest::Client,
    ours: &str,
    url: &str,
) -> Result<Vec<Scenario>, String> {
    let sample = sample_users(url, 2000).await?;
    let ids = || sample.iter().map(|(id, _)| id.clone());
    let unionids = || sample.iter().filter_map(|(_, u)| u.clone());
    // Page starts: the cursors of our first pages, and PostGraphile's `id > last id` twin.
    let mut pages: Vec<(Value, Value)> = vec![(Value::Null, json!(""))];
    let walk = "query($after: String) { users(first: 100, after: $after) { edges { node { id } } pageInfo { endCursor } } }";
    for _ in 0..100 {
        let after = pages.last().map_or(Value::Null, |p| p.0.clone());
        let data = gql(client, ours, Some(KEY), walk, json!({ "after": after })).await?;
        let page = &data["users"];
        let last = page["edges"]
            .as_array()
            .and_then(|e| e.last())
            .map(|e| e["node"]["id"].clone());
        match (page["pageInfo"]["endCursor"].clone(), last) {
            (cursor @ Value::String(_), Some(id)) => pages.push((cursor, id)),
            _ => break,
        }
    }
    let batches: Vec<Vec<String>> = sample
        .chunks(50)
        .map(|c| c.iter().map(|(id, _)| id.clone()).collect())
        .collect();
    Ok(vec![
        Scenario {
            key: "a",
            name: "user(id) + identities",
            ours: bodies("query($id: ID!) { user(id: $id) { ...U } }", OURS, ids().map(|id| json!({ "id": id }))),
            theirs: bodies("query($id: String!) { user: userById(id: $id) { ...U } }", THEIRS, ids().map(|id| json!({ "id": id }))),
        },
        Scenario {
            key: "b",
            name: "userByUnionid",
            ours: bodies("query($u: String!) { userByUnionid(unionid: $u) { ...U } }", OURS, unionids().map(|u| json!({ "u": u }))),
            theirs: bodies("query($u: String!) { allUsersList(condition: {unionid: $u, mergedInto: null}, first: 1) { ...U } }", THEIRS, unionids().map(|u| json!({ "u": u }))),
        },
        Scenario {
            key: "c",
            name: "page of 100 users",
            ours: bodies("query($after: String) { users(first: 100, after: $after) { edges { cursor node { ...U } } pageInfo { hasNextPage endCursor } } }", OURS, pages.iter().map(|p| json!({ "after": p.0 }))),
            theirs: bodies("query($after: String!) { allUsers(first: 100, orderBy: PRIMARY_KEY_ASC, condition: {mergedInto: null}, filter: {id: {greaterThan: $after}}) { edges { cursor node { ...U } } pageInfo { hasNextPage endCursor } } }", THEIRS, pages.iter().map(|p| json!({ "after": p.1 }))),
        },
        Scenario {
            key: "d",
            name: "_entities, 50 users",
            ours: bodies("query($r: [_Any!]!) { _entities(representations: $r) { ... on User { ...U } } }", OURS, batches.iter().map(|b| json!({ "r": b.iter().map(|id| json!({ "__typename": "User", "id": id })).collect::<Vec<_>>() }))),
            theirs: bodies("query($ids: [String!]!) { allUsersList(filter: {id: {in: $ids}}) { ...U } }", THEIRS, batches.iter().map(|b| json!({ "ids": b }))),
        },
    ])
}

/// `n` users spread over the table: (id, unionid).
async fn sample_users(url: &str, n: usize) -> Result<Vec<(String, Option<String>)>, String> {
    use diesel::sql_types::{Nullable, Text};
    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        id: String,
        #[diesel(sql_type = Nullable<Text>)]
        unionid: Option<String>,
    }
    let mut conn = crate::db::PgConn::establish(url)
        .await
        .map_err(|e| e.to_string())?;
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT id, unionid FROM users WHERE merged_into IS NULL ORDER BY md5(id) LIMIT {n}"
    ))
    .load(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(rows.into_iter().map(|r| (r.id, r.unionid)).collect())
}

/// A warm-up run, then one measured round.
async fn measure(
    args: &ReadBenchArgs,
    dir: &std::path::Path,
    endpoint: &str,
    key: Option<&str>,
    name: &str,
    bodies: &[String],
) -> Result<WrkResult, String> {
    let script = wrk::script(bodies, key);
    if args.warmup > 0 {
        wrk::run(
            dir,
            name,
            endpoint,
            &script,
            args.connections,
            Duration::from_secs(args.warmup),
        )
        .await?;
    }
    wrk::run(
        dir,
        name,
        endpoint,
        &script,
        args.connections,
        Duration::from_secs(args.duration),
    )
    .await
}

fn print_row(
    scenario: &Scenario,
    ours: &Result<WrkResult, String>,
    theirs: &Result<WrkResult, String>,
) {
    let show = |r: &Result<WrkResult, String>| match r {
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
    };
    let ratio = match (ours, theirs) {
        (Ok(a), Ok(b)) if b.rps > 0.0 => format!("{:.2}×", a.rps / b.rps),
        _ => "n/a".into(),
    };
    println!(
        "({}) {:24} ours: {}",
        scenario.key,
        scenario.name,
        show(ours)
    );
    println!(
        "    {:24} PostGraphile: {}   ours/PostGraphile: {ratio}",
        "",
        show(theirs)
    );
}
