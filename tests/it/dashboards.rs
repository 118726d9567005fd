//! Stories of an admin dashboard: it lists users by every filter, in every order, page by page
//! in both directions, while new users arrive; it counts them; it finds users and identities by
//! id (`node`, `nodes`); and a page of 100 users with their identities costs three statements.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    every_filter_lists_exactly_its_users,
    every_order_pages_forward_and_backward,
    cursors_stay_put_while_users_arrive,
    paging_refuses_what_it_cannot_do,
    a_page_of_100_users_with_identities_costs_three_statements_on_the_resolvers_and_one_compiled,
    node_and_nodes_find_users_and_identities,
);

const USERS: &str = "query($first: Int, $after: String, $last: Int, $before: String,
        $filter: UserFilter, $order: UserOrderBy! = ID_ASC) {
    users(first: $first, after: $after, last: $last, before: $before, filter: $filter,
          orderBy: $order) {
        edges { cursor node { id } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    } }";

fn node_ids(data: &Value) -> Vec<String> {
    data["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every user `filter` lists, as a set (one page of 100 is enough here; asserts it was all).
async fn listed(app: &TestApp, filter: Value) -> BTreeSet<String> {
    let data = app
        .gql_ok(
            Some(SERVICE_KEY),
            USERS,
            json!({ "first": 100, "filter": filter }),
        )
        .await;
    assert_eq!(data["users"]["pageInfo"]["hasNextPage"], false);
    node_ids(&data).into_iter().collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

/// A user's id and its identities' ids and openids.
async fn identities(app: &TestApp, id: &str) -> Value {
    app.gql_ok(
        Some(ADMIN_KEY),
        "query($id: ID!) { user(id: $id) { id unionid
            miniProgramIdentities { id openid } officialAccountIdentities { id openid } } }",
        json!({ "id": id }),
    )
    .await["user"]
        .clone()
}

fn user_id(login: &Value) -> String {
    login["user"]["id"].as_str().unwrap().to_owned()
}

async fn every_filter_lists_exactly_its_users(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Alice: Mini Program A and the Official Account (one person through the unionid); Bob:
    // Mini Program B; Carol: the Official Account only; Dave: the unbound Mini Program.
    let alice = user_id(&app.login_mp(MP_A, "alice").await);
    assert_eq!(
        user_id(&app.login_oa("alice", "snsapi_userinfo").await),
        alice
    );
    let bob = user_id(&app.login_mp(MP_B, "bob").await);
    let carol = user_id(&app.login_oa("carol", "snsapi_base").await);
    let dave = user_id(&app.login_mp(MP_UNBOUND, "dave").await);
    let all = set(&[&alice, &bob, &carol, &dave]);
    assert_eq!(listed(&app, json!({})).await, all);

    // Profiles and times as a dashboard would see them after a while.
    app.exec(&format!(
        "UPDATE users SET nickname = 'Alice Wong', phone_number = '+8613800000001',
             created_at = '2026-01-01 00:00:00' WHERE id = '{alice}';
         UPDATE users SET nickname = '100%_Bob', created_at = '2026-02-01 00:00:00' WHERE id = '{bob}';
         UPDATE users SET nickname = 'carol', created_at = '2026-03-01 00:00:00' WHERE id = '{carol}';
         UPDATE users SET nickname = 'dave%x', created_at = '2026-04-01 00:00:00' WHERE id = '{dave}';
         UPDATE official_account_identities SET subscribed = (user_id = '{alice}');"
    ))
    .await;

    let a = identities(&app, &alice).await;
    let c = identities(&app, &carol).await;
    let unionid = a["unionid"].as_str().unwrap();
    // Carol's unionid depends on what WeChat told with snsapi_base: read it.
    let carol_has_unionid = !c["unionid"].is_null();
    let (with_unionid, without_unionid) = if carol_has_unionid {
        (set(&[&alice, &bob, &carol]), set(&[&dave]))
    } else {
        (set(&[&alice, &bob]), set(&[&carol, &dave]))
    };
    let cases: Vec<(Value, BTreeSet<String>)> = vec![
        (json!({ "unionid": unionid }), set(&[&alice])),
        (
            json!({ "unionid": "o6_bmasdasdsad6_2sgVt7hMZOPfL" }),
            set(&[]),
        ),
        (
            json!({ "openid": a["miniProgramIdentities"][0]["openid"] }),
            set(&[&alice]),
        ),
        (
            json!({ "openid": a["officialAccountIdentities"][0]["openid"] }),
            set(&[&alice]),
        ),
        (
            json!({ "openid": c["officialAccountIdentities"][0]["openid"] }),
            set(&[&carol]),
        ),
        (json!({ "appId": MP_A }), set(&[&alice])),
        (json!({ "appId": OA }), set(&[&alice, &carol])),
        (json!({ "nicknameContains": "WONG" }), set(&[&alice])),
        (
            json!({ "nicknameContains": "o" }),
            set(&[&alice, &bob, &carol]),
        ),
        // Wildcards are plain characters.
        (json!({ "nicknameContains": "%" }), set(&[&bob, &dave])),
        (json!({ "nicknameContains": "_" }), set(&[&bob])),
        (json!({ "nicknameContains": "%_" }), set(&[&bob])),
        (json!({ "phoneNumber": "+8613800000001" }), set(&[&alice])),
        // A bare Chinese mobile number is the same number.
        (json!({ "phoneNumber": "13800000001" }), set(&[&alice])),
        (
            json!({ "phoneNumber": "+86 138-0000-0001" }),
            set(&[&alice]),
        ),
        (
            json!({ "createdAfter": "2026-02-01T00:00:00Z", "createdBefore": "2026-04-01T00:00:00Z" }),
            set(&[&bob, &carol]),
        ),
        (
            json!({ "createdAfter": "2026-03-01T00:00:00Z" }),
            set(&[&carol, &dave]),
        ),
        (
            json!({ "createdBefore": "2026-02-01T00:00:00Z" }),
            set(&[&alice]),
        ),
        (
            json!({ "hasMiniProgram": true }),
            set(&[&alice, &bob, &dave]),
        ),
        (json!({ "hasMiniProgram": false }), set(&[&carol])),
        (
            json!({ "hasOfficialAccount": true }),
            set(&[&alice, &carol]),
        ),
        (json!({ "hasOfficialAccount": false }), set(&[&bob, &dave])),
        (json!({ "subscribed": true }), set(&[&alice])),
        (json!({ "subscribed": true, "appId": OA }), set(&[&alice])),
        (json!({ "subscribed": false }), set(&[&bob, &carol, &dave])),
        (json!({ "subscribed": false, "appId": OA }), set(&[&carol])),
        (json!({ "hasUnionid": true }), with_unionid),
        (json!({ "hasUnionid": false }), without_unionid),
        (
            json!({ "hasMiniProgram": true, "hasOfficialAccount": true }),
            set(&[&alice]),
        ),
    ];
    for (filter, expected) in &cases {
        assert_eq!(&listed(&app, filter.clone()).await, expected, "{filter}");
        // totalCount counts the same users.
        let data = app
            .gql_ok(
                Some(ADMIN_KEY),
                "query($f: UserFilter) { users(first: 1, filter: $f) { totalCount } }",
                json!({ "f": filter }),
            )
            .await;
        assert_eq!(data["users"]["totalCount"], expected.len(), "{filter}");
    }

    // Dave's unbound identity was Bob's all along: merged, Dave is a tombstone, listed only
    // with includeMerged.
    app.gql_ok(
        Some(ADMIN_KEY),
        "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { id } }",
        json!({ "s": dave, "t": bob }),
    )
    .await;
    assert_eq!(listed(&app, json!({})).await, set(&[&alice, &bob, &carol]));
    assert_eq!(listed(&app, json!({ "includeMerged": true })).await, all);
    assert_eq!(
        listed(
            &app,
            json!({ "nicknameContains": "dave", "includeMerged": true })
        )
        .await,
        set(&[&dave])
    );

    // Refusals name the field; nothing is listed.
    let long = "x".repeat(65);
    for (filter, says) in [
        (json!({ "appId": "wxnotourapp0000001" }), "filter.appId"),
        (
            json!({ "appId": MP_A, "subscribed": true }),
            "filter.subscribed",
        ),
        (json!({ "nicknameContains": "" }), "filter.nicknameContains"),
        (
            json!({ "nicknameContains": long }),
            "filter.nicknameContains",
        ),
        (json!({ "unionid": long }), "filter.unionid"),
        (json!({ "openid": "" }), "filter.openid"),
        (json!({ "phoneNumber": long }), "filter.phoneNumber"),
    ] {
        let body = app
            .gql(Some(ADMIN_KEY), USERS, json!({ "filter": filter }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{filter}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{filter}: {message}");
        assert!(body["data"]["users"].is_null(), "{body}");
    }
}

/// Inserts `n` users straight into the database, created at `created(i)` (whole seconds, as
/// `YYYY-MM-DD HH:MM:SS`), each with a Mini Program identity in MP_A and an Official Account
/// identity when `identities`; returns their ids in insertion order.
async fn seed(
    app: &TestApp,
    n: usize,
    created: impl Fn(usize) -> String,
    identities: bool,
) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let mut users = Vec::new();
    let mut mps = Vec::new();
    let mut oas = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let at = created(i);
        users.push(format!(
            "('{id}', NULL, 'seed {i}', NULL, NULL, NULL, '{at}', '{at}')"
        ));
        let openid = format!("seed-openid-{id}");
        mps.push(format!(
            "('{}', '{id}', '{MP_A}', '{openid}', NULL, NULL, '{at}', '{at}')",
            uuid::Uuid::now_v7()
        ));
        oas.push(format!(
            "('{}', '{id}', '{OA}', '{openid}', '{at}')",
            uuid::Uuid::now_v7()
        ));
    }
    let mut sql = format!(
        "INSERT INTO users (id, unionid, nickname, avatar_url, phone_number, merged_into,
             created_at, updated_at) VALUES {};",
        users.join(", ")
    );
    if identities {
        sql.push_str(&format!(
            "INSERT INTO mini_program_identities (id, user_id, app_id, openid, unionid,
                 session_key, created_at, last_login_at) VALUES {};
             INSERT INTO official_account_identities (id, user_id, app_id, openid, created_at)
                 VALUES {};",
            mps.join(", "),
            oas.join(", ")
        ));
    }
    app.exec(&sql).await;
    ids
}

/// 25 users created in 5 distinct seconds (ties broken by id), listed in `order`.
fn expected_order(ids: &[String], created: &[String], order: &str) -> Vec<String> {
    let mut rows: Vec<(String, String)> =
        created.iter().cloned().zip(ids.iter().cloned()).collect();
    match order {
        "ID_ASC" => rows.sort_by(|a, b| a.1.cmp(&b.1)),
        "ID_DESC" => rows.sort_by(|a, b| b.1.cmp(&a.1)),
        "CREATED_AT_ASC" => rows.sort(),
        "CREATED_AT_DESC" => rows.sort_by(|a, b| b.cmp(a)),
        _ => unreachable!(),
    }
    rows.into_iter().map(|(_, id)| id).collect()
}

/// Pages through every user in `order`, `size` at a time, forward (`first`/`after`) or
/// backward (`last`/`before`); returns the ids in the order's direction and the page count.
async fn page_all(app: &TestApp, order: &str, size: usize, backward: bool) -> (Vec<String>, usize) {
    let mut seen: Vec<Vec<String>> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let vars = if backward {
            json!({ "last": size, "before": cursor, "order": order })
        } else {
            json!({ "first": size, "after": cursor, "order": order })
        };
        let data = app.gql_ok(Some(ADMIN_KEY), USERS, vars).await;
        let info = &data["users"]["pageInfo"];
        let ids = node_ids(&data);
        assert!(ids.len() <= size);
        // The cursor already passed means there is a page on that side.
        let (more, passed) = if backward {
            (&info["hasPreviousPage"], &info["hasNextPage"])
        } else {
            (&info["hasNextPage"], &info["hasPreviousPage"])
        };
        assert_eq!(passed, cursor.is_some(), "{order} {data}");
        seen.push(ids);
        if more == false {
            break;
        }
        cursor = info[if backward { "startCursor" } else { "endCursor" }]
            .as_str()
            .map(str::to_owned);
        assert!(seen.len() < 100, "paging does not end");
    }
    let pages = seen.len();
    if backward {
        seen.reverse();
    }
    (seen.concat(), pages)
}

async fn every_order_pages_forward_and_backward(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Created in 5 distinct seconds, out of id order, so created_at ties are broken by the id.
    let created: Vec<String> = (0..25)
        .map(|i| format!("2026-05-0{} 12:00:00", 5 - (i * 7) % 5))
        .collect();
    let ids = seed(&app, 25, |i| created[i].clone(), false).await;
    for order in ["ID_ASC", "ID_DESC", "CREATED_AT_ASC", "CREATED_AT_DESC"] {
        let expected = expected_order(&ids, &created, order);
        let (forward, pages) = page_all(&app, order, 7, false).await;
        assert_eq!(forward, expected, "{order} forward");
        assert_eq!(pages, 4);
        let (backward, pages) = page_all(&app, order, 7, true).await;
        assert_eq!(backward, expected, "{order} backward");
        assert_eq!(pages, 4);

        // A window between two cursors: after the 3rd user, before the 9th.
        let data = app
            .gql_ok(
                Some(ADMIN_KEY),
                USERS,
                json!({ "first": 10, "order": order }),
            )
            .await;
        let cursors: Vec<&str> = data["users"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["cursor"].as_str().unwrap())
            .collect();
        for (first, last) in [(Some(100), None), (None, Some(100)), (Some(2), None)] {
            let data = app
                .gql_ok(
                    Some(ADMIN_KEY),
                    USERS,
                    json!({ "first": first, "last": last, "after": cursors[2],
                            "before": cursors[8], "order": order }),
                )
                .await;
            let want = if first == Some(2) {
                &expected[3..5]
            } else {
                &expected[3..8]
            };
            assert_eq!(node_ids(&data), want, "{order} window {first:?} {last:?}");
        }
    }
    // The default order is ID_ASC, whose cursors are the ones `users` always gave.
    let data = app
        .gql_ok(Some(ADMIN_KEY), USERS, json!({ "first": 25 }))
        .await;
    assert_eq!(node_ids(&data), expected_order(&ids, &created, "ID_ASC"));
}

async fn cursors_stay_put_while_users_arrive(backend: Backend) {
    let app = TestApp::start(backend).await;
    let created = |i: usize| format!("2026-06-01 12:00:{:02}", i * 2);
    let ids = seed(&app, 15, created, false).await;
    for order in ["CREATED_AT_DESC", "CREATED_AT_ASC", "ID_ASC"] {
        let mut seen: Vec<String> = Vec::new();
        let mut arrived: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        for round in 0.. {
            // Each page shows 4 and at most 3 arrive ahead of the cursor: the walk ends within
            // 15 pages. A paging bug shows here, not as a rate limit after endless pages.
            assert!(
                round < 16,
                "{order}: still paging after {round} pages: {seen:?}"
            );
            let data = app
                .gql_ok(
                    Some(ADMIN_KEY),
                    USERS,
                    json!({ "first": 4, "after": after, "order": order }),
                )
                .await;
            seen.extend(node_ids(&data));
            if data["users"]["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = data["users"]["pageInfo"]["endCursor"]
                .as_str()
                .map(str::to_owned);
            if round >= 3 {
                continue;
            }
            // Between pages, users arrive: one logs in now (newest of all), one is created at
            // the very start of the seeded range, one in the middle of it.
            let name = format!("arrival{}{round}", order.len());
            arrived.push(user_id(&app.login_mp(MP_A, &name).await));
            let early = seed(&app, 1, |_| "2026-06-01 11:00:00".into(), false).await;
            let middle = seed(&app, 1, |_| format!("2026-06-01 12:00:{:02}", 13), false).await;
            arrived.extend(early);
            arrived.extend(middle);
        }
        // Nobody twice, and every seeded user seen: arrivals never push one off a page.
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{order}: a user listed twice");
        for id in &ids {
            assert!(seen.contains(id), "{order}: {id} skipped");
        }
        // Whatever arrived is listed in its place: the same list as one fresh walk shows,
        // minus the arrivals that landed before the cursor had passed.
        let fresh = page_all(&app, order, 100, false).await.0;
        let expected: Vec<&String> = fresh.iter().filter(|id| seen.contains(id)).collect();
        let seen_refs: Vec<&String> = seen.iter().collect();
        assert_eq!(seen_refs, expected, "{order}: order kept");
        assert!(
            arrived.iter().any(|id| seen.contains(id)),
            "{order}: later arrivals show on later pages"
        );
        // Everything arrived exists and the ones ahead of the cursor were shown.
        assert!(fresh.len() >= ids.len() + arrived.len());
    }
}

async fn paging_refuses_what_it_cannot_do(backend: Backend) {
    let app = TestApp::start(backend).await;
    seed(&app, 3, |i| format!("2026-07-01 00:00:0{i}"), false).await;
    let page = |order: &str| json!({ "first": 1, "order": order });
    let data = app
        .gql_ok(Some(ADMIN_KEY), USERS, page("CREATED_AT_ASC"))
        .await;
    let created_cursor = data["users"]["pageInfo"]["endCursor"].clone();
    let data = app.gql_ok(Some(ADMIN_KEY), USERS, page("ID_ASC")).await;
    let id_cursor = data["users"]["pageInfo"]["endCursor"].clone();
    let merge_cursor = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("merge:{}", uuid::Uuid::now_v7()))
    };
    for (vars, says) in [
        (json!({ "first": 2, "last": 2 }), "first or last"),
        (json!({ "first": 0 }), "first must be 1..=100"),
        (json!({ "first": 101 }), "first must be 1..=100"),
        (json!({ "last": 0 }), "last must be 1..=100"),
        (json!({ "last": 101 }), "last must be 1..=100"),
        (json!({ "after": "garbage" }), "after is not a cursor"),
        (
            json!({ "last": 2, "before": "garbage" }),
            "before is not a cursor",
        ),
        // A cursor of another order, or another connection.
        (
            json!({ "after": created_cursor, "order": "ID_ASC" }),
            "after is not a cursor",
        ),
        (
            json!({ "after": id_cursor, "order": "CREATED_AT_ASC" }),
            "after is not a cursor",
        ),
        (
            json!({ "before": id_cursor, "order": "ID_DESC" }),
            "before is not a cursor",
        ),
        (json!({ "after": merge_cursor }), "after is not a cursor"),
    ] {
        let body = app.gql(Some(ADMIN_KEY), USERS, vars.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{vars}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{vars}: {message}");
    }
    // The right cursor in the right order works.
    let data = app
        .gql_ok(
            Some(ADMIN_KEY),
            USERS,
            json!({ "after": created_cursor, "order": "CREATED_AT_ASC" }),
        )
        .await;
    assert_eq!(node_ids(&data).len(), 2);
}

const PAGE_WITH_IDENTITIES: &str = "query($n: Int!) { users(first: $n) { edges { node { id
    miniProgramIdentities { openid } officialAccountIdentities { openid } } } } }";

/// The fewest statements the service sent for one run of `query` among three runs (the job
/// runner may add its own statements to one run; it cannot take any away), and the data.
async fn statements_for(app: &TestApp, query: &str, vars: Value) -> (u64, Value) {
    let system = app.running.app.identity.system();
    let mut fewest = u64::MAX;
    let mut data = Value::Null;
    for _ in 0..3 {
        let before = system.db_statements();
        data = app.gql_ok(Some(ADMIN_KEY), query, vars.clone()).await;
        fewest = fewest.min(system.db_statements() - before);
    }
    (fewest, data)
}

async fn a_page_of_100_users_with_identities_costs_three_statements_on_the_resolvers_and_one_compiled(
    backend: Backend,
) {
    // The job runner polls once a minute at most here, so it rarely runs during a request.
    let quiet = |c: &mut wechat_identity::config::Config| {
        c.jobs.poll_interval_ms = 60_000;
        c.limits.purge_interval_secs = 3600;
    };
    let app = TestApp::start_with(backend, |c| {
        quiet(c);
        c.graphql.compiled_reads = false;
    })
    .await;
    seed(
        &app,
        120,
        |i| format!("2026-08-01 00:{:02}:{:02}", i / 60, i % 60),
        true,
    )
    .await;

    let mut counts = Vec::new();
    for n in [10, 100] {
        let (statements, data) =
            statements_for(&app, PAGE_WITH_IDENTITIES, json!({ "n": n })).await;
        let edges = data["users"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), n);
        for edge in edges {
            let node = &edge["node"];
            // Every user's identities were read (the statements ran and returned them).
            assert_eq!(
                node["miniProgramIdentities"][0]["openid"],
                format!("seed-openid-{}", node["id"].as_str().unwrap())
            );
            assert_eq!(
                node["officialAccountIdentities"].as_array().unwrap().len(),
                1
            );
        }
        counts.push(statements);
    }
    // The users, their Mini Program identities, their Official Account identities.
    assert_eq!(counts, [3, 3], "statements for pages of 10 and 100");

    // totalCount adds one statement (a COUNT over the filter), and only when selected.
    let with_count = "query($n: Int!) { users(first: $n) { totalCount edges { node { id
        miniProgramIdentities { openid } officialAccountIdentities { openid } } } } }";
    let (statements, data) = statements_for(&app, with_count, json!({ "n": 100 })).await;
    assert_eq!(data["users"]["totalCount"], 120);
    assert_eq!(statements, 4);
    let (statements, _) = statements_for(&app, USERS, json!({ "first": 100 })).await;
    assert_eq!(statements, 1, "a page without identities or totalCount");
    // Every kind of identity is read ahead the same way: one statement per kind asked for.
    let all_kinds = "query($n: Int!) { users(first: $n) { edges { node { id
        miniProgramIdentities { openid } officialAccountIdentities { openid }
        websiteIdentities { openid } mobileAppIdentities { openid } } } } }";
    let (statements, _) = statements_for(&app, all_kinds, json!({ "n": 100 })).await;
    assert_eq!(statements, 5, "the users, then each of the four kinds");

    // The compiled path (on by default): one statement builds the page's JSON, identities and
    // all; totalCount is a second.
    let same = app.same_deployment();
    let compiled = TestApp::start_with(backend, move |c| {
        same(c);
        quiet(c);
    })
    .await;
    for n in [10, 100] {
        let (statements, data) =
            statements_for(&compiled, PAGE_WITH_IDENTITIES, json!({ "n": n })).await;
        assert_eq!(data["users"]["edges"].as_array().unwrap().len(), n);
        assert_eq!(statements, 1, "a compiled page of {n} with identities");
    }
    let (statements, data) = statements_for(&compiled, with_count, json!({ "n": 100 })).await;
    assert_eq!(data["users"]["totalCount"], 120);
    assert_eq!(statements, 2, "the page and its count");
    let (statements, _) = statements_for(&compiled, all_kinds, json!({ "n": 100 })).await;
    assert_eq!(statements, 1, "every kind of identity in the one statement");
}

async fn node_and_nodes_find_users_and_identities(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice_login = app.login_mp(MP_A, "alice").await;
    let alice = user_id(&alice_login);
    app.login_oa("alice", "snsapi_userinfo").await;
    let bob = user_id(&app.login_mp(MP_B, "bob").await);
    let dave = user_id(&app.login_mp(MP_UNBOUND, "dave").await);
    let a = identities(&app, &alice).await;
    let mp = a["miniProgramIdentities"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let oa = a["officialAccountIdentities"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let nobody = uuid::Uuid::now_v7().to_string();

    const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
        ... on User { unionid mergedInto { id } }
        ... on MiniProgramIdentity { appId user { id } }
        ... on OfficialAccountIdentity { appId user { id } } } }";
    const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id } }";

    let data = app
        .gql_ok(
            Some(SERVICE_KEY),
            NODES,
            json!({ "ids": [oa, alice, nobody, mp, bob, alice] }),
        )
        .await;
    let nodes = data["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6);
    assert_eq!(nodes[0]["__typename"], "OfficialAccountIdentity");
    assert_eq!(nodes[0]["id"], oa.as_str());
    assert_eq!(nodes[0]["appId"], OA);
    assert_eq!(nodes[0]["user"]["id"], alice.as_str());
    assert_eq!(nodes[1]["__typename"], "User");
    assert_eq!(nodes[1]["unionid"], a["unionid"]);
    assert!(nodes[2].is_null());
    assert_eq!(nodes[3]["__typename"], "MiniProgramIdentity");
    assert_eq!(nodes[3]["appId"], MP_A);
    assert_eq!(nodes[4]["id"], bob.as_str());
    assert_eq!(nodes[5]["id"], alice.as_str());
    let data = app.gql_ok(Some(ADMIN_KEY), NODE, json!({ "id": mp })).await;
    assert_eq!(data["node"]["__typename"], "MiniProgramIdentity");
    let data = app
        .gql_ok(Some(ADMIN_KEY), NODE, json!({ "id": nobody }))
        .await;
    assert!(data["node"].is_null());

    // A merged id answers the tombstone, which names the survivor.
    app.gql_ok(
        Some(ADMIN_KEY),
        "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { id } }",
        json!({ "s": dave, "t": bob }),
    )
    .await;
    let data = app
        .gql_ok(Some(ADMIN_KEY), NODES, json!({ "ids": [dave] }))
        .await;
    assert_eq!(data["nodes"][0]["mergedInto"]["id"], bob.as_str());

    // Alice's own token: herself and her identities; anything else is FORBIDDEN, found or not.
    let token = alice_login["accessToken"].as_str().unwrap();
    let data = app
        .gql_ok(Some(token), NODES, json!({ "ids": [alice, mp, oa] }))
        .await;
    assert_eq!(data["nodes"][2]["user"]["id"], alice.as_str());
    for ids in [
        json!([bob]),
        json!([alice, bob]),
        json!([nobody]),
        json!([dave]),
    ] {
        let body = app.gql(Some(token), NODES, json!({ "ids": ids })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{ids}");
    }
    let body = app.gql(Some(token), NODE, json!({ "id": bob })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app.gql(None, NODE, json!({ "id": alice })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    // Bounded: at most 100 ids, each an id.
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for (ids, says) in [
        (json!(many), "at most 100"),
        (json!([alice, "not-an-id"]), "is not an id"),
    ] {
        let body = app.gql(Some(ADMIN_KEY), NODES, json!({ "ids": ids })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    let data = app
        .gql_ok(Some(ADMIN_KEY), NODES, json!({ "ids": many[..100] }))
        .await;
    assert_eq!(data["nodes"].as_array().unwrap().len(), 100);
}
