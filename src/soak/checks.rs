//! What the soak checks at the end, in the database (SQL on the soak's own connection) and
//! against what the sandbox (WeChat) recorded: people, identities, messages, jobs, pushes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::Value;

use super::ops::{Ctx, OA};
use super::scenario::BULK_TEXT;
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

async fn connect(url: &str) -> Result<PgConn, String> {
    PgConn::establish(url)
        .await
        .map_err(|e| format!("connecting to the soak database: {e}"))
}

/// The rows of `sql`, each as a JSON object.
async fn rows(conn: &mut PgConn, sql: &str) -> Result<Vec<Value>, String> {
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

/// No message lost or sent twice: the bulk job's rows (one per user) and the single sends',
/// against the sandbox's log of what WeChat delivered; and no person missed by the bulk send
/// because their user was merged into one it did not list.
pub(crate) async fn messages(ctx: &Ctx, url: &str, bulk_job: &str) -> Result<[Check; 2], String> {
    let mut conn = connect(url).await?;
    let db = rows(
        &mut conn,
        "SELECT id, job_id, user_id, openid, status, wechat_msg_id, error_code, content FROM messages",
    )
    .await?;
    let log = ctx
        .sandbox
        .delivered(OA, None, usize::MAX)
        .map(|l| l.messages)
        .unwrap_or_default();
    // WeChat's deliveries by (text, touser) and by msgid.
    let mut delivered: HashMap<(String, String), u32> = HashMap::new();
    let mut by_msgid: HashMap<String, u32> = HashMap::new();
    for m in &log {
        let text = m.data.get("thing1").cloned().unwrap_or_default();
        *delivered.entry((text, m.touser.clone())).or_default() += 1;
        *by_msgid.entry(m.msgid.to_string()).or_default() += 1;
    }
    let mut problems = Vec::new();
    let mut rows_by_key: HashMap<(String, String), Vec<&Value>> = HashMap::new();
    let (mut bulk_rows, mut single_rows) = (0, 0);
    for r in &db {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        let text = if s("job_id") == bulk_job {
            bulk_rows += 1;
            BULK_TEXT.to_owned()
        } else if r["job_id"].is_null() {
            single_rows += 1;
            single_text(&s("content")).unwrap_or_default()
        } else {
            problems.push(format!("a message of an unknown job {}", s("job_id")));
            continue;
        };
        let key = if text == BULK_TEXT {
            (text.clone(), s("user_id"))
        } else {
            (text.clone(), String::new())
        };
        rows_by_key.entry(key).or_default().push(r);
        let got = delivered
            .get(&(text.clone(), s("openid")))
            .copied()
            .unwrap_or(0);
        match s("status").as_str() {
            "sent" | "delivered" => {
                let once = by_msgid.get(&s("wechat_msg_id")).copied().unwrap_or(0);
                if got != 1 || once != 1 {
                    problems.push(format!(
                        "{} {text}: {} but WeChat has it {got} times (msgid seen {once} times)",
                        s("id"),
                        s("status")
                    ));
                }
            }
            "failed" if got > 0 => problems.push(format!(
                "{} {text}: failed ({}) but WeChat delivered it {got} times",
                s("id"),
                s("error_code")
            )),
            "uncertain" if got > 1 => problems.push(format!(
                "{} {text}: uncertain and delivered {got} times",
                s("id")
            )),
            "queued" | "sending" => {
                problems.push(format!("{} {text}: still {}", s("id"), s("status")))
            }
            _ => {}
        }
    }
    for (key, found) in &rows_by_key {
        if found.len() > 1 {
            problems.push(format!("{} rows for {key:?}", found.len()));
        }
    }
    // Every delivery has its row (a send whose answer was lost is `uncertain`, not absent).
    for ((text, touser), n) in &delivered {
        if *n > 1 {
            problems.push(format!("{touser} got {text} {n} times"));
        }
        let has_row = db.iter().any(|r| {
            r["openid"].as_str() == Some(touser.as_str())
                && (text == BULK_TEXT && r["job_id"].as_str() == Some(bulk_job)
                    || r["job_id"].is_null()
                        && single_text(r["content"].as_str().unwrap_or("")).as_deref()
                            == Some(text.as_str()))
        });
        if !has_row {
            problems.push(format!("{touser} got {text} with no message on record"));
        }
    }
    // Singles the API answered SENT or DELIVERED reached WeChat.
    let singles = ctx
        .singles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let answered_sent = singles
        .iter()
        .filter(|s| matches!(s.status.as_deref(), Some("SENT" | "DELIVERED")))
        .collect::<Vec<_>>();
    for s in &answered_sent {
        if !delivered.keys().any(|(text, _)| text == &s.text) {
            problems.push(format!(
                "{} answered {:?} but WeChat never got it",
                s.text, s.status
            ));
        }
    }
    // Recipients merged into another user after they were listed: their identities moved to
    // the survivor, so their own row finds none (NO_IDENTITY). The person must still get the
    // message once: through the survivor's own row.
    let merged_away = rows(
        &mut conn,
        &format!(
            "WITH RECURSIVE chain(start, id, next) AS ( \
               SELECT u.id, u.id, u.merged_into FROM users u WHERE u.id IN \
                 (SELECT user_id FROM messages WHERE job_id = '{bulk_job}' AND error_code = 'NO_IDENTITY') \
               UNION ALL SELECT c.start, x.id, x.merged_into FROM chain c JOIN users x ON x.id = c.next) \
             SELECT c.start AS merged, c.id AS survivor, \
               (SELECT status FROM messages WHERE job_id = '{bulk_job}' AND user_id = c.id) AS survivor_status, \
               (SELECT string_agg(o.openid, ',') FROM official_account_identities o \
                  WHERE o.user_id = c.id AND o.app_id = '{OA}' AND o.subscribed \
                  AND o.subscribed_at <= (SELECT created_at FROM jobs WHERE id = '{bulk_job}')) AS following, \
               (SELECT max(e.created_at)::text FROM merge_events e WHERE e.merged_id = c.start) AS merged_at, \
               (SELECT created_at::text FROM jobs WHERE id = '{bulk_job}') AS job_at \
             FROM chain c WHERE c.next IS NULL AND c.start <> c.id"
        ),
    )
    .await?;
    let missed: Vec<&Value> = merged_away
        .iter()
        .filter(|r| {
            let following = r["following"].as_str().unwrap_or("");
            !following.is_empty()
                && !following
                    .split(',')
                    .any(|o| delivered.contains_key(&(BULK_TEXT.to_owned(), o.to_owned())))
        })
        .collect();
    let mut merged_problems = Vec::new();
    for r in &missed {
        merged_problems.push(format!(
            "bulk recipient {} (job queued {}) was merged into {} at {} (the survivor's row: {}); the person follows as {} since before the job and never got it",
            r["merged"], r["job_at"], r["survivor"], r["merged_at"], r["survivor_status"], r["following"]
        ));
    }
    let statuses = db.iter().fold(BTreeMap::<String, u32>::new(), |mut m, r| {
        let status = r["status"].as_str().unwrap_or("?");
        let key = match r["error_code"].as_str() {
            Some(code) => format!("{status} {code}"),
            None => status.to_owned(),
        };
        *m.entry(key).or_default() += 1;
        m
    });
    let merged_check = Check::new(
        "bulk reaches people merged mid-job",
        merged_problems.is_empty(),
        format!(
            "{} recipients of the bulk send were merged into another user after they were listed \
             (their row fails NO_IDENTITY: the identities moved); {} of them follow since before the \
             job and got nothing, their survivor not being a recipient{}",
            merged_away.len(),
            missed.len(),
            if merged_problems.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    merged_problems
                        .iter()
                        .take(2)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        ),
    );
    let detail = format!(
        "bulk: {bulk_rows} messages; single sends: {} asked, {single_rows} recorded, {} answered sent; \
         by status {statuses:?}; WeChat delivered {}{}",
        singles.len(),
        answered_sent.len(),
        log.len(),
        if problems.is_empty() {
            String::new()
        } else {
            format!(
                "; {} PROBLEMS: {}",
                problems.len(),
                problems
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    );
    Ok([
        Check::new(
            "no lost or duplicated messages",
            problems.is_empty() && bulk_rows > 0 && !log.is_empty(),
            detail,
        ),
        merged_check,
    ])
}

/// The soak text (`soak-s{n}`) in a single send's recorded request.
fn single_text(content: &str) -> Option<String> {
    let start = content.find("soak-s")?;
    let digits = content[start + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>();
    (!digits.is_empty()).then(|| format!("soak-s{digits}"))
}
