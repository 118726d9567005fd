//! The floor of `bench-reads`: PostgreSQL alone answering each read with the statement the
//! compiled read path sends for it (`UserShape::statement`, `UserRow::list_json_statement`),
//! prepared, driven by `pgbench` with as many connections as wrk (or as PostgreSQL has free).
//! No GraphQL server can beat the statement it would have to run, so ours/floor says how much
//! of our time is the server.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use async_graphql::parser::types::Selection;

use crate::db::models::user::UserRow;
use crate::db::models::user_json::{Lookup, UserShape};
use crate::db::models::user_list::{UserKey, UserListFilter, UserOrder, UserWindow};
use crate::graphql::compiled::shape;
use crate::types::UserId;

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

/// The statements of one read, one per request of `reads` (at most [`MAX_STATEMENTS`], spread
/// evenly over them), with their literals inlined: the very text the compiled path sends for
/// the user selection `fragment` (a `fragment U on User { … }`), its `$n` parameters replaced
/// by the values.
pub fn floor_statements(reads: &[Read], fragment: &str) -> Result<Vec<String>, String> {
    let shape = shape_of(fragment)?;
    let step = reads.len().div_ceil(MAX_STATEMENTS).max(1);
    reads
        .iter()
        .step_by(step)
        .map(|read| statement(&shape, read))
        .collect()
}

/// The compiled path's shape of `fragment U`, as the service makes it from a query.
fn shape_of(fragment: &str) -> Result<UserShape, String> {
    let doc = async_graphql::parser::parse_query(format!("{{ me {{ ...U }} }} {fragment}"))
        .map_err(|e| e.to_string())?;
    let async_graphql::parser::types::DocumentOperations::Single(op) = &doc.operations else {
        return Err("one operation".into());
    };
    let Some(Selection::Field(me)) = op.node.selection_set.node.items.first().map(|s| &s.node)
    else {
        return Err("a field".into());
    };
    shape::user(&doc.fragments, &me.node.selection_set.node)
        .ok_or_else(|| "the fragment is outside the compiled path".to_owned())
}

/// One read's statement with its values in place of its parameters.
fn statement(shape: &UserShape, read: &Read) -> Result<String, String> {
    let (sql, values) = match read {
        Read::UserById(id) => (shape.statement(Lookup::ById, true), vec![quote(id)]),
        Read::UserByUnionid(unionid) => (
            shape.statement(Lookup::LiveByUnionid, true),
            vec![quote(unionid)],
        ),
        Read::Entities(ids) => (
            shape.statement(Lookup::FollowingMerges, true),
            vec![quote(&ids.join(","))],
        ),
        Read::Page { after, first } => {
            let window = UserWindow {
                order: UserOrder::IdAsc,
                after: after.map(|id| UserKey {
                    id: UserId::new(id),
                    created_at: None,
                }),
                before: None,
                from_end: false,
                limit: *first as i64 + 1,
            };
            let printed = UserRow::list_json_statement(&UserListFilter::default(), &window, shape);
            let sql = printed
                .split(" -- binds: ")
                .next()
                .unwrap_or_default()
                .to_owned();
            let mut values: Vec<String> = after.iter().map(|a| quote(a)).collect();
            // The LIMIT is a parameter only where the filter's values decide the plan.
            if sql.contains(" LIMIT $") {
                values.push(window.limit.to_string());
            }
            (sql, values)
        }
    };
    // `$10` before `$1`: the highest numbers first.
    let mut sql = sql;
    for (i, value) in values.iter().enumerate().rev() {
        let param = format!("${}", i + 1);
        if !sql.contains(&param) {
            return Err(format!("the statement has no {param}: {sql}"));
        }
        sql = sql.replace(&param, value);
    }
    if sql.contains("$") && sql.contains(&format!("${}", values.len() + 1)) {
        return Err(format!(
            "the statement has more parameters than values: {sql}"
        ));
    }
    Ok(sql)
}

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
