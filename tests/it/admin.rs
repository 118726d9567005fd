//! Stories: an admin merges users, unlinks an identity, reads the history, and is refused what
//! cannot be done; nobody else may do any of it.

use serde_json::{Value, json};

use crate::common::*;
use crate::merge::{MERGE_EVENTS, id};
use crate::on_both_backends;

on_both_backends!(
    an_admin_merges_and_unlinks_and_reads_the_history,
    admin_actions_refuse_what_they_cannot_do,
    an_unlink_racing_logins_of_the_identity_sticks,
);

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
    // Y's refresh sessions ended with the unlink (they could belong to either person): both log
    // in again and land on the right user.
    let refresh = app
        .gql(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { user { id } } }",
            json!({ "t": x_login["refreshToken"] }),
        )
        .await;
    assert_eq!(error_code(&refresh), "UNAUTHENTICATED");

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

async fn an_unlink_racing_logins_of_the_identity_sticks(backend: Backend) {
    let app = TestApp::start(backend).await;
    let x = id(&app.login_mp(MP_UNBOUND, "omar").await);
    let y = id(&app.login_oa("omar", "snsapi_base").await);
    let merged = app
        .gql_ok(
            Some(ADMIN_KEY),
            "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { miniProgramIdentities { id } } }",
            json!({ "s": y, "t": x }),
        )
        .await;
    let identity = merged["mergeUsers"]["miniProgramIdentities"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut codes = Vec::new();
    for _ in 0..12 {
        codes.push(app.code(MP_UNBOUND, "omar").await);
    }
    let unlink = app.gql(
        Some(ADMIN_KEY),
        "mutation($i: ID!) { unlinkIdentity(identityId: $i) { id } }",
        json!({ "i": identity }),
    );
    let logins =
        futures_util::future::join_all(codes.iter().map(|c| app.login_mp_code(MP_UNBOUND, c)));
    let (unlinked, logins) = tokio::join!(unlink, logins);
    assert!(unlinked.get("errors").is_none(), "{unlinked:#}");
    let fresh = unlinked["data"]["unlinkIdentity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for login in &logins {
        let user = login["data"]["loginWithMiniProgram"]["user"]["id"]
            .as_str()
            .unwrap();
        assert!(
            user == x || user == fresh,
            "a login lands before or after the unlink: {user}"
        );
    }
    // Whatever the interleaving, the unlink sticks: the identity is the new user's.
    let data = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($x: ID!, $f: ID!) { x: user(id: $x) { miniProgramIdentities { id } officialAccountIdentities { id } }
                f: user(id: $f) { miniProgramIdentities { id } } }",
            json!({ "x": x, "f": fresh }),
        )
        .await;
    assert!(
        data["x"]["miniProgramIdentities"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        data["x"]["officialAccountIdentities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        data["f"]["miniProgramIdentities"][0]["id"],
        identity.as_str()
    );
    assert_eq!(id(&app.login_mp(MP_UNBOUND, "omar").await), fresh);
}
