//! The compiled read path against the resolvers, byte for byte: instance A answers every read
//! through the resolvers (`graphql.compiled_reads = false`), instance B on the same database
//! through the compiled path where it applies; a corpus of queries (every `User` field, every
//! identity list, fragments, directives, variables, every filter and order, paging both ways,
//! merged, erased, unknown and malformed ids, each kind of caller, errors) must get the same
//! status, content type and body from both, and B's
//! `wechat_identity_graphql_compiled_reads_total{field,path}` says which path answered.

mod corpus;
mod lists;
mod seed;

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;
use corpus::{Caller, Entry};
use seed::Seed;

on_both_backends!(
    every_read_answers_the_same_bytes_on_both_paths,
    a_field_outside_the_compiled_path_falls_back,
    more_selections_than_are_kept_prepared_still_answer,
);

/// The compiled statements kept prepared are bounded (`user_json::MAX_PREPARED` per process,
/// a caller can make any number of selections): past the bound they run unprepared, with the
/// same answers. Lookups and pages share the bound.
async fn more_selections_than_are_kept_prepared_still_answer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let token = alice["accessToken"].as_str().unwrap();
    let id = alice["user"]["id"].as_str().unwrap();
    let max = wechat_identity::db::models::user_json::MAX_PREPARED;
    for i in 0..max + 8 {
        let query = format!("{{ me {{ a{i}: id nickname }} }}");
        let data = app.gql_ok(Some(token), &query, serde_json::json!({})).await;
        assert_eq!(data["me"][format!("a{i}")], id, "{query}");
        let page = format!("{{ users(first: 1) {{ nodes {{ b{i}: id }} }} }}");
        let data = app
            .gql_ok(Some(ADMIN_KEY), &page, serde_json::json!({}))
            .await;
        assert_eq!(data["users"]["nodes"][0][format!("b{i}")], id, "{page}");
    }
}

/// Whether each answer's path is checked on B's counter (false: the byte comparison alone).
const CHECK_PATHS: bool = true;

/// Whether bodies that differ only in the order of an object's keys fail (false: tolerated,
/// and printed). The resolvers give an object's keys in the order its fields finish:
/// async-graphql 7.2.1 (`resolver_utils/container.rs`, `do_resolve_container`) runs a query's
/// fields in a `FuturesUnordered` and inserts each value into the object as it completes, so
/// fields that wait on a DataLoader (the identity lists, `mergedInto`, `sessions`) come out in
/// any order, from one request to the next and between two resolver instances. Until the
/// resolvers answer in selection order (as GraphQL's spec asks: "Serialized Map Ordering"),
/// no byte comparison with them can pass reliably.
const KEY_ORDER_STRICT: bool = true;

const ISSUER: &str = "https://identity.example.test";

/// Each instance's pool: small, so that two instances per backend leave PostgreSQL's
/// connections to other tests (a refused connection answers UNAVAILABLE on one side only).
const POOL: usize = 4;

const COUNTER: &str = "wechat_identity_graphql_compiled_reads_total";

/// The `/metrics` recorder is the process's: other instances (A, the other backend's test,
/// other tests) count too. Our two backends take turns for each query; another test's
/// reads are ridden out by asking B again (see [`differ`]).
static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An answer as the client got it.
#[derive(Debug, PartialEq, Eq)]
struct Raw {
    status: u16,
    content_type: String,
    body: String,
}

fn token(caller: Caller, seed: Option<&Seed>) -> Option<&str> {
    match caller {
        Caller::Admin => Some(ADMIN_KEY),
        Caller::Service => Some(SERVICE_KEY),
        Caller::Anonymous => None,
        Caller::Alice => Some(&seed.expect("a seeded Alice").alice_token),
        Caller::BobOld => Some(&seed.expect("a seeded Bob").bob_old_token),
    }
}

/// POST /graphql with the same bytes to any instance; the body as text.
async fn raw(app: &TestApp, token: Option<&str>, query: &str, variables: &Value) -> Raw {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let mut req = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("graphql request");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.text().await.expect("graphql body");
    Raw {
        status,
        content_type,
        body,
    }
}

/// The counter's values for `field` in `app`'s `/metrics`: (compiled, resolvers).
async fn counted(app: &TestApp, field: &str) -> (f64, f64) {
    paths_in(&app.scrape_metrics().await, field)
}

/// The counter's values for `field` in a Prometheus text, whatever the labels' order and
/// whatever other labels it has: (compiled, resolvers).
fn paths_in(text: &str, field: &str) -> (f64, f64) {
    let field = format!("field=\"{field}\"");
    let (mut compiled, mut resolvers) = (0.0, 0.0);
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some(labels) = series
            .strip_prefix(COUNTER)
            .and_then(|l| l.strip_prefix('{'))
            .and_then(|l| l.strip_suffix('}'))
        else {
            continue;
        };
        let labels: Vec<&str> = labels.split(',').collect();
        if !labels.contains(&field.as_str()) {
            continue;
        }
        let value: f64 = value.parse().unwrap();
        if labels.contains(&"path=\"compiled\"") {
            compiled += value;
        } else if labels.contains(&"path=\"resolvers\"") {
            resolvers += value;
        }
    }
    (compiled, resolvers)
}

#[test]
fn the_counter_is_read_whatever_the_order_of_its_labels() {
    let text = "# HELP wechat_identity_graphql_compiled_reads_total Reads by path.
# TYPE wechat_identity_graphql_compiled_reads_total counter
wechat_identity_graphql_compiled_reads_total{field=\"user\",path=\"compiled\"} 3
wechat_identity_graphql_compiled_reads_total{path=\"resolvers\",field=\"user\"} 2
wechat_identity_graphql_compiled_reads_total{field=\"users\",path=\"compiled\"} 7
wechat_identity_graphql_compiled_reads_total_other{field=\"user\",path=\"compiled\"} 100
";
    assert_eq!(paths_in(text, "user"), (3.0, 2.0));
    assert_eq!(paths_in(text, "users"), (7.0, 0.0));
    assert_eq!(paths_in(text, "me"), (0.0, 0.0));
}

/// The first byte where two bodies part, with some context.
fn parting(a: &str, b: &str) -> String {
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(60);
    let near =
        |s: &str| String::from_utf8_lossy(&s.as_bytes()[from..(at + 60).min(s.len())]).into_owned();
    format!(
        "they part at byte {at}:\n  A: …{}…\n  B: …{}…",
        near(a),
        near(b)
    )
}

/// `value` as JSON text with every object's keys sorted.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|x, y| x.0.cmp(y.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), canonical(v)))
                .collect();
            format!("{{{}}}", entries.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Runs `entry` on A then B: the same status, content type and body, and (with
/// [`CHECK_PATHS`]) B's counter for the entry's field grew on the expected path only. Another
/// test's read of the same field may move the counter meanwhile: B is asked again, up to 5
/// times. Returns A's answer.
async fn differ(a: &TestApp, b: &TestApp, seed: Option<&Seed>, entry: &Entry) -> Raw {
    let _turn = TURNS.lock().await;
    let token = token(entry.caller, seed);
    let from_a = raw(a, token, &entry.query, &entry.variables).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let before = counted(b, entry.field).await;
        let from_b = raw(b, token, &entry.query, &entry.variables).await;
        let after = counted(b, entry.field).await;
        assert_eq!(
            (from_a.status, &from_a.content_type),
            (from_b.status, &from_b.content_type),
            "{}: status or content type differ\nA: {}\nB: {}",
            entry.name,
            from_a.body,
            from_b.body
        );
        if from_a.body != from_b.body {
            let json = |body: &str| {
                serde_json::from_str::<Value>(body)
                    .map_or_else(|_| body.to_owned(), |v| canonical(&v))
            };
            let (json_a, json_b) = (json(&from_a.body), json(&from_b.body));
            let same_json = json_a == json_b;
            let (how, at) = if same_json {
                (
                    " (only in the order of an object's keys)",
                    parting(&from_a.body, &from_b.body),
                )
            } else {
                (" (keys sorted)", parting(&json_a, &json_b))
            };
            assert!(
                same_json && !KEY_ORDER_STRICT,
                "{}: the bodies differ{how}; {at}\nA: {}\nB: {}",
                entry.name,
                from_a.body,
                from_b.body
            );
            eprintln!("{}: same JSON, keys in another order", entry.name);
        }
        // A refusal may come before the path is chosen (no credentials) or after (a user
        // token reading another user): only answers say which path ran.
        if !CHECK_PATHS || from_a.body.contains("\"errors\"") {
            return from_a;
        }
        let grew = (after.0 - before.0, after.1 - before.1);
        let right = if entry.compiled {
            grew.0 >= 1.0 && grew.1 == 0.0
        } else {
            grew.1 >= 1.0 && grew.0 == 0.0
        };
        if right {
            return from_a;
        }
        seen.push(grew);
    }
    panic!(
        "{}: expected path=\"{}\" for field=\"{}\" on B; (compiled, resolvers) grew by {seen:?}",
        entry.name,
        if entry.compiled {
            "compiled"
        } else {
            "resolvers"
        },
        entry.field,
    );
}

/// Pages through every user (merged and deleted too) in `order`, forward with `first`/`after`
/// or backward with `last`/`before`, on both instances: each page the same bytes, the next
/// cursor from the answer, and past the end (an empty page). Returns the ids in the order
/// walked and the number of pages.
async fn walk(a: &TestApp, b: &TestApp, order: &str, forward: bool) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut cursor = Value::Null;
    let mut past_end = false;
    for page in 1.. {
        let variables = if forward {
            json!({ "first": 7, "after": cursor, "order": order,
                "filter": { "includeMerged": true, "includeDeleted": true } })
        } else {
            json!({ "last": 7, "before": cursor, "order": order,
                "filter": { "includeMerged": true, "includeDeleted": true } })
        };
        let dir = if forward { "forward" } else { "backward" };
        let name = format!("users: walk {dir} by {order}, page {page}");
        let entry = Entry::new(&name, "users", lists::USERS, variables);
        let answer = differ(a, b, None, &entry).await;
        let data: Value = serde_json::from_str(&answer.body).unwrap();
        let users = &data["data"]["users"];
        assert!(data.get("errors").is_none(), "{name}: {data:#}");
        let mut here: Vec<String> = users["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect();
        if past_end {
            assert!(here.is_empty(), "{name}: past the end: {data:#}");
            return (ids, page - 1);
        }
        let info = &users["pageInfo"];
        let (more, next) = if forward {
            ids.append(&mut here);
            (&info["hasNextPage"], &info["endCursor"])
        } else {
            here.append(&mut ids);
            ids = here;
            (&info["hasPreviousPage"], &info["startCursor"])
        };
        // After the last page, once more from its cursor: an empty page.
        past_end = more != true;
        cursor = next.clone();
    }
    unreachable!()
}

async fn every_read_answers_the_same_bytes_on_both_paths(backend: Backend) {
    // One issuer for both (it defaults to each instance's own URL): B takes A's tokens.
    let a = TestApp::start_driven(backend, |c| {
        c.graphql.compiled_reads = false;
        c.jwt.issuer = Some(ISSUER.into());
        c.database_pool_size = POOL;
    })
    .await;
    let s = seed::seed(&a, backend).await;
    let same = a.same_deployment();
    let b = TestApp::start_with(backend, |c| {
        same(c);
        c.jwt.issuer = Some(ISSUER.into());
        c.database_pool_size = POOL;
    })
    .await;

    let mut corpus = corpus::single(&s);
    corpus.extend(lists::lists(&s));
    assert!(corpus.len() >= 40, "{} entries", corpus.len());
    for entry in &corpus {
        differ(&a, &b, Some(&s), entry).await;
    }

    // Every order, walked to the end both ways: the same users, the same pages.
    let total = 11 + s.odd.len() + s.fans;
    for order in ["ID_ASC", "ID_DESC", "CREATED_AT_ASC", "CREATED_AT_DESC"] {
        let (forward, pages) = walk(&a, &b, order, true).await;
        assert_eq!(forward.len(), total, "{order}: {forward:?}");
        assert!(pages >= 4, "{order}: {pages} pages");
        let (backward, _) = walk(&a, &b, order, false).await;
        assert_eq!(forward, backward, "{order}: both ways, one order");
    }
}

async fn a_field_outside_the_compiled_path_falls_back(backend: Backend) {
    let app = TestApp::start(backend).await;
    let old = app.login_oa("zed", "snsapi_base").await;
    let login = app.login_mp(MP_A, "zed").await;
    app.login_oa("zed", "snsapi_userinfo").await;
    let (old, zed) = (
        old["user"]["id"].as_str().unwrap(),
        login["user"]["id"].as_str().unwrap(),
    );
    let query = "query($id: ID!) { user(id: $id) { id mergedInto { id }
        sessions(first: 1) { id } } }";
    let zeds = app
        .gql_ok(Some(ADMIN_KEY), query, json!({ "id": zed }))
        .await;
    assert!(zeds["user"]["mergedInto"].is_null());
    assert_eq!(zeds["user"]["sessions"].as_array().unwrap().len(), 1);
    // Another test's read of `user` may move the counter meanwhile: up to 5 tries.
    let _turn = TURNS.lock().await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let before = counted(&app, "user").await;
        let answer = app
            .gql_ok(Some(ADMIN_KEY), query, json!({ "id": old }))
            .await;
        let after = counted(&app, "user").await;
        assert_eq!(answer["user"]["id"], old);
        assert_eq!(answer["user"]["mergedInto"]["id"], zed);
        assert_eq!(answer["user"]["sessions"], json!([]), "its logins moved");
        let grew = (after.0 - before.0, after.1 - before.1);
        if !CHECK_PATHS || (grew.1 >= 1.0 && grew.0 == 0.0) {
            return;
        }
        seen.push(grew);
    }
    panic!(
        "expected path=\"resolvers\" for field=\"user\"; (compiled, resolvers) grew by {seen:?}"
    );
}
