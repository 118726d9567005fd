//! `messages`: WeChat's delivery reports, found by (app, msgid) or, without a msgid we know, by
//! the latest message to the person awaiting one; only a message awaiting a report changes.

use wechat_identity::db::models::message::MessageRow;
use wechat_identity::db::models::message::MessageStatus::{Delivered, Failed, Sent, Uncertain};
use wechat_identity::db::models::message_report::Delivery;
use wechat_identity::types::{OpenId, TemplateId, UserId, WechatMsgId};

use crate::common::seed::{self, app, openid};
use crate::common::*;
use crate::models_messages::{SUBSCRIBE_CHANNEL, TEMPLATE_CHANNEL, message, status_of};
use crate::on_both_backends;

on_both_backends!(delivery_reports_find_their_message);

/// WeChat's report on `msg_id` at `at`: delivered, or not (`error`: code, message).
fn report<'a>(
    msg_id: &'a WechatMsgId,
    at: chrono::NaiveDateTime,
    error: Option<(&'a str, &'a str)>,
) -> Delivery<'a> {
    Delivery { msg_id, at, error }
}

async fn delivery_reports_find_their_message(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let user = UserId::generate();
    let with_msgid = |msg_id: &str| MessageRow {
        wechat_msg_id: Some(WechatMsgId::new(msg_id)),
        ..message(&user, Sent)
    };
    let (a, b) = (with_msgid("w-1"), with_msgid("w-2"));
    MessageRow::insert(&mut conn, &a).await.unwrap();
    MessageRow::insert(&mut conn, &b).await.unwrap();
    let (at, w1, w2) = (
        seed::now_us(),
        WechatMsgId::new("w-1"),
        WechatMsgId::new("w-2"),
    );
    let found = MessageRow::delivered(&mut conn, &app(OA), &w1, report(&w1, at, None)).await;
    assert_eq!(found.unwrap(), Some(a.id.clone()));
    let other_app = MessageRow::delivered(&mut conn, &app(MP_A), &w1, report(&w1, at, None)).await;
    assert_eq!(other_app.unwrap(), None, "a msgid is per app");
    let blocked = Some(("USER_BLOCKED", "blocked"));
    MessageRow::delivered(&mut conn, &app(OA), &w2, report(&w2, at, blocked))
        .await
        .unwrap();
    let a_now = MessageRow::find(&mut conn, &a.id).await.unwrap().unwrap();
    assert_eq!((a_now.status, a_now.delivered_at), (Delivered, Some(at)));
    let b_now = MessageRow::find(&mut conn, &b.id).await.unwrap().unwrap();
    assert_eq!(
        (b_now.status, b_now.error_code.as_deref()),
        (Failed, Some("USER_BLOCKED"))
    );
    // A report changes only messages awaiting one (sending, sent, uncertain).
    assert!(
        !MessageRow::set_delivery(&mut conn, &b.id, report(&w1, at, None))
            .await
            .unwrap()
    );
    assert_eq!(status_of(&ctx, &b.id).await, Failed);

    // Without a known msgid: the latest message to the person on those channels (and that
    // template) still awaiting a report and without a msgid.
    let subscribe = |status| MessageRow {
        channel: Some(SUBSCRIBE_CHANNEL.into()),
        template_id: Some(TemplateId::new("tpl-2")),
        ..message(&user, status)
    };
    let (older, newer, refused) = (subscribe(Sent), subscribe(Uncertain), subscribe(Failed));
    for row in [&older, &newer, &refused] {
        MessageRow::insert(&mut conn, row).await.unwrap();
    }
    let (tpl2, o1) = (TemplateId::new("tpl-2"), openid("o-1"));
    let awaiting = async |template: &TemplateId, channel: &str, person: &OpenId| {
        let mut conn = ctx.conn().await;
        MessageRow::awaiting_report(&mut conn, &app(OA), person, &[channel], Some(template))
            .await
            .unwrap()
    };
    assert_eq!(
        awaiting(&tpl2, SUBSCRIBE_CHANNEL, &o1).await,
        Some(newer.id.clone())
    );
    assert_eq!(
        awaiting(&TemplateId::new("tpl-9"), SUBSCRIBE_CHANNEL, &o1).await,
        None
    );
    assert_eq!(awaiting(&tpl2, TEMPLATE_CHANNEL, &o1).await, None);
    assert_eq!(
        awaiting(&tpl2, SUBSCRIBE_CHANNEL, &openid("o-2")).await,
        None
    );
    let w3 = WechatMsgId::new("w-3");
    assert!(
        MessageRow::set_delivery(&mut conn, &newer.id, report(&w3, at, None))
            .await
            .unwrap()
    );
    assert_eq!(
        awaiting(&tpl2, SUBSCRIBE_CHANNEL, &o1).await,
        Some(older.id.clone())
    );
}
