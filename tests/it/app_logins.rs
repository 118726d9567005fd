//! Stories: a person arrives through a website's QR code and a mobile app too, and is the one
//! user they are in the company's Mini Programs and Official Accounts.

use serde_json::{Value, json};

use crate::common::flows::{
    Flow, finishes_only_where_it_started, flow_round_trip, landing, param, redeem,
};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    alice_is_one_user_in_all_four_kinds_of_app,
    the_server_driven_website_login_goes_round_trip,
    the_website_login_finishes_only_in_the_browser_that_started_it,
    wrong_kinds_bad_states_and_used_codes_write_nothing,
);

const WEBSITE: &str = "wxsandboxwebsite01";
const MOBILE: &str = "wxsandboxmobile001";

const WEBSITE_FLOW: Flow = Flow {
    path: "website",
    app_id: WEBSITE,
    wechat_page: "connect/qrconnect",
};

/// The embedded website login: `startWebsiteLogin`, the QR code scanned (a sandbox code of
/// scope `snsapi_login`), `loginWithWebsite`; the whole response.
async fn website_login(app: &TestApp, user: &str) -> Value {
    let start = app
        .gql_ok(
            None,
            "mutation($i: StartWebsiteLoginInput!) { startWebsiteLogin(input: $i) {
                appId scope redirectUri state expiresAt } }",
            json!({ "i": { "appId": WEBSITE, "redirectUri": landing(app) } }),
        )
        .await;
    let start = &start["startWebsiteLogin"];
    assert_eq!(start["appId"], WEBSITE);
    assert_eq!(start["scope"], "snsapi_login");
    assert_eq!(start["redirectUri"], landing(app));
    let code = app.code(WEBSITE, user).await;
    login_website_code(app, &code, start["state"].as_str().unwrap()).await
}

async fn login_website_code(app: &TestApp, code: &str, state: &str) -> Value {
    app.gql(
        None,
        "mutation($i: LoginWithWebsiteInput!) { loginWithWebsite(input: $i) {
            accessToken newUser user { id unionid nickname avatarUrl } } }",
        json!({ "i": { "appId": WEBSITE, "code": code, "state": state } }),
    )
    .await
}

async fn mobile_login(app: &TestApp, app_id: &str, code: &str) -> Value {
    app.gql(
        None,
        "mutation($i: LoginWithMobileAppInput!) { loginWithMobileApp(input: $i) {
            accessToken newUser user { id unionid nickname } } }",
        json!({ "i": { "appId": app_id, "code": code } }),
    )
    .await
}

async fn alice_is_one_user_in_all_four_kinds_of_app(backend: Backend) {
    let app = TestApp::start(backend).await;
    // First the website: a new user, with WeChat's profile.
    let web = website_login(&app, "alice").await;
    assert!(web.get("errors").is_none(), "{web:#}");
    let web = &web["data"]["loginWithWebsite"];
    assert_eq!(web["newUser"], true);
    assert_eq!(web["user"]["nickname"], "Alice");
    let alice = web["user"]["id"].clone();
    let unionid = web["user"]["unionid"].clone();
    assert!(unionid.is_string());

    // The mobile app, a Mini Program and the Official Account: the same user.
    let code = app.code(MOBILE, "alice").await;
    let mobile = mobile_login(&app, MOBILE, &code).await;
    assert_eq!(
        mobile["data"]["loginWithMobileApp"]["newUser"], false,
        "{mobile:#}"
    );
    assert_eq!(mobile["data"]["loginWithMobileApp"]["user"]["id"], alice);
    assert_eq!(app.login_mp(MP_A, "alice").await["user"]["id"], alice);
    assert_eq!(
        app.login_oa("alice", "snsapi_userinfo").await["user"]["id"],
        alice
    );
    assert_eq!(app.count("users").await, 1);

    let token = mobile["data"]["loginWithMobileApp"]["accessToken"]
        .as_str()
        .unwrap();
    let me = app
        .gql_ok(
            Some(token),
            "{ me { id
                websiteIdentities { id appId openid unionid nickname avatarUrl lastLoginAt user { id } }
                mobileAppIdentities { id appId openid unionid nickname user { id } }
                miniProgramIdentities { appId } officialAccountIdentities { appId } } }",
            json!({}),
        )
        .await;
    let web_identity = &me["me"]["websiteIdentities"][0];
    assert_eq!(web_identity["appId"], WEBSITE);
    assert_eq!(web_identity["unionid"], unionid);
    assert_eq!(web_identity["nickname"], "Alice");
    assert_eq!(web_identity["user"]["id"], alice);
    assert_eq!(me["me"]["mobileAppIdentities"][0]["appId"], MOBILE);
    assert_ne!(
        me["me"]["mobileAppIdentities"][0]["openid"], web_identity["openid"],
        "an openid per app"
    );
    assert_eq!(
        me["me"]["miniProgramIdentities"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        me["me"]["officialAccountIdentities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Found by key, by id, and by the dashboards' filters.
    let found = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($a: String!, $o: String!, $id: ID!) {
                wechatIdentity(appId: $a, openid: $o) { __typename id user { id } }
                node(id: $id) { __typename id }
                web: users(filter: {hasWebsite: true}) { nodes { id } }
                mobile: users(filter: {hasMobileApp: true, appId: \"wxsandboxmobile001\"}) { nodes { id } }
                without: users(filter: {hasMobileApp: false}) { nodes { id } }
                byOpenid: users(filter: {openid: $o}) { nodes { id } }
                wechatApps { appId kind } }",
            json!({ "a": WEBSITE, "o": web_identity["openid"], "id": web_identity["id"] }),
        )
        .await;
    assert_eq!(found["wechatIdentity"]["__typename"], "WebsiteIdentity");
    assert_eq!(found["wechatIdentity"]["user"]["id"], alice);
    assert_eq!(found["node"]["__typename"], "WebsiteIdentity");
    for list in ["web", "mobile", "byOpenid"] {
        assert_eq!(found[list]["nodes"][0]["id"], alice, "{list}");
    }
    assert_eq!(found["without"]["nodes"].as_array().unwrap().len(), 0);
    let kinds: Vec<&str> = found["wechatApps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["appId"] == WEBSITE || a["appId"] == MOBILE)
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["WEBSITE", "MOBILE_APP"]);

    // A federation gateway resolves the new entities like the others.
    let entities = app
        .gql_ok(
            Some(SERVICE_KEY),
            "query($r: [_Any!]!) { _entities(representations: $r) {
                ... on MobileAppIdentity { appId user { id } } } }",
            json!({ "r": [{ "__typename": "MobileAppIdentity", "appId": MOBILE,
                "openid": me["me"]["mobileAppIdentities"][0]["openid"] }] }),
        )
        .await;
    assert_eq!(entities["_entities"][0]["user"]["id"], alice);
}

async fn the_server_driven_website_login_goes_round_trip(backend: Backend) {
    let app = TestApp::start(backend).await;
    let back = flow_round_trip(&app, &WEBSITE_FLOW, None, "bob", "allow").await;
    assert!(back.starts_with(&landing(&app)), "{back}");
    let ticket = param(&back, "ticket").expect("a ticket");
    let body = redeem(&app, &ticket).await;
    let redeemed = &body["data"]["redeemLoginTicket"];
    assert_eq!(redeemed["newUser"], true, "{body:#}");
    assert_eq!(redeemed["user"]["nickname"], "Bob");
    // The same person's Mini Program login finds them.
    let mp = app.login_mp(MP_A, "bob").await;
    assert_eq!(mp["user"]["id"], redeemed["user"]["id"]);

    // Refusing to scan-and-confirm comes back as ACCESS_DENIED, and logs nobody in.
    let users = app.count("users").await;
    let back = flow_round_trip(&app, &WEBSITE_FLOW, None, "carol", "deny").await;
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("ACCESS_DENIED"),
        "{back}"
    );
    assert_eq!(param(&back, "ticket"), None);
    assert_eq!(app.count("users").await, users);
}

async fn the_website_login_finishes_only_in_the_browser_that_started_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    finishes_only_where_it_started(&app, &WEBSITE_FLOW, (None, None)).await;
    // A callback with a state this service never issued logs nobody in.
    let back = flow_round_trip(&app, &WEBSITE_FLOW, None, "dave", "allow").await;
    assert!(param(&back, "ticket").is_some(), "{back}");
    let users = app.count("users").await;
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/auth/website/{WEBSITE}/callback?code=x&state=0123",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(app.count("users").await, users);
    // The OA flow's route does not take a website, nor the website's an Official Account.
    let wrong = reqwest::get(format!(
        "{}/auth/official-account/{WEBSITE}/authorize?returnTo={}",
        app.base,
        landing(&app)
    ))
    .await
    .unwrap();
    assert_eq!(wrong.status(), 400);
    let wrong = reqwest::get(format!(
        "{}/auth/website/{OA}/authorize?returnTo={}",
        app.base,
        landing(&app)
    ))
    .await
    .unwrap();
    assert_eq!(wrong.status(), 400);
    let unknown = reqwest::get(format!("{}/auth/elsewhere/{WEBSITE}/authorize", app.base))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

async fn wrong_kinds_bad_states_and_used_codes_write_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = app.written().await;
    // Each login takes its own kind of app only.
    let code = app.code(MOBILE, "dave").await;
    for app_id in [MP_A, OA, WEBSITE, "wxnosuchapp"] {
        let body = mobile_login(&app, app_id, &code).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{app_id}: {body:#}");
    }
    let body = app
        .gql(
            None,
            "mutation($i: StartWebsiteLoginInput!) { startWebsiteLogin(input: $i) { state } }",
            json!({ "i": { "appId": OA, "redirectUri": landing(&app) } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    // A redirectUri off the allow-list would be an open redirect.
    let body = app
        .gql(
            None,
            "mutation($i: StartWebsiteLoginInput!) { startWebsiteLogin(input: $i) { state } }",
            json!({ "i": { "appId": WEBSITE, "redirectUri": "https://evil.example.com/" } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    // An Official Account's state does not log anyone into the website.
    let (_, oa_state) = app.authorize_url(OA, "SNSAPI_USERINFO").await;
    let code = app.code(WEBSITE, "dave").await;
    let body = login_website_code(&app, &code, &oa_state).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    // Two logins in one request.
    let body = app
        .gql(
            None,
            "mutation { a: loginWithMobileApp(input: {appId: \"wxsandboxmobile001\", code: \"x\"}) { newUser }
                        b: loginWithMobileApp(input: {appId: \"wxsandboxmobile001\", code: \"y\"}) { newUser } }",
            json!({}),
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("logins_per_request"),
        "{body:#}"
    );
    assert_eq!(app.written().await, before);

    // A code used twice: WeChat says so, nothing more is written.
    let code = app.code(MOBILE, "erin").await;
    let first = mobile_login(&app, MOBILE, &code).await;
    assert!(first.get("errors").is_none(), "{first:#}");
    let before = app.written().await;
    let again = mobile_login(&app, MOBILE, &code).await;
    assert_eq!(error_code(&again), "WECHAT_CODE_INVALID");
    assert_eq!(app.written().await, before);
}
