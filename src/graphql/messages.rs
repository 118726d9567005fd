//! Messages in GraphQL: `WeChatMessage`, its error and the enums it shows, templates and
//! subscribe permissions. Bulk jobs are in `message_jobs`, the inputs in `message_inputs`, the
//! fields that use them in `message_fields`.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::{User, related_user};
use crate::db::models::message::MessageRow;
use crate::db::models::message_template::PermissionRow;
use crate::identity::messages::Failure;
use crate::identity::messages::templates::Template;
use crate::types::{AppId, OpenId, TemplateId, WechatMsgId};
use crate::wechat::messages::Channel;

crate::wechat::messages::channel_variants! {
    /// How a message reaches a person: the WeChat API it goes out through.
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "crate::wechat::messages::Channel")]
    pub enum WeChatMessageChannel
}

crate::wechat::keywords::keyword_type_variants! {
    /// WeChat's keyword types; a keyword's value is checked against its type before sending,
    /// and no type allows a line break.
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "crate::wechat::messages::KeywordType")]
    pub enum WeChatKeywordType
}

crate::db::models::message::message_status_variants! {
    /// Where a message stands.
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "crate::db::models::message::MessageStatus")]
    pub enum WeChatMessageStatus
}

crate::identity::messages::failure_code_variants! {
    /// Why a message failed: every code the service records on a message. A refusal of a send
    /// is also the error's `extensions.code` (JOB_FAILED and the delivery reports' USER_BLOCKED
    /// and DELIVERY_FAILED only come later, on the message).
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "crate::identity::messages::FailureCode")]
    pub enum WeChatMessageErrorCode
}

/// Why a message failed.
#[derive(SimpleObject)]
pub struct WeChatMessageError {
    /// The code.
    pub code: WeChatMessageErrorCode,
    /// What happened, in words safe to show.
    pub message: String,
    /// WeChat's errcode, when WeChat refused.
    pub wechat_errcode: Option<i64>,
}

impl From<Failure> for WeChatMessageError {
    fn from(f: Failure) -> Self {
        Self {
            code: f.code.into(),
            message: f.message,
            wechat_errcode: f.wechat_errcode,
        }
    }
}

/// A message row, shown as `WeChatMessage`.
pub struct WeChatMessage(pub MessageRow);

/// A message to a user through WeChat, and what became of it.
#[Object]
impl WeChatMessage {
    /// Message id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The user it is for (the survivor, if the id asked for was merged).
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        related_user(ctx, &self.0.user_id, "the message's user").await
    }
    /// The app it goes out on (for a message no route could reach the person on: the first
    /// route's); null for a bulk job's message not routed yet.
    async fn app_id(&self) -> Option<&str> {
        self.0.app_id.as_ref().map(AppId::as_str)
    }
    /// The person's openid on that app; null when they have none there (or not routed yet).
    async fn openid(&self) -> Option<&str> {
        self.0.openid.as_ref().map(OpenId::as_str)
    }
    /// The channel it goes out on; null for a bulk job's message not routed yet.
    async fn channel(&self) -> Option<WeChatMessageChannel> {
        self.0
            .channel
            .as_deref()
            .and_then(Channel::parse)
            .map(Into::into)
    }
    /// The template it goes out with; null for a bulk job's message not routed yet.
    async fn template_id(&self) -> Option<&str> {
        self.0.template_id.as_ref().map(TemplateId::as_str)
    }
    /// Where it stands.
    async fn status(&self) -> WeChatMessageStatus {
        self.0.status.into()
    }
    /// WeChat's msgid, once WeChat accepted it (WeChat's subscribe APIs may leave it out).
    async fn wechat_msg_id(&self) -> Option<&str> {
        self.0.wechat_msg_id.as_ref().map(WechatMsgId::as_str)
    }
    /// Why it failed; null unless `status` is FAILED.
    async fn error(&self) -> Option<WeChatMessageError> {
        Failure::of_row(&self.0).map(Into::into)
    }
    /// The bulk job that sent it (`sendWeChatMessages`); null for a single send.
    async fn job_id(&self) -> Option<ID> {
        self.0.job_id.as_ref().map(|j| ID(j.to_string()))
    }
    /// When it was asked for.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.and_utc()
    }
    /// When WeChat reported its delivery (or that it was not delivered); null until then.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at.map(|t| t.and_utc())
    }
}

/// A keyword of a template.
#[derive(SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "WeChatTemplateFieldInput")]
pub struct WeChatTemplateField {
    /// The keyword (`thing1`): 1-32 characters of `a-z`, `0-9` and `_`.
    pub key: String,
    /// Its type.
    #[graphql(name = "type")]
    pub ty: WeChatKeywordType,
}

/// A template registration, shown as `WeChatMessageTemplate`.
pub struct WeChatMessageTemplate(pub Template);

/// A WeChat template registered for an app: what a message on it must carry.
#[Object]
impl WeChatMessageTemplate {
    /// The app that sends it.
    async fn app_id(&self) -> &str {
        self.0.app_id.as_str()
    }
    /// WeChat's template id.
    async fn template_id(&self) -> &str {
        self.0.template_id.as_str()
    }
    /// The channel it goes out on.
    async fn channel(&self) -> WeChatMessageChannel {
        self.0.channel.into()
    }
    /// Subscribe templates: permissions are long-term (not spent by a send). False for
    /// template messages.
    async fn long_term(&self) -> bool {
        self.0.long_term
    }
    /// Its keywords with their types, in order (1 to 20).
    async fn fields(&self) -> Vec<WeChatTemplateField> {
        self.0
            .fields
            .iter()
            .map(|(key, ty)| WeChatTemplateField {
                key: key.clone(),
                ty: (*ty).into(),
            })
            .collect()
    }
    /// The name of the admin key that registered it last.
    async fn registered_by(&self) -> &str {
        &self.0.registered_by
    }
    /// When it was last registered.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at.and_utc()
    }
}

/// A person's subscribe permission for a template: what a subscribe message may spend.
#[derive(SimpleObject)]
pub struct WeChatSubscribePermission {
    /// The app.
    pub app_id: String,
    /// The template.
    pub template_id: String,
    /// One-time permissions not spent yet (at most 100 are kept).
    pub one_time: i32,
    /// Whether a long-term permission holds.
    pub long_term: bool,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<PermissionRow> for WeChatSubscribePermission {
    fn from(p: PermissionRow) -> Self {
        Self {
            app_id: p.app_id.into_inner(),
            template_id: p.template_id.into_inner(),
            one_time: p.one_time,
            long_term: p.long_term,
            updated_at: p.updated_at.and_utc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::resolver_utils::EnumType;

    use super::WeChatMessageErrorCode;
    use crate::identity::messages::FailureCode;

    #[test]
    fn the_api_shows_each_failure_code_as_it_is_stored() {
        let items = WeChatMessageErrorCode::items();
        assert_eq!(items.len(), FailureCode::ALL.len());
        for code in FailureCode::ALL {
            let shown = WeChatMessageErrorCode::from(code);
            let item = items.iter().find(|i| i.value == shown).unwrap();
            assert_eq!(item.name, code.as_str());
            assert_eq!(FailureCode::parse(code.as_str()), code);
        }
    }
}
