//! What the soak checks at the end, in the database (SQL on the soak's own connection) and
//! against what the sandbox (WeChat) recorded: people, identities, messages, jobs, pushes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::Value;

use super::ops::Ctx;
use crate::db::PgConn;

/// One check's verdict.
pub(crate) struct Check {
    pub name: &'static str,
    pub pass: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &'static str, pass: bool, detail: impl Into<String>) -> Self {
        Self {
            name,
            pass,
            detail: detail.into(),
        }
    }
}

/// Jobs that are queued again after each run (never "finished").
const PERIODIC: [&str; 2] = ["purge_expired", "event_delivery"];

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    j: String,
}

pub(super) async fn connect(url: &str) -> Result<PgConn, String> {
    PgConn::establish(url)
        .await
        .map_err(|e| format!("connecting to the soak database: {e}"))
}

/// The rows of `sql`, each as a JSON object.
pub(super) async fn rows(conn: &mut PgConn, sql: &str) -> Result<Vec<Value>, String> {
    let wrapped = format!("SELECT row_to_json(t)::text AS j FROM ({sql}) t");
    let found: Vec<JsonRow> = diesel::sql_query(wrapped)
        .load(conn)
        .await
        .map_err(|e| format!("{e}: {sql}"))?;
    Ok(found
        .into_iter()
        .filter_map(|r| serde_json::from_str(&r.j).ok())
        .collect())
}

/// The one number `sql` selects as `n`.
async fn count(conn: &mut PgConn, sql: &str) -> Result<i64, String> {
    let found = rows(conn, sql).await?;
    Ok(found
        .as_slice()
        .first()
        .and_then(|r| r["n"].as_i64())
        .unwrap_or(0))
}

/// `(kind, lease_owner)` of the running follower sync and bulk jobs.
pub(crate) async fn running_job_owners(url: &str) -> Result<Vec<(String, String)>, String> {
    let mut conn = connect(url).await?;
    let sql = "SELECT kind, lease_owner FROM jobs WHERE status = 'running' \
               AND kind IN ('bulk_messages', 'follower_sync') AND lease_owner IS NOT NULL";
    Ok(rows(&mut conn, sql)
        .await?
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("lease_owner"))
        })
        .collect())
}

/// Waits (at most `within`) until the work the traffic left is done: no one-off job queued,
/// running or paused, no webhook event unprocessed, no message queued or sending, no delivery
/// report on its way. Returns how long it took, or what was left.
pub(crate) async fn drain(ctx: &Ctx, url: &str, within: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut conn = connect(url).await?;
    let sql = format!(
        "SELECT (SELECT count(*) FROM jobs WHERE kind NOT IN ('{}', '{}') AND status IN ('queued', 'running', 'paused')) AS jobs, \
         (SELECT count(*) FROM webhook_events WHERE processed_at IS NULL) AS events, \
         (SELECT count(*) FROM messages WHERE status IN ('queued', 'sending')) AS messages",
        PERIODIC[0], PERIODIC[1]
    );
    loop {
        let left = rows(&mut conn, &sql).await?.pop().unwrap_or(Value::Null);
        let pushes = ctx.sandbox.pushes_pending();
        let idle = ["jobs", "events", "messages"]
            .iter()
            .all(|k| left[k].as_i64() == Some(0));
        if idle && pushes == 0 {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            return Err(format!(
                "after {within:?}: {left} left, {pushes} delivery reports on their way"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every identity table, as `SELECT app_id, openid, unionid, user_id`.
const IDENTITIES: &str = "SELECT 'mini_program' AS kind, app_id, openid, unionid, user_id FROM mini_program_identities \
     UNION ALL SELECT 'official_account', app_id, openid, unionid, user_id FROM official_account_identities \
     UNION ALL SELECT 'website', app_id, openid, unionid, user_id FROM website_identities \
     UNION ALL SELECT 'mobile_app', app_id, openid, unionid, user_id FROM mobile_app_identities";

/// Live: not merged, not deleted.
const LIVE: &str = "merged_into IS NULL AND deleted_at IS NULL";

fn sample(rows: &[Value]) -> String {
    rows.iter()
        .take(3)
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The people checks: one live user per unionid, every identity on the live user of its
/// unionid, no identity on two users or on a merged or deleted one, no live session on a
/// merged user; and the figures (users, merges by reason).
pub(crate) async fn people(url: &str) -> Result<(Vec<Check>, BTreeMap<String, i64>), String> {
    let mut conn = connect(url).await?;
    let mut checks = Vec::new();
    let unionids =
        format!("SELECT DISTINCT unionid FROM ({IDENTITIES}) i WHERE unionid IS NOT NULL");
    let not_one = rows(
        &mut conn,
        &format!(
            "SELECT u.unionid, (SELECT count(*) FROM users x WHERE x.unionid = u.unionid AND x.{LIVE}) AS live \
             FROM ({unionids}) u WHERE (SELECT count(*) FROM users x WHERE x.unionid = u.unionid AND x.{LIVE}) <> 1"
        ),
    )
    .await?;
    let n_unionids = count(
        &mut conn,
        &format!("SELECT count(*) AS n FROM ({unionids}) u"),
    )
    .await?;
    checks.push(Check::new(
        "one live user per unionid",
        not_one.is_empty() && n_unionids > 0,
        format!(
            "{n_unionids} unionids on identities; {} without exactly one live user {}",
            not_one.len(),
            sample(&not_one)
        ),
    ));
    let astray = rows(
        &mut conn,
        &format!(
            "SELECT i.kind, i.app_id, i.openid, i.user_id FROM ({IDENTITIES}) i \
             WHERE i.unionid IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM users x WHERE x.id = i.user_id AND x.unionid = i.unionid AND x.{LIVE})"
        ),
    )
    .await?;
    let twice = rows(
        &mut conn,
        &format!(
            "SELECT app_id, openid, count(*) AS rows, count(DISTINCT user_id) AS users FROM ({IDENTITIES}) i \
             GROUP BY app_id, openid HAVING count(*) > 1"
        ),
    )
    .await?;
    let on_dead = rows(
        &mut conn,
        &format!(
            "SELECT i.kind, i.app_id, i.openid, i.user_id FROM ({IDENTITIES}) i \
             WHERE NOT EXISTS (SELECT 1 FROM users x WHERE x.id = i.user_id AND x.{LIVE})"
        ),
    )
    .await?;
    let sessions = rows(
        &mut conn,
        "SELECT s.id, s.user_id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.merged_into IS NOT NULL AND s.revoked_at IS NULL AND s.replaced_by IS NULL \
         AND s.expires_at > now()",
    )
    .await?;
    let n_identities = count(
        &mut conn,
        &format!("SELECT count(*) AS n FROM ({IDENTITIES}) i"),
    )
    .await?;
    checks.push(Check::new(
        "no identity on two users",
        astray.is_empty() && twice.is_empty() && on_dead.is_empty() && sessions.is_empty(),
        format!(
            "{n_identities} identities; on two rows/users: {}; on a merged, deleted or missing user: {}; \
             with a unionid but not on its live user: {}; live sessions of merged users: {} {}",
            twice.len(),
            on_dead.len(),
            astray.len(),
            sessions.len(),
            sample(&[twice, on_dead, astray, sessions].concat())
        ),
    ));
    let mut figures = BTreeMap::new();
    figures.insert(
        "users live".to_owned(),
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM users WHERE {LIVE}"),
        )
        .await?,
    );
    figures.insert(
        "users merged".to_owned(),
        count(
            &mut conn,
            "SELECT count(*) AS n FROM users WHERE merged_into IS NOT NULL",
        )
        .await?,
    );
    figures.insert("identities".to_owned(), n_identities);
    for r in rows(
        &mut conn,
        "SELECT reason, count(*) AS n FROM merge_events GROUP BY reason",
    )
    .await?
    {
        let reason = r["reason"].as_str().unwrap_or("?");
        figures.insert(format!("merges by {reason}"), r["n"].as_i64().unwrap_or(0));
    }
    Ok((checks, figures))
}

/// Every one-off job completed (periodic ones are queued again after each run: those must not
/// have failed), and every webhook event processed without being given up on.
pub(crate) async fn jobs(url: &str) -> Result<Vec<Check>, String> {
    let mut conn = connect(url).await?;
    let by_status = rows(
        &mut conn,
        "SELECT kind, status, count(*) AS n, max(last_error) AS last_error FROM jobs GROUP BY kind, status ORDER BY kind, status",
    )
    .await?;
    let mut bad = Vec::new();
    let mut summary = Vec::new();
    for r in &by_status {
        let (kind, status) = (
            r["kind"].as_str().unwrap_or("?"),
            r["status"].as_str().unwrap_or("?"),
        );
        summary.push(format!("{kind} {status} {}", r["n"]));
        let periodic = PERIODIC.contains(&kind);
        let fine = status == "completed" || (periodic && matches!(status, "queued" | "running"));
        if !fine {
            bad.push(format!("{kind} {status} x{}: {}", r["n"], r["last_error"]));
        }
    }
    let one_off = by_status
        .iter()
        .filter(|r| !PERIODIC.contains(&r["kind"].as_str().unwrap_or("")))
        .count();
    let mut checks = vec![Check::new(
        "every job finished",
        bad.is_empty() && one_off > 0,
        format!(
            "{} (purge_expired and event_delivery are periodic: queued again after each run){}",
            summary.join(", "),
            if bad.is_empty() {
                String::new()
            } else {
                format!("; NOT FINISHED: {}", bad.join("; "))
            }
        ),
    )];
    let events = rows(
        &mut conn,
        "SELECT count(*) AS n, count(*) FILTER (WHERE processed_at IS NULL) AS pending, \
         count(*) FILTER (WHERE error IS NOT NULL AND processed_at IS NOT NULL) AS given_up, \
         count(*) FILTER (WHERE attempts > 1) AS retried, max(error) AS error FROM webhook_events",
    )
    .await?
    .pop()
    .unwrap_or(Value::Null);
    let n = events["n"].as_i64().unwrap_or(0);
    let pending = events["pending"].as_i64().unwrap_or(0);
    let given_up = events["given_up"].as_i64().unwrap_or(0);
    checks.push(Check::new(
        "every webhook event processed",
        n > 0 && pending == 0 && given_up == 0,
        format!(
            "{n} events stored; {pending} unprocessed, {given_up} given up, {} tried more than once{}",
            events["retried"],
            events["error"]
                .as_str()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        ),
    ));
    Ok(checks)
}
