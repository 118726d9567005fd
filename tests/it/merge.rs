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
);

pub const MERGE_EVENTS: &str = "query($u: ID) { mergeEvents(userId: $u) { edges { node {
    reason actor identityId createdAt survivor { id } merged { id mergedInto { id } } } } } }";

pub fn id(v: &Value) -> String {
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
        "SNSAPI_USERINFO"
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
    let carol = first["data"]["loginWithMiniProgram"]["user"]["id"]
        .as_str()
        .unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        !message.contains(carol),
        "an anonymous caller is told no internal ids: {message}"
    );
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
    let merges = app.count("merge_events").await;
    if survivor == b1 {
        // An OA login won the race before any Mini Program login: B1 took the unionid.
        assert_eq!(merges, 0, "nobody to merge");
        assert_eq!(app.count("users").await, 1);
    } else {
        assert_eq!(merges, 1, "B1 is merged exactly once");
        let data = app
            .gql_ok(
                Some(ADMIN_KEY),
                "query($id: ID!) { user(id: $id) { mergedInto { id officialAccountIdentities { unionid } } } }",
                json!({ "id": b1 }),
            )
            .await;
        assert_eq!(data["user"]["mergedInto"]["id"], survivor.as_str());
        assert!(data["user"]["mergedInto"]["officialAccountIdentities"][0]["unionid"].is_string());
    }
    let live = app
        .gql_ok(
            Some(ADMIN_KEY),
            "{ users { edges { node { id unionid miniProgramIdentities { appId } officialAccountIdentities { appId } } } } }",
            json!({}),
        )
        .await;
    let live = live["users"]["edges"].as_array().unwrap();
    assert_eq!(live.len(), 1, "one live user");
    assert_eq!(live[0]["node"]["id"], survivor.as_str());
    assert!(live[0]["node"]["unionid"].is_string());
    assert_eq!(
        live[0]["node"]["miniProgramIdentities"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        live[0]["node"]["officialAccountIdentities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
