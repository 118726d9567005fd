//! Refresh tokens rotate; reuse of a rotated one revokes the login; logout ends it.

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    refresh_rotates_and_reuse_revokes_the_login,
    logout_ends_the_login,
    refresh_works_with_a_stale_access_token_in_the_header,
    thirty_two_concurrent_refreshes_of_one_token_leave_at_most_sixteen_sessions
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

/// A client retrying one refresh 32 times at once (all within the grace window): the first
/// rotates the token, the retries fork the login into siblings up to the cap of 16 live sessions,
/// and the rest are refused without ending the login. On both backends the database then holds
/// exactly the sessions the callers were handed, and each of them works.
async fn thirty_two_concurrent_refreshes_of_one_token_leave_at_most_sixteen_sessions(
    backend: Backend,
) {
    const CAP: usize = 16;
    // The widest grace window allowed, so that no retry is late on a loaded machine.
    let app = TestApp::start_with(backend, |c| c.jwt.refresh_reuse_grace_secs = 60).await;
    let login = app.login_mp(MP_A, "alice").await;
    let token = login["refreshToken"].as_str().unwrap();
    let live = "sessions WHERE revoked_at IS NULL";
    assert_eq!(app.count(live).await, 1);

    let tries = (0..32).map(|_| app.gql(None, REFRESH, json!({ "t": token })));
    let answers = futures_util::future::join_all(tries).await;
    let mut won = Vec::new();
    for body in &answers {
        if body.get("errors").is_none() {
            won.push(body["data"]["refreshSession"].clone());
        } else {
            // Refused as a retry past the cap: nothing else (no INTERNAL, no UNAVAILABLE).
            assert_eq!(error_code(body), "UNAUTHENTICATED", "{body:#}");
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("already used"),
                "{body:#}"
            );
        }
    }
    // One rotation and fifteen siblings: the cap, exactly, and what the callers got is what the
    // database holds.
    assert_eq!(won.len(), CAP, "{answers:#?}");
    assert_eq!(app.count(live).await, CAP as i64);
    assert_eq!(app.count("sessions").await, CAP as i64 + 1);

    // Every answer is a working login: its access token reads `me`, its refresh token rotates.
    for tokens in &won {
        let access = tokens["accessToken"].as_str().unwrap();
        assert_eq!(
            app.me(access).await["data"]["me"]["id"],
            login["user"]["id"]
        );
        let next = tokens["refreshToken"].as_str().unwrap();
        let body = app.gql(None, REFRESH, json!({ "t": next })).await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    assert_eq!(app.count(live).await, CAP as i64);
    // The login is still one login: logging out with any of its tokens ends all of it.
    let data = app
        .gql_ok(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(data["logout"], true);
    assert_eq!(app.count(live).await, 0);
}
