//! The browser's side of the server-driven logins (Official Account and website): a client
//! that follows no redirect, each hop of a flow, the ticket's redemption, and the story both
//! flows run (a login finishes only in the browser that started it).

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use super::{OA, TestApp};

/// A client that does not follow redirects, so each hop can be checked.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

/// A GET carrying a cookie (`name=value`).
pub async fn get_with(client: &reqwest::Client, url: &str, cookie: &str) -> reqwest::Response {
    client.get(url).header(COOKIE, cookie).send().await.unwrap()
}

/// Starts a login at `/authorize`: WeChat's URL, and the cookie (`name=value`) it set.
pub async fn start(client: &reqwest::Client, url: &str) -> (String, String) {
    start_in(client, url, &OA_FLOW).await
}

/// [`start`] in `flow`.
pub async fn start_in(client: &reqwest::Client, url: &str, flow: &Flow) -> (String, String) {
    let res = get(client, url).await;
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        cookie.contains(&format!("Path=/auth/{}/", flow.path)),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    (location(&res), pair)
}

/// Approves on the sandbox's WeChat page as `user`; returns our callback URL with the code.
pub async fn approve(client: &reqwest::Client, to_wechat: &str, user: &str) -> String {
    let url = format!(
        "{}&user={user}&action=allow",
        to_wechat.trim_end_matches("#wechat_redirect")
    );
    location(&get(client, &url).await)
}

pub fn location(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::FOUND, "a redirect");
    res.headers()[LOCATION].to_str().unwrap().to_owned()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn landing(app: &TestApp) -> String {
    format!("{}/sandbox/login-demo", app.base)
}

/// A server-driven flow: our routes' path segment, its app, and WeChat's page it goes to.
pub struct Flow {
    pub path: &'static str,
    pub app_id: &'static str,
    pub wechat_page: &'static str,
}

pub const OA_FLOW: Flow = Flow {
    path: "official-account",
    app_id: OA,
    wechat_page: "connect/oauth2/authorize",
};

pub fn start_url(app: &TestApp, scope: &str, return_to: &str) -> String {
    flow_start_url(app, &OA_FLOW, Some(scope), return_to)
}

pub fn flow_start_url(app: &TestApp, flow: &Flow, scope: Option<&str>, return_to: &str) -> String {
    let mut url = reqwest::Url::parse(&format!(
        "{}/auth/{}/{}/authorize",
        app.base, flow.path, flow.app_id
    ))
    .unwrap();
    if let Some(scope) = scope {
        url.query_pairs_mut().append_pair("scope", scope);
    }
    url.query_pairs_mut().append_pair("returnTo", return_to);
    url.to_string()
}

/// Runs the browser's hops up to our callback's redirect: authorize → WeChat's page → approve →
/// callback. Returns the callback's `Location`.
pub async fn round_trip(app: &TestApp, scope: &str, user: &str, action: &str) -> String {
    flow_round_trip(app, &OA_FLOW, Some(scope), user, action).await
}

/// [`round_trip`] through `flow`, with `scope` if given (else the flow's default).
pub async fn flow_round_trip(
    app: &TestApp,
    flow: &Flow,
    scope: Option<&str>,
    user: &str,
    action: &str,
) -> String {
    let client = browser();
    let start = flow_start_url(app, flow, scope, &landing(app));
    let (to_wechat, cookie) = start_in(&client, &start, flow).await;
    assert!(to_wechat.starts_with(&format!(
        "{}/sandbox/wechat/{}?appid={}&redirect_uri=",
        app.base, flow.wechat_page, flow.app_id
    )));
    assert!(to_wechat.ends_with("#wechat_redirect"));
    let redirect_uri = param(&to_wechat, "redirect_uri").unwrap();
    assert_eq!(
        redirect_uri,
        format!("{}/auth/{}/{}/callback", app.base, flow.path, flow.app_id)
    );
    // The page asks who is using WeChat; the person approves (or not).
    let page = get(&client, &to_wechat).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("id=allow"));
    let choice = format!(
        "{}&user={user}&action={action}",
        to_wechat.trim_end_matches("#wechat_redirect")
    );
    let to_callback = location(&get(&client, &choice).await);
    assert!(to_callback.starts_with(&redirect_uri));
    let res = get_with(&client, &to_callback, &cookie).await;
    let cleared = res.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.contains("Max-Age=0"),
        "the binding cookie is dropped: {cleared}"
    );
    location(&res)
}

pub async fn redeem(app: &TestApp, ticket: &str) -> Value {
    redeem_with(app, ticket, None).await
}

pub async fn redeem_with(app: &TestApp, ticket: &str, verifier: Option<&str>) -> Value {
    app.gql(
        None,
        "mutation($t: String!, $v: String) { redeemLoginTicket(ticket: $t, codeVerifier: $v) {
            accessToken refreshToken newUser user { id unionid nickname } } }",
        json!({ "t": ticket, "v": verifier }),
    )
    .await
}

/// In `flow`: a callback link handed to another browser (no cookie, another login's cookie, a
/// forged one) logs nobody in and spends nothing. `scopes`: the attacker's and the victim's.
pub async fn finishes_only_where_it_started(
    app: &TestApp,
    flow: &Flow,
    (attacker_scope, victim_scope): (Option<&str>, Option<&str>),
) {
    let client = browser();
    // The attacker starts a login and approves it with his own WeChat...
    let start = flow_start_url(app, flow, attacker_scope, &landing(app));
    let (to_wechat, _attacker_cookie) = start_in(&client, &start, flow).await;
    let to_callback = approve(&client, &to_wechat, "mallory").await;
    // ...and hands the callback link to the victim, whose browser has no cookie for it, or
    // only the cookie of a login of its own.
    let start = flow_start_url(app, flow, victim_scope, &landing(app));
    let (_, victim_cookie) = start_in(&client, &start, flow).await;
    for cookie in [
        None,
        Some(victim_cookie.as_str()),
        Some("wi_oa_0123456789abcdef=forged"),
    ] {
        let res = match cookie {
            Some(cookie) => get_with(&client, &to_callback, cookie).await,
            None => get(&client, &to_callback).await,
        };
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{cookie:?}");
        assert!(res.headers().get(LOCATION).is_none());
        assert!(res.text().await.unwrap().contains("another browser"));
    }
    assert!(
        app.written().await.is_empty(),
        "nothing logged in, nothing spent"
    );
}
