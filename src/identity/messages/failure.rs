//! Why a message was not sent or not delivered: a stable code, and a failure as the identity
//! layer returns and records it.

use crate::db::models::message::MessageRow;
use crate::types::MessageId;

crate::mirror::mirrored_enum! {
    /// Why a message was not sent or not delivered: a stable code, stored on the message
    /// (`messages.error_code`) and shown as `WeChatMessageError.code` (a refusal also as the
    /// error's `extensions.code`). The API's enum is written from these variants: one list.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FailureCode mirrored_by failure_code_variants {
        /// No identity on the app: the person never followed it or logged in there.
        NoIdentity,
        /// The person does not follow the Official Account (WeChat: 43004).
        NotFollowing,
        /// The person holds no subscribe permission for the template (WeChat: 43101, also in a
        /// delivery report).
        NoSubscribePermission,
        /// The data does not fit the template (WeChat: 47001, 47003).
        InvalidMessageData,
        /// The template is not registered for the app (`registerWeChatMessageTemplate`).
        TemplateNotRegistered,
        /// WeChat does not know the template (40036, 40037).
        TemplateInvalid,
        /// None of the message's routes can reach the person.
        Unreachable,
        /// WeChat's quota was used up (45009).
        WechatRateLimited,
        /// WeChat was unavailable or did not answer.
        WechatUnavailable,
        /// WeChat refused for another reason (`wechatErrcode` says which).
        WechatRejected,
        /// The person blocked the account's messages (WeChat's delivery report).
        UserBlocked,
        /// WeChat could not deliver it (WeChat's delivery report).
        DeliveryFailed,
        /// Its bulk job failed before sending it (the job's `lastError` says why).
        JobFailed,
        /// Our fault; the cause is in the service's log.
        Internal,
    }
}

impl FailureCode {
    /// Every code.
    pub const ALL: [FailureCode; 14] = [
        Self::NoIdentity,
        Self::NotFollowing,
        Self::NoSubscribePermission,
        Self::InvalidMessageData,
        Self::TemplateNotRegistered,
        Self::TemplateInvalid,
        Self::Unreachable,
        Self::WechatRateLimited,
        Self::WechatUnavailable,
        Self::WechatRejected,
        Self::UserBlocked,
        Self::DeliveryFailed,
        Self::JobFailed,
        Self::Internal,
    ];

    /// As shown (`extensions.code`, `Message.error.code`) and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoIdentity => "NO_IDENTITY",
            Self::NotFollowing => "NOT_FOLLOWING",
            Self::NoSubscribePermission => "NO_SUBSCRIBE_PERMISSION",
            Self::InvalidMessageData => "INVALID_MESSAGE_DATA",
            Self::TemplateNotRegistered => "TEMPLATE_NOT_REGISTERED",
            Self::TemplateInvalid => "TEMPLATE_INVALID",
            Self::Unreachable => "UNREACHABLE",
            Self::WechatRateLimited => "WECHAT_RATE_LIMITED",
            Self::WechatUnavailable => "WECHAT_UNAVAILABLE",
            Self::WechatRejected => "WECHAT_REJECTED",
            Self::UserBlocked => "USER_BLOCKED",
            Self::DeliveryFailed => "DELIVERY_FAILED",
            Self::JobFailed => "JOB_FAILED",
            Self::Internal => "INTERNAL",
        }
    }

    /// From its stored form (an unknown one, which only a bug could store: INTERNAL).
    pub fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Self::Internal)
    }

    /// Whether the same send may work later unchanged (WeChat busy or out of quota).
    pub fn is_transient(self) -> bool {
        matches!(self, Self::WechatRateLimited | Self::WechatUnavailable)
    }
}

/// A message refused or failed: its code, a message safe to show, WeChat's errcode, and the
/// recorded message (when one was recorded).
#[derive(Clone, Debug)]
pub struct Failure {
    /// The code.
    pub code: FailureCode,
    /// What happened.
    pub message: String,
    /// WeChat's errcode, when WeChat refused.
    pub wechat_errcode: Option<i64>,
    /// The message recorded with this failure.
    pub message_id: Option<MessageId>,
}

impl Failure {
    /// A failure before any call.
    pub fn new(code: FailureCode, message: String) -> Self {
        Self {
            code,
            message,
            wechat_errcode: None,
            message_id: None,
        }
    }

    /// The failure recorded on a message row, if it failed.
    pub fn of_row(row: &MessageRow) -> Option<Self> {
        let code = row.error_code.as_deref()?;
        Some(Self {
            code: FailureCode::parse(code),
            message: row.error.clone().unwrap_or_default(),
            wechat_errcode: row.wechat_errcode,
            message_id: Some(row.id.clone()),
        })
    }
}
