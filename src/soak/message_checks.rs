//! The message checks: what the database says was sent against what WeChat (the sandbox)
//! delivered, and the people a bulk send missed because their user was merged mid-job.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::checks::{Check, connect, rows};
use super::ops::{Ctx, OA};
use super::scenario::BULK_TEXT;

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
