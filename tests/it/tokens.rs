//! Stories: one access token per app, shared by every instance. Other services read it instead
//! of fetching their own; it is refreshed once when WeChat expires or revokes it; WeChat's quota
//! stops refreshes instead of a loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_service_reads_the_shared_token_and_others_are_refused,
    a_revoked_or_expired_token_is_replaced_once_and_the_call_retried,
    a_token_wechat_keeps_refusing_is_force_refreshed_within_limits,
    quota_errors_on_a_refresh_stop_refreshes_for_a_while,
    server_side_fields_are_budgeted_per_request,
);

const TOKEN: &str = "query($a: String!) { wechatAccessToken(appId: $a) { token expiresAt } }";

const SYNC_ONE: &str = "mutation($a: String!, $o: String!) {
    syncOfficialAccountFollower(appId: $a, openid: $o) { openid subscribed unionid } }";

/// `user` follows the OA (no event pushed); their openid.
async fn follower(app: &TestApp, user: &str) -> String {
    let (_, followed) = app
        .sandbox_post(
            "/follow",
            json!({ "appId": OA, "user": user, "silent": true }),
        )
        .await;
    followed["openid"].as_str().unwrap().to_owned()
}

async fn tokens(app: &TestApp, app_id: &str) -> Value {
    app.sandbox_stats(app_id).await["tokens"].clone()
}

async fn a_service_reads_the_shared_token_and_others_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = app
        .gql_ok(Some(SERVICE_KEY), TOKEN, json!({ "a": OA }))
        .await;
    let token = first["wechatAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!token.is_empty());
    let expires: chrono::DateTime<chrono::Utc> = first["wechatAccessToken"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > chrono::Utc::now() + chrono::TimeDelta::minutes(100));
    // Asked again (and by an admin, and for a Mini Program): WeChat is not asked again.
    let again = app.gql_ok(Some(ADMIN_KEY), TOKEN, json!({ "a": OA })).await;
    assert_eq!(again["wechatAccessToken"]["token"], token.as_str());
    app.gql_ok(Some(SERVICE_KEY), TOKEN, json!({ "a": MP_A }))
        .await;
    assert_eq!(tokens(&app, OA).await["minted"], 1);
    assert_eq!(tokens(&app, OA).await["stableCalls"], 1);
    // The token is stored sealed, never in the clear.
    let stored = app
        .count(&format!(
            "wechat_access_tokens WHERE token LIKE '%{token}%'"
        ))
        .await;
    assert_eq!(stored, 0);
    assert_eq!(app.count("wechat_access_tokens").await, 2);

    let user = app.login_mp(MP_A, "alice").await;
    let body = app
        .gql(user["accessToken"].as_str(), TOKEN, json!({ "a": OA }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app.gql(None, TOKEN, json!({ "a": OA })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app
        .gql(Some(SERVICE_KEY), TOKEN, json!({ "a": "wxnope" }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

async fn a_revoked_or_expired_token_is_replaced_once_and_the_call_retried(backend: Backend) {
    let app = TestApp::start(backend).await;
    let vars = json!({ "a": OA, "o": follower(&app, "tok0").await });
    let data = app.gql_ok(Some(ADMIN_KEY), SYNC_ONE, vars.clone()).await;
    assert_eq!(data["syncOfficialAccountFollower"]["subscribed"], true);
    assert!(data["syncOfficialAccountFollower"]["unionid"].is_string());

    // WeChat revokes the token: the next call gets 40001, the token is replaced, the call
    // retried; the caller sees nothing of it.
    let (status, _) = app
        .sandbox_post("/tokens", json!({ "appId": OA, "action": "revoke" }))
        .await;
    assert_eq!(status, 204);
    app.gql_ok(Some(ADMIN_KEY), SYNC_ONE, vars.clone()).await;
    // It expires: 42001, the same.
    app.sandbox_post("/tokens", json!({ "appId": OA, "action": "expire" }))
        .await;
    app.gql_ok(Some(ADMIN_KEY), SYNC_ONE, vars.clone()).await;
    app.gql_ok(Some(ADMIN_KEY), SYNC_ONE, vars).await;

    let t = tokens(&app, OA).await;
    assert_eq!(t["minted"], 3, "{t}");
    assert_eq!(t["revokedUses"], 1, "{t}");
    assert_eq!(t["expiredUses"], 1, "{t}");
    assert_eq!(t["selfInflicted"], 0, "{t}");
    assert_eq!(t["forceCalls"], 0, "{t}");
}

async fn a_token_wechat_keeps_refusing_is_force_refreshed_within_limits(backend: Backend) {
    let app = TestApp::start(backend).await;
    let vars = json!({ "a": OA, "o": follower(&app, "tok0").await });
    app.gql_ok(Some(ADMIN_KEY), SYNC_ONE, vars.clone()).await;
    // Revoked, but normal-mode stable_token keeps handing it out: only force mode helps.
    app.sandbox_post(
        "/tokens",
        json!({ "appId": OA, "action": "revoke", "sticky": true }),
    )
    .await;
    app.gql_ok(Some(ADMIN_KEY), SYNC_ONE, vars.clone()).await;
    let t = tokens(&app, OA).await;
    assert_eq!(t["forceCalls"], 1, "{t}");
    assert_eq!(t["selfInflicted"], 0, "{t}");
    // Again at once: force mode is 30 s apart at least, so the service refuses to force again
    // and says so (WECHAT_UNAVAILABLE) instead of calling WeChat.
    app.sandbox_post(
        "/tokens",
        json!({ "appId": OA, "action": "revoke", "sticky": true }),
    )
    .await;
    let body = app.gql(Some(ADMIN_KEY), SYNC_ONE, vars).await;
    assert_eq!(error_code(&body), "WECHAT_UNAVAILABLE", "{body:#}");
    assert_eq!(tokens(&app, OA).await["forceCalls"], 1);
}

async fn quota_errors_on_a_refresh_stop_refreshes_for_a_while(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.fault(json!({ "path": "/cgi-bin/stable_token", "errcode": 45009 }))
        .await;
    let body = app.gql(Some(SERVICE_KEY), TOKEN, json!({ "a": OA })).await;
    assert_eq!(error_code(&body), "WECHAT_RATE_LIMITED", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["wechatErrcode"], 45009);
    // Asked again at once: refused without asking WeChat (its quota is spent).
    let body = app.gql(Some(SERVICE_KEY), TOKEN, json!({ "a": OA })).await;
    assert_eq!(error_code(&body), "WECHAT_RATE_LIMITED");
    let t = tokens(&app, OA).await;
    assert_eq!(t["stableCalls"], 0, "the fault answered the only call: {t}");
    assert_eq!(t["minted"], 0);
}

/// Two instances on one PostgreSQL, one WeChat: many concurrent calls while WeChat expires and
/// revokes the token end with no call failing, no use of a token our own refresh replaced, and
/// one new token per expiry or revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn two_instances_share_one_token_through_expiries_and_revocations() {
    let a = TestApp::start(Backend::Postgres).await;
    // Instances of one deployment share the database and the key that seals secrets at rest.
    let b = TestApp::start_with(Backend::Postgres, a.same_deployment()).await;
    let mut openids = Vec::new();
    for i in 0..20 {
        openids.push(follower(&a, &format!("two{i}")).await);
    }
    let a = Arc::new(a);
    let b = Arc::new(b);
    let stop = Arc::new(AtomicBool::new(false));
    // WeChat's side: expire, revoke, expire, revoke, expire, a second apart (a retry, a few ms
    // after the refusal, never straddles two of them).
    let chaos = {
        let a = a.clone();
        tokio::spawn(async move {
            for action in ["expire", "revoke", "expire", "revoke", "expire"] {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                a.sandbox_post("/tokens", json!({ "appId": OA, "action": action }))
                    .await;
            }
        })
    };
    let made = Arc::new(AtomicUsize::new(0));
    let mut calls = Vec::new();
    for worker in 0..8 {
        let app = if worker % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let openids = openids.clone();
        let (stop, made) = (stop.clone(), made.clone());
        calls.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let o = &openids[(worker * 7 + n) % openids.len()];
                let body = app
                    .gql(Some(ADMIN_KEY), SYNC_ONE, json!({ "a": OA, "o": o }))
                    .await;
                assert!(body.get("errors").is_none(), "a call failed: {body:#}");
                n += 1;
                made.fetch_add(1, Ordering::Relaxed);
            }
            n
        }));
    }
    chaos.await.unwrap();
    // Calls after the last expiry: beyond the 8 that may have been under way, 8 more.
    let at_last_expiry = made.load(Ordering::Relaxed);
    eventually(
        Duration::from_secs(20),
        "calls went on after the last expiry",
        || async { made.load(Ordering::Relaxed) >= at_last_expiry + 16 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in calls {
        total += c.await.unwrap();
    }
    let t = tokens(&a, OA).await;
    eprintln!("two instances: {total} calls; sandbox counted {t}");
    assert!(total > 40, "too few calls to mean anything: {total}");
    assert_eq!(t["selfInflicted"], 0, "{t}");
    // The first token, then one per expiry or revocation, each fetched once.
    assert_eq!(t["minted"], 6, "{t}");
    assert_eq!(t["stableCalls"], 6, "{t}");
    assert_eq!(t["forceCalls"], 0, "{t}");
}

async fn server_side_fields_are_budgeted_per_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let aliases: String = (0..6)
        .map(|i| format!("t{i}: wechatAccessToken(appId: \"{OA}\") {{ expiresAt }} "))
        .collect();
    let body = app
        .gql(Some(SERVICE_KEY), &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("limits.wechat_fields_per_request"),
        "{message}"
    );
    // Nothing was asked of WeChat.
    assert_eq!(tokens(&app, OA).await["stableCalls"], 0);
}
