//! Stories: somebody captured a signed plaintext push (its signature covers the token,
//! timestamp and nonce, not the body nor the app) and sends its query again with a body of
//! their own — to the same instance, to another instance, after a restart, and to another app
//! that shares the token. Every one is refused and nothing is stored; WeChat's own retry (same
//! query, same body, same app) is still accepted wherever it lands. Concurrent first sightings
//! of one query with different bodies let exactly one through. The purge job deletes the
//! signed queries whose window has passed.

use std::time::Duration;

use wechat_identity::config::{AppConfig, Config, Secret};

use crate::common::*;
use crate::on_both_backends;
use wechat_identity::app::JobRunner;

on_both_backends!(
    a_replayed_query_with_a_forged_body_is_refused_everywhere,
    concurrent_first_sightings_of_one_query_let_one_body_through,
    signed_queries_are_purged_once_expired,
);

/// A second Official Account with the same webhook token as the demo OA.
const OA2: &str = "wxsandboxofficial2";

/// Plaintext pushes allowed, and a second OA sharing the demo OA's token.
fn two_oas_sharing_a_token(c: &mut Config) {
    c.apps = wechat_identity::config::sandbox_demo_apps();
    for a in &mut c.apps {
        a.require_encryption = Some(false);
    }
    let first = c.apps.iter().find(|a| a.app_id.as_str() == OA).unwrap();
    let second = AppConfig {
        app_id: wechat_identity::types::AppId::new(OA2),
        name: "Second Official Account".into(),
        ..first.clone()
    };
    assert_eq!(
        second.token.as_ref().map(|t| t.expose().to_owned()),
        first.token.as_ref().map(|t| t.expose().to_owned())
    );
    c.apps.push(second);
}

/// Another instance of `a`'s deployment: same database, same key for secrets at rest.
fn same_deployment(a: &TestApp) -> impl FnOnce(&mut Config) + use<> {
    let url = a.database_url.clone();
    let key = std::fs::read_to_string(a.dir.path().join("session-key-encryption.key")).unwrap();
    move |c: &mut Config| {
        two_oas_sharing_a_token(c);
        c.database_url = Some(Secret::new(url));
        c.wechat.session_key_encryption_key = Some(Secret::new(key));
    }
}

/// A refused replay: 401, and says so.
fn assert_replay_refused((status, body): (u16, String), what: &str) {
    assert_eq!(status, 401, "{what}: {body}");
    assert!(body.contains("replay"), "{what}: {body}");
}

async fn a_replayed_query_with_a_forged_body_is_refused_everywhere(backend: Backend) {
    let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
    // The instances run no jobs by themselves: nothing but a push writes while the test looks.
    let a_stops = async {
        let _ = a_stopped.await;
    };
    let mut a = TestApp::launch(backend, two_oas_sharing_a_token, a_stops, JobRunner::Caller).await;
    let b = TestApp::start_driven(backend, same_deployment(&a)).await;
    let openid = "oDDDDDDDDDDDDDDDDDDDDDDDDDDD";
    let real = event_xml(
        openid,
        "VIEW",
        "<EventKey><![CDATA[https://h5.example.com/]]></EventKey>",
    );
    let forged = event_xml(openid, "unsubscribe", "");
    let query = signed_query(0);

    // WeChat's push, to instance A.
    assert_eq!(
        a.webhook_post(OA, &query, real.clone()).await,
        (200, "success".into())
    );
    a.run_jobs().await;
    assert_eq!(
        a.count("webhook_events WHERE processed_at IS NULL").await,
        0,
        "the push was processed"
    );
    let before = a.written().await;

    // The same query with a forged body: on A, on B, and on the other app (on either body).
    assert_replay_refused(
        a.webhook_post(OA, &query, forged.clone()).await,
        "same instance",
    );
    assert_replay_refused(
        b.webhook_post(OA, &query, forged.clone()).await,
        "other instance",
    );
    assert_replay_refused(
        b.webhook_post(OA2, &query, forged.clone()).await,
        "other app",
    );
    assert_replay_refused(
        a.webhook_post(OA2, &query, real.clone()).await,
        "other app, same body",
    );
    // WeChat retrying, through B: accepted, stored once.
    assert_eq!(
        b.webhook_post(OA, &query, real.clone()).await,
        (200, "success".into())
    );
    assert_eq!(
        a.written().await,
        before,
        "a refused push or a retry stored something"
    );

    // A restart: A stops, a new instance starts on the same database.
    stop_a.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), &mut a.running.handle)
        .await
        .expect("A stops")
        .unwrap()
        .unwrap();
    let c = TestApp::start_driven(backend, same_deployment(&a)).await;
    assert_replay_refused(
        c.webhook_post(OA, &query, forged.clone()).await,
        "after a restart",
    );
    assert_replay_refused(
        c.webhook_post(OA2, &query, forged).await,
        "other app, after a restart",
    );
    assert_eq!(
        c.webhook_post(OA, &query, real.clone()).await,
        (200, "success".into())
    );
    assert_eq!(
        a.written().await,
        before,
        "a refused push or a retry stored something"
    );
    assert_eq!(a.count("webhook_events").await, 1);

    // The second app does take pushes of its own: the refusals above were replays.
    assert_eq!(
        c.webhook_post(OA2, &signed_query(0), real).await,
        (200, "success".into())
    );
    assert_eq!(a.count("webhook_events").await, 2);
    assert_eq!(a.count("webhook_signed_queries").await, 2);
}

async fn concurrent_first_sightings_of_one_query_let_one_body_through(backend: Backend) {
    let a = TestApp::start_with(backend, two_oas_sharing_a_token).await;
    let b = TestApp::start_with(backend, same_deployment(&a)).await;
    let query = signed_query(0);
    // Twelve different bodies under one signed query, at once, half to each instance, half to
    // each app.
    let pushes = (0..12).map(|i| {
        let (instance, app_id) = match i % 4 {
            0 => (&a, OA),
            1 => (&b, OA),
            2 => (&a, OA2),
            _ => (&b, OA2),
        };
        let body = event_xml(&format!("o{:0>27}", i), "VIEW", "");
        let query = &query;
        async move { instance.webhook_post(app_id, query, body).await }
    });
    let answers = futures_util::future::join_all(pushes).await;
    let accepted = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(accepted, 1, "{answers:?}");
    for answer in answers.into_iter().filter(|(status, _)| *status != 200) {
        assert_replay_refused(answer, "a concurrent first sighting");
    }
    assert_eq!(a.count("webhook_events").await, 1);
    assert_eq!(a.count("webhook_signed_queries").await, 1);
}

async fn signed_queries_are_purged_once_expired(backend: Backend) {
    let app = TestApp::start_driven(backend, two_oas_sharing_a_token).await;
    let xml = event_xml("oEEEEEEEEEEEEEEEEEEEEEEEEEEE", "VIEW", "");
    let (old, kept) = (signed_query(0), signed_query(0));
    assert_eq!(app.webhook_post(OA, &old, xml.clone()).await.0, 200);
    assert_eq!(app.webhook_post(OA, &kept, xml).await.0, 200);
    // Time passes for one of them: its timestamp is long out of the window.
    app.exec(&format!(
        "UPDATE webhook_signed_queries SET expires_at = '2000-01-01 00:00:00' WHERE nonce = '{}'",
        old[2].1
    ))
    .await;
    assert_eq!(app.count("webhook_signed_queries").await, 2);
    // The purge job's next run.
    app.run_jobs_after_waits().await;
    assert_eq!(
        app.count("webhook_signed_queries").await,
        1,
        "the expired signed query was not purged"
    );
    let left = format!("webhook_signed_queries WHERE nonce = '{}'", kept[2].1);
    assert_eq!(app.count(&left).await, 1);
}
