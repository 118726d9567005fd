//! Stories of the merge engine: a unionid that shows up late, conflicting unionids, a person
//! logging in everywhere at once, and what admins can do about it.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    bob_is_merged_when_his_unionid_shows_up_late,
    conflicting_unionids_are_refused_and_nothing_changes,
    fifty_concurrent_logins_of_one_new_person_end_as_one_user,
    a_late_unionid_racing_across_apps_merges_exactly_once,
    an_admin_merges_and_unlinks_and_reads_the_history,
    admin_actions_refuse_what_they_cannot_do,
);

const MERGE_EVENTS: &str = "query($u: ID) { mergeEvents(userId: $u) { edges { node {
    reason actor identityId createdAt survivor { id } merged { id mergedInto { id } } } } } }";

fn id(v: &Value) -> String {
    v["user"]["id"].as_str().unwrap().to_owned()
}

async fn bob_is_merged_when_his_unionid_shows_up_late(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Bob opens the OA's page: a silent snsapi_base authorization, no unionid.
    let b1_login = app.login_oa("bob", "snsapi_base").await;
    let b1 = id(&b1_login);
    assert!(b1_login["user"]["unionid"].is_null());
    // Then the Mini Program: WeChat sends his unionid, but nothing links it to B1 yet.
    let b2_login = app.login_mp(MP_A, "bob").await;
    let b2 = id(&b2_login);
    assert_ne!(
        b1, b2,
        "two users until WeChat tells us they are one person"
    );
    assert_eq!(b2_login["newUser"], true);

    // Then the OA again with snsapi_userinfo: the OA identity now has the unionid.
    let merged = app.login_oa("bob", "snsapi_userinfo").await;
    assert_eq!(
        id(&merged),
        b2,
        "the identity belongs to the unionid's user"
    );
    assert_eq!(merged["newUser"], false);
    assert_eq!(
        merged["user"]["nickname"], "Bob",
        "empty profile fields are filled"
    );

    // B1's old access token resolves to B2, with every identity.
    let me = app.me(b1_login["accessToken"].as_str().unwrap()).await;
    let me = &me["data"]["me"];
    assert_eq!(me["id"], b2.as_str());
    assert_eq!(me["miniProgramIdentities"].as_array().unwrap().len(), 1);
    assert_eq!(me["officialAccountIdentities"].as_array().unwrap().len(), 1);
    assert_eq!(
        me["officialAccountIdentities"][0]["scope"],
        "snsapi_userinfo"
    );
    // B1's refresh token too: the session moved with the merge.
    let refreshed = app
        .gql_ok(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { user { id } } }",
            json!({ "t": b1_login["refreshToken"] }),
        )
        .await;
    assert_eq!(refreshed["refreshSession"]["user"]["id"], b2.as_str());

    // B1 is a tombstone pointing at B2.
    let tomb = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($id: ID!) { user(id: $id) { id mergedInto { id } officialAccountIdentities { id } } }",
            json!({ "id": b1 }),
        )
        .await;
    assert_eq!(tomb["user"]["mergedInto"]["id"], b2.as_str());
    assert!(
        tomb["user"]["officialAccountIdentities"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The merge is on record: who, when, why.
    let events = app
        .gql_ok(Some(ADMIN_KEY), MERGE_EVENTS, json!({ "u": b1 }))
        .await;
    let events = events["mergeEvents"]["edges"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0]["node"];
    assert_eq!(event["reason"], "LOGIN");
    assert_eq!(event["actor"], OA, "the login that brought the unionid");
    assert_eq!(event["survivor"]["id"], b2.as_str());
    assert_eq!(event["merged"]["id"], b1.as_str());
    assert_eq!(event["merged"]["mergedInto"]["id"], b2.as_str());
    assert!(event["createdAt"].is_string());
    assert_eq!(app.count("users").await, 2, "B1 stays as a tombstone");
}

async fn conflicting_unionids_are_refused_and_nothing_changes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let u1 = wechat_identity::wechat::sandbox::derive_id("unionid", "test", "u1");
    let u2 = wechat_identity::wechat::sandbox::derive_id("unionid", "test", "u2");
    let code = app.code_with(MP_A, "carol", json!({ "unionid": u1 })).await;
    let first = app.login_mp_code(MP_A, &code).await;
    assert!(first.get("errors").is_none());
    let before = app.written().await;

    // WeChat now reports another unionid for the same openid: never re-pointed silently.
    let code = app.code_with(MP_A, "carol", json!({ "unionid": u2 })).await;
    let body = app.login_mp_code(MP_A, &code).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body:#}");
    assert_eq!(app.written().await, before);

    // The same for an OA identity.
    let (_, state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    let code = app
        .code_with(
            OA,
            "carol",
            json!({ "scope": "snsapi_base", "unionid": u1 }),
        )
        .await;
    let ok = app.login_oa_code(OA, &code, &state).await;
    assert!(ok.get("errors").is_none(), "{ok:#}");
    let before = app.written().await;
    let (_, state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    let code = app
        .code_with(
            OA,
            "carol",
            json!({ "scope": "snsapi_base", "unionid": u2 }),
        )
        .await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert_eq!(error_code(&body), "CONFLICT");
    assert_eq!(app.written().await, before);
    let data = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($u: String!) { userByUnionid(unionid: $u) { id } }",
            json!({ "u": u2 }),
        )
        .await;
    assert!(data["userByUnionid"].is_null());
}

/// One login of `user` into `app_id` with a code prepared beforehand; returns the response.
enum Prepared {
    Mp(&'static str, String),
    Oa(String, String),
}

async fn prepare(app: &TestApp, user: &str, n: usize) -> Vec<Prepared> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(match i % 3 {
            0 => Prepared::Mp(MP_A, app.code(MP_A, user).await),
            1 => Prepared::Mp(MP_B, app.code(MP_B, user).await),
            _ => {
                let (_, state) = app.authorize_url(OA, "SNSAPI_USERINFO").await;
                Prepared::Oa(app.oa_code(user, "snsapi_userinfo").await, state)
            }
        });
    }
    out
}

async fn run_all(app: &TestApp, prepared: &[Prepared]) -> Vec<Value> {
    let calls = prepared.iter().map(|p| async move {
        match p {
            Prepared::Mp(app_id, code) => {
                app.login_mp_code(app_id, code).await["data"]["loginWithMiniProgram"].clone()
            }
            Prepared::Oa(code, state) => {
                let body = app.login_oa_code(OA, code, state).await;
                assert!(body.get("errors").is_none(), "{body:#}");
                body["data"]["loginWithOfficialAccount"].clone()
            }
        }
    });
    futures_util::future::join_all(calls).await
}

async fn fifty_concurrent_logins_of_one_new_person_end_as_one_user(backend: Backend) {
    let app = TestApp::start(backend).await;
    let prepared = prepare(&app, "heidi", 50).await;
    let results = run_all(&app, &prepared).await;
    let ids: Vec<String> = results
        .iter()
        .map(|r| {
            r["user"]["id"]
                .as_str()
                .expect("every login succeeds")
                .to_owned()
        })
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one user for every login: {ids:?}"
    );
    assert_eq!(results.iter().filter(|r| r["newUser"] == true).count(), 1);
    assert_eq!(
        app.count("users").await,
        1,
        "exactly one user, no tombstones"
    );
    assert_eq!(app.count("mini_program_identities").await, 2);
    assert_eq!(app.count("official_account_identities").await, 1);
    assert_eq!(app.count("sessions").await, 50);
    let data = app
        .gql_ok(
            Some(ADMIN_KEY),
            "{ users { edges { node { id miniProgramIdentities { appId } officialAccountIdentities { appId } } } } }",
            json!({}),
        )
        .await;
    let users = data["users"]["edges"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["node"]["id"], ids[0].as_str());
    assert_eq!(
        users[0]["node"]["miniProgramIdentities"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        users[0]["node"]["officialAccountIdentities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn a_late_unionid_racing_across_apps_merges_exactly_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Ivan is known to the OA without a unionid (B1)...
    let b1 = id(&app.login_oa("ivan", "snsapi_base").await);
    // ...then logs in everywhere at once, every login bringing his unionid.
    let prepared = prepare(&app, "ivan", 30).await;
    let results = run_all(&app, &prepared).await;
    let survivor = results[0]["user"]["id"].as_str().unwrap().to_owned();
    assert!(results.iter().all(|r| r["user"]["id"] == survivor.as_str()));
    assert_ne!(survivor, b1);
    assert_eq!(
        app.count("merge_events").await,
        1,
        "B1 is merged exactly once"
    );
    let data = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($id: ID!) { user(id: $id) { mergedInto { id officialAccountIdentities { unionid } } } }",
            json!({ "id": b1 }),
        )
        .await;
    assert_eq!(data["user"]["mergedInto"]["id"], survivor.as_str());
    assert!(data["user"]["mergedInto"]["officialAccountIdentities"][0]["unionid"].is_string());
    let live = app
        .gql_ok(
            Some(ADMIN_KEY),
            "{ users { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(live["users"]["edges"].as_array().unwrap().len(), 1);
}

async fn an_admin_merges_and_unlinks_and_reads_the_history(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Judy in the unbound Mini Program (no unionid) and in the OA without one: two users.
    let x_login = app.login_mp(MP_UNBOUND, "judy").await;
    let x = id(&x_login);
    let y = id(&app.login_oa("judy", "snsapi_base").await);
    // And in a bound Mini Program: a third, with her unionid.
    let z_login = app.login_mp(MP_A, "judy").await;
    let z = id(&z_login);
    let unionid = z_login["user"]["unionid"].as_str().unwrap().to_owned();

    // Support knows they are one person: merge X into Y (no unionids on either).
    let merge = "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) {
        id unionid miniProgramIdentities { id appId } officialAccountIdentities { id } } }";
    let data = app
        .gql_ok(Some(ADMIN_KEY), merge, json!({ "s": x, "t": y }))
        .await;
    assert_eq!(data["mergeUsers"]["id"], y.as_str());
    assert_eq!(
        data["mergeUsers"]["miniProgramIdentities"][0]["appId"],
        MP_UNBOUND
    );
    // X's token now resolves to Y.
    let me = app.me(x_login["accessToken"].as_str().unwrap()).await;
    assert_eq!(me["data"]["me"]["id"], y.as_str());

    // Then Z (with the unionid) into Y: Y takes the unionid.
    let data = app
        .gql_ok(Some(ADMIN_KEY), merge, json!({ "s": z, "t": y }))
        .await;
    assert_eq!(data["mergeUsers"]["unionid"], unionid.as_str());
    assert_eq!(
        data["mergeUsers"]["miniProgramIdentities"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let by_unionid = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($u: String!) { userByUnionid(unionid: $u) { id } }",
            json!({ "u": unionid }),
        )
        .await;
    assert_eq!(by_unionid["userByUnionid"]["id"], y.as_str());
    // Her next Mini Program login finds Y.
    assert_eq!(id(&app.login_mp(MP_A, "judy").await), y);

    // The unbound identity was a mistake after all: unlink it into a user of its own.
    let unbound_identity = data["mergeUsers"]["miniProgramIdentities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["appId"] == MP_UNBOUND)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unlinked = app
        .gql_ok(
            Some(ADMIN_KEY),
            "mutation($i: ID!) { unlinkIdentity(identityId: $i) { id unionid mergedInto { id } miniProgramIdentities { id appId } } }",
            json!({ "i": unbound_identity }),
        )
        .await;
    let fresh = unlinked["unlinkIdentity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(![x.as_str(), y.as_str(), z.as_str()].contains(&fresh.as_str()));
    assert!(unlinked["unlinkIdentity"]["unionid"].is_null());
    assert!(unlinked["unlinkIdentity"]["mergedInto"].is_null());
    assert_eq!(
        unlinked["unlinkIdentity"]["miniProgramIdentities"][0]["id"],
        unbound_identity.as_str()
    );
    // Its next login stays with the new user.
    assert_eq!(id(&app.login_mp(MP_UNBOUND, "judy").await), fresh);

    // The history, oldest first: two admin merges and an unlink, each naming the admin key.
    let events = app
        .gql_ok(Some(ADMIN_KEY), MERGE_EVENTS, json!({ "u": y }))
        .await;
    let events: Vec<&Value> = events["mergeEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let reasons: Vec<&str> = events
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["ADMIN", "ADMIN", "UNLINK"]);
    assert!(
        events
            .iter()
            .all(|e| e["actor"] == "WECHAT_IDENTITY_ADMIN_KEY")
    );
    assert_eq!(events[0]["merged"]["id"], x.as_str());
    assert_eq!(events[1]["merged"]["id"], z.as_str());
    assert_eq!(events[2]["survivor"]["id"], y.as_str());
    assert_eq!(events[2]["merged"]["id"], fresh.as_str());
    assert_eq!(events[2]["identityId"], unbound_identity.as_str());

    // Pages of one.
    let page = app
        .gql_ok(
            Some(ADMIN_KEY),
            "{ mergeEvents(first: 1) { edges { cursor } pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(page["mergeEvents"]["pageInfo"]["hasNextPage"], true);
    let next = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($a: String) { mergeEvents(first: 5, after: $a) { edges { node { reason } } pageInfo { hasNextPage } } }",
            json!({ "a": page["mergeEvents"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(next["mergeEvents"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(next["mergeEvents"]["pageInfo"]["hasNextPage"], false);
}

async fn admin_actions_refuse_what_they_cannot_do(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a_login = app.login_mp(MP_A, "kim").await;
    let a = id(&a_login);
    let a_token = a_login["accessToken"].as_str().unwrap().to_owned();
    let b = id(&app.login_mp(MP_A, "lee").await);
    let c = id(&app.login_mp(MP_UNBOUND, "kim").await);
    let d_login = app.login_mp(MP_UNBOUND, "max").await;
    let d = id(&d_login);
    let a_identity = app.me(&a_token).await["data"]["me"]["miniProgramIdentities"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.written().await;

    let merge = "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { id } }";
    let unlink = "mutation($i: ID!) { unlinkIdentity(identityId: $i) { id } }";
    let missing = "00000000-0000-7000-8000-000000000000";
    for (token, query, vars, expected) in [
        (
            Some(ADMIN_KEY),
            merge,
            json!({ "s": a, "t": b }),
            "CONFLICT",
        ), // different unionids
        (
            Some(ADMIN_KEY),
            merge,
            json!({ "s": a, "t": a }),
            "BAD_USER_INPUT",
        ),
        (
            Some(ADMIN_KEY),
            merge,
            json!({ "s": "nope", "t": a }),
            "BAD_USER_INPUT",
        ),
        (
            Some(ADMIN_KEY),
            merge,
            json!({ "s": missing, "t": a }),
            "NOT_FOUND",
        ),
        (
            Some(SERVICE_KEY),
            merge,
            json!({ "s": c, "t": a }),
            "FORBIDDEN",
        ),
        (
            Some(a_token.as_str()),
            merge,
            json!({ "s": c, "t": a }),
            "FORBIDDEN",
        ),
        (None, merge, json!({ "s": c, "t": a }), "UNAUTHENTICATED"),
        // Carries the unionid: WeChat says it is A's; its next login would merge it back.
        (
            Some(ADMIN_KEY),
            unlink,
            json!({ "i": a_identity }),
            "CONFLICT",
        ),
        (
            Some(ADMIN_KEY),
            unlink,
            json!({ "i": missing }),
            "NOT_FOUND",
        ),
        (
            Some(SERVICE_KEY),
            unlink,
            json!({ "i": a_identity }),
            "FORBIDDEN",
        ),
        (Some(SERVICE_KEY), MERGE_EVENTS, json!({}), "FORBIDDEN"),
        (Some(a_token.as_str()), MERGE_EVENTS, json!({}), "FORBIDDEN"),
    ] {
        let body = app.gql(token, query, vars.clone()).await;
        assert_eq!(error_code(&body), expected, "{query} {vars}: {body:#}");
    }
    // D's only identity: nothing to unlink it from.
    let d_identity = app.me(d_login["accessToken"].as_str().unwrap()).await["data"]["me"]
        ["miniProgramIdentities"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app
        .gql(Some(ADMIN_KEY), unlink, json!({ "i": d_identity }))
        .await;
    assert_eq!(error_code(&body), "CONFLICT");
    assert_eq!(
        app.written().await,
        before,
        "refused actions change nothing"
    );

    // A tombstone can be neither source nor target.
    app.gql_ok(Some(ADMIN_KEY), merge, json!({ "s": c, "t": a }))
        .await;
    for vars in [json!({ "s": c, "t": d }), json!({ "s": d, "t": c })] {
        let body = app.gql(Some(ADMIN_KEY), merge, vars).await;
        assert_eq!(error_code(&body), "CONFLICT");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(&a));
    }
}
