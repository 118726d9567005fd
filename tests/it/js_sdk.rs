//! Stories: an Official Account's H5 page asks for its `wx.config` and WeChat (the sandbox's
//! `/js-sdk/verify`) accepts it. The `jsapi_ticket` behind it is one per app for every instance:
//! a flood of page loads costs one `getticket`, a ticket that comes due mid-flood is fetched
//! once more, and a token WeChat revoked costs one refresh. Bad input is refused before WeChat
//! is asked or anything is written.

use std::sync::Arc;

use serde_json::{Value, json};
use wechat_identity::config::{Bucket, Config};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_page_gets_a_config_wechat_accepts,
    other_apps_and_pages_are_refused_with_nothing_asked_or_written,
    a_flood_of_page_loads_costs_one_getticket,
    a_ticket_due_mid_flood_is_fetched_once_more,
    a_token_wechat_revoked_costs_one_refresh_and_getticket_is_retried,
    wechats_quota_on_getticket_pauses_ticket_refreshes,
    page_loads_past_the_rate_limit_are_refused,
);

const CONFIG: &str = "query($a: String!, $u: String!) {
    wechatJsSdkConfig(appId: $a, url: $u) { appId timestamp nonceStr signature } }";

/// A page of the Official Account's H5 site.
const PAGE: &str = "https://h5.example.com/shop?id=1";

/// The Official Account's pages are on `h5.example.com` (its JS-safe domain). Every page load
/// of a flood comes from the test's one address: its rate limit has room for them.
fn h5_pages(c: &mut Config) {
    if c.apps.is_empty() {
        c.apps = wechat_identity::config::sandbox_demo_apps();
    }
    for app in c.apps.iter_mut().filter(|a| a.app_id.as_str() == OA) {
        app.js_sdk_domains = vec!["h5.example.com".into()];
    }
    c.rate_limits.js_sdk.per_ip.burst = 1000;
}

/// The page at `url` asks for its config: the GraphQL answer.
async fn ask(app: &TestApp, url: &str) -> Value {
    app.gql(None, CONFIG, json!({ "a": OA, "u": url })).await
}

/// The page at `url` gets its config.
async fn config(app: &TestApp, url: &str) -> Value {
    let body = ask(app, url).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"]["wechatJsSdkConfig"].clone()
}

/// What WeChat's client says of `config` on the page at `url`.
async fn verify(app: &TestApp, url: &str, config: &Value) -> Value {
    let (status, answer) = app
        .sandbox_post(
            "/js-sdk/verify",
            json!({
                "appId": config["appId"],
                "url": url,
                "timestamp": config["timestamp"],
                "nonceStr": config["nonceStr"],
                "signature": config["signature"],
            }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn ticket_calls(app: &TestApp) -> Value {
    app.sandbox_stats(OA).await["ticketCalls"].clone()
}

async fn tokens(app: &TestApp) -> Value {
    app.sandbox_stats(OA).await["tokens"].clone()
}

/// `n` page loads at once, alternating between `instances`; each config with its page's URL.
async fn flood(instances: &[&Arc<TestApp>], n: usize) -> Vec<(String, Value)> {
    let loads: Vec<_> = (0..n)
        .map(|i| {
            let app = Arc::clone(instances[i % instances.len()]);
            tokio::spawn(async move {
                let url = format!("{PAGE}&load={i}#/cart");
                let config = config(&app, &url).await;
                (url, config)
            })
        })
        .collect();
    let mut configs = Vec::new();
    for load in loads {
        configs.push(load.await.unwrap());
    }
    configs
}

/// Every config of `configs` passes WeChat's check.
async fn all_verify(app: &TestApp, configs: &[(String, Value)]) {
    for (url, config) in configs {
        assert_eq!(
            verify(app, url, config).await,
            json!({ "ok": true }),
            "{url}"
        );
    }
}

async fn a_page_gets_a_config_wechat_accepts(backend: Backend) {
    let app = TestApp::start_with(backend, h5_pages).await;
    let first = config(&app, PAGE).await;
    assert_eq!(first["appId"], OA);
    let now = chrono::Utc::now().timestamp();
    assert!(
        (first["timestamp"].as_i64().unwrap() - now).abs() < 60,
        "{first}"
    );
    assert!(first["nonceStr"].as_str().unwrap().len() >= 16, "{first}");
    let signature = first["signature"].as_str().unwrap();
    assert_eq!(signature.len(), 40);
    assert!(
        signature
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(verify(&app, PAGE, &first).await, json!({ "ok": true }));

    // A page with a fragment (a single-page app's route) is signed as the page without it:
    // its config passes on either URL.
    let routed = config(&app, &format!("{PAGE}#/cart?step=2")).await;
    assert_ne!(routed["nonceStr"], first["nonceStr"]);
    assert_eq!(
        verify(&app, &format!("{PAGE}#/cart?step=2"), &routed).await["ok"],
        true
    );
    assert_eq!(verify(&app, PAGE, &routed).await["ok"], true);
    // ... but not on another page.
    let other = verify(&app, "https://h5.example.com/shop?id=2", &routed).await;
    assert_eq!(other["ok"], false, "{other}");

    // In sandbox mode the service's own pages may call it too.
    let own = format!("{}/sandbox/login-demo", app.base);
    assert_eq!(
        verify(&app, &own, &config(&app, &own).await).await["ok"],
        true
    );

    // One ticket served them all, fetched with the one access token; it is stored sealed.
    assert_eq!(ticket_calls(&app).await, 1);
    assert_eq!(tokens(&app).await["minted"], 1);
    let tickets = "wechat_access_tokens WHERE kind = 'jsapi_ticket' AND token IS NOT NULL";
    assert_eq!(app.count(tickets).await, 1);
    let ticket = app
        .running
        .app
        .sandbox
        .as_ref()
        .unwrap()
        .jsapi_ticket(OA)
        .unwrap();
    let in_clear = format!("wechat_access_tokens WHERE token LIKE '%{ticket}%'");
    assert_eq!(app.count(&in_clear).await, 0);
}

async fn other_apps_and_pages_are_refused_with_nothing_asked_or_written(backend: Backend) {
    let app = TestApp::start_with(backend, h5_pages).await;
    let before = app.written().await;
    let long = format!("https://h5.example.com/{}", "a".repeat(2048));
    let refused = [
        (MP_A, PAGE, "a Mini Program"),
        ("wxnope", PAGE, "an unknown app"),
        (
            OA,
            "https://evil.example.com/shop",
            "a host not among js_sdk_domains",
        ),
        (
            OA,
            "https://h5.example.com.evil.example/",
            "a host that only starts like one",
        ),
        (OA, "/shop?id=1", "a relative URL"),
        (OA, "javascript:alert(document.cookie)", "javascript:"),
        (OA, "ftp://h5.example.com/", "not http(s)"),
        (OA, long.as_str(), "longer than 2 KiB"),
    ];
    for (app_id, url, what) in refused {
        let body = app
            .gql(None, CONFIG, json!({ "a": app_id, "u": url }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{what}: {body:#}");
        assert!(body["data"]["wechatJsSdkConfig"].is_null(), "{what}");
    }
    // Six at once (aliases) are over the per-request budget of WeChat fields.
    let aliases: String = (0..6)
        .map(|i| {
            format!("c{i}: wechatJsSdkConfig(appId: \"{OA}\", url: \"{PAGE}\") {{ signature }} ")
        })
        .collect();
    let body = app.gql(None, &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("limits.wechat_fields_per_request")
    );

    assert_eq!(app.written().await, before);
    assert_eq!(ticket_calls(&app).await, 0);
    assert_eq!(tokens(&app).await["stableCalls"], 0);
}

async fn a_flood_of_page_loads_costs_one_getticket(backend: Backend) {
    let app = Arc::new(TestApp::start_with(backend, h5_pages).await);
    let configs = flood(&[&app], 200).await;
    all_verify(&app, &configs).await;
    assert_eq!(ticket_calls(&app).await, 1);
    assert_eq!(tokens(&app).await["minted"], 1);
}

/// Two instances on one PostgreSQL, one WeChat: 200 page loads at once, half on each, cost one
/// `getticket` (and one access token) between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn two_instances_share_one_ticket_through_a_flood() {
    let a = TestApp::start_with(Backend::Postgres, h5_pages).await;
    let second = a.same_deployment();
    let b = TestApp::start_with(Backend::Postgres, |c| {
        second(c);
        h5_pages(c);
    })
    .await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let configs = flood(&[&a, &b], 200).await;
    all_verify(&a, &configs).await;
    assert_eq!(ticket_calls(&a).await, 1);
    let t = tokens(&a).await;
    assert_eq!(t["minted"], 1, "{t}");
    assert_eq!(t["stableCalls"], 1, "{t}");
    assert_eq!(
        a.count("wechat_access_tokens WHERE kind = 'jsapi_ticket'")
            .await,
        1
    );
}

async fn a_ticket_due_mid_flood_is_fetched_once_more(backend: Backend) {
    let app = Arc::new(TestApp::start_with(backend, h5_pages).await);
    let first_wave = flood(&[&app], 100).await;
    all_verify(&app, &first_wave).await;
    assert_eq!(ticket_calls(&app).await, 1);
    let wechat = app.running.app.sandbox.as_ref().unwrap();
    let first_ticket = wechat.jsapi_ticket(OA).unwrap();

    // Two hours and a bit later on WeChat's clock: the ticket is past its refresh point and
    // its end (WeChat hands out a new one), and WeChat revoked the access token meanwhile.
    let (status, _) = app
        .sandbox_post("/clock", json!({ "advanceSeconds": 7300 }))
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .sandbox_post("/tokens", json!({ "appId": OA, "action": "revoke" }))
        .await;
    assert_eq!(status, 204);
    let second_wave = flood(&[&app], 100).await;
    // Every page of the second wave is signed with the new ticket, the only one WeChat takes.
    assert_ne!(wechat.jsapi_ticket(OA).unwrap(), first_ticket);
    all_verify(&app, &second_wave).await;
    assert_eq!(ticket_calls(&app).await, 2);
    let t = tokens(&app).await;
    assert_eq!(t["minted"], 2, "one token refresh: {t}");
    assert_eq!(t["selfInflicted"], 0, "{t}");
}

async fn a_token_wechat_revoked_costs_one_refresh_and_getticket_is_retried(backend: Backend) {
    let app = Arc::new(TestApp::start_with(backend, h5_pages).await);
    // The service holds an access token already (another team read it), which WeChat revokes.
    let token = "query($a: String!) { wechatAccessToken(appId: $a) { expiresAt } }";
    app.gql_ok(Some(SERVICE_KEY), token, json!({ "a": OA }))
        .await;
    app.sandbox_post("/tokens", json!({ "appId": OA, "action": "revoke" }))
        .await;
    // The first page loads fetch the ticket with it: 40001, a new token, getticket again.
    let configs = flood(&[&app], 50).await;
    all_verify(&app, &configs).await;
    assert_eq!(ticket_calls(&app).await, 1);
    let t = tokens(&app).await;
    assert_eq!(t["minted"], 2, "{t}");
    assert_eq!(t["revokedUses"], 1, "{t}");
    assert_eq!(t["selfInflicted"], 0, "{t}");
}

async fn wechats_quota_on_getticket_pauses_ticket_refreshes(backend: Backend) {
    let app = TestApp::start_with(backend, h5_pages).await;
    app.fault(json!({ "path": "/cgi-bin/ticket/getticket", "errcode": 45009 }))
        .await;
    let body = ask(&app, PAGE).await;
    assert_eq!(error_code(&body), "WECHAT_RATE_LIMITED", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["wechatErrcode"], 45009);
    // Asked again at once: refused without asking WeChat (its quota is spent), while the
    // access token, kept apart, is still there for every other call.
    let body = ask(&app, PAGE).await;
    assert_eq!(error_code(&body), "WECHAT_RATE_LIMITED");
    assert_eq!(
        ticket_calls(&app).await,
        0,
        "the fault answered the only call"
    );
    let token = "query($a: String!) { wechatAccessToken(appId: $a) { expiresAt } }";
    app.gql_ok(Some(SERVICE_KEY), token, json!({ "a": OA }))
        .await;
    assert_eq!(tokens(&app).await["minted"], 1);
}

async fn page_loads_past_the_rate_limit_are_refused(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        h5_pages(c);
        c.rate_limits.js_sdk.per_ip = Bucket {
            burst: 3,
            per_second: 0.01,
        };
    })
    .await;
    for _ in 0..3 {
        config(&app, PAGE).await;
    }
    let body = ask(&app, PAGE).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body:#}");
    let error = &body["errors"][0];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("rate_limits.js_sdk.per_ip")
    );
    assert!(error["extensions"]["retryAfter"].as_u64().unwrap() >= 1);
    assert_eq!(ticket_calls(&app).await, 1);
}
