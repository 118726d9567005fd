//! Messages WeChat delivers for an app: the three send APIs, the keyword rules of their
//! templates, and the delivery results WeChat pushes back. Pure rules and calls; no database.
//!
//! | channel | API | needs |
//! |---|---|---|
//! | [`Channel::OfficialAccountTemplate`] | `POST /cgi-bin/message/template/send` | the person follows the OA (else 43004) |
//! | [`Channel::OfficialAccountSubscribe`] | `POST /cgi-bin/message/subscribe/bizsend` | a subscribe permission (else 43101) |
//! | [`Channel::MiniProgramSubscribe`] | `POST /cgi-bin/message/subscribe/send` | a subscribe permission (else 43101) |
//!
//! Since May 2023 template messages show no `first`/`remark` and no colours, and keyword values
//! follow the subscribe-message rules (`thing` ≤ 20 characters, no line breaks, …):
//! [`check_data`] refuses what WeChat would drop or reject, and the sandbox applies the same
//! rules (47003).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AppKind, WechatClient, WechatError};

crate::mirrored_enum! {
    /// How a message reaches a person.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Channel mirrored_by #[macro_export] channel_variants {
        /// Official Account template message (模板消息): to followers of the account.
        OfficialAccountTemplate,
        /// Official Account subscribe notification (订阅通知): to holders of a subscribe permission.
        OfficialAccountSubscribe,
        /// Mini Program subscribe message (订阅消息): to holders of a subscribe permission.
        MiniProgramSubscribe,
    }
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [
        Channel::OfficialAccountTemplate,
        Channel::OfficialAccountSubscribe,
        Channel::MiniProgramSubscribe,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::OfficialAccountTemplate => "official_account_template",
            Channel::OfficialAccountSubscribe => "official_account_subscribe",
            Channel::MiniProgramSubscribe => "mini_program_subscribe",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The kind of app that sends on this channel.
    pub fn app_kind(self) -> AppKind {
        match self {
            Channel::MiniProgramSubscribe => AppKind::MiniProgram,
            _ => AppKind::OfficialAccount,
        }
    }

    /// Whether sending needs a subscribe permission (else: following the OA).
    pub fn needs_permission(self) -> bool {
        self != Channel::OfficialAccountTemplate
    }

    fn path(self) -> (&'static str, &'static str) {
        match self {
            Channel::OfficialAccountTemplate => ("template_send", "/cgi-bin/message/template/send"),
            Channel::OfficialAccountSubscribe => {
                ("subscribe_bizsend", "/cgi-bin/message/subscribe/bizsend")
            }
            Channel::MiniProgramSubscribe => ("subscribe_send", "/cgi-bin/message/subscribe/send"),
        }
    }
}

pub use crate::keywords::{DROPPED_KEYWORDS, KeywordType, MAX_TEMPLATE_FIELDS, check_data};

/// Where a message opens when tapped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// A web page (template messages; subscribe notifications call it `page`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A Mini Program page: (its appid, its page path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mini_program: Option<(String, String)>,
}

/// One message to send.
#[derive(Clone, Debug)]
pub struct Outgoing<'a> {
    /// The person's openid in the sending app.
    pub openid: &'a str,
    /// The template.
    pub template_id: &'a str,
    /// Checked keyword values.
    pub data: &'a BTreeMap<String, String>,
    /// Where it opens.
    pub target: &'a Target,
    /// Template messages: WeChat sends a repeat of this id (within minutes) only once.
    pub client_msg_id: Option<&'a str>,
}

/// What WeChat answers a send.
#[derive(Clone, Debug, Deserialize)]
pub struct Sent {
    /// The message id (template messages; subscribe sends may leave it out).
    #[serde(default)]
    pub msgid: Option<serde_json::Value>,
}

impl Sent {
    /// The message id as text.
    pub fn msg_id(&self) -> Option<String> {
        match &self.msgid {
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }
}

/// The JSON body a channel's API takes.
pub fn request_body(channel: Channel, m: &Outgoing<'_>) -> serde_json::Value {
    let data: serde_json::Map<String, serde_json::Value> = m
        .data
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!({ "value": v })))
        .collect();
    let mut body = serde_json::json!({
        "touser": m.openid,
        "template_id": m.template_id,
        "data": data,
    });
    if let (Channel::OfficialAccountTemplate, Some(id)) = (channel, m.client_msg_id) {
        body["client_msg_id"] = id.into();
    }
    match channel {
        Channel::OfficialAccountTemplate | Channel::OfficialAccountSubscribe => {
            let page_key = if channel == Channel::OfficialAccountTemplate {
                "url"
            } else {
                "page"
            };
            if let Some(url) = &m.target.url {
                body[page_key] = url.clone().into();
            }
            if let Some((appid, path)) = &m.target.mini_program {
                body["miniprogram"] = serde_json::json!({ "appid": appid, "pagepath": path });
            }
        }
        Channel::MiniProgramSubscribe => {
            if let Some((_, path)) = &m.target.mini_program {
                body["page"] = path.clone().into();
            }
        }
    }
    body
}

impl WechatClient {
    /// Sends one message on `channel` with the app's access token.
    pub async fn send_message(
        &self,
        access_token: &str,
        channel: Channel,
        message: &Outgoing<'_>,
    ) -> Result<Sent, WechatError> {
        let (endpoint, path) = channel.path();
        let body = request_body(channel, message);
        self.post_json(endpoint, path, &[("access_token", access_token)], &body)
            .await
    }
}

/// What a delivery-related push says about one message or permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// `TEMPLATESENDJOBFINISH`: the template message `msg_id` reached the person (`Ok`) or not.
    TemplateFinished {
        /// MsgID.
        msg_id: String,
        /// `success`, `failed:user block`, `failed: system failed`.
        status: String,
    },
    /// `subscribe_msg_popup_event` / `subscribe_msg_change_event`: the person accepted or
    /// rejected a template (`change`: in their settings, not a popup).
    Consent {
        /// The template.
        template_id: String,
        /// accept / reject.
        accepted: bool,
        /// From the settings page rather than a popup.
        change: bool,
    },
    /// `subscribe_msg_sent_event`: the result of a subscribe send.
    SubscribeSent {
        /// The template.
        template_id: String,
        /// MsgID.
        msg_id: String,
        /// ErrorCode (0: delivered).
        error_code: i64,
        /// ErrorStatus (`success`, `fail:user refuse`, `fail:system error`).
        status: String,
    },
}

/// The notices in a pushed message's fields (none for other pushes).
pub fn notices(
    fields: &BTreeMap<String, String>,
) -> Result<Vec<Notice>, super::webhook::WebhookError> {
    let event = fields.get("Event").map(String::as_str).unwrap_or("");
    let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
    let list = |name: &str| -> Result<Vec<BTreeMap<String, String>>, super::webhook::WebhookError> {
        match fields.get(name) {
            Some(inner) => super::webhook::parse_items(inner, "List"),
            None => Ok(Vec::new()),
        }
    };
    Ok(match event {
        "TEMPLATESENDJOBFINISH" => vec![Notice::TemplateFinished {
            msg_id: fields
                .get("MsgID")
                .or_else(|| fields.get("MsgId"))
                .cloned()
                .unwrap_or_default(),
            status: get(fields, "Status"),
        }],
        "subscribe_msg_popup_event" | "subscribe_msg_change_event" => {
            let change = event == "subscribe_msg_change_event";
            let name = if change {
                "SubscribeMsgChangeEvent"
            } else {
                "SubscribeMsgPopupEvent"
            };
            list(name)?
                .iter()
                .map(|item| Notice::Consent {
                    template_id: get(item, "TemplateId"),
                    accepted: get(item, "SubscribeStatusString") == "accept",
                    change,
                })
                .collect()
        }
        "subscribe_msg_sent_event" => list("SubscribeMsgSentEvent")?
            .iter()
            .map(|item| Notice::SubscribeSent {
                template_id: get(item, "TemplateId"),
                msg_id: get(item, "MsgID"),
                error_code: get(item, "ErrorCode").parse().unwrap_or(-1),
                status: get(item, "ErrorStatus"),
            })
            .collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_pushes_are_read() {
        let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[t1]]></TemplateId><SubscribeStatusString>accept</SubscribeStatusString><PopupScene>0</PopupScene></List><List><TemplateId>t2</TemplateId><SubscribeStatusString>reject</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>";
        let fields = crate::webhook::parse_fields(xml).unwrap();
        assert_eq!(
            notices(&fields).unwrap(),
            vec![
                Notice::Consent {
                    template_id: "t1".into(),
                    accepted: true,
                    change: false
                },
                Notice::Consent {
                    template_id: "t2".into(),
                    accepted: false,
                    change: false
                },
            ]
        );
        let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID><Status><![CDATA[failed:user block]]></Status></xml>";
        let fields = crate::webhook::parse_fields(xml).unwrap();
        assert_eq!(
            notices(&fields).unwrap(),
            vec![Notice::TemplateFinished {
                msg_id: "200163836".into(),
                status: "failed:user block".into()
            }]
        );
    }
}
