//! A returning Official Account login on PostgreSQL takes the one-statement fast path
//! (`identity::fast_path`) and spends its state there: the same answers as the full path, the
//! state good exactly once (also when two logins race with it), and a login that brings a
//! profile still goes the full way. SQLite always runs the full path: the same story holds.
//!
//! Proof that the fast path ran: it writes the identity's `last_login_at` and the new session's
//! `created_at` from one value, where the full path reads the clock twice, statements apart.

use serde_json::Value;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_returning_official_account_login_spends_its_state_once,
    two_logins_racing_with_one_state_log_in_once,
);

/// Sessions opened at their user's Official Account login time: the fast path's mark.
async fn fast_path_marks(app: &TestApp) -> i64 {
    app.count(
        "sessions s JOIN official_account_identities o \
         ON o.user_id = s.user_id AND o.last_login_at = s.created_at",
    )
    .await
}

async fn a_returning_official_account_login_spends_its_state_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = app.login_oa("carol", "snsapi_userinfo").await;
    assert_eq!(first["newUser"], true);
    let carol = first["user"]["id"].clone();
    let unionid = first["user"]["unionid"].clone();
    assert!(unionid.is_string(), "{first:#}");

    let (_, state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    let code = app.oa_code("carol", "snsapi_base").await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let again = &body["data"]["loginWithOfficialAccount"];
    assert_eq!(again["newUser"], false);
    assert_eq!(again["user"]["id"], carol);
    assert_eq!(again["user"]["unionid"], unionid);
    assert_eq!(again["user"]["nickname"], "Carol", "the profile stays");
    let me = app.me(again["accessToken"].as_str().unwrap()).await;
    let oa = &me["data"]["me"]["officialAccountIdentities"];
    assert_eq!(oa.as_array().map(Vec::len), Some(1), "{me:#}");
    assert_eq!(oa[0]["scope"], "SNSAPI_BASE", "the latest scope is stored");
    assert_eq!(app.count("users").await, 1);
    let fast = i64::from(backend == Backend::Postgres);
    assert_eq!(
        fast_path_marks(&app).await,
        fast,
        "PostgreSQL logs a returning person in with one statement"
    );

    // The state is spent: a fresh code does not revive it, and nothing is written.
    let before = app.written().await;
    let code = app.oa_code("carol", "snsapi_base").await;
    let reused = app.login_oa_code(OA, &code, &state).await;
    assert_eq!(error_code(&reused), "BAD_USER_INPUT", "{reused:#}");
    assert!(
        reused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("start the authorization again")
    );
    assert_eq!(app.written().await, before);

    // A login that brings a profile goes the full way (the fast path fills no profile).
    let third = app.login_oa("carol", "snsapi_userinfo").await;
    assert_eq!(third["user"]["id"], carol);
    assert_eq!(fast_path_marks(&app).await, 0);
    assert_eq!(app.count("sessions").await, 3);
}

async fn two_logins_racing_with_one_state_log_in_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.login_oa("dave", "snsapi_base").await;
    for _ in 0..5 {
        let (_, state) = app.authorize_url(OA, "SNSAPI_BASE").await;
        let (a, b) = (
            app.oa_code("dave", "snsapi_base").await,
            app.oa_code("dave", "snsapi_base").await,
        );
        let sessions = app.count("sessions").await;
        let (x, y) = tokio::join!(
            app.login_oa_code(OA, &a, &state),
            app.login_oa_code(OA, &b, &state)
        );
        let ok = |v: &Value| v.get("errors").is_none();
        assert!(ok(&x) != ok(&y), "exactly one succeeds: {x:#} {y:#}");
        let refused = if ok(&x) { &y } else { &x };
        assert_eq!(error_code(refused), "BAD_USER_INPUT", "{refused:#}");
        assert_eq!(app.count("sessions").await, sessions + 1);
    }
    assert_eq!(app.count("users").await, 1);
}
