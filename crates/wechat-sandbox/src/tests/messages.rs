//! The faked message APIs, called over the sandbox's router as the service calls them.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::demo_apps;
use crate::messages::{TEMPLATE_MP_ORDER, TEMPLATE_OA_NOTICE, TEMPLATE_SHIPPED};
use crate::{Sandbox, derive_id};

pub(super) const OA: &str = "wxsandboxofficial1";
pub(super) const MP: &str = "wxsandboxminiapp01";

pub(super) async fn call(
    sb: &Sandbox,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let response = sb.router().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub(super) async fn post(sb: &Sandbox, uri: &str, body: Value) -> (u16, Value) {
    call(sb, "POST", uri, Some(body.to_string())).await
}

pub(super) async fn access_token(sb: &Sandbox, app_id: &str) -> String {
    let body = json!({
        "grant_type": "client_credential",
        "appid": app_id,
        "secret": format!("sandbox-secret-{app_id}"),
    });
    let (_, answer) = post(sb, "/cgi-bin/stable_token", body).await;
    answer["access_token"].as_str().unwrap().to_owned()
}

/// Calls a send API; WeChat's answer (always HTTP 200).
pub(super) async fn send(sb: &Sandbox, api: &str, token: &str, body: Value) -> Value {
    let uri = format!("/cgi-bin/message/{api}?access_token={token}");
    let (status, answer) = post(sb, &uri, body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

pub(super) fn shipped(openid: &str) -> Value {
    json!({
        "touser": openid,
        "template_id": TEMPLATE_SHIPPED,
        "url": "https://shop.example.com/orders/1",
        "data": { "thing1": { "value": "您的订单已发货" }, "time2": { "value": "15:01" } },
    })
}

pub(super) fn notice(openid: &str) -> Value {
    json!({
        "touser": openid,
        "template_id": TEMPLATE_OA_NOTICE,
        "data": { "thing1": { "value": "会员到期" }, "date2": { "value": "2026-11-29" } },
    })
}

pub(super) fn order(openid: &str) -> Value {
    json!({
        "touser": openid,
        "template_id": TEMPLATE_MP_ORDER,
        "page": "pages/order/index?id=1",
        "miniprogram_state": "formal",
        "data": { "thing1": { "value": "咖啡" }, "amount2": { "value": "¥18.00" } },
    })
}

pub(super) async fn consent(
    sb: &Sandbox,
    app_id: &str,
    user: &str,
    template: &str,
    extra: Value,
) -> Value {
    let mut body = json!({ "appId": app_id, "user": user, "templateId": template });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let (status, answer) = post(sb, "/consents", body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

pub(super) async fn listed(sb: &Sandbox, query: &str) -> Value {
    let (status, list) = call(sb, "GET", &format!("/messages?{query}"), None).await;
    assert_eq!(status, 200, "{list}");
    list
}

#[tokio::test]
async fn template_messages_go_to_followers_with_data_that_fits() {
    let sb = Sandbox::new(&demo_apps());
    let token = access_token(&sb, OA).await;
    let alice = derive_id("openid", OA, "alice");

    // alice does not follow the OA yet: 43004.
    let answer = send(&sb, "template/send", &token, shipped(&alice)).await;
    assert_eq!(answer["errcode"], 43004, "{answer}");
    sb.add_follower(OA, "alice").unwrap();

    // An unknown template, or a subscribe template: 40037.
    for template in ["nope", TEMPLATE_OA_NOTICE] {
        let mut body = shipped(&alice);
        body["template_id"] = template.into();
        assert_eq!(
            send(&sb, "template/send", &token, body).await["errcode"],
            40037
        );
    }
    // Data that breaks the keyword rules: 47003, saying which keyword.
    let mut body = shipped(&alice);
    body["data"]["thing1"]["value"] = "字".repeat(21).into();
    let answer = send(&sb, "template/send", &token, body).await;
    assert_eq!(answer["errcode"], 47003);
    let errmsg = answer["errmsg"].as_str().unwrap();
    assert!(
        errmsg.starts_with("argument invalid! data.thing1"),
        "{errmsg}"
    );
    // A malformed body: 47001, not an HTTP error.
    for bad in ["{\"touser\": ", "[1, 2]", "{\"touser\": 7}"] {
        let uri = format!("/cgi-bin/message/template/send?access_token={token}");
        let (status, answer) = call(&sb, "POST", &uri, Some(bad.into())).await;
        assert_eq!(
            (status, answer["errcode"].as_i64()),
            (200, Some(47001)),
            "{bad}"
        );
    }
    // No token: 41001; a Mini Program's token: 48001.
    assert_eq!(
        send(&sb, "template/send", "", shipped(&alice)).await["errcode"],
        41001
    );
    let mp_token = access_token(&sb, MP).await;
    assert_eq!(
        send(&sb, "template/send", &mp_token, shipped(&alice)).await["errcode"],
        48001
    );

    let first = send(&sb, "template/send", &token, shipped(&alice)).await;
    assert_eq!(first["errcode"], 0, "{first}");
    assert_eq!(first["errmsg"], "ok");
    let second = send(&sb, "template/send", &token, shipped(&alice)).await;
    assert!(second["msgid"].as_u64().unwrap() > first["msgid"].as_u64().unwrap());

    let list = listed(&sb, &format!("appId={OA}")).await;
    assert_eq!(
        (list["total"].as_u64(), list["recipients"].as_u64()),
        (Some(2), Some(1))
    );
    let m = &list["messages"][0];
    assert_eq!(m["msgid"], first["msgid"]);
    assert_eq!(m["api"], "template_send");
    assert_eq!(m["touser"], alice.as_str());
    assert_eq!(m["templateId"], TEMPLATE_SHIPPED);
    assert_eq!(m["data"]["thing1"], "您的订单已发货");
    assert_eq!(m["url"], "https://shop.example.com/orders/1");
    assert_eq!(m["status"], "success");
    assert!(m["sentAt"].as_i64().unwrap() > 1_600_000_000);
    let last = listed(&sb, &format!("appId={OA}&limit=1")).await;
    assert_eq!(last["messages"][0]["msgid"], second["msgid"]);
    let none = listed(&sb, &format!("appId={OA}&touser=obob")).await;
    assert_eq!(
        (
            none["total"].as_u64(),
            none["messages"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );

    // Every call with a good token counted, refused ones too.
    assert_eq!(sb.message_calls(OA).template_send, 9);
    let (_, stats) = call(&sb, "GET", &format!("/stats?appId={OA}"), None).await;
    assert_eq!(stats["messageCalls"]["templateSend"], 9, "{stats}");

    // A repeated client_msg_id within ten minutes sends nothing again.
    let mut body = shipped(&alice);
    body["client_msg_id"] = "order-1-shipped".into();
    let once = send(&sb, "template/send", &token, body.clone()).await;
    let again = send(&sb, "template/send", &token, body).await;
    assert_eq!(once["msgid"], again["msgid"]);
    assert_eq!(listed(&sb, &format!("appId={OA}")).await["total"], 3);
}

#[tokio::test]
async fn subscribe_notifications_need_a_consent_one_time_ones_are_spent() {
    let sb = Sandbox::new(&demo_apps());
    let token = access_token(&sb, OA).await;
    let bob = derive_id("openid", OA, "bob");

    assert_eq!(
        send(&sb, "subscribe/bizsend", &token, notice(&bob)).await["errcode"],
        43101
    );
    let answer = consent(&sb, OA, "bob", TEMPLATE_OA_NOTICE, json!({})).await;
    assert_eq!(answer["openid"], bob.as_str());
    assert_eq!(
        (answer["oneTime"].as_u64(), answer["longTerm"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(
        answer["pushed"],
        Value::Null,
        "no push target: nothing pushed"
    );
    // Bad data is refused before the consent is spent.
    let mut bad = notice(&bob);
    bad["data"]["date2"]["value"] = "someday".into();
    assert_eq!(
        send(&sb, "subscribe/bizsend", &token, bad).await["errcode"],
        47003
    );
    let sent = send(&sb, "subscribe/bizsend", &token, notice(&bob)).await;
    assert_eq!(sent["errcode"], 0, "{sent}");
    assert!(sent["msgid"].as_u64().is_some());
    assert_eq!(
        send(&sb, "subscribe/bizsend", &token, notice(&bob)).await["errcode"],
        43101
    );
    // A template message template is not a subscribe template.
    let mut body = notice(&bob);
    body["template_id"] = TEMPLATE_SHIPPED.into();
    assert_eq!(
        send(&sb, "subscribe/bizsend", &token, body).await["errcode"],
        40037
    );

    // A long-term consent is not spent; a reject clears it.
    consent(
        &sb,
        OA,
        "bob",
        TEMPLATE_OA_NOTICE,
        json!({ "longTerm": true }),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            send(&sb, "subscribe/bizsend", &token, notice(&bob)).await["errcode"],
            0
        );
    }
    let rejected = consent(
        &sb,
        OA,
        "bob",
        TEMPLATE_OA_NOTICE,
        json!({ "accept": false }),
    )
    .await;
    assert_eq!(rejected["longTerm"], false);
    assert_eq!(
        send(&sb, "subscribe/bizsend", &token, notice(&bob)).await["errcode"],
        43101
    );
    // In the settings page a reject clears the one-time consents too.
    consent(&sb, OA, "bob", TEMPLATE_OA_NOTICE, json!({})).await;
    let change = json!({ "accept": false, "change": true });
    let cleared = consent(&sb, OA, "bob", TEMPLATE_OA_NOTICE, change).await;
    assert_eq!(cleared["oneTime"], 0);

    let list = listed(&sb, &format!("appId={OA}&touser={bob}")).await;
    assert_eq!(list["total"], 4);
    assert_eq!(list["messages"][0]["api"], "bizsend");
    assert_eq!(sb.message_calls(OA).bizsend, 9);
}

#[tokio::test]
async fn mini_program_subscribe_messages_need_a_mini_program_token() {
    let sb = Sandbox::new(&demo_apps());
    let carol = derive_id("openid", MP, "carol");
    consent(&sb, MP, "carol", TEMPLATE_MP_ORDER, json!({})).await;
    let oa_token = access_token(&sb, OA).await;
    let answer = send(&sb, "subscribe/send", &oa_token, order(&carol)).await;
    assert_eq!(answer["errcode"], 48001, "{answer}");
    let mp_token = access_token(&sb, MP).await;
    let mut bad = order(&carol);
    bad["miniprogram_state"] = "beta".into();
    assert_eq!(
        send(&sb, "subscribe/send", &mp_token, bad).await["errcode"],
        47003
    );
    let sent = send(&sb, "subscribe/send", &mp_token, order(&carol)).await;
    assert_eq!(sent["errcode"], 0, "{sent}");
    let list = listed(&sb, &format!("appId={MP}")).await;
    assert_eq!(list["messages"][0]["page"], "pages/order/index?id=1");
    assert_eq!(list["messages"][0]["api"], "subscribe_send");
    // Each Mini Program has the demo template, with consents of its own.
    let other = access_token(&sb, "wxsandboxminiapp02").await;
    let dave = derive_id("openid", "wxsandboxminiapp02", "dave");
    assert_eq!(
        send(&sb, "subscribe/send", &other, order(&dave)).await["errcode"],
        43101
    );
}

#[tokio::test]
async fn the_daily_quota_is_kept_per_app_and_api() {
    let sb = Sandbox::new(&demo_apps());
    let token = access_token(&sb, OA).await;
    sb.add_follower(OA, "alice").unwrap();
    let alice = derive_id("openid", OA, "alice");
    let (status, settings) = post(
        &sb,
        "/message-settings",
        json!({ "appId": OA, "dailyQuota": 2 }),
    )
    .await;
    assert_eq!((status, settings["dailyQuota"].as_u64()), (200, Some(2)));
    for _ in 0..2 {
        assert_eq!(
            send(&sb, "template/send", &token, shipped(&alice)).await["errcode"],
            0
        );
    }
    let answer = send(&sb, "template/send", &token, shipped(&alice)).await;
    assert_eq!(answer["errcode"], 45009, "{answer}");
    // Another API has a quota of its own.
    assert_eq!(
        send(&sb, "subscribe/bizsend", &token, notice(&alice)).await["errcode"],
        43101
    );
    // The next day.
    sb.advance_clock(Duration::from_secs(86_400)).unwrap();
    let token = access_token(&sb, OA).await;
    assert_eq!(
        send(&sb, "template/send", &token, shipped(&alice)).await["errcode"],
        0
    );
}
