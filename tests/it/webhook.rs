//! Stories: WeChat calls the webhook. The URL verification answers only with a valid signature;
//! alice, known from a Mini Program, follows the OA and becomes one user with both identities
//! (in every push mode); a push that does not check out is refused and nothing is stored;
//! WeChat's retries are stored once; other events are stored and acknowledged.

use serde_json::json;
use wechat_identity::config::{SANDBOX_ENCODING_AES_KEY, SANDBOX_WEBHOOK_TOKEN};
use wechat_identity::wechat::webhook::{self, MsgCrypt};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    the_url_verification_echoes_only_with_a_valid_signature,
    alice_follows_the_oa_and_is_one_user_in_every_push_mode,
    a_push_that_does_not_check_out_is_refused_and_nothing_is_stored,
    retries_are_stored_once_and_other_events_are_acknowledged,
    an_app_that_requires_encryption_refuses_plaintext,
    a_slow_wechat_does_not_hold_up_the_answer,
);

async fn the_url_verification_echoes_only_with_a_valid_signature(backend: Backend) {
    let app = TestApp::start(backend).await;
    let get = |query: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let res = app
                .http
                .get(format!("{}/wechat/{OA}/events", app.base))
                .query(&query)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let mut q = signed_query(0);
    q.push(("echostr", "4815162342".into()));
    assert_eq!(get(q.clone()).await, (200, "4815162342".into()));
    // A wrong signature, a stale timestamp, no signature: 401, no echo.
    let mut bad = q.clone();
    bad[0].1 = "0".repeat(40);
    assert_eq!(get(bad).await.0, 401);
    let mut stale = signed_query(3600);
    stale.push(("echostr", "x".into()));
    let (status, body) = get(stale).await;
    assert_eq!(status, 401);
    assert!(body.contains("limits.webhook_freshness_secs"), "{body}");
    assert_eq!(get(vec![("echostr", "x".into())]).await.0, 401);
    // An app we do not have.
    let res = app
        .http
        .get(format!("{}/wechat/wxnope/events", app.base))
        .query(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn alice_follows_the_oa_and_is_one_user_in_every_push_mode(backend: Backend) {
    let app = TestApp::start_driven(backend, plaintext_allowed).await;
    for (user, mode) in [
        ("alice", "safe"),
        ("bob", "compatible"),
        ("carol", "plaintext"),
    ] {
        let login = app.login_mp(MP_A, user).await;
        let unionid = login["user"]["unionid"].as_str().unwrap().to_owned();
        let (status, followed) = app
            .sandbox_post(
                "/follow",
                json!({ "appId": OA, "user": user, "mode": mode }),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(followed["pushed"]["status"], 200, "{mode}: {followed}");
        assert_eq!(followed["pushed"]["body"], "success");
        app.run_jobs().await;
        let one = app.user_by_unionid(&unionid).await;
        assert_eq!(one["officialAccountIdentities"][0]["subscribed"], true);
        assert_eq!(one["id"], login["user"]["id"], "{mode}");
        assert_eq!(
            one["officialAccountIdentities"][0]["openid"],
            followed["openid"]
        );

        // She unfollows: the identity stays, marked unsubscribed.
        app.sandbox_post(
            "/unfollow",
            json!({ "appId": OA, "user": user, "mode": mode }),
        )
        .await;
        app.run_jobs().await;
        let left = app.user_by_unionid(&unionid).await;
        assert_eq!(left["officialAccountIdentities"][0]["subscribed"], false);
    }
    assert_eq!(
        app.count("webhook_events WHERE processed_at IS NULL").await,
        0
    );
    assert_eq!(app.count("webhook_events").await, 6);
}

async fn a_push_that_does_not_check_out_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::start_with(backend, plaintext_allowed).await;
    let xml = event_xml("oAAAAAAAAAAAAAAAAAAAAAAAAAAA", "subscribe", "");
    let before = app.written().await;

    // Plaintext with a wrong signature, or none (several SDKs skip it in plaintext: we never).
    let mut bad = signed_query(0);
    bad[0].1 = webhook::signature("another-token", &bad[1].1, &bad[2].1);
    assert_eq!(app.webhook_post(OA, &bad, xml.clone()).await.0, 401);
    assert_eq!(app.webhook_post(OA, &[], xml.clone()).await.0, 401);
    // Stale.
    assert_eq!(
        app.webhook_post(OA, &signed_query(-900), xml.clone())
            .await
            .0,
        401
    );

    // Safe mode: a good signature over a tampered ciphertext, a ciphertext for another app, a
    // wrong msg_signature.
    let crypt = MsgCrypt::new(SANDBOX_ENCODING_AES_KEY, OA).unwrap();
    let other = MsgCrypt::new(SANDBOX_ENCODING_AES_KEY, MP_A).unwrap();
    let good = crypt.encrypt(&xml, &[7; 16]);
    let mut tampered = good.clone().into_bytes();
    tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (encrypt, sign_it) in [
        (tampered, true),
        (other.encrypt(&xml, &[7; 16]), true),
        (good.clone(), false),
    ] {
        let mut q = signed_query(0);
        let msg_sig = if sign_it {
            webhook::msg_signature(SANDBOX_WEBHOOK_TOKEN, &q[1].1, &q[2].1, &encrypt)
        } else {
            "f".repeat(40)
        };
        q.push(("encrypt_type", "aes".into()));
        q.push(("msg_signature", msg_sig));
        let body = format!(
            "<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        );
        let (status, text) = app.webhook_post(OA, &q, body).await;
        assert_eq!(status, 401, "{text}");
    }
    // Signed but no WeChat message: 400.
    let (status, _) = app
        .webhook_post(OA, &signed_query(0), "<xml><Foo>1</Foo></xml>".into())
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .webhook_post(OA, &signed_query(0), "<!DOCTYPE x><xml/>".into())
        .await;
    assert_eq!(status, 400);
    assert_eq!(app.written().await, before);
}

async fn retries_are_stored_once_and_other_events_are_acknowledged(backend: Backend) {
    let app = TestApp::start_with(backend, plaintext_allowed).await;
    // WeChat retries the same template-result event three times.
    let xml = event_xml(
        "oBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        "TEMPLATESENDJOBFINISH",
        "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>",
    );
    let query = signed_query(0);
    for _ in 0..3 {
        let (status, body) = app.webhook_post(OA, &query, xml.clone()).await;
        assert_eq!((status, body.as_str()), (200, "success"));
    }
    assert_eq!(app.count("webhook_events").await, 1);
    // The same signed query with another body: a replay (plaintext signs no body).
    let forged = event_xml("oBBBBBBBBBBBBBBBBBBBBBBBBBBB", "unsubscribe", "");
    let (status, body) = app.webhook_post(OA, &query, forged).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(app.count("webhook_events").await, 1);
    // An event we do not know, and a Mini Program's message push: stored and acknowledged.
    let unknown = event_xml("oBBBBBBBBBBBBBBBBBBBBBBBBBBB", "some_new_event", "");
    assert_eq!(app.webhook_post(OA, &signed_query(0), unknown).await.0, 200);
    let (status, pushed) = app
        .sandbox_post(
            "/push",
            json!({ "appId": MP_A, "mode": "plaintext", "xml": "<xml><ToUserName><![CDATA[gh_mp]]></ToUserName><FromUserName><![CDATA[oCCCCCCCCCCCCCCCCCCCCCCCCCCC]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>23456</MsgId></xml>" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(pushed["body"], "success", "{pushed}");
    assert_eq!(app.count("webhook_events").await, 3);
    assert_eq!(
        app.count("webhook_events WHERE event = 'TEMPLATESENDJOBFINISH' AND dedupe_key = 'msgid:200163836'")
            .await,
        1
    );
}

async fn an_app_that_requires_encryption_refuses_plaintext(backend: Backend) {
    // The demo OA has an EncodingAESKey: plaintext is refused without saying so.
    let app = TestApp::start(backend).await;
    let xml = event_xml("oAAAAAAAAAAAAAAAAAAAAAAAAAAA", "subscribe", "");
    let (status, body) = app.webhook_post(OA, &signed_query(0), xml).await;
    assert_eq!(status, 401);
    assert!(body.contains("require_encryption"), "{body}");
    let (_, followed) = app
        .sandbox_post(
            "/follow",
            json!({ "appId": OA, "user": "dave", "mode": "safe" }),
        )
        .await;
    assert_eq!(followed["pushed"]["status"], 200, "{followed}");
}

async fn a_slow_wechat_does_not_hold_up_the_answer(backend: Backend) {
    let app = TestApp::start(backend).await;
    // user/info takes 4 s: the push is answered at once, the work is done later.
    app.fault(json!({ "path": "/cgi-bin/user/info", "delayMs": 4000 }))
        .await;
    let started = std::time::Instant::now();
    let (_, followed) = app
        .sandbox_post("/follow", json!({ "appId": OA, "user": "erin" }))
        .await;
    assert_eq!(followed["pushed"]["body"], "success", "{followed}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the push took {:?}",
        started.elapsed()
    );
    let unionid = followed["unionid"].as_str().unwrap();
    app.wait_user(unionid, |u| {
        u["officialAccountIdentities"][0]["subscribed"] == true
    })
    .await;
}

/// The demo OA accepts plaintext pushes too (as an app configured with
/// `require_encryption = false`).
fn plaintext_allowed(c: &mut wechat_identity::config::Config) {
    c.apps = wechat_identity::config::sandbox_demo_apps();
    for a in &mut c.apps {
        a.require_encryption = Some(false);
    }
}
