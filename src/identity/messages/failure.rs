//! Why a message was not sent or not delivered: a stable code, and a failure as the identity
//! layer returns and records it.

use crate::db::models::message::MessageRow;
use crate::types::MessageId;

/// Why a message was not sent (or not delivered): a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureCode {
    /// No identity on the app (never followed it or logged in there).
    NoIdentity,
    /// Does not follow the Official Account (WeChat: 43004).
    NotFollowing,
    /// No subscribe permission for the template (WeChat: 43101).
    NoPermission,
    /// The data does not fit the template (WeChat: 47003).
    InvalidData,
    /// The template is not registered for the app.
    TemplateNotRegistered,
    /// WeChat does not know the template (40037).
    TemplateInvalid,
    /// None of several routes can reach the person.
    Unreachable,
    /// WeChat's quota (45009).
    WechatRateLimited,
    /// WeChat unavailable.
    WechatUnavailable,
    /// WeChat refused for another reason.
    WechatRejected,
    /// The person blocked the account's messages (delivery report).
    UserBlocked,
    /// WeChat could not deliver it (delivery report).
    DeliveryFailed,
    /// Our fault (logged).
    Internal,
}

impl FailureCode {
    /// Every code.
    pub const ALL: [FailureCode; 13] = [
        Self::NoIdentity,
        Self::NotFollowing,
        Self::NoPermission,
        Self::InvalidData,
        Self::TemplateNotRegistered,
        Self::TemplateInvalid,
        Self::Unreachable,
        Self::WechatRateLimited,
        Self::WechatUnavailable,
        Self::WechatRejected,
        Self::UserBlocked,
        Self::DeliveryFailed,
        Self::Internal,
    ];

    /// As shown (`extensions.code`, `Message.error.code`) and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoIdentity => "NO_IDENTITY",
            Self::NotFollowing => "NOT_FOLLOWING",
            Self::NoPermission => "NO_SUBSCRIBE_PERMISSION",
            Self::InvalidData => "INVALID_MESSAGE_DATA",
            Self::TemplateNotRegistered => "TEMPLATE_NOT_REGISTERED",
            Self::TemplateInvalid => "TEMPLATE_INVALID",
            Self::Unreachable => "UNREACHABLE",
            Self::WechatRateLimited => "WECHAT_RATE_LIMITED",
            Self::WechatUnavailable => "WECHAT_UNAVAILABLE",
            Self::WechatRejected => "WECHAT_REJECTED",
            Self::UserBlocked => "USER_BLOCKED",
            Self::DeliveryFailed => "DELIVERY_FAILED",
            Self::Internal => "INTERNAL",
        }
    }

    /// From its stored form (unknown: INTERNAL).
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
