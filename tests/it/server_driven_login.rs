//! Stories: the server-driven Official Account login, where WeChat redirects to our callback and
//! the frontend gets a one-time ticket, never a token, in its URL.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_browser_goes_round_trip_and_the_frontend_redeems_a_ticket,
    return_to_must_be_on_the_allow_list,
    denials_bad_states_and_used_codes_come_back_as_errors,
    a_ticket_expires,
);

/// A client that does not follow redirects, so each hop can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

fn location(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::FOUND, "a redirect");
    res.headers()[LOCATION].to_str().unwrap().to_owned()
}

fn param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn landing(app: &TestApp) -> String {
    format!("{}/sandbox/login-demo", app.base)
}

fn start_url(app: &TestApp, scope: &str, return_to: &str) -> String {
    let mut url = reqwest::Url::parse(&format!(
        "{}/auth/official-account/{OA}/authorize",
        app.base
    ))
    .unwrap();
    url.query_pairs_mut()
        .append_pair("scope", scope)
        .append_pair("returnTo", return_to);
    url.to_string()
}

/// Runs the browser's hops up to our callback's redirect: authorize → WeChat's page → approve →
/// callback. Returns the callback's `Location`.
async fn round_trip(app: &TestApp, scope: &str, user: &str, action: &str) -> String {
    let client = browser();
    let to_wechat = location(&get(&client, &start_url(app, scope, &landing(app))).await);
    assert!(to_wechat.starts_with(&format!(
        "{}/sandbox/wechat/connect/oauth2/authorize?appid={OA}&redirect_uri=",
        app.base
    )));
    assert!(to_wechat.ends_with("#wechat_redirect"));
    let redirect_uri = param(&to_wechat, "redirect_uri").unwrap();
    assert_eq!(
        redirect_uri,
        format!("{}/auth/official-account/{OA}/callback", app.base)
    );
    // The page asks who is using WeChat; the person approves.
    let page = get(&client, &to_wechat).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("id=allow"));
    let approve = format!(
        "{}&user={user}&action={action}",
        to_wechat.trim_end_matches("#wechat_redirect")
    );
    let to_callback = location(&get(&client, &approve).await);
    assert!(to_callback.starts_with(&redirect_uri));
    location(&get(&client, &to_callback).await)
}

async fn redeem(app: &TestApp, ticket: &str) -> Value {
    app.gql(
        None,
        "mutation($t: String!) { redeemLoginTicket(ticket: $t) {
            accessToken refreshToken newUser user { id unionid nickname } } }",
        json!({ "t": ticket }),
    )
    .await
}

async fn a_browser_goes_round_trip_and_the_frontend_redeems_a_ticket(backend: Backend) {
    let app = TestApp::start(backend).await;
    let back = round_trip(&app, "snsapi_userinfo", "alice", "allow").await;
    assert!(back.starts_with(&landing(&app)), "{back}");
    let ticket = param(&back, "ticket").expect("a ticket on returnTo");
    assert!(param(&back, "error").is_none());
    assert_eq!(
        app.count("sessions").await,
        0,
        "no session until the ticket is redeemed"
    );

    let body = redeem(&app, &ticket).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let login = &body["data"]["redeemLoginTicket"];
    assert_eq!(login["newUser"], true);
    assert_eq!(login["user"]["nickname"], "Alice");
    assert!(!back.contains(login["accessToken"].as_str().unwrap()));
    assert!(!back.contains(login["refreshToken"].as_str().unwrap()));
    let me = app.me(login["accessToken"].as_str().unwrap()).await;
    assert_eq!(
        me["data"]["me"]["officialAccountIdentities"][0]["appId"],
        OA
    );

    // Single use.
    let again = redeem(&app, &ticket).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
    assert_eq!(app.count("sessions").await, 1);

    // The same person later, with a Mini Program: one user.
    let mp = app.login_mp(MP_A, "alice").await;
    assert_eq!(mp["user"]["id"], login["user"]["id"]);
}

async fn return_to_must_be_on_the_allow_list(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.official_account_login.return_to = vec!["https://h5.example.com/app/".into()];
    })
    .await;
    let client = browser();
    for bad in [
        "https://evil.example.com/app/".to_owned(),
        "https://h5.example.com.evil.com/app/".to_owned(),
        "https://h5.example.com/application".to_owned(),
        "http://h5.example.com/app/".to_owned(),
        "//evil.example.com/app/".to_owned(),
        "https://user:pw@h5.example.com/app/".to_owned(),
        format!("{}.evil.com/sandbox/", app.base),
        String::new(),
    ] {
        let res = get(&client, &start_url(&app, "snsapi_base", &bad)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(res.headers().get(LOCATION).is_none());
        assert!(res.text().await.unwrap().contains("returnTo"), "{bad}");
    }
    // A bad scope or app, too.
    let res = get(
        &client,
        &start_url(&app, "snsapi_everything", "https://h5.example.com/app/"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = get(
        &client,
        &format!(
            "{}/auth/official-account/{MP_A}/authorize?returnTo=https://h5.example.com/app/",
            app.base
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count("oauth_states").await, 0, "nothing issued");

    // The configured one (and anything under it) works; so does the sandbox's own page.
    for good in [
        "https://h5.example.com/app/",
        "https://h5.example.com/app/login?next=%2Fhome",
    ] {
        let res = get(&client, &start_url(&app, "snsapi_base", good)).await;
        assert!(location(&res).contains("/connect/oauth2/authorize?appid="));
    }
    let res = get(&client, &start_url(&app, "snsapi_base", &landing(&app))).await;
    assert_eq!(res.status(), StatusCode::FOUND);
}

async fn denials_bad_states_and_used_codes_come_back_as_errors(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = browser();
    // The person refuses: back to returnTo with an error, nothing stored.
    let back = round_trip(&app, "snsapi_userinfo", "bob", "deny").await;
    assert!(back.starts_with(&landing(&app)));
    assert_eq!(param(&back, "error").as_deref(), Some("ACCESS_DENIED"));
    assert!(param(&back, "ticket").is_none());
    assert_eq!(app.written().await, [0; 5]);

    // A callback with a forged state: an error page, no redirect anywhere.
    let forged = format!(
        "{}/auth/official-account/{OA}/callback?code=0123456789abcdef0123456789abcdef&state={}",
        app.base,
        "ab".repeat(32)
    );
    let res = get(&client, &forged).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get(LOCATION).is_none());

    // A frontend-driven state is not accepted by the callback, and vice versa.
    let (_, frontend_state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    let code = app.oa_code("bob", "snsapi_base").await;
    let res = get(
        &client,
        &format!(
            "{}/auth/official-account/{OA}/callback?code={code}&state={frontend_state}",
            app.base
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let to_wechat = location(&get(&client, &start_url(&app, "snsapi_base", &landing(&app))).await);
    let server_state = param(&to_wechat, "state").unwrap();
    let body = app.login_oa_code(OA, &code, &server_state).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    // A code WeChat already took: back to returnTo with WECHAT_CODE_INVALID.
    let first = round_trip(&app, "snsapi_base", "bob", "allow").await;
    assert!(param(&first, "ticket").is_some());
    let tickets_before = app.count("login_tickets").await;
    let to_wechat = location(&get(&client, &start_url(&app, "snsapi_base", &landing(&app))).await);
    let state = param(&to_wechat, "state").unwrap();
    let used = {
        let approve = format!(
            "{}&user=bob&action=allow",
            to_wechat.trim_end_matches("#wechat_redirect")
        );
        let to_callback = location(&get(&client, &approve).await);
        let code = param(&to_callback, "code").unwrap();
        // Redeemed once...
        let ok = location(&get(&client, &to_callback).await);
        assert!(param(&ok, "ticket").is_some());
        code
    };
    assert_eq!(app.count("login_tickets").await, tickets_before + 1);
    let after_first = app.written().await;
    // ...and replayed with another fresh state.
    let to_wechat = location(&get(&client, &start_url(&app, "snsapi_base", &landing(&app))).await);
    let fresh_state = param(&to_wechat, "state").unwrap();
    assert_ne!(fresh_state, state);
    let replay = location(
        &get(
            &client,
            &format!(
                "{}/auth/official-account/{OA}/callback?code={used}&state={fresh_state}",
                app.base
            ),
        )
        .await,
    );
    assert_eq!(
        param(&replay, "error").as_deref(),
        Some("WECHAT_CODE_INVALID")
    );
    assert_eq!(app.written().await, after_first);
    assert_eq!(app.count("login_tickets").await, tickets_before + 1);
    // A used state (a reloaded callback): an error page.
    let res = get(
        &client,
        &format!(
            "{}/auth/official-account/{OA}/callback?code={used}&state={state}",
            app.base
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.written().await, after_first);
}

async fn a_ticket_expires(backend: Backend) {
    let app = TestApp::start(backend).await;
    let back = round_trip(&app, "snsapi_base", "carol", "allow").await;
    let ticket = param(&back, "ticket").unwrap();
    app.exec("UPDATE login_tickets SET expires_at = created_at")
        .await;
    let body = redeem(&app, &ticket).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(app.count("sessions").await, 0);
    for bad in ["", "x", &"y".repeat(1000)] {
        let body = redeem(&app, bad).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }
}
