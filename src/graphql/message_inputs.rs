//! The inputs of the message fields: what a message says and how it reaches the person (shared
//! by `sendMessage` and `sendMessages`), templates, and subscribe answers.

use async_graphql::{Enum, ID, InputObject, Json};

use super::messages::{MessageChannel, TemplateField};
use crate::identity::messages::RouteInput;
use crate::types::UserId;

/// A Mini Program page a message opens.
#[derive(InputObject)]
pub struct MiniProgramPageInput {
    /// The Mini Program.
    pub app_id: String,
    /// The page path (`pages/order/detail?id=1`).
    pub page_path: String,
}

/// One way to reach the person.
#[derive(InputObject)]
pub struct MessageRouteInput {
    /// The app to send on.
    pub app_id: String,
    /// A template registered for that app (`registerMessageTemplate`).
    pub template_id: String,
    /// WeChat-shaped data: `{"thing1": {"value": "…"}}`, checked against the template.
    pub data: Json<serde_json::Value>,
    /// A web page the message opens (not for Mini Program subscribe messages).
    pub url: Option<String>,
    /// A Mini Program page the message opens.
    pub mini_program: Option<MiniProgramPageInput>,
}

impl From<MessageRouteInput> for RouteInput {
    fn from(r: MessageRouteInput) -> Self {
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
/// `data`, `url`, `miniProgram`) or `channels`. Flattened into `sendMessage` and `sendMessages`.
#[derive(InputObject)]
pub struct MessageContentInput {
    /// The app to send on.
    pub app_id: Option<String>,
    /// A template registered for that app.
    pub template_id: Option<String>,
    /// WeChat-shaped data: `{"thing1": {"value": "…"}}`.
    pub data: Option<Json<serde_json::Value>>,
    /// A web page the message opens.
    pub url: Option<String>,
    /// A Mini Program page the message opens.
    pub mini_program: Option<MiniProgramPageInput>,
    /// Instead of one route: up to 5, in order of preference; the first that can reach the
    /// person is used (`Message.channel` says which).
    pub channels: Option<Vec<MessageRouteInput>>,
    /// The same key (per API key) returns what it started first (the message, or the bulk job)
    /// instead of sending again.
    pub idempotency_key: Option<String>,
}

impl MessageContentInput {
    /// The routes, in order of preference: the one route, or `channels` (not both).
    pub fn routes(self) -> Result<(Vec<RouteInput>, Option<String>), &'static str> {
        let one = (self.app_id.is_some() || self.template_id.is_some() || self.data.is_some())
            .then(|| MessageRouteInput {
                app_id: self.app_id.unwrap_or_default(),
                template_id: self.template_id.unwrap_or_default(),
                data: self.data.unwrap_or(Json(serde_json::Value::Null)),
                url: self.url,
                mini_program: self.mini_program,
            });
        let routes = match (one, self.channels) {
            (Some(r), None) => vec![r.into()],
            (None, Some(list)) => list.into_iter().map(Into::into).collect(),
            _ => return Err("give appId, templateId and data, or channels (not both)"),
        };
        Ok((routes, self.idempotency_key))
    }
}

/// `sendMessage` input: to whom (`userId` or `unionid`), and one route (`appId`, `templateId`,
/// `data`, `url`, `miniProgram`) or `channels`.
#[derive(InputObject)]
pub struct SendMessageInput {
    /// The user (a merged user's old id reaches the survivor).
    pub user_id: Option<ID>,
    /// Or the live user with this unionid.
    pub unionid: Option<String>,
    /// The message.
    #[graphql(flatten)]
    pub message: MessageContentInput,
}

/// Which users `sendMessages` goes to.
#[derive(InputObject, Default)]
pub struct MessageRecipientFilter {
    /// Only users with (true) or without (false) a unionid.
    pub has_unionid: Option<bool>,
}

/// `sendMessages` input: `userIds` (at most 1,000) or `filter` (live users with an identity on
/// one of the routes' apps), and the message as in `sendMessage`.
#[derive(InputObject)]
pub struct SendMessagesInput {
    /// These users.
    pub user_ids: Option<Vec<ID>>,
    /// Or every user that matches.
    pub filter: Option<MessageRecipientFilter>,
    /// The message.
    #[graphql(flatten)]
    pub message: MessageContentInput,
}

/// `registerMessageTemplate` input.
#[derive(InputObject)]
pub struct RegisterMessageTemplateInput {
    /// The app that sends it.
    pub app_id: String,
    /// WeChat's template id (from the app's console).
    pub template_id: String,
    /// Its channel (it must fit the app's kind).
    pub channel: MessageChannel,
    /// Its keywords with their types (at most 20).
    pub fields: Vec<TemplateField>,
    /// Subscribe templates: long-term permissions (not spent by a send).
    #[graphql(default)]
    pub long_term: bool,
}

/// What `wx.requestSubscribeMessage` answered for one template.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SubscribeAnswer {
    /// Accepted.
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
pub struct SubscribeAnswerInput {
    /// The template.
    pub template_id: String,
    /// The answer.
    pub answer: SubscribeAnswer,
}

/// Parses a user id argument.
pub fn user_id(id: &ID) -> UserId {
    UserId::new(crate::identity::truncate(id, 64))
}
