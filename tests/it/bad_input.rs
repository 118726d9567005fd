//! Bad input and WeChat failures: a clear error code, and nothing written.

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_reused_code_is_wechat_code_invalid_and_creates_nothing,
    an_unknown_app_is_bad_user_input_without_calling_wechat,
    empty_and_huge_codes_are_refused_before_wechat,
    wechat_failures_map_to_stable_codes_and_write_nothing,
);

async fn a_reused_code_is_wechat_code_invalid_and_creates_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let code = app.code(MP_A, "alice").await;
    let first = app.login_mp_code(MP_A, &code).await;
    assert!(first.get("errors").is_none());
    let before = app.written().await;
    let again = app.login_mp_code(MP_A, &code).await;
    assert_eq!(error_code(&again), "WECHAT_CODE_INVALID");
    assert_eq!(again["errors"][0]["extensions"]["wechatErrcode"], 40163);
    assert!(again["data"]["loginWithMiniProgram"].is_null());
    assert_eq!(app.written().await, before);

    // A code that was never issued: 40029.
    let body = app
        .login_mp_code(MP_A, "0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(error_code(&body), "WECHAT_CODE_INVALID");
    assert_eq!(body["errors"][0]["extensions"]["wechatErrcode"], 40029);

    // An expired code: 40029 too.
    let code = app.code_with(MP_A, "bob", json!({ "ttlSeconds": 0 })).await;
    let body = app.login_mp_code(MP_A, &code).await;
    assert_eq!(error_code(&body), "WECHAT_CODE_INVALID");
    assert_eq!(app.written().await, before);
}

async fn an_unknown_app_is_bad_user_input_without_calling_wechat(backend: Backend) {
    let app = TestApp::start(backend).await;
    let code = app.code(MP_A, "alice").await;
    let body = app.login_mp_code("wxnosuchapp", &code).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("wxnosuchapp")
    );
    // An Official Account is not a Mini Program.
    let body = app.login_mp_code(OA, &code).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(app.written().await.is_empty());
    // The code was never sent to WeChat, so it still works.
    let body = app.login_mp_code(MP_A, &code).await;
    assert!(body.get("errors").is_none(), "{body:#}");
}

async fn empty_and_huge_codes_are_refused_before_wechat(backend: Backend) {
    let app = TestApp::start(backend).await;
    // If WeChat were called, this fault would answer: it must still be pending afterwards.
    app.fault(json!({ "errcode": -1, "path": "/sns/jscode2session" }))
        .await;
    for code in [
        String::new(),
        "x".repeat(10 * 1024),
        "bad code with spaces".into(),
    ] {
        let body = app.login_mp_code(MP_A, &code).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    }
    let body = app
        .login_mp_input(json!({ "appId": MP_A, "code": "abc", "encryptedData": "xyz" }))
        .await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "encryptedData without iv"
    );
    assert!(app.written().await.is_empty());
    let code = app.code(MP_A, "alice").await;
    let body = app.login_mp_code(MP_A, &code).await;
    assert_eq!(
        error_code(&body),
        "WECHAT_UNAVAILABLE",
        "the pending fault proves no call was made before"
    );
}

async fn wechat_failures_map_to_stable_codes_and_write_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let cases = [
        (json!({ "errcode": -1 }), "WECHAT_UNAVAILABLE", Some(-1)),
        (
            json!({ "errcode": 45011 }),
            "WECHAT_RATE_LIMITED",
            Some(45011),
        ),
        (json!({ "errcode": 40226 }), "WECHAT_REJECTED", Some(40226)),
        (json!({ "errcode": 40125 }), "WECHAT_REJECTED", Some(40125)),
        (json!({ "malformed": true }), "WECHAT_UNAVAILABLE", None),
    ];
    for (fault, code_expected, errcode) in cases {
        app.fault(fault.clone()).await;
        let code = app.code(MP_A, "alice").await;
        let body = app.login_mp_code(MP_A, &code).await;
        assert_eq!(error_code(&body), code_expected, "{fault}: {body:#}");
        assert_eq!(
            body["errors"][0]["extensions"]
                .get("wechatErrcode")
                .and_then(|v| v.as_i64()),
            errcode
        );
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            !message.contains("rid:") && !message.contains("secret"),
            "internal detail leaked: {message}"
        );
    }
    assert!(app.written().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_or_slow_wechat_is_unavailable() {
    // Nothing listens on this port: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.sandbox = Some(false);
        c.apps = wechat_identity::config::sandbox_demo_apps();
        c.wechat.api_base_url = format!("http://127.0.0.1:{port}");
    })
    .await;
    let body = app
        .login_mp_code(MP_A, "0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(error_code(&body), "WECHAT_UNAVAILABLE");
    assert!(app.written().await.is_empty());

    // A WeChat slower than the client's timeout.
    let app = TestApp::start_with(Backend::Sqlite, |c| c.wechat.timeout_ms = 300).await;
    app.fault(json!({ "delayMs": 2000 })).await;
    let code = app.code(MP_A, "alice").await;
    let body = app.login_mp_code(MP_A, &code).await;
    assert_eq!(error_code(&body), "WECHAT_UNAVAILABLE");
    assert!(app.written().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_syntax_errors_and_get_mutations_have_codes() {
    let app = TestApp::start(Backend::Sqlite).await;
    let body = app.gql(None, "{ me { id ", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let body = app.gql(None, "{ noSuchField }", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let res = app
        .http
        .get(format!("{}/graphql", app.base))
        .query(&[("query", "mutation { logout(refreshToken: \"x\") }")])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("POST")
    );
    // A browser GET gets GraphiQL.
    let res = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(
        res.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}
