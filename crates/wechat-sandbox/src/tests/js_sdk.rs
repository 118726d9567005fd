//! The faked JS-SDK over the sandbox's router: `getticket` as WeChat answers it, and a page's
//! `wx.config` checked as WeChat's client checks it.

use std::time::Duration;

use serde_json::{Value, json};
use wechat_client::crypto::js_sdk_signature;

use super::messages::{MP, OA, access_token, call, post};
use crate::{App, Sandbox, demo_apps};

/// The demo apps, the Official Account with `h5.example.com` as its JS-safe domain.
fn sandbox() -> Sandbox {
    let apps: Vec<App> = demo_apps()
        .into_iter()
        .map(|mut app| {
            if app.app_id == OA {
                app.js_sdk_domains = vec!["H5.example.com".into()];
            }
            app
        })
        .collect();
    Sandbox::new(&apps)
}

async fn getticket(sb: &Sandbox, token: &str) -> Value {
    let uri = format!("/cgi-bin/ticket/getticket?access_token={token}&type=jsapi");
    let (status, answer) = call(sb, "GET", &uri, None).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn ticket_calls(sb: &Sandbox, app_id: &str) -> Value {
    let (_, stats) = call(sb, "GET", &format!("/stats?appId={app_id}"), None).await;
    stats["ticketCalls"].clone()
}

/// What `POST /js-sdk/verify` says of a config for `url` signed with `ticket` at `timestamp`.
async fn verify(sb: &Sandbox, ticket: &str, url: &str, signed_url: &str, timestamp: i64) -> Value {
    let nonce = "Wm3WZYTPz0wzccnW";
    let body = json!({
        "appId": OA,
        "url": url,
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": js_sdk_signature(ticket, nonce, timestamp, signed_url),
    });
    let (status, answer) = post(sb, "/js-sdk/verify", body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn one_ticket_per_official_account_until_it_expires() {
    let sb = sandbox();
    let token = access_token(&sb, OA).await;
    let first = getticket(&sb, &token).await;
    assert_eq!(first["errcode"], 0);
    assert_eq!(first["expires_in"], 7200);
    let ticket = first["ticket"].as_str().unwrap();
    // Asked again while it is valid: the same ticket, with what is left of its life.
    sb.advance_clock(Duration::from_secs(1000)).unwrap();
    let again = getticket(&sb, &token).await;
    assert_eq!(again["ticket"], ticket);
    assert_eq!(again["expires_in"], 6200);
    assert_eq!(ticket_calls(&sb, OA).await, 2);
    // Expired: a new one (the token, expired too, is refused first: 42001, not counted).
    sb.advance_clock(Duration::from_secs(6200)).unwrap();
    assert_eq!(getticket(&sb, &token).await["errcode"], 42001);
    assert_eq!(sb.jsapi_ticket(OA), None);
    let fresh = getticket(&sb, &access_token(&sb, OA).await).await;
    assert_ne!(fresh["ticket"], ticket);
    assert_eq!(ticket_calls(&sb, OA).await, 3);
    // Without a token, with a bad one, with a Mini Program's, or another type: refused.
    let (_, missing) = call(&sb, "GET", "/cgi-bin/ticket/getticket?type=jsapi", None).await;
    assert_eq!(missing["errcode"], 41001);
    assert_eq!(getticket(&sb, "nope").await["errcode"], 40001);
    assert_eq!(
        getticket(&sb, &access_token(&sb, MP).await).await["errcode"],
        48001
    );
    let uri = format!(
        "/cgi-bin/ticket/getticket?access_token={}&type=wx_card",
        access_token(&sb, OA).await
    );
    assert_eq!(call(&sb, "GET", &uri, None).await.1["errcode"], 40097);
}

#[tokio::test]
async fn a_config_passes_only_on_a_registered_domain_with_the_current_ticket() {
    let sb = sandbox();
    let ticket = getticket(&sb, &access_token(&sb, OA).await).await["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = sb.unix_now();
    let page = "https://h5.example.com/shop?id=1";
    assert_eq!(
        verify(&sb, &ticket, page, page, now).await,
        json!({ "ok": true })
    );
    // The fragment is not part of what is signed.
    let with_fragment = "https://h5.example.com/shop?id=1#/cart";
    assert_eq!(
        verify(&sb, &ticket, with_fragment, page, now).await["ok"],
        true
    );
    let signed_with_fragment = verify(&sb, &ticket, with_fragment, with_fragment, now).await;
    assert_eq!(signed_with_fragment["reason"], "invalid signature");
    // Another host, another ticket, a stale timestamp: refused, and says why.
    let elsewhere = "https://evil.example.com/shop?id=1";
    let refused = verify(&sb, &ticket, elsewhere, elsewhere, now).await;
    assert_eq!(refused["ok"], false);
    assert!(
        refused["reason"].as_str().unwrap().contains("domain"),
        "{refused}"
    );
    assert_eq!(verify(&sb, "forged", page, page, now).await["ok"], false);
    let stale = verify(&sb, &ticket, page, page, now - 3600).await;
    assert!(
        stale["reason"].as_str().unwrap().contains("timestamp"),
        "{stale}"
    );
    // Once the ticket expired, a config signed with it fails.
    sb.advance_clock(Duration::from_secs(7200)).unwrap();
    let later = sb.unix_now();
    assert_eq!(verify(&sb, &ticket, page, page, later).await["ok"], false);
}
