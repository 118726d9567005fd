//! Refresh tokens rotate; reuse of a rotated one revokes the login; logout ends it.

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    refresh_rotates_and_reuse_revokes_the_login,
    logout_ends_the_login,
    refresh_works_with_a_stale_access_token_in_the_header
);

const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken newUser user { id } } }";

async fn refresh_rotates_and_reuse_revokes_the_login(backend: Backend) {
    // No grace window: the replay below comes right after the rotation.
    let app = TestApp::start_with(backend, |c| c.jwt.refresh_reuse_grace_secs = 0).await;
    let login = app.login_mp(MP_A, "alice").await;
    let first = login["refreshToken"].as_str().unwrap();
    let data = app.gql_ok(None, REFRESH, json!({ "t": first })).await;
    let second = data["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    assert_eq!(data["refreshSession"]["user"]["id"], login["user"]["id"]);
    assert_eq!(data["refreshSession"]["newUser"], false);
    let new_access = data["refreshSession"]["accessToken"].as_str().unwrap();
    assert_eq!(
        app.me(new_access).await["data"]["me"]["id"],
        login["user"]["id"]
    );

    // The first token again: someone replays it. Refused, and the whole login is revoked.
    let body = app.gql(None, REFRESH, json!({ "t": first })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app.gql(None, REFRESH, json!({ "t": second })).await;
    assert_eq!(
        error_code(&body),
        "UNAUTHENTICATED",
        "the family is revoked after reuse"
    );

    let body = app.gql(None, REFRESH, json!({ "t": "made-up" })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

async fn logout_ends_the_login(backend: Backend) {
    let app = TestApp::start(backend).await;
    let phone = app.login_mp(MP_A, "alice").await;
    let laptop = app.login_mp(MP_B, "alice").await;
    let data = app
        .gql_ok(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": phone["refreshToken"] }),
        )
        .await;
    assert_eq!(data["logout"], true);
    let body = app
        .gql(None, REFRESH, json!({ "t": phone["refreshToken"] }))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    // The other login is untouched until the user logs out everywhere.
    let data = app
        .gql_ok(None, REFRESH, json!({ "t": laptop["refreshToken"] }))
        .await;
    let laptop_refresh = data["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = data["refreshSession"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = app
        .gql_ok(
            Some(&token),
            "mutation { logout(allSessions: true) }",
            json!({}),
        )
        .await;
    assert_eq!(data["logout"], true);
    let body = app.gql(None, REFRESH, json!({ "t": laptop_refresh })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app.gql(None, "mutation { logout }", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

/// A client whose access token expired refreshes with it still in its `Authorization` header:
/// logins and refreshes need no credentials, so bad ones do not refuse them.
async fn refresh_works_with_a_stale_access_token_in_the_header(backend: Backend) {
    let app = TestApp::start(backend).await;
    let login = app.login_mp(MP_A, "erin").await;
    let refresh = login["refreshToken"].as_str().unwrap();
    let body = app
        .gql(Some("not.a.valid-jwt"), REFRESH, json!({ "t": refresh }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        body["data"]["refreshSession"]["user"]["id"],
        login["user"]["id"]
    );
    // Where credentials are needed, the bad token is still refused.
    let me = app.me("not.a.valid-jwt").await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
}
