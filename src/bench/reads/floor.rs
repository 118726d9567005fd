//! The floor of `bench-reads`: PostgreSQL alone answering each read as one JSON-building
//! statement, driven by `pgbench` with as many connections as wrk (or as PostgreSQL has free).
//! No GraphQL server can beat the statement it would have to run, so ours/floor says how much
//! of our time is the server.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// At most this many statements per read, each its own pgbench script (`-f`): pgbench takes up
/// to 128 scripts, and each is prepared on each connection (`-M prepared`) when first drawn, so
/// about half of that keeps the preparing (scripts × connections) small against a run while
/// still spreading the reads over the table.
pub const MAX_STATEMENTS: usize = 64;

/// What one pgbench run measured.
#[derive(Clone, Debug)]
pub struct FloorResult {
    /// Transactions (one statement each) per second.
    pub tps: f64,
    /// Average latency (ms).
    pub latency_ms: f64,
    /// pgbench's clients: the bench's connections, or fewer if the server had fewer free.
    pub clients: usize,
}

impl FloorResult {
    /// Several rounds of the same length as one: their mean.
    pub fn combine(rounds: &[FloorResult]) -> FloorResult {
        let n = rounds.len().max(1) as f64;
        FloorResult {
            tps: rounds.iter().map(|r| r.tps).sum::<f64>() / n,
            latency_ms: rounds.iter().map(|r| r.latency_ms).sum::<f64>() / n,
            clients: rounds.iter().map(|r| r.clients).min().unwrap_or(0),
        }
    }
}

/// One read as the service would answer it, with its inputs.
pub enum Read<'a> {
    /// `user(id)` with both identity lists.
    UserById(&'a str),
    /// `userByUnionid`: the live user holding the unionid.
    UserByUnionid(&'a str),
    /// `users(first, after)`: the live users after this id (None: the first page).
    Page {
        after: Option<&'a str>,
        first: usize,
    },
    /// `_entities` of these user ids.
    Entities(&'a [String]),
}

/// The statement that answers a read. THE ONE LINE TO SWAP: when the service's compiled read
/// path lands, point this at its own statement builder (e.g. `crate::db::…::statement`), so
/// that the floor is exactly what the service sends.
const STATEMENT: fn(&Read) -> String = placeholder_statement;

/// The statements of one read, one per request of `reads` (at most [`MAX_STATEMENTS`], spread
/// evenly over them), with their literals inlined.
pub fn floor_statements(reads: &[Read]) -> Vec<String> {
    let step = reads.len().div_ceil(MAX_STATEMENTS).max(1);
    reads.iter().step_by(step).map(STATEMENT).collect()
}

/// PLACEHOLDER until the compiled read path lands (see [`STATEMENT`]): a hand-written statement
/// that builds the read's JSON answer — the user with both identity lists, as in the GraphQL
/// `fragment U` of the scenarios — with `json_build_object` and `json_agg` over `LEFT JOIN
/// LATERAL`s. Times are PostgreSQL's JSON rendering, cursors the bare ids.
pub fn placeholder_statement(read: &Read) -> String {
    let live = "u.merged_into IS NULL AND u.deleted_at IS NULL";
    match read {
        Read::UserById(id) => format!(
            "SELECT json_build_object('user', (SELECT {USER} FROM {FROM} WHERE u.id = {}))",
            quote(id)
        ),
        Read::UserByUnionid(unionid) => format!(
            "SELECT json_build_object('userByUnionid', (SELECT {USER} FROM {FROM} WHERE u.unionid = {} AND {live} LIMIT 1))",
            quote(unionid)
        ),
        Read::Page { after, first } => {
            let after = after.map_or_else(String::new, |a| format!(" AND u.id > {}", quote(a)));
            format!(
                "SELECT json_build_object('users', json_build_object('edges', coalesce(json_agg(json_build_object('cursor', p.id, 'node', p.node) ORDER BY p.id) FILTER (WHERE p.n <= {first}), '[]'), \
                 'pageInfo', json_build_object('hasNextPage', count(*) > {first}, 'endCursor', max(p.id) FILTER (WHERE p.n <= {first})))) \
                 FROM (SELECT u.id, {USER} AS node, row_number() OVER (ORDER BY u.id) AS n FROM {FROM} WHERE {live}{after} ORDER BY u.id LIMIT {}) p",
                first + 1
            )
        }
        Read::Entities(ids) => format!(
            "SELECT json_build_object('_entities', coalesce(json_agg(e.u), '[]')) FROM (SELECT {USER} AS u FROM {FROM} WHERE u.id IN ({})) e",
            ids.iter()
                .map(|id| quote(id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A user's JSON (with `FROM`).
const USER: &str = "json_build_object('id', u.id, 'unionid', u.unionid, 'nickname', u.nickname, 'createdAt', u.created_at, \
    'miniProgramIdentities', coalesce(mp.list, '[]'), 'officialAccountIdentities', coalesce(oa.list, '[]'))";
/// The users with their identity lists in creation order (the service's order).
const FROM: &str = "users u \
    LEFT JOIN LATERAL (SELECT json_agg(json_build_object('id', m.id, 'appId', m.app_id, 'openid', m.openid, 'unionid', m.unionid) ORDER BY m.created_at, m.id) AS list \
      FROM mini_program_identities m WHERE m.user_id = u.id) mp ON true \
    LEFT JOIN LATERAL (SELECT json_agg(json_build_object('id', o.id, 'appId', o.app_id, 'openid', o.openid, 'subscribed', o.subscribed) ORDER BY o.created_at, o.id) AS list \
      FROM official_account_identities o WHERE o.user_id = u.id) oa ON true";

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs `pgbench -n -M prepared -c <connections> -j 2 -T <duration>` on `url` with each of
/// `statements` as its own script (written to `dir/<name>-floor-<i>.sql`), drawn at random per
/// transaction; returns its tps and average latency. The servers' pools hold most of
/// PostgreSQL's connections (ours, and both PostGraphiles' per worker: 80 of the default 100
/// with pools of 16), so pgbench takes fewer clients when fewer are free, and says so.
pub async fn pgbench(
    dir: &Path,
    url: &str,
    name: &str,
    statements: &[String],
    connections: usize,
    duration: Duration,
) -> Result<FloorResult, String> {
    if statements.is_empty() {
        return Err("no statements".into());
    }
    // Other clients come and go, and node-postgres closes a pool's idle connections after 10 s:
    // a run with no connection free, or refused for want of one, waits and is tried again on
    // what is free then, for up to 15 s.
    let mut last = String::new();
    for attempt in 0..30 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let free = match free_connections(url).await {
            Ok(n) => n,
            Err(e) if e.contains("too many clients") => 0,
            Err(e) => return Err(e),
        };
        if free == 0 {
            last = "no free PostgreSQL connection for 15 s (max_connections)".into();
            continue;
        }
        let clients = connections.min(free);
        match run(dir, url, name, statements, clients, duration).await {
            Err(e) if e.contains("too many clients") => last = e,
            result => return result,
        }
    }
    Err(last)
}

/// One pgbench run with `clients` clients.
async fn run(
    dir: &Path,
    url: &str,
    name: &str,
    statements: &[String],
    clients: usize,
    duration: Duration,
) -> Result<FloorResult, String> {
    let mut command = std::process::Command::new(pgbench_binary());
    command
        .args(["-n", "-M", "prepared", "-j", &clients.min(2).to_string()])
        .arg(format!("-c{clients}"))
        .arg(format!("-T{}", duration.as_secs().max(1)));
    for (i, statement) in statements.iter().take(MAX_STATEMENTS).enumerate() {
        // pgbench reads `:name` as a variable; the statements have none (no casts by `::`
        // either would matter: pgbench leaves those alone).
        let path = dir.join(format!("{name}-floor-{i}.sql"));
        std::fs::write(&path, format!("{statement};\n")).map_err(|e| e.to_string())?;
        command.arg("-f").arg(path);
    }
    command
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot run pgbench (is it installed?): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let number = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (number("tps = "), number("latency average = ")) {
        (Some(tps), Some(latency_ms)) if output.status.success() => Ok(FloorResult {
            tps,
            latency_ms,
            clients,
        }),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr
                .lines()
                .find(|l| l.contains("error") || l.contains("ERROR") || l.contains("FATAL"))
                .unwrap_or_else(|| stderr.lines().last().unwrap_or("no output"));
            Err(format!("pgbench failed: {}", why.trim()))
        }
    }
}

/// How many more connections PostgreSQL takes from non-superusers now, less one to spare.
async fn free_connections(url: &str) -> Result<usize, String> {
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        free: i64,
    }
    let mut conn = crate::db::PgConn::establish(url)
        .await
        .map_err(|e| e.to_string())?;
    let row: Row = diesel::sql_query(
        "SELECT current_setting('max_connections')::bigint \
         - current_setting('superuser_reserved_connections')::bigint \
         - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS free",
    )
    .get_result(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    // This connection closes before pgbench starts; one more to spare for other clients.
    Ok(usize::try_from(row.free).unwrap_or(0))
}

/// `pgbench` on the PATH, or PostgreSQL 15's on Debian.
fn pgbench_binary() -> String {
    let debian = "/usr/lib/postgresql/15/bin/pgbench";
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("pgbench").is_file()));
    if !on_path && Path::new(debian).is_file() {
        debian.into()
    } else {
        "pgbench".into()
    }
}
