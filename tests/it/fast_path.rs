//! PostgreSQL's fast path for a returning Mini Program login (`identity::fast_path`) decides
//! exactly like the full path. Two services on fresh databases, `database_fast_path` on and off,
//! run the same scenarios over GraphQL: every starting state of a returning login (the identity
//! with or without a unionid; its user live with no, the same or another unionid, or a tombstone
//! whose survivor has one of those; another live user holding the unionid or not — odd states
//! made with SQL) × WeChat sending no, the same, a fresh or the user's other unionid. After each
//! login they compare the GraphQL outcome and every row of users, both identity tables, sessions
//! and merge_events: ids become labels in order of first appearance; timestamps, token hashes
//! and session keys become "set"/NULL plus whether this login wrote them.
//!
//! Proof that the fast path ran: it writes the identity's `last_login_at` and the session's
//! `created_at` from one value, where the full path reads the clock twice, statements apart. The
//! fast service shows that mark exactly when the starting state lets the fast path decide, the
//! full service never. (`/metrics` counters are process-wide, shared by every test here.)

use std::collections::HashMap;

use diesel_async::RunQueryDsl;
use serde_json::{Map, Value, json};

use crate::common::*;

/// Unbound: WeChat sends a unionid only when a code overrides it.
const APP: &str = MP_UNBOUND;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Uid {
    /// The identity's unionid, or the one WeChat will send.
    U,
    /// Nobody's: what WeChat may send instead.
    V,
    /// The user's other unionid.
    W,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// The identity's user is live with this unionid.
    Live(Option<Uid>),
    /// The identity's user is a tombstone; its survivor has this unionid.
    Tombstone(Option<Uid>),
}

#[derive(Clone, Copy, Debug)]
struct Start {
    identity: Option<Uid>,
    owner: Owner,
    /// Another live user holds U.
    other_holds_u: bool,
}

impl Start {
    /// Every starting state: 2 identity unionids × 6 owners × another user holding U or not.
    fn all() -> Vec<Start> {
        let owners = [None, Some(Uid::U), Some(Uid::W)]
            .into_iter()
            .flat_map(|u| [Owner::Live(u), Owner::Tombstone(u)]);
        let mut out = Vec::new();
        for identity in [None, Some(Uid::U)] {
            for owner in owners.clone() {
                let u_held = matches!(
                    owner,
                    Owner::Live(Some(Uid::U)) | Owner::Tombstone(Some(Uid::U))
                );
                for other_holds_u in [false, true] {
                    if !(other_holds_u && u_held) {
                        out.push(Start {
                            identity,
                            owner,
                            other_holds_u,
                        });
                    }
                }
            }
        }
        out
    }

    /// Whether the fast path may decide a login with `sent` (see `identity::fast_path`).
    fn fast_path_applies(&self, sent: Option<Uid>) -> bool {
        let identity_agrees = sent.is_none() || self.identity == sent;
        match self.owner {
            Owner::Live(user) => identity_agrees && (sent.is_none() || user == sent),
            Owner::Tombstone(_) => false,
        }
    }
}

/// The unionids of scenario `n`.
fn uid(n: usize, u: Uid) -> String {
    format!("u{n:03}{u:?}")
}

fn sql_text(v: Option<String>) -> String {
    v.map_or("NULL".into(), |s| format!("'{s}'"))
}
fn new_user_sql(id: &str, unionid: Option<String>) -> String {
    format!(
        "INSERT INTO users (id, unionid, created_at, updated_at) VALUES ('{id}', {}, clock_timestamp(), clock_timestamp());",
        sql_text(unionid)
    )
}

/// A Mini Program login of scenario `n`'s person with WeChat sending `sent`.
async fn login(app: &TestApp, n: usize, sent: Option<Uid>) -> Value {
    let extra = match sent {
        Some(u) => json!({ "unionid": uid(n, u) }),
        None => json!({}),
    };
    let code = app.code_with(APP, &format!("p{n}"), extra).await;
    app.login_mp_code(APP, &code).await
}

/// Sets up `start` for scenario `n`: a first login, then SQL for what the API cannot make.
async fn set_up(app: &TestApp, n: usize, start: &Start) {
    let first = login(app, n, start.identity).await;
    assert!(first.get("errors").is_none(), "{first:#}");
    let x = first["data"]["loginWithMiniProgram"]["user"]["id"]
        .as_str()
        .unwrap();
    let u = |v: Option<Uid>| v.map(|v| uid(n, v));
    let mut sql = String::new();
    match start.owner {
        Owner::Live(user) => {
            sql += &format!(
                "UPDATE users SET unionid = {} WHERE id = '{x}';",
                sql_text(u(user))
            );
        }
        Owner::Tombstone(survivor) => {
            let s = uuid::Uuid::now_v7().to_string();
            sql += &new_user_sql(&s, None);
            sql += &format!("UPDATE users SET merged_into = '{s}' WHERE id = '{x}';");
            sql += &format!(
                "UPDATE users SET unionid = {} WHERE id = '{s}';",
                sql_text(u(survivor))
            );
        }
    }
    if start.other_holds_u {
        sql += &new_user_sql(&uuid::Uuid::now_v7().to_string(), u(Some(Uid::U)));
    }
    app.exec(&sql).await;
}

type Row = Map<String, Value>;
/// The compared tables, each in an order both services share.
const TABLES: &[(&str, &str)] = &[
    ("users", "id"),
    ("mini_program_identities", "app_id, openid"),
    ("official_account_identities", "app_id, openid"),
    ("sessions", "id"),
    ("merge_events", "id"),
];

/// Every row of the compared tables, as JSON objects.
async fn rows(app: &TestApp) -> Vec<(&'static str, Vec<Row>)> {
    #[derive(diesel::QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let mut out = Vec::new();
    for (table, order) in TABLES {
        let sql = format!("SELECT row_to_json(t)::text AS v FROM {table} t ORDER BY {order}");
        let mut conn = app.db_conn().await;
        let texts: Vec<Text> =
            wechat_identity::with_conn!(&mut conn, c => diesel::sql_query(&sql).load(c).await)
                .unwrap();
        let rows = texts
            .iter()
            .map(|t| serde_json::from_str::<Row>(&t.v).unwrap())
            .collect();
        out.push((*table, rows));
    }
    out
}

/// Ids → labels in order of first appearance.
#[derive(Default)]
struct Labels(HashMap<String, usize>);

impl Labels {
    fn of(&mut self, v: &Value) -> String {
        match v.as_str() {
            None => "NULL".into(),
            Some(id) => {
                let next = self.0.len() + 1;
                format!("#{}", self.0.entry(id.to_owned()).or_insert(next))
            }
        }
    }
}

const ID_COLUMNS: &[&str] = &[
    "id",
    "user_id",
    "merged_into",
    "family",
    "replaced_by",
    "survivor_id",
    "merged_id",
    "identity_id",
];

/// The outcome of one login on one service, normalized, and whether the fast path decided it.
struct Outcome {
    result: String,
    rows: Vec<String>,
    fast_path_mark: bool,
}

/// Normalizes `after` (and the login's `body`); `before` tells which cells this login wrote.
/// With `changes`, timestamps and secrets also say whether this login wrote them.
fn normalize(
    before: &[(&str, Vec<Row>)],
    after: &[(&str, Vec<Row>)],
    body: &Value,
    changes: bool,
) -> Outcome {
    let mut labels = Labels::default();
    let old: HashMap<(&str, &Value), &Row> = before
        .iter()
        .flat_map(|(t, rows)| rows.iter().map(move |r| ((*t, &r["id"]), r)))
        .collect();
    let mut out = Vec::new();
    for (table, rows) in after {
        for row in rows {
            let prev = old.get(&(*table, &row["id"]));
            let cells: Vec<String> = row
                .iter()
                .map(|(col, v)| {
                    let shown = if ID_COLUMNS.contains(&col.as_str()) {
                        labels.of(v)
                    } else if col.ends_with("_at") || col == "session_key" || col == "token_hash" {
                        let presence = if v.is_null() { "NULL" } else { "set" };
                        let wrote = match prev {
                            None => "new row",
                            Some(p) if p[col.as_str()] == *v => "kept",
                            Some(_) => "written",
                        };
                        if changes {
                            format!("{presence} ({wrote})")
                        } else {
                            presence.into()
                        }
                    } else {
                        v.to_string()
                    };
                    format!("{col}={shown}")
                })
                .collect();
            out.push(format!("{table}: {}", cells.join(" ")));
        }
    }
    let result = match body.get("errors") {
        Some(_) => format!("error {}", error_code(body)),
        None => {
            let p = &body["data"]["loginWithMiniProgram"];
            format!(
                "user {} newUser={} unionid={}",
                labels.of(&p["user"]["id"]),
                p["newUser"],
                p["user"]["unionid"]
            )
        }
    };
    // The fast path's mark: a session opened by this login at the identity's login time.
    let rows_of = |t: &str| &after.iter().find(|(name, _)| *name == t).unwrap().1;
    let new_sessions = rows_of("sessions")
        .iter()
        .filter(|s| !old.contains_key(&("sessions", &s["id"])));
    let login_times: Vec<&Value> = rows_of("mini_program_identities")
        .iter()
        .map(|i| &i["last_login_at"])
        .collect();
    let fast_path_mark = new_sessions
        .into_iter()
        .any(|s| login_times.contains(&&s["created_at"]));
    Outcome {
        result,
        rows: out,
        fast_path_mark,
    }
}

/// Lines of `a` not in `b`.
fn only_in<'a>(a: &'a [String], b: &[String]) -> Vec<&'a String> {
    a.iter().filter(|l| !b.contains(l)).collect()
}

async fn services() -> (TestApp, TestApp) {
    let start = |fast: bool| {
        TestApp::start_with(Backend::Postgres, move |c| {
            c.database_fast_path = fast;
            c.rate_limits.enabled = false;
        })
    };
    // One after the other: two start-ups polled by one task (`join!`) once hung for good on
    // PostgreSQL in CI (every thread parked); the services themselves start one at a time in
    // production.
    let fast = start(true).await;
    let full = start(false).await;
    (fast, full)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn the_fast_path_decides_like_the_full_path() {
    let (fast, full) = services().await;
    let mut n = 0;
    let (mut fast_taken, mut applies) = (0, 0);
    let mut refused = 0;
    for start in Start::all() {
        for sent in [None, Some(Uid::U), Some(Uid::V), Some(Uid::W)] {
            n += 1;
            let scenario = format!("#{n}: {start:?}, WeChat sends {sent:?}");
            tokio::join!(set_up(&fast, n, &start), set_up(&full, n, &start));
            let (fast_before, full_before) = tokio::join!(rows(&fast), rows(&full));
            let (fast_body, full_body) = tokio::join!(login(&fast, n, sent), login(&full, n, sent));
            let (fast_after, full_after) = tokio::join!(rows(&fast), rows(&full));
            // A refused login's writes are checked by the test below; here, what it leaves.
            let changes = full_body.get("errors").is_none();
            let f = normalize(&fast_before, &fast_after, &fast_body, changes);
            let s = normalize(&full_before, &full_after, &full_body, changes);
            assert_eq!(f.result, s.result, "{scenario}: the GraphQL outcome");
            assert!(
                f.rows == s.rows,
                "{scenario}: the rows differ\nonly with the fast path: {:#?}\nonly on the full path: {:#?}",
                only_in(&f.rows, &s.rows),
                only_in(&s.rows, &f.rows)
            );
            assert_eq!(
                f.fast_path_mark,
                start.fast_path_applies(sent),
                "{scenario}: fast path taken?"
            );
            assert!(
                !s.fast_path_mark,
                "{scenario}: the full service has no fast path"
            );
            fast_taken += usize::from(f.fast_path_mark);
            applies += usize::from(start.fast_path_applies(sent));
            refused += usize::from(f.result == "error CONFLICT");
        }
    }
    assert_eq!(n, 80);
    assert_eq!(
        (fast_taken, applies),
        (11, 11),
        "the scenarios the fast path decides"
    );
    // The matrix reaches every kind of outcome: returning users, merges and refusals.
    assert!(refused > 0 && refused < n, "{refused} of {n} refused");
    assert!(fast.count("merge_events").await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_refused_login_changes_nothing_on_either_path() {
    let (fast, full) = services().await;
    let conflicting = |owner, other_holds_u| Start {
        identity: Some(Uid::U),
        owner,
        other_holds_u,
    };
    let starts = [
        conflicting(Owner::Live(Some(Uid::W)), false),
        conflicting(Owner::Tombstone(Some(Uid::W)), true),
    ];
    let mut changed = Vec::new();
    for (i, start) in starts.iter().enumerate() {
        for (name, app) in [("fast", &fast), ("full", &full)] {
            set_up(app, i, start).await;
            let before = app.written().await;
            let body = login(app, i, Some(Uid::U)).await;
            assert_eq!(error_code(&body), "CONFLICT", "{start:?}");
            let after = app.written().await;
            if after != before {
                changed.push(format!(
                    "{name} service, {start:?}: {:#?}",
                    only_in(&after.0, &before.0)
                ));
            }
        }
    }
    assert!(
        changed.is_empty(),
        "a refused login wrote:\n{}",
        changed.join("\n")
    );
}
