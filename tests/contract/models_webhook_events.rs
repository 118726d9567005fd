//! `webhook_events`: what WeChat pushed, stored once per (app, dedupe key), taken up pending in
//! the order it arrived, marked processed (or kept pending with its error), and purged once
//! processed and old.

use chrono::{Duration, NaiveDateTime};
use wechat_identity::db::models::webhook_event::WebhookEventRow;
use wechat_identity::types::{AppId, WebhookEventId};

use crate::common::seed::{self, app, openid};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    an_event_is_stored_once_per_app_and_dedupe_key,
    pending_events_are_taken_in_arrival_order_until_processed,
    processed_events_are_purged_once_old,
);

/// An event of `app_id` with WeChat's `key`, received `minutes_ago`.
fn event(app_id: &str, key: &str, minutes_ago: i64) -> WebhookEventRow {
    let at = seed::now_us() - Duration::minutes(minutes_ago);
    WebhookEventRow {
        id: WebhookEventId::generate(),
        app_id: app(app_id),
        dedupe_key: key.into(),
        msg_type: "event".into(),
        event: Some("subscribe".into()),
        openid: openid("o-1"),
        event_at: at,
        payload: format!("<xml><Key>{key}</Key></xml>"),
        received_at: at,
        processed_at: None,
        attempts: 0,
        error: None,
    }
}

async fn stored(ctx: &Ctx, app_id: &str) -> Vec<WebhookEventRow> {
    let mut conn = ctx.conn().await;
    WebhookEventRow::recent(&mut conn, &app(app_id), 100)
        .await
        .unwrap()
}

fn ids(rows: &[WebhookEventRow]) -> Vec<WebhookEventId> {
    rows.iter().map(|e| e.id.clone()).collect()
}

async fn an_event_is_stored_once_per_app_and_dedupe_key(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let first = event(OA, "o-1:1700000000:subscribe", 0);
    assert!(
        WebhookEventRow::insert_new(&mut conn, &first)
            .await
            .unwrap()
    );
    // WeChat's retry of the same push: a new row id, the same key.
    let retry = WebhookEventRow {
        payload: "<xml>retried</xml>".into(),
        ..event(OA, "o-1:1700000000:subscribe", 0)
    };
    assert!(
        !WebhookEventRow::insert_new(&mut conn, &retry)
            .await
            .unwrap()
    );
    let other_app = event(MP_A, "o-1:1700000000:subscribe", 0);
    assert!(
        WebhookEventRow::insert_new(&mut conn, &other_app)
            .await
            .unwrap()
    );

    let kept = stored(&ctx, OA).await;
    assert_eq!(ids(&kept), std::slice::from_ref(&first.id));
    let row = &kept[0];
    assert_eq!((&row.payload, &row.openid), (&first.payload, &first.openid));
    assert_eq!(
        (row.received_at, row.processed_at, row.attempts),
        (first.received_at, None, 0)
    );
    assert_eq!(ids(&stored(&ctx, MP_A).await), [other_app.id]);
    assert_eq!(ctx.count("webhook_events").await, 2);
}

async fn pending_events_are_taken_in_arrival_order_until_processed(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let (later, earlier, third) = (event(OA, "k2", 2), event(OA, "k1", 3), event(OA, "k3", 1));
    let elsewhere = event(MP_A, "k1", 5);
    for row in [&later, &earlier, &third, &elsewhere] {
        WebhookEventRow::insert_new(&mut conn, row).await.unwrap();
    }
    let oa = app(OA);
    let pending = async |limit: i64| {
        let mut conn = ctx.conn().await;
        ids(&WebhookEventRow::pending(&mut conn, &oa, limit)
            .await
            .unwrap())
    };
    let by_arrival = [earlier.id.clone(), later.id.clone(), third.id.clone()];
    assert_eq!(pending(10).await, by_arrival);
    assert_eq!(pending(1).await, by_arrival[..1]);
    let mut apps: Vec<AppId> = WebhookEventRow::apps_pending(&mut conn).await.unwrap();
    apps.sort();
    assert_eq!(apps, [app(MP_A), app(OA)]);

    // Processed: out of the pending list, one attempt recorded.
    let done_at = seed::now_us();
    WebhookEventRow::record_attempt(&mut conn, &earlier.id, Some(done_at), None)
        .await
        .unwrap();
    assert!(
        WebhookEventRow::is_processed(&mut conn, &earlier.id)
            .await
            .unwrap()
    );
    // Failed: still pending, in its place, with its error and attempts; given up on at last.
    for attempt in 1..=2 {
        let error = format!("user/info failed {attempt}");
        WebhookEventRow::record_attempt(&mut conn, &later.id, None, Some(&error))
            .await
            .unwrap();
    }
    assert!(
        !WebhookEventRow::is_processed(&mut conn, &later.id)
            .await
            .unwrap()
    );
    assert_eq!(pending(10).await, by_arrival[1..]);
    let failing = stored(&ctx, OA)
        .await
        .into_iter()
        .find(|e| e.id == later.id);
    let failing = failing.unwrap();
    assert_eq!(
        (
            failing.attempts,
            failing.error.as_deref(),
            failing.processed_at
        ),
        (2, Some("user/info failed 2"), None)
    );
    WebhookEventRow::record_attempt(&mut conn, &later.id, Some(done_at), Some("gave up"))
        .await
        .unwrap();
    WebhookEventRow::record_attempt(&mut conn, &third.id, Some(done_at), None)
        .await
        .unwrap();
    assert!(pending(10).await.is_empty());
    let done: Vec<(WebhookEventId, i32, Option<NaiveDateTime>)> = stored(&ctx, OA)
        .await
        .into_iter()
        .map(|e| (e.id, e.attempts, e.processed_at))
        .collect();
    assert_eq!(
        done,
        [
            (third.id.clone(), 1, Some(done_at)),
            (later.id.clone(), 3, Some(done_at)),
            (earlier.id.clone(), 1, Some(done_at)),
        ],
        "newest first"
    );
    let apps = WebhookEventRow::apps_pending(&mut conn).await.unwrap();
    assert_eq!(apps, [app(MP_A)]);
    let unknown = WebhookEventId::new("never-stored");
    assert!(
        WebhookEventRow::is_processed(&mut conn, &unknown)
            .await
            .unwrap(),
        "nothing to wait for"
    );
}

async fn processed_events_are_purged_once_old(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let (old_done, old_pending, new_done) =
        (event(OA, "k1", 90), event(OA, "k2", 80), event(OA, "k3", 5));
    for row in [&old_done, &old_pending, &new_done] {
        WebhookEventRow::insert_new(&mut conn, row).await.unwrap();
    }
    for id in [&old_done.id, &new_done.id] {
        WebhookEventRow::record_attempt(&mut conn, id, Some(seed::now_us()), None)
            .await
            .unwrap();
    }
    let keep_after = seed::now_us() - Duration::minutes(60);
    let purged = WebhookEventRow::purge_processed(&mut conn, keep_after).await;
    assert_eq!(purged.unwrap(), 1);
    let left = ids(&stored(&ctx, OA).await);
    assert_eq!(
        left,
        [new_done.id, old_pending.id.clone()],
        "a pending event stays however old"
    );
    // Purged, its key is free: the same push again would be stored as new.
    assert!(
        WebhookEventRow::insert_new(&mut conn, &event(OA, "k1", 0))
            .await
            .unwrap()
    );
    assert!(
        !WebhookEventRow::insert_new(&mut conn, &event(OA, "k2", 0))
            .await
            .unwrap()
    );
}
