//! The sandbox behaves like WeChat's web-authorization API: codes per scope, tokens that expire,
//! userinfo only with `snsapi_userinfo`, refresh tokens, `/sns/auth`, the approval page.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const SECRET: &str = "sandbox-secret-wxsandboxofficial1";

async fn api(app: &TestApp, path: &str, query: &[(&str, &str)]) -> Value {
    let res = app
        .http
        .get(format!("{}/sandbox/wechat{path}", app.base))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "WeChat answers errors with HTTP 200");
    res.json().await.unwrap()
}

async fn exchange(app: &TestApp, code: &str) -> Value {
    api(
        app,
        "/sns/oauth2/access_token",
        &[
            ("appid", OA),
            ("secret", SECRET),
            ("code", code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await
}

async fn advance(app: &TestApp, seconds: u64) {
    let res = app
        .http
        .post(format!("{}/sandbox/wechat/clock", app.base))
        .json(&json!({ "advanceSeconds": seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_authorization_tokens_behave_like_wechats() {
    let app = TestApp::start(Backend::Sqlite).await;

    // snsapi_base: openid, no unionid, and /sns/userinfo is refused with 48001.
    let base = exchange(&app, &app.oa_code("alice", "snsapi_base").await).await;
    assert_eq!(base["scope"], "snsapi_base");
    assert_eq!(base["expires_in"], 7200);
    assert!(base.get("unionid").is_none(), "{base}");
    let openid = base["openid"].as_str().unwrap();
    assert_eq!(openid.len(), 28);
    let info = api(
        &app,
        "/sns/userinfo",
        &[
            ("access_token", base["access_token"].as_str().unwrap()),
            ("openid", openid),
            ("lang", "zh_CN"),
        ],
    )
    .await;
    assert_eq!(info["errcode"], 48001);
    assert!(info["errmsg"].as_str().unwrap().contains("rid:"));

    // snsapi_userinfo: the unionid, and the profile.
    let full = exchange(&app, &app.oa_code("alice", "snsapi_userinfo").await).await;
    assert_eq!(full["openid"], openid, "one openid per (app, person)");
    let unionid = full["unionid"].as_str().unwrap();
    let mp_unionid = wechat_identity::wechat::sandbox::derive_id(
        "unionid",
        wechat_identity::wechat::sandbox::OPEN_PLATFORM,
        "alice",
    );
    assert_eq!(
        unionid, mp_unionid,
        "the same unionid as in the bound Mini Programs"
    );
    let token = full["access_token"].as_str().unwrap().to_owned();
    let info = api(
        &app,
        "/sns/userinfo",
        &[("access_token", &token), ("openid", openid)],
    )
    .await;
    assert_eq!(info["nickname"], "Alice");
    assert_eq!(info["unionid"], unionid);
    assert!(info["headimgurl"].as_str().unwrap().starts_with("https://"));
    // Another person's openid with this token: 40003.
    let other = api(
        &app,
        "/sns/userinfo",
        &[("access_token", &token), ("openid", "onotalice")],
    )
    .await;
    assert_eq!(other["errcode"], 40003);

    // /sns/auth checks a token.
    let ok = api(
        &app,
        "/sns/auth",
        &[("access_token", &token), ("openid", openid)],
    )
    .await;
    assert_eq!(ok["errcode"], 0);
    let bad = api(
        &app,
        "/sns/auth",
        &[("access_token", "nope"), ("openid", openid)],
    )
    .await;
    assert_eq!(bad["errcode"], 40001);

    // Codes: single use (40163), bound to their app, and they expire (42003).
    let code = app.oa_code("bob", "snsapi_base").await;
    assert!(exchange(&app, &code).await["openid"].is_string());
    assert_eq!(exchange(&app, &code).await["errcode"], 40163);
    let code = app.oa_code("bob", "snsapi_base").await;
    advance(&app, 301).await;
    assert_eq!(exchange(&app, &code).await["errcode"], 42003);
    let mp_code = app.code(MP_A, "bob").await;
    assert_eq!(exchange(&app, &mp_code).await["errcode"], 40029);
    let wrong_secret = api(
        &app,
        "/sns/oauth2/access_token",
        &[
            ("appid", OA),
            ("secret", "wrong"),
            ("code", "x"),
            ("grant_type", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(wrong_secret["errcode"], 40125);

    // Two hours later the access token has expired (42001); the refresh token gets a new one.
    let full = exchange(&app, &app.oa_code("carol", "snsapi_userinfo").await).await;
    let openid = full["openid"].as_str().unwrap();
    advance(&app, 7201).await;
    let expired = api(
        &app,
        "/sns/userinfo",
        &[
            ("access_token", full["access_token"].as_str().unwrap()),
            ("openid", openid),
        ],
    )
    .await;
    assert_eq!(expired["errcode"], 42001);
    let refresh = |token: String| {
        let app = &app;
        async move {
            api(
                app,
                "/sns/oauth2/refresh_token",
                &[
                    ("appid", OA),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                ],
            )
            .await
        }
    };
    let refreshed = refresh(full["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(refreshed["openid"], openid);
    assert_eq!(refreshed["scope"], "snsapi_userinfo");
    let info = api(
        &app,
        "/sns/userinfo",
        &[
            ("access_token", refreshed["access_token"].as_str().unwrap()),
            ("openid", openid),
        ],
    )
    .await;
    assert_eq!(info["nickname"], "Carol");
    assert_eq!(refresh("unknown".into()).await["errcode"], 40030);
    // After thirty days the refresh token is gone too (42002).
    advance(&app, 30 * 24 * 3600).await;
    assert_eq!(
        refresh(full["refresh_token"].as_str().unwrap().to_owned()).await["errcode"],
        42002
    );

    // A snapshot (virtual) user is flagged, with an openid of its own and no unionid.
    let code = app
        .code_with(
            OA,
            "alice",
            json!({ "scope": "snsapi_base", "snapshotUser": true }),
        )
        .await;
    let snap = exchange(&app, &code).await;
    assert_eq!(snap["is_snapshotuser"], 1);
    assert_ne!(
        snap["openid"].as_str().unwrap(),
        base["openid"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approval_page_redirects_like_wechat() {
    let app = TestApp::start(Backend::Sqlite).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = format!("{}/sandbox/wechat/connect/oauth2/authorize", app.base);
    let q = |extra: &[(&str, &str)]| {
        let mut v = vec![
            ("appid", OA),
            ("redirect_uri", "https://h5.example.com/cb?x=1"),
            ("response_type", "code"),
            ("scope", "snsapi_userinfo"),
            ("state", "abc123"),
        ];
        v.extend_from_slice(extra);
        v.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    let form = client.get(&page).query(&q(&[])).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    assert!(html.contains("id=allow") && html.contains("snsapi_userinfo"));

    let approved = client
        .get(&page)
        .query(&q(&[("user", "dave"), ("action", "allow")]))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::FOUND);
    let to = reqwest::Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.host_str(), Some("h5.example.com"));
    let params: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(params["x"], "1", "the redirect_uri's own query is kept");
    assert_eq!(params["state"], "abc123");
    let token = exchange(&app, &params["code"]).await;
    assert_eq!(token["scope"], "snsapi_userinfo");
    assert_eq!(
        token["openid"],
        wechat_identity::wechat::sandbox::derive_id("openid", OA, "dave").as_str()
    );

    let denied = client
        .get(&page)
        .query(&q(&[("user", "dave"), ("action", "deny")]))
        .send()
        .await
        .unwrap();
    let to = reqwest::Url::parse(denied.headers()["location"].to_str().unwrap()).unwrap();
    let params: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert!(!params.contains_key("code"));
    assert_eq!(params["state"], "abc123");

    // Bad requests get WeChat's error page, not a redirect.
    for (key, value) in [
        ("appid", MP_A),
        ("scope", "snsapi_login"),
        ("response_type", "token"),
        ("redirect_uri", "javascript:alert(1)"),
        ("state", "has spaces"),
    ] {
        let mut query = q(&[]);
        query.retain(|(k, _)| k != key);
        query.push((key.to_owned(), value.to_owned()));
        let res = client.get(&page).query(&query).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{key}={value}");
    }
}

/// The server-side controls refuse what would grow the sandbox without bound, and say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_side_controls_are_bounded() {
    let app = TestApp::start(Backend::Sqlite).await;
    let refused = [
        ("/followers", json!({ "appId": OA, "count": 1_000_001 })),
        ("/followers", json!({ "appId": OA, "pageSize": 0 })),
        ("/followers", json!({ "appId": OA, "pageSize": 10_001 })),
        (
            "/followers",
            json!({ "appId": OA, "prefix": "p".repeat(33), "count": 1 }),
        ),
        ("/followers", json!({ "appId": MP_A, "count": 1 })),
        (
            "/push",
            json!({ "appId": OA, "xml": "x".repeat(16 * 1024 + 1) }),
        ),
        ("/tokens", json!({ "appId": OA, "action": "forget" })),
        ("/follow", json!({ "appId": OA, "user": "no spaces" })),
        (
            "/templates",
            json!({ "appId": OA, "templateId": "t1", "kind": "template", "fields": [] }),
        ),
        (
            "/templates",
            json!({ "appId": MP_A, "templateId": "t1", "kind": "template",
                    "fields": [{ "key": "thing1", "type": "THING" }] }),
        ),
        (
            "/consents",
            json!({ "appId": OA, "user": "alice", "templateId": "sandboxtpl-shipped" }),
        ),
        (
            "/message-settings",
            json!({ "appId": OA, "block": vec!["u"; 1001] }),
        ),
    ];
    for (path, body) in refused {
        let (status, answer) = app.sandbox_post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{path}: {answer}");
    }
    assert_eq!(app.sandbox_stats(OA).await["followerCalls"]["userGet"], 0);
}

/// The sandbox fakes WeChat's message APIs, and pushes what WeChat pushes to the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_sent_and_pushed_like_wechat() {
    use wechat_identity::wechat::sandbox::derive_id;
    use wechat_identity::wechat::sandbox::messages::{TEMPLATE_OA_NOTICE, TEMPLATE_SHIPPED};

    let app = TestApp::start(Backend::Sqlite).await;
    let (status, _) = app
        .sandbox_post("/follow", json!({ "appId": OA, "user": "alice" }))
        .await;
    assert_eq!(status, 200);
    let (_, token) = app
        .sandbox_post(
            "/cgi-bin/stable_token",
            json!({ "grant_type": "client_credential", "appid": OA, "secret": SECRET }),
        )
        .await;
    let token = token["access_token"].as_str().unwrap();
    let alice = derive_id("openid", OA, "alice");
    let shipped = json!({
        "touser": alice,
        "template_id": TEMPLATE_SHIPPED,
        "data": { "thing1": { "value": "您的订单已发货" }, "time2": { "value": "15:01" } },
    });
    let template_send = format!("/cgi-bin/message/template/send?access_token={token}");
    let (status, sent) = app.sandbox_post(&template_send, shipped).await;
    assert_eq!((status, sent["errcode"].as_i64()), (200, Some(0)), "{sent}");
    let list = api(&app, "/messages", &[("appId", OA)]).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["messages"][0]["msgid"], sent["msgid"]);

    // alice accepts the notice in the popup: the service gets the event, then one send goes.
    let (_, answer) = app
        .sandbox_post(
            "/consents",
            json!({ "appId": OA, "user": "alice", "templateId": TEMPLATE_OA_NOTICE }),
        )
        .await;
    assert_eq!(answer["pushed"]["status"], 200, "{answer}");
    let notice = json!({
        "touser": alice,
        "template_id": TEMPLATE_OA_NOTICE,
        "data": { "thing1": { "value": "会员到期" }, "date2": { "value": "2026-11-29" } },
    });
    let bizsend = format!("/cgi-bin/message/subscribe/bizsend?access_token={token}");
    let (_, first) = app.sandbox_post(&bizsend, notice.clone()).await;
    assert_eq!(first["errcode"], 0, "{first}");
    let (_, second) = app.sandbox_post(&bizsend, notice).await;
    assert_eq!(second["errcode"], 43101, "the one-time consent is spent");
    let calls = &app.sandbox_stats(OA).await["messageCalls"];
    assert_eq!(
        (calls["templateSend"].as_u64(), calls["bizsend"].as_u64()),
        (Some(1), Some(2))
    );
}
