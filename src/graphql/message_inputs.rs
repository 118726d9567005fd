//! The inputs of the message fields: what a message says and how it reaches the person (shared
//! by `sendWeChatMessage` and `sendWeChatMessages`), templates, and subscribe answers.

use async_graphql::{Enum, ID, InputObject, Json};

use super::messages::{WeChatMessageChannel, WeChatTemplateField};
use crate::identity::messages::RouteInput;
use crate::types::UserId;

/// A Mini Program page a message opens.
#[derive(InputObject)]
pub struct MiniProgramPageInput {
    /// The Mini Program's app id.
    pub app_id: String,
    /// The page path (`pages/order/detail?id=1`).
    pub page_path: String,
}

/// One way to reach the person: an app, a template registered for it, and the message's data.
#[derive(InputObject)]
pub struct WeChatMessageRouteInput {
    /// The app to send on.
    pub app_id: String,
    /// A template registered for that app (`registerWeChatMessageTemplate`).
    pub template_id: String,
    /// WeChat-shaped data: `{"thing1": {"value": "…"}}`, checked against the template's
    /// keywords and WeChat's rules for their types.
    pub data: Json<serde_json::Value>,
    /// A web page the message opens (not for Mini Program subscribe messages).
    pub url: Option<String>,
    /// A Mini Program page the message opens.
    pub mini_program: Option<MiniProgramPageInput>,
}

impl From<WeChatMessageRouteInput> for RouteInput {
    fn from(r: WeChatMessageRouteInput) -> Self {
        RouteInput {
            app_id: r.app_id,
            template_id: r.template_id,
            data: r.data.0,
            url: r.url,
            mini_program: r.mini_program.map(|m| (m.app_id, m.page_path)),
        }
    }
}

/// What a message says and how it reaches the person: one route (`appId`, `templateId`,
/// `data`, `url`, `miniProgram`) or `channels`. Flattened into the two send inputs.
#[derive(InputObject)]
pub struct MessageContentInput {
    /// The app to send on (with `templateId` and `data`; or give `channels`).
    pub app_id: Option<String>,
    /// A template registered for that app (`registerWeChatMessageTemplate`).
    pub template_id: Option<String>,
    /// WeChat-shaped data: `{"thing1": {"value": "…"}}`, checked against the template's
    /// keywords and WeChat's rules for their types.
    pub data: Option<Json<serde_json::Value>>,
    /// A web page the message opens (not for Mini Program subscribe messages).
    pub url: Option<String>,
    /// A Mini Program page the message opens.
    pub mini_program: Option<MiniProgramPageInput>,
    /// Instead of one route: 1 to 5 routes, in order of preference; the first that can reach
    /// the person is used (`WeChatMessage.channel` says which).
    pub channels: Option<Vec<WeChatMessageRouteInput>>,
}

impl MessageContentInput {
    /// The routes, in order of preference: the one route, or `channels` (not both).
    pub fn routes(self) -> Result<Vec<RouteInput>, &'static str> {
        let one = (self.app_id.is_some() || self.template_id.is_some() || self.data.is_some())
            .then(|| WeChatMessageRouteInput {
                app_id: self.app_id.unwrap_or_default(),
                template_id: self.template_id.unwrap_or_default(),
                data: self.data.unwrap_or(Json(serde_json::Value::Null)),
                url: self.url,
                mini_program: self.mini_program,
            });
        match (one, self.channels) {
            (Some(r), None) => Ok(vec![r.into()]),
            (None, Some(list)) => Ok(list.into_iter().map(Into::into).collect()),
            _ => Err("give appId, templateId and data, or channels (not both)"),
        }
    }
}

/// `sendWeChatMessage` input: to whom (`userId` or `unionid`), and one route (`appId`,
/// `templateId`, `data`, `url`, `miniProgram`) or `channels`.
#[derive(InputObject)]
pub struct SendWeChatMessageInput {
    /// The user (a merged user's old id reaches the survivor).
    pub user_id: Option<ID>,
    /// Or the live user with this unionid.
    pub unionid: Option<String>,
    /// The message.
    #[graphql(flatten)]
    pub message: MessageContentInput,
    /// 1-128 characters. A send with a key already used by the same API key sends nothing and
    /// returns the message that key's first send recorded (or its refusal again); another
    /// message under a used key is CONFLICT. When WeChat surely sent nothing (busy, out of
    /// quota), the key is freed for a retry.
    pub idempotency_key: Option<String>,
}

/// Which users `sendWeChatMessages` goes to: live users with an identity on one of the routes'
/// apps, and these conditions.
#[derive(InputObject, Default)]
pub struct WeChatMessageRecipientFilter {
    /// Only users with (true) or without (false) a unionid.
    pub has_unionid: Option<bool>,
}

/// `sendWeChatMessages` input: `userIds` (1 to 1,000) or `filter`, and the message as in
/// `sendWeChatMessage`.
#[derive(InputObject)]
pub struct SendWeChatMessagesInput {
    /// These users, 1 to 1,000 (merged ids reach their survivors; each person gets one copy).
    pub user_ids: Option<Vec<ID>>,
    /// Or every user that matches.
    pub filter: Option<WeChatMessageRecipientFilter>,
    /// The message.
    #[graphql(flatten)]
    pub message: MessageContentInput,
    /// 1-128 characters. A bulk send with a key already used by the same API key starts
    /// nothing and returns the job that key started; another bulk send under a used key is
    /// CONFLICT.
    pub idempotency_key: Option<String>,
}

/// `registerWeChatMessageTemplate` input.
#[derive(InputObject)]
pub struct RegisterWeChatMessageTemplateInput {
    /// The app that sends it.
    pub app_id: String,
    /// WeChat's template id (from the app's console).
    pub template_id: String,
    /// Its channel (it must fit the app's kind).
    pub channel: WeChatMessageChannel,
    /// Its keywords with their types, in order (1 to 20; no `first` or `remark`, which WeChat
    /// dropped in May 2023).
    pub fields: Vec<WeChatTemplateField>,
    /// Subscribe templates only: permissions are long-term (not spent by a send).
    #[graphql(default)]
    pub long_term: bool,
}

/// What `wx.requestSubscribeMessage` answered for one template.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WeChatSubscribeAnswer {
    /// Accepted: one more one-time permission (or the long-term one holds).
    Accept,
    /// Rejected.
    Reject,
    /// Banned by WeChat for this person.
    Ban,
    /// Filtered by WeChat (the template's title repeats another).
    Filter,
}

/// One answer of `wx.requestSubscribeMessage`.
#[derive(InputObject)]
pub struct WeChatSubscribeAnswerInput {
    /// The template.
    pub template_id: String,
    /// The answer.
    pub answer: WeChatSubscribeAnswer,
}

/// Parses a user id argument.
pub fn user_id(id: &ID) -> UserId {
    UserId::new(crate::identity::truncate(id, 64))
}
