//! Stories: a person logs into the Official Account from a page inside WeChat (frontend-driven
//! web authorization), and every way that can go wrong.

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    alice_authorizes_with_userinfo_and_is_one_user_with_her_mini_program_self,
    snsapi_base_gives_an_openid_only,
    a_state_is_signed_single_use_bound_to_its_app_and_expires,
    a_double_submitted_code_is_wechat_code_invalid_and_creates_nothing,
    a_snapshot_user_is_refused_and_nothing_is_stored,
    wechat_failures_write_nothing_and_leave_the_state_usable,
    bad_input_is_refused_before_wechat,
    the_login_starts_with_a_mutation_and_the_deprecated_query_still_works,
);

const START: &str = "mutation($i: StartOfficialAccountLoginInput!) {
    startOfficialAccountLogin(input: $i) { authorizeUrl expiresAt } }";

async fn alice_authorizes_with_userinfo_and_is_one_user_with_her_mini_program_self(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    let (url, state) = app.authorize_url(OA, "SNSAPI_USERINFO").await;
    let expected = format!(
        "{}/sandbox/wechat/connect/oauth2/authorize?appid={OA}&redirect_uri=https%3A%2F%2Fh5.example.com%2Foa%2Flanding&response_type=code&scope=snsapi_userinfo&state={state}#wechat_redirect",
        app.base
    );
    assert_eq!(
        url, expected,
        "WeChat's authorize URL, parameters in WeChat's order"
    );
    assert_eq!(state.len(), 64);
    assert!(
        state.bytes().all(|b| b.is_ascii_alphanumeric()),
        "WeChat allows letters and digits"
    );

    let code = app.oa_code("alice", "snsapi_userinfo").await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let login = &body["data"]["loginWithOfficialAccount"];
    assert_eq!(login["newUser"], true);
    assert_eq!(
        login["user"]["nickname"], "Alice",
        "the profile fills the user"
    );
    assert_eq!(
        login["user"]["avatarUrl"],
        "https://thirdwx.qlogo.cn/mmopen/sandbox/alice/132"
    );
    let unionid = login["user"]["unionid"].as_str().unwrap().to_owned();
    assert_eq!(unionid.len(), 28);
    let alice = login["user"]["id"].as_str().unwrap().to_owned();

    let me = app.me(login["accessToken"].as_str().unwrap()).await;
    let oa = &me["data"]["me"]["officialAccountIdentities"][0];
    assert_eq!(oa["appId"], OA);
    assert_eq!(oa["openid"].as_str().unwrap().len(), 28);
    assert_eq!(oa["unionid"], unionid.as_str());
    assert_eq!(oa["scope"], "SNSAPI_USERINFO");
    assert_eq!(oa["nickname"], "Alice");
    assert_eq!(oa["province"], "Guangdong");
    assert_eq!(oa["city"], "Shenzhen");
    assert_eq!(oa["country"], "CN");
    assert!(oa["sex"].is_number());

    // The same person in a Mini Program bound to the same open platform: the same user.
    let mp = app.login_mp(MP_A, "alice").await;
    assert_eq!(mp["newUser"], false);
    assert_eq!(mp["user"]["id"], alice.as_str());
    let me = app.me(mp["accessToken"].as_str().unwrap()).await;
    assert_eq!(
        me["data"]["me"]["miniProgramIdentities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        me["data"]["me"]["officialAccountIdentities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.count("users").await, 1);

    // Back in the OA a day later: the same user, nothing new.
    let again = app.login_oa("alice", "snsapi_userinfo").await;
    assert_eq!(again["newUser"], false);
    assert_eq!(again["user"]["id"], alice.as_str());
    assert_eq!(app.count("official_account_identities").await, 1);
}

async fn snsapi_base_gives_an_openid_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    let login = app.login_oa("bob", "snsapi_base").await;
    assert_eq!(login["newUser"], true);
    assert!(
        login["user"]["unionid"].is_null(),
        "WeChat sends no unionid with snsapi_base"
    );
    assert!(login["user"]["nickname"].is_null());
    let me = app.me(login["accessToken"].as_str().unwrap()).await;
    let oa = &me["data"]["me"]["officialAccountIdentities"][0];
    assert_eq!(oa["scope"], "SNSAPI_BASE");
    assert!(oa["unionid"].is_null() && oa["nickname"].is_null());
    assert_eq!(
        app.count("merge_events").await,
        0,
        "nothing to merge without a unionid"
    );
}

async fn a_state_is_signed_single_use_bound_to_its_app_and_expires(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.apps = wechat_identity::config::sandbox_demo_apps();
        let mut second = c.apps[2].clone();
        second.app_id = wechat_identity::types::AppId::new("wxsandboxofficial2");
        second.name = "Second Official Account".into();
        c.apps.push(second);
    })
    .await;
    let (_, state) = app.authorize_url(OA, "SNSAPI_BASE").await;

    // Tampered: one character of the signature changed.
    let mut tampered = state.clone().into_bytes();
    tampered[40] = if tampered[40] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    // Issued for another Official Account.
    let (_, other_app_state) = app.authorize_url("wxsandboxofficial2", "SNSAPI_BASE").await;
    for bad in [
        tampered.as_str(),
        other_app_state.as_str(),
        "",
        "not-a-state",
        &"a".repeat(64),
    ] {
        let code = app.oa_code("carol", "snsapi_base").await;
        let body = app.login_oa_code(OA, &code, bad).await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "state {bad:?}: {body:#}"
        );
    }
    assert_eq!(app.count("users").await, 0);

    let code = app.oa_code("carol", "snsapi_base").await;
    let first = app.login_oa_code(OA, &code, &state).await;
    assert!(first.get("errors").is_none(), "{first:#}");
    let before = app.written().await;
    // Used: a fresh code does not revive it.
    let code = app.oa_code("carol", "snsapi_base").await;
    let reused = app.login_oa_code(OA, &code, &state).await;
    assert_eq!(error_code(&reused), "BAD_USER_INPUT");
    assert!(
        reused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("start the authorization again")
    );
    assert_eq!(app.written().await, before);

    // Expired: ten minutes pass.
    let (_, state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    app.exec("UPDATE oauth_states SET expires_at = created_at WHERE used_at IS NULL")
        .await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(app.written().await, before);
}

async fn a_double_submitted_code_is_wechat_code_invalid_and_creates_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, state) = app.authorize_url(OA, "SNSAPI_USERINFO").await;
    let code = app.oa_code("dave", "snsapi_userinfo").await;
    // A double tap: the same code and state twice at once.
    let (a, b) = tokio::join!(
        app.login_oa_code(OA, &code, &state),
        app.login_oa_code(OA, &code, &state)
    );
    let (ok, failed) = if a.get("errors").is_none() {
        (a, b)
    } else {
        (b, a)
    };
    assert!(ok.get("errors").is_none(), "one of the two logs in: {ok:#}");
    assert!(
        matches!(
            error_code(&failed),
            "WECHAT_CODE_INVALID" | "BAD_USER_INPUT"
        ),
        "the other is refused: {failed:#}"
    );
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("sessions").await, 1);

    // The same code again, with a fresh state: WeChat says 40163.
    let before = app.written().await;
    let (_, state) = app.authorize_url(OA, "SNSAPI_USERINFO").await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert_eq!(error_code(&body), "WECHAT_CODE_INVALID");
    assert_eq!(body["errors"][0]["extensions"]["wechatErrcode"], 40163);
    assert!(body["data"]["loginWithOfficialAccount"].is_null());
    assert_eq!(app.written().await, before);

    // An expired code (five minutes): 42003.
    let code = app
        .code_with(
            OA,
            "dave",
            json!({ "scope": "snsapi_base", "ttlSeconds": 0 }),
        )
        .await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert_eq!(error_code(&body), "WECHAT_CODE_INVALID");
    assert_eq!(body["errors"][0]["extensions"]["wechatErrcode"], 42003);
    assert_eq!(app.written().await, before);
}

async fn a_snapshot_user_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    let code = app
        .code_with(
            OA,
            "erin",
            json!({ "scope": "snsapi_base", "snapshotUser": true }),
        )
        .await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert_eq!(error_code(&body), "WECHAT_SNAPSHOT_USER", "{body:#}");
    assert!(body["data"]["loginWithOfficialAccount"].is_null());
    assert!(app.written().await.is_empty());
    // The real person, with the same state, gets in.
    let code = app.oa_code("erin", "snsapi_base").await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert!(body.get("errors").is_none(), "{body:#}");
}

async fn wechat_failures_write_nothing_and_leave_the_state_usable(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, state) = app.authorize_url(OA, "SNSAPI_USERINFO").await;
    for (fault, expected, errcode) in [
        (
            json!({ "path": "/sns/oauth2/access_token", "errcode": -1 }),
            "WECHAT_UNAVAILABLE",
            json!(-1),
        ),
        (
            json!({ "path": "/sns/oauth2/access_token", "errcode": 45011 }),
            "WECHAT_RATE_LIMITED",
            json!(45011),
        ),
        (
            json!({ "path": "/sns/oauth2/access_token", "malformed": true }),
            "WECHAT_UNAVAILABLE",
            json!(null),
        ),
        (
            json!({ "path": "/sns/userinfo", "errcode": -1 }),
            "WECHAT_UNAVAILABLE",
            json!(-1),
        ),
        (
            json!({ "path": "/sns/userinfo", "errcode": 40001 }),
            "WECHAT_REJECTED",
            json!(40001),
        ),
    ] {
        app.fault(fault.clone()).await;
        let code = app.oa_code("frank", "snsapi_userinfo").await;
        let body = app.login_oa_code(OA, &code, &state).await;
        assert_eq!(error_code(&body), expected, "{fault}: {body:#}");
        assert_eq!(
            body["errors"][0]["extensions"]["wechatErrcode"], errcode,
            "{fault}"
        );
        assert!(app.written().await.is_empty(), "{fault}");
    }
    let code = app.oa_code("frank", "snsapi_userinfo").await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert!(
        body.get("errors").is_none(),
        "the state survives failed attempts: {body:#}"
    );
}

async fn bad_input_is_refused_before_wechat(backend: Backend) {
    let app = TestApp::start(backend).await;
    // If WeChat were called, this fault would answer.
    app.fault(json!({ "errcode": -1 })).await;
    let start = |app_id: &str, redirect: &str, challenge: Option<&str>| {
        let input = json!({ "appId": app_id, "redirectUri": redirect, "codeChallenge": challenge });
        app.gql(None, START, json!({ "i": input }))
    };
    let long = format!("https://h5.example.com/{}", "x".repeat(2000));
    for (app_id, redirect, challenge) in [
        ("wxnosuchapp", "https://h5.example.com/", None),
        (MP_A, "https://h5.example.com/", None),
        (OA, "javascript:alert(1)", None),
        (OA, "/relative/path", None),
        (OA, "https://h5.example.com/#frag", None),
        (OA, &long, None),
        (OA, "https://h5.example.com/", Some("not-a-sha256")),
    ] {
        let body = start(app_id, redirect, challenge).await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{app_id} {redirect}: {body:#}"
        );
        assert!(body["data"]["startOfficialAccountLogin"].is_null());
    }
    assert_eq!(
        app.count("oauth_states").await,
        0,
        "refused requests issue no state"
    );

    let (_, state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    let code = app.oa_code("gina", "snsapi_base").await;
    for (app_id, code, state) in [
        ("wxnosuchapp", code.as_str(), state.as_str()),
        (MP_A, code.as_str(), state.as_str()),
        (OA, "", state.as_str()),
        (OA, &"x".repeat(10 * 1024), state.as_str()),
    ] {
        let body = app.login_oa_code(app_id, code, state).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    }
    assert!(app.written().await.is_empty());
    // WeChat was never called: the fault is still pending, and then the code still works.
    let body = app.login_oa_code(OA, &code, &state).await;
    assert_eq!(error_code(&body), "WECHAT_UNAVAILABLE");
    let body = app.login_oa_code(OA, &code, &state).await;
    assert!(body.get("errors").is_none(), "{body:#}");
}

async fn the_login_starts_with_a_mutation_and_the_deprecated_query_still_works(backend: Backend) {
    let app = TestApp::start(backend).await;
    // The mutation says until when the state holds: 10 minutes by default.
    let input =
        json!({ "appId": OA, "redirectUri": "https://h5.example.com/", "scope": "SNSAPI_BASE" });
    let before = chrono::Utc::now();
    let data = app.gql_ok(None, START, json!({ "i": input })).await;
    let expires: chrono::DateTime<chrono::Utc> = data["startOfficialAccountLogin"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ttl = (expires - before).num_seconds();
    assert!((595..=601).contains(&ttl), "{ttl} s");

    // The query it replaces still hands out a state that logs a person in, for one release.
    let data = app
        .gql_ok(
            None,
            "{ officialAccountAuthorizeUrl(appId: \"wxsandboxofficial1\", redirectUri: \"https://h5.example.com/\") }",
            json!({}),
        )
        .await;
    let url = reqwest::Url::parse(data["officialAccountAuthorizeUrl"].as_str().unwrap()).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let code = app.oa_code("hana", "snsapi_base").await;
    let body = app.login_oa_code(OA, &code, &state).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(app.count("oauth_states").await, 2);
}
