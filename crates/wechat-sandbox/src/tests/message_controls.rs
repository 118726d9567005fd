//! The message controls: bounded input, the bounded list, and the pushes WeChat makes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wechat_client::messages::{Notice, notices};
use wechat_client::webhook::{MsgCrypt, parse_fields};

use super::messages::{MP, OA, access_token, call, consent, listed, order, post, send, shipped};
use crate::messages::{MAX_LIST_LIMIT, TEMPLATE_MP_ORDER, TEMPLATE_OA_NOTICE, TEMPLATE_SHIPPED};
use crate::{DEMO_ENCODING_AES_KEY, Sandbox, demo_apps, derive_id};

#[tokio::test]
async fn the_message_controls_refuse_unbounded_input() {
    let sb = Sandbox::new(&demo_apps());
    let field = |key: &str, ty: &str| json!({ "key": key, "type": ty });
    let fields = |n: usize| {
        (0..n)
            .map(|i| field(&format!("thing{i}"), "THING"))
            .collect::<Vec<_>>()
    };
    let template = |app: &str, id: &str, kind: &str, fields: Vec<Value>| json!({ "appId": app, "templateId": id, "kind": kind, "fields": fields });
    let refused = [
        ("/templates", template(OA, "", "template", fields(1))),
        (
            "/templates",
            template(OA, &"t".repeat(65), "template", fields(1)),
        ),
        (
            "/templates",
            template(OA, "has space", "template", fields(1)),
        ),
        ("/templates", template(OA, "t1", "other", fields(1))),
        ("/templates", template(OA, "t1", "template", fields(21))),
        ("/templates", template(OA, "t1", "template", vec![])),
        (
            "/templates",
            template(OA, "t1", "template", vec![field(&"k".repeat(33), "THING")]),
        ),
        (
            "/templates",
            template(OA, "t1", "template", vec![field("thing1", "THINGS")]),
        ),
        (
            "/templates",
            template(
                OA,
                "t1",
                "template",
                vec![field("a", "THING"), field("a", "TIME")],
            ),
        ),
        ("/templates", template(MP, "t1", "template", fields(1))),
        (
            "/templates",
            template("wxunknown", "t1", "subscribe", fields(1)),
        ),
        (
            "/consents",
            json!({ "appId": OA, "user": "bob", "templateId": TEMPLATE_SHIPPED }),
        ),
        (
            "/consents",
            json!({ "appId": OA, "user": "no spaces", "templateId": TEMPLATE_OA_NOTICE }),
        ),
        (
            "/consents",
            json!({ "appId": OA, "user": "bob", "templateId": "x]]>" }),
        ),
        (
            "/message-settings",
            json!({ "appId": OA, "block": (0..1001).map(|i| format!("u{i}")).collect::<Vec<_>>() }),
        ),
        (
            "/message-settings",
            json!({ "appId": OA, "block": ["Not OK"] }),
        ),
        (
            "/message-settings",
            json!({ "appId": "wxunknown", "pushEvents": false }),
        ),
    ];
    for (path, body) in refused {
        let (status, answer) = post(&sb, path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{path}: {answer}");
    }
    let too_many = format!("/messages?appId={OA}&limit={}", MAX_LIST_LIMIT + 1);
    assert_eq!(call(&sb, "GET", &too_many, None).await.0, 400);
    assert_eq!(
        call(&sb, "GET", "/messages?appId=wxunknown", None).await.0,
        400
    );

    // An app holds at most 100 templates (2 demo ones, 98 more); replacing one is fine.
    for i in 0..98 {
        let (status, _) = post(
            &sb,
            "/templates",
            template(OA, &format!("t{i}"), "subscribe", fields(2)),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _) = post(
        &sb,
        "/templates",
        template(OA, "t98", "subscribe", fields(1)),
    )
    .await;
    assert_eq!(status, 400);
    let (status, answer) = post(&sb, "/templates", template(OA, "t0", "template", fields(1))).await;
    assert_eq!(
        (status, answer["replaced"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );
}

#[tokio::test]
async fn the_oldest_messages_are_dropped_and_still_counted() {
    let sb = Sandbox::new(&demo_apps());
    sb.set_max_messages(3);
    let token = access_token(&sb, OA).await;
    let mut msgids = Vec::new();
    for i in 0..5 {
        sb.add_follower(OA, &format!("p{i}")).unwrap();
        let openid = derive_id("openid", OA, &format!("p{i}"));
        msgids.push(send(&sb, "template/send", &token, shipped(&openid)).await["msgid"].clone());
    }
    let list = listed(&sb, &format!("appId={OA}&limit=10")).await;
    assert_eq!(
        (list["total"].as_u64(), list["recipients"].as_u64()),
        (Some(5), Some(5))
    );
    let kept: Vec<Value> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msgid"].clone())
        .collect();
    assert_eq!(kept, msgids[2..]);
}

/// The pushes a fake service received: (path, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn fake_service(sb: &Sandbox) -> Received {
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/wechat/{app}/events",
        axum::routing::post(move |uri: axum::http::Uri, body: String| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push((uri.path().to_owned(), body));
                "success"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sb.set_push_target(&format!("http://{}", listener.local_addr().unwrap()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    received
}

/// Waits for the `n`th push; its XML (decrypted when safe mode encrypted it).
async fn pushed(received: &Received, n: usize) -> String {
    for _ in 0..200 {
        if let Some((path, body)) = received.lock().unwrap().get(n).cloned() {
            let fields = parse_fields(&body).unwrap();
            let Some(encrypt) = fields.get("Encrypt") else {
                return body;
            };
            let app_id = path.split('/').nth(2).unwrap();
            let crypt = MsgCrypt::new(DEMO_ENCODING_AES_KEY, app_id).unwrap();
            return crypt.decrypt(encrypt).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("push {n} never came");
}

#[tokio::test]
async fn delivery_results_and_consents_are_pushed_like_wechat() {
    let sb = Sandbox::new(&demo_apps());
    let received = fake_service(&sb).await;
    let token = access_token(&sb, OA).await;
    sb.add_follower(OA, "erin").unwrap();
    let erin = derive_id("openid", OA, "erin");
    let (status, _) = post(
        &sb,
        "/message-settings",
        json!({ "appId": OA, "block": ["erin"] }),
    )
    .await;
    assert_eq!(status, 200);
    let sent = send(&sb, "template/send", &token, shipped(&erin)).await;
    let xml = pushed(&received, 0).await;
    assert!(
        xml.contains(&format!("<FromUserName><![CDATA[{erin}]]></FromUserName>")),
        "{xml}"
    );
    assert_eq!(
        notices(&parse_fields(&xml).unwrap()).unwrap(),
        vec![Notice::TemplateFinished {
            msg_id: sent["msgid"].to_string(),
            status: "failed:user block".into()
        }]
    );

    let answer = consent(&sb, MP, "erin", TEMPLATE_MP_ORDER, json!({})).await;
    assert_eq!(answer["pushed"]["status"], 200, "{answer}");
    let xml = pushed(&received, 1).await;
    assert_eq!(
        notices(&parse_fields(&xml).unwrap()).unwrap(),
        vec![Notice::Consent {
            template_id: TEMPLATE_MP_ORDER.into(),
            accepted: true,
            change: false
        }]
    );
    let mp_token = access_token(&sb, MP).await;
    let erin_mp = derive_id("openid", MP, "erin");
    let sent = send(&sb, "subscribe/send", &mp_token, order(&erin_mp)).await;
    let xml = pushed(&received, 2).await;
    assert_eq!(
        notices(&parse_fields(&xml).unwrap()).unwrap(),
        vec![Notice::SubscribeSent {
            template_id: TEMPLATE_MP_ORDER.into(),
            msg_id: sent["msgid"].to_string(),
            error_code: 0,
            status: "success".into()
        }]
    );

    // With pushes turned off, nothing more comes.
    let off = json!({ "appId": OA, "pushEvents": false });
    assert_eq!(post(&sb, "/message-settings", off).await.0, 200);
    send(&sb, "template/send", &token, shipped(&erin)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(received.lock().unwrap().len(), 3);
}
