//! Stories: a person sees their logins and ends one; an admin ends all of a user's; every way a
//! login ends (logout, logout everywhere, endSession, revokeSessions, a replayed refresh
//! token) reaches the login's access tokens, not only its refresh token.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_person_sees_their_logins_and_ends_another_one,
    nobody_ends_or_reads_someone_elses_logins,
    an_admin_ends_every_login_of_a_user,
    every_end_of_a_login_reaches_its_access_tokens,
);

const SESSIONS: &str =
    "{ me { id sessions { id createdAt lastUsedAt userAgent ip appId current } } }";
const END: &str = "mutation($id: ID!) { endSession(id: $id) }";
const REFRESH: &str =
    "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";
const REVOKE_ALL: &str = "mutation($u: ID!) { revokeSessions(userId: $u) }";

fn token(login: &Value) -> &str {
    login["accessToken"].as_str().unwrap()
}

/// The `sid` of an access token: the login it belongs to.
fn sid(access_token: &str) -> String {
    use base64::Engine as _;
    let claims = access_token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    serde_json::from_slice::<Value>(&claims).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A Mini Program login sent with a `User-Agent`, as a phone's WebView sends it.
async fn login_with_agent(app: &TestApp, app_id: &str, user: &str, agent: &str) -> Value {
    let code = app.code(app_id, user).await;
    let q = "mutation($i: LoginWithMiniProgramInput!) { loginWithMiniProgram(input: $i) {
        accessToken refreshToken user { id } } }";
    let res = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("user-agent", agent)
        .json(&json!({ "query": q, "variables": { "i": { "appId": app_id, "code": code } } }))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["data"]["loginWithMiniProgram"].clone()
}

/// Whether `access_token` is still accepted (`me` answers) or refused as ended.
async fn accepted(app: &TestApp, access_token: &str) -> bool {
    let body = app
        .gql(Some(access_token), "{ me { id } }", json!({}))
        .await;
    match body.get("errors") {
        None => true,
        Some(_) => {
            assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body:#}");
            false
        }
    }
}

async fn a_person_sees_their_logins_and_ends_another_one(backend: Backend) {
    let app = TestApp::start(backend).await;
    let phone = login_with_agent(&app, MP_A, "alice", "phone-webview/1.0").await;
    let laptop = login_with_agent(&app, MP_B, "alice", "laptop-webview/2.0").await;
    assert_eq!(phone["user"]["id"], laptop["user"]["id"], "one person");

    let me = app.gql_ok(Some(token(&phone)), SESSIONS, json!({})).await;
    let sessions = me["me"]["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{me:#}");
    // Most recently used first: the laptop logged in last.
    assert_eq!(sessions[0]["id"], sid(token(&laptop)));
    assert_eq!(sessions[0]["appId"], MP_B);
    assert_eq!(sessions[0]["userAgent"], "laptop-webview/2.0");
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert_eq!(sessions[0]["current"], false);
    assert_eq!(sessions[1]["id"], sid(token(&phone)));
    assert_eq!(sessions[1]["appId"], MP_A);
    assert_eq!(sessions[1]["current"], true, "the phone asked");

    // A refresh keeps the login: same id, same creation time, a later last use.
    let refreshed = app
        .gql_ok(None, REFRESH, json!({ "t": phone["refreshToken"] }))
        .await["refreshSession"]
        .clone();
    assert_eq!(sid(token(&refreshed)), sid(token(&phone)));
    let me = app
        .gql_ok(Some(token(&refreshed)), SESSIONS, json!({}))
        .await;
    let after = me["me"]["sessions"].as_array().unwrap().clone();
    assert_eq!(after.len(), 2, "a refresh is no new login: {me:#}");
    assert_eq!(after[0]["id"], sid(token(&phone)), "used last now");
    assert_eq!(after[0]["createdAt"], sessions[1]["createdAt"]);
    assert!(after[0]["lastUsedAt"].as_str() > sessions[1]["lastUsedAt"].as_str());
    assert_eq!(after[0]["current"], true);

    // The phone ends the laptop's login: its refresh token and its access token stop working,
    // at once although this instance had just seen it live.
    assert!(accepted(&app, token(&laptop)).await);
    let ended = app
        .gql_ok(
            Some(token(&refreshed)),
            END,
            json!({ "id": sid(token(&laptop)) }),
        )
        .await;
    assert_eq!(ended["endSession"], true);
    assert!(!accepted(&app, token(&laptop)).await);
    let body = app
        .gql(None, REFRESH, json!({ "t": laptop["refreshToken"] }))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let me = app
        .gql_ok(Some(token(&refreshed)), SESSIONS, json!({}))
        .await;
    assert_eq!(me["me"]["sessions"].as_array().unwrap().len(), 1);
    // Ending it again: it exists, and is no longer live.
    let again = app
        .gql_ok(
            Some(token(&refreshed)),
            END,
            json!({ "id": sid(token(&laptop)) }),
        )
        .await;
    assert_eq!(again["endSession"], false);
    // The phone goes on.
    assert!(accepted(&app, token(&refreshed)).await);

    // Bad input: a page size out of range.
    let body = app
        .gql(
            Some(token(&refreshed)),
            "{ me { sessions(first: 0) { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

async fn nobody_ends_or_reads_someone_elses_logins(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let bob = app.login_mp(MP_A, "bob").await;
    let before = app.written().await;
    // Bob's login id is NOT_FOUND to Alice, as an unknown one is: she learns nothing.
    for id in [sid(token(&bob)), "made-up".into(), "x".repeat(500)] {
        let body = app.gql(Some(token(&alice)), END, json!({ "id": id })).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body:#}");
    }
    // One session change per request: aliases do not make one request many.
    let body = app
        .gql(
            Some(token(&alice)),
            "mutation($id: ID!) { a: endSession(id: $id) b: endSession(id: $id) }",
            json!({ "id": sid(token(&alice)) }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert_eq!(app.written().await, before, "nothing changed");
    assert!(accepted(&app, token(&bob)).await);
    // Without a user token: refused.
    let body = app.gql(None, END, json!({ "id": sid(token(&bob)) })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app
        .gql(Some(SERVICE_KEY), END, json!({ "id": sid(token(&bob)) }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");

    // Reading: a user only its own; a service key not at all (addresses, agents); an admin any.
    let q = "query($id: ID!) { user(id: $id) { sessions { id current } } }";
    let bob_id = json!({ "id": bob["user"]["id"] });
    let body = app.gql(Some(token(&alice)), q, bob_id.clone()).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app.gql(Some(SERVICE_KEY), q, bob_id.clone()).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let data = app.gql_ok(Some(ADMIN_KEY), q, bob_id).await;
    assert_eq!(
        data["user"]["sessions"],
        json!([{ "id": sid(token(&bob)), "current": false }])
    );
}

async fn an_admin_ends_every_login_of_a_user(backend: Backend) {
    let app = TestApp::start(backend).await;
    let one = app.login_mp(MP_A, "carol").await;
    let two = app.login_mp(MP_B, "carol").await;
    let other = app.login_mp(MP_A, "dave").await;
    let carol = json!({ "u": one["user"]["id"] });
    for (key, code) in [(SERVICE_KEY, "FORBIDDEN"), (token(&one), "FORBIDDEN")] {
        let body = app.gql(Some(key), REVOKE_ALL, carol.clone()).await;
        assert_eq!(error_code(&body), code);
    }
    let body = app.gql(None, REVOKE_ALL, carol.clone()).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app
        .gql(Some(ADMIN_KEY), REVOKE_ALL, json!({ "u": "no-such-user" }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");

    // Seen live first: the instance that revokes forgets what it kept.
    assert!(accepted(&app, token(&one)).await && accepted(&app, token(&two)).await);
    let data = app.gql_ok(Some(ADMIN_KEY), REVOKE_ALL, carol.clone()).await;
    assert_eq!(data["revokeSessions"], 2, "two logins ended");
    for login in [&one, &two] {
        assert!(!accepted(&app, token(login)).await);
        let body = app
            .gql(None, REFRESH, json!({ "t": login["refreshToken"] }))
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }
    assert!(accepted(&app, token(&other)).await, "dave is untouched");
    let data = app.gql_ok(Some(ADMIN_KEY), REVOKE_ALL, carol).await;
    assert_eq!(data["revokeSessions"], 0, "nothing left to end");
}

/// Each token is seen live first, so this instance keeps that answer for the window (the default
/// 5 s): the instance that ends a login forgets it, and refuses the token at once. (Other
/// instances within the window: the two-instance test in `signing_keys.rs`.)
async fn every_end_of_a_login_reaches_its_access_tokens(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.jwt.refresh_reuse_grace_secs = 0).await;
    // logout(refreshToken)
    let login = app.login_mp(MP_A, "erin").await;
    assert!(accepted(&app, token(&login)).await);
    let q = "mutation($t: String!) { logout(refreshToken: $t) }";
    app.gql_ok(None, q, json!({ "t": login["refreshToken"] }))
        .await;
    assert!(!accepted(&app, token(&login)).await, "after logout");

    // logout(allSessions: true) ends the other logins' access tokens too.
    let a = app.login_mp(MP_A, "erin").await;
    let b = app.login_mp(MP_B, "erin").await;
    assert!(accepted(&app, token(&a)).await && accepted(&app, token(&b)).await);
    let q = "mutation { logout(allSessions: true) }";
    app.gql_ok(Some(token(&a)), q, json!({})).await;
    assert!(!accepted(&app, token(&a)).await && !accepted(&app, token(&b)).await);

    // A replayed refresh token revokes the login, and its access tokens with it: the thief's
    // and the owner's.
    let login = app.login_mp(MP_A, "erin").await;
    let rotated = app
        .gql_ok(None, REFRESH, json!({ "t": login["refreshToken"] }))
        .await["refreshSession"]
        .clone();
    assert!(accepted(&app, token(&rotated)).await && accepted(&app, token(&login)).await);
    let body = app
        .gql(None, REFRESH, json!({ "t": login["refreshToken"] }))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert!(!accepted(&app, token(&rotated)).await && !accepted(&app, token(&login)).await);

    // The message says what happened, so a client logs in again rather than retrying.
    let body = app
        .gql(Some(token(&login)), "{ me { id } }", json!({}))
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("session has ended"),
        "{body:#}"
    );
}
