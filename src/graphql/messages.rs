//! Messages in GraphQL: the types (`Message`, `MessageTemplate`, `MessageJob`, ...) and inputs.
//! The fields that use them are in `message_fields`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::{User, related_user};
use crate::db::models::job::JobStatus;
use crate::db::models::message::{MessageRow, MessageStatus as Status};
use crate::db::models::message_template::PermissionRow;
use crate::identity::messages::bulk::MessageJob as Job;
use crate::identity::messages::templates::Template;
use crate::types::{AppId, OpenId, TemplateId, WechatMsgId};
use crate::wechat::messages::Channel;

crate::wechat::messages::channel_variants! {
    /// How a message reaches a person.
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "crate::wechat::messages::Channel")]
    pub enum MessageChannel
}

crate::wechat::keywords::keyword_type_variants! {
    /// WeChat's keyword types; a keyword's value is checked against its type before sending,
    /// and no type allows a line break.
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "crate::wechat::messages::KeywordType")]
    pub enum KeywordType
}

crate::db::models::message::message_status_variants! {
    /// Where a message stands.
    #[derive(Enum, Copy, Clone, Eq, PartialEq)]
    #[graphql(remote = "crate::db::models::message::MessageStatus")]
    pub enum MessageStatus
}

/// Why a message failed: a stable `code` — NO_IDENTITY, NOT_FOLLOWING,
/// NO_SUBSCRIBE_PERMISSION, INVALID_MESSAGE_DATA, TEMPLATE_INVALID, UNREACHABLE,
/// WECHAT_RATE_LIMITED, WECHAT_UNAVAILABLE, WECHAT_REJECTED, USER_BLOCKED, DELIVERY_FAILED,
/// JOB_FAILED (a bulk job that failed before sending it).
#[derive(SimpleObject)]
pub struct MessageError {
    /// The code.
    pub code: String,
    /// What happened.
    pub message: String,
    /// WeChat's errcode, when WeChat refused.
    pub wechat_errcode: Option<i64>,
}

/// A message addressed to a user.
pub struct Message(pub MessageRow);

#[Object]
impl Message {
    /// Message id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The user it is for (the survivor, if the id asked for was merged).
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        related_user(ctx, &self.0.user_id, "the message's user").await
    }
    /// The app it went out on (for a refused message: the first route's).
    async fn app_id(&self) -> Option<&str> {
        self.0.app_id.as_ref().map(AppId::as_str)
    }
    /// The person's openid on that app.
    async fn openid(&self) -> Option<&str> {
        self.0.openid.as_ref().map(OpenId::as_str)
    }
    /// The channel used.
    async fn channel(&self) -> Option<MessageChannel> {
        self.0
            .channel
            .as_deref()
            .and_then(Channel::parse)
            .map(Into::into)
    }
    /// The template used.
    async fn template_id(&self) -> Option<&str> {
        self.0.template_id.as_ref().map(TemplateId::as_str)
    }
    /// Where it stands.
    async fn status(&self) -> MessageStatus {
        self.0.status.into()
    }
    /// WeChat's msgid.
    async fn wechat_msg_id(&self) -> Option<&str> {
        self.0.wechat_msg_id.as_ref().map(WechatMsgId::as_str)
    }
    /// Why it failed.
    async fn error(&self) -> Option<MessageError> {
        Some(MessageError {
            code: self.0.error_code.clone()?,
            message: self.0.error.clone().unwrap_or_default(),
            wechat_errcode: self.0.wechat_errcode,
        })
    }
    /// The bulk job that sent it.
    async fn job_id(&self) -> Option<ID> {
        self.0.job_id.as_ref().map(|j| ID(j.to_string()))
    }
    /// When it was asked for.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.and_utc()
    }
    /// When WeChat reported its delivery (or that it was not delivered).
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at.map(|t| t.and_utc())
    }
}

/// A keyword of a template.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "TemplateFieldInput")]
pub struct TemplateField {
    /// The keyword (`thing1`).
    pub key: String,
    /// Its type.
    #[graphql(name = "type")]
    pub ty: KeywordType,
}

/// A template registered for an app.
pub struct MessageTemplate(pub Template);

#[Object]
impl MessageTemplate {
    /// The app.
    async fn app_id(&self) -> &str {
        self.0.app_id.as_str()
    }
    /// WeChat's template id.
    async fn template_id(&self) -> &str {
        self.0.template_id.as_str()
    }
    /// The channel it goes out on.
    async fn channel(&self) -> MessageChannel {
        self.0.channel.into()
    }
    /// Subscribe templates: permissions are long-term (not spent by a send).
    async fn long_term(&self) -> bool {
        self.0.long_term
    }
    /// Its keywords.
    async fn fields(&self) -> Vec<TemplateField> {
        self.0
            .fields
            .iter()
            .map(|(key, ty)| TemplateField {
                key: key.clone(),
                ty: (*ty).into(),
            })
            .collect()
    }
    /// The admin key that registered it.
    async fn registered_by(&self) -> &str {
        &self.0.registered_by
    }
    /// Last registered.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at.and_utc()
    }
}

/// A person's subscribe permission for a template.
#[derive(SimpleObject)]
pub struct SubscribePermission {
    /// The app.
    pub app_id: String,
    /// The template.
    pub template_id: String,
    /// One-time permissions not spent yet.
    pub one_time: i32,
    /// A long-term permission holds.
    pub long_term: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<PermissionRow> for SubscribePermission {
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

/// How many messages of a bulk job ended one way.
#[derive(SimpleObject)]
pub struct MessageOutcomeCount {
    /// Their status.
    pub status: MessageStatus,
    /// Their error code, if they failed.
    pub code: Option<String>,
    /// How many.
    pub count: i64,
}

/// Where a bulk job stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum MessageJobStatus {
    /// Waiting for a runner.
    Queued,
    /// Listing or sending.
    Running,
    /// Paused (WeChat's quota or an admin); it carries on later.
    Paused,
    /// Every recipient was handled.
    Completed,
    /// Gave up (see `lastError`).
    Failed,
}

/// A bulk send and its progress.
pub struct MessageJob(pub Job);

impl MessageJob {
    fn count(&self, status: Status) -> i64 {
        self.0
            .counts
            .iter()
            .filter(|(s, ..)| *s == status)
            .map(|(.., n)| n)
            .sum()
    }
}

#[Object]
impl MessageJob {
    /// Job id (`messages(jobId)` lists its messages).
    async fn id(&self) -> ID {
        ID(self.0.job.id.to_string())
    }
    /// Where it stands.
    async fn status(&self) -> MessageJobStatus {
        match self.0.job.status {
            JobStatus::Queued => MessageJobStatus::Queued,
            JobStatus::Running => MessageJobStatus::Running,
            JobStatus::Paused => MessageJobStatus::Paused,
            JobStatus::Completed => MessageJobStatus::Completed,
            JobStatus::Failed => MessageJobStatus::Failed,
        }
    }
    /// The API key that started it.
    async fn requested_by(&self) -> &str {
        &self.0.payload.requested_by
    }
    /// Recipients listed so far (all of them once listing is done).
    async fn total(&self) -> i64 {
        self.0.counts.iter().map(|(.., n)| n).sum()
    }
    /// Not sent yet.
    async fn queued(&self) -> i64 {
        self.count(Status::Queued)
    }
    /// Handed to WeChat, answer not written yet.
    async fn sending(&self) -> i64 {
        self.count(Status::Sending)
    }
    /// Accepted by WeChat, delivery not reported yet.
    async fn sent(&self) -> i64 {
        self.count(Status::Sent)
    }
    /// Reported delivered.
    async fn delivered(&self) -> i64 {
        self.count(Status::Delivered)
    }
    /// Refused or not delivered.
    async fn failed(&self) -> i64 {
        self.count(Status::Failed)
    }
    /// In flight when the service stopped: never sent again.
    async fn uncertain(&self) -> i64 {
        self.count(Status::Uncertain)
    }
    /// Messages by status and error code.
    async fn outcomes(&self) -> Vec<MessageOutcomeCount> {
        self.0
            .counts
            .iter()
            .map(|(status, code, count)| MessageOutcomeCount {
                status: (*status).into(),
                code: code.clone(),
                count: *count,
            })
            .collect()
    }
    /// When it was started.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.job.created_at.and_utc()
    }
    /// When it completed or failed.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.job.finished_at.map(|t| t.and_utc())
    }
    /// Why it last failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.job.last_error.as_deref()
    }
}
