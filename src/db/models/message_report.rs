//! `messages`: WeChat's delivery reports (`TEMPLATESENDJOBFINISH`, `subscribe_msg_sent_event`)
//! written on the messages they are about.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::message::{MessageRow, MessageStatus};
use crate::db::schema::messages as m;
use crate::db::{Conn, DbError};
use crate::types::{AppId, MessageId, OpenId, TemplateId, WechatMsgId};
use crate::with_conn;

/// The statuses a delivery report may change: handed to WeChat (the report may come before the
/// send's answer is written), sent, or uncertain after a crash.
const AWAITING_REPORT: [MessageStatus; 3] = [
    MessageStatus::Sending,
    MessageStatus::Sent,
    MessageStatus::Uncertain,
];

impl MessageRow {
    /// Records WeChat's delivery report of the message `msg_id` of `app_id` (sent or uncertain
    /// messages only); the message, if one was found.
    pub async fn delivered(
        conn: &mut Conn,
        app_id: &AppId,
        msg_id: &WechatMsgId,
        outcome: Delivery<'_>,
    ) -> Result<Option<MessageId>, DbError> {
        let q = m::table
            .filter(m::app_id.eq(app_id))
            .filter(m::wechat_msg_id.eq(msg_id))
            .select(m::id);
        let Some(id) = with_conn!(conn, c => q.first::<MessageId>(c).await.optional())? else {
            return Ok(None);
        };
        Self::set_delivery(conn, &id, outcome).await?;
        Ok(Some(id))
    }

    /// The message a delivery report without a known msgid is about: the latest one of `app_id`
    /// to `openid` on one of `channels` (with `template_id`, if given) still sending, sent or
    /// uncertain and without a msgid.
    pub async fn awaiting_report(
        conn: &mut Conn,
        app_id: &AppId,
        openid: &OpenId,
        channels: &[&str],
        template_id: Option<&TemplateId>,
    ) -> Result<Option<MessageId>, DbError> {
        // The body is expanded once per backend, so the boxed query gets each backend's type.
        Ok(with_conn!(conn, c => {
            let mut q = m::table
                .filter(m::app_id.eq(app_id))
                .filter(m::openid.eq(openid))
                .filter(m::channel.eq_any(channels))
                .filter(m::status.eq_any(AWAITING_REPORT))
                .filter(m::wechat_msg_id.is_null())
                .order(m::id.desc())
                .select(m::id)
                .into_boxed();
            if let Some(t) = template_id {
                q = q.filter(m::template_id.eq(t.clone()));
            }
            q.first::<MessageId>(c).await.optional()
        })?)
    }

    /// Writes a delivery report on message `id` (if it is sending, sent or uncertain).
    pub async fn set_delivery(
        conn: &mut Conn,
        id: &MessageId,
        d: Delivery<'_>,
    ) -> Result<bool, DbError> {
        let status = if d.error.is_none() {
            MessageStatus::Delivered
        } else {
            MessageStatus::Failed
        };
        let q = diesel::update(m::table.find(id).filter(m::status.eq_any(AWAITING_REPORT))).set((
            m::status.eq(status),
            m::delivered_at.eq(d.at),
            m::wechat_msg_id.eq(d.msg_id),
            m::error_code.eq(d.error.map(|(code, _)| code)),
            m::error.eq(d.error.map(|(_, message)| message)),
        ));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }
}

/// A delivery report for one message.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// WeChat's msgid.
    pub msg_id: &'a WechatMsgId,
    /// When it was reported.
    pub at: NaiveDateTime,
    /// Why it was not delivered: (code, message); none: delivered.
    pub error: Option<(&'a str, &'a str)>,
}
