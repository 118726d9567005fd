//! What the webhook's message events change (run by the `webhook_events` job, in order per app):
//! `TEMPLATESENDJOBFINISH` and `subscribe_msg_sent_event` report delivery of a sent message,
//! `subscribe_msg_popup_event` and `subscribe_msg_change_event` fill the permission ledger.
//!
//! A report is matched to its message by WeChat's msgid; one whose msgid we never learnt (the
//! send's answer was lost in a crash, or WeChat's subscribe APIs left it out) is matched to the
//! latest message to that person awaiting a report.

use super::FailureCode;
use super::consent::Consent;
use crate::config::AppConfig;
use crate::db::models::message::MessageRow;
use crate::db::models::message_report::Delivery;
use crate::db::models::message_template::{ConsentSource, PermissionKey, PermissionRow};
use crate::db::models::now;
use crate::db::models::webhook_event::WebhookEventRow;
use crate::identity::{IdentityError, Parts};
use crate::types::{AppId, OpenId, TemplateId, WechatMsgId};
use crate::wechat::messages::{Channel, Notice, notices};
use crate::wechat::webhook::parse_fields;

impl Parts {
    /// Applies the message notices of a stored event (none for other events).
    pub(in crate::identity) async fn apply_message_notices(
        &self,
        app: &AppConfig,
        event: &WebhookEventRow,
    ) -> Result<(), IdentityError> {
        // Stored events were parsed on receipt; a failure here is a bad event, not a retry.
        let Ok(fields) = parse_fields(&event.payload) else {
            return Ok(());
        };
        let list = notices(&fields).map_err(|e| IdentityError::BadInput(e.to_string()))?;
        let app_id = &app.app_id;
        for notice in list {
            match notice {
                Notice::Consent {
                    template_id,
                    accepted,
                    change,
                } => {
                    if super::templates::check_template_id(&template_id).is_err() {
                        continue;
                    }
                    let consent = Consent { accepted, change };
                    let key = PermissionKey {
                        app_id,
                        openid: &event.openid,
                        template_id: &TemplateId::new(template_id),
                    };
                    // When the person answered (WeChat's CreateTime), to pair it with the
                    // client's report of the same popup.
                    self.record_consent(key, consent, ConsentSource::Webhook, event.event_at)
                        .await?;
                }
                Notice::TemplateFinished { msg_id, status } => {
                    let error = match status.as_str() {
                        "success" => None,
                        s if s.contains("block") => Some((
                            FailureCode::UserBlocked,
                            "the person blocked the account's template messages",
                        )),
                        _ => Some((
                            FailureCode::DeliveryFailed,
                            "WeChat could not deliver the message (system failed)",
                        )),
                    };
                    let channels = [Channel::OfficialAccountTemplate.as_str()];
                    let msg_id = WechatMsgId::new(msg_id);
                    self.report_delivery(app_id, &event.openid, &channels, None, &msg_id, error)
                        .await?;
                }
                Notice::SubscribeSent {
                    template_id,
                    msg_id,
                    error_code,
                    ..
                } => {
                    let error = match error_code {
                        0 => None,
                        43101 => Some((
                            FailureCode::NoSubscribePermission,
                            "WeChat did not deliver it: the person refused the subscription",
                        )),
                        _ => Some((
                            FailureCode::DeliveryFailed,
                            "WeChat could not deliver the message",
                        )),
                    };
                    let template_id = TemplateId::new(template_id);
                    if error_code == 43101 {
                        // WeChat holds no permission: the ledger follows.
                        let key = PermissionKey {
                            app_id,
                            openid: &event.openid,
                            template_id: &template_id,
                        };
                        let mut conn = self.db.conn().await?;
                        PermissionRow::clear(&mut conn, key, now()).await?;
                    }
                    let channels = [
                        Channel::OfficialAccountSubscribe.as_str(),
                        Channel::MiniProgramSubscribe.as_str(),
                    ];
                    self.report_delivery(
                        app_id,
                        &event.openid,
                        &channels,
                        Some(&template_id),
                        &WechatMsgId::new(msg_id),
                        error,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn report_delivery(
        &self,
        app_id: &AppId,
        openid: &OpenId,
        channels: &[&str],
        template_id: Option<&TemplateId>,
        msg_id: &WechatMsgId,
        error: Option<(FailureCode, &str)>,
    ) -> Result<(), IdentityError> {
        if msg_id.as_str().is_empty() || msg_id.as_str().len() > 64 {
            return Ok(());
        }
        let delivery = Delivery {
            msg_id,
            at: now(),
            error: error.map(|(code, message)| (code.as_str(), message)),
        };
        let mut conn = self.db.conn().await?;
        if MessageRow::delivered(&mut conn, app_id, msg_id, delivery)
            .await?
            .is_some()
        {
            return Ok(());
        }
        match MessageRow::awaiting_report(&mut conn, app_id, openid, channels, template_id).await? {
            Some(id) => {
                MessageRow::set_delivery(&mut conn, &id, delivery).await?;
            }
            None => {
                tracing::debug!(
                    app = %app_id,
                    "delivery report for a message we did not send"
                );
            }
        }
        Ok(())
    }
}
