//! One error layer: what a client sees when something fails, for GraphQL and HTTP alike.
//!
//! Which error belongs to which layer:
//! - [`DbError`](crate::db::DbError): the database (no connection within the pool's wait, a
//!   failed query, setup); `race()` says whether a transaction may be run again.
//! - [`WechatError`](crate::wechat::WechatError): a call to WeChat (unreachable, refused, a code
//!   WeChat does not accept, its rate limits), with WeChat's errcode.
//! - [`AuthError`](crate::auth::AuthError) and [`SessionError`](crate::auth::sessions::SessionError):
//!   credentials, refresh tokens.
//! - [`IdentityError`](crate::identity::IdentityError): the identity layer; wraps the errors of
//!   the layers below it and adds its own (bad input, conflicts, rate limits).
//! - [`ApiError`] (here): the client's view of any of them: a stable [`ErrorCode`] and a message
//!   safe to show (internal causes are logged, never returned). GraphQL puts the code in
//!   `extensions.code` (`crate::graphql::error`); HTTP routes answer [`ErrorCode::http_status`].
//!
//! [`ApiError`] deliberately has no `Display`, so it cannot slip into async-graphql's blanket
//! `From<impl Display>` conversion (which would lose the code and could leak a cause).

use axum::http::StatusCode;

use crate::auth::AuthError;
use crate::auth::sessions::SessionError;
use crate::db::DbError;
use crate::identity::IdentityError;
use crate::wechat::WechatError;
use crate::wechat::mini_program::PHONE_QUOTA_EXHAUSTED;

/// The stable error codes of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// No or bad credentials.
    Unauthenticated,
    /// Valid credentials, not allowed.
    Forbidden,
    /// Bad input; nothing changed.
    BadUserInput,
    /// No such thing.
    NotFound,
    /// Conflicts with what is on record; nothing changed.
    Conflict,
    /// WeChat says the code is invalid, used or expired.
    WechatCodeInvalid,
    /// WeChat rate-limited us.
    WechatRateLimited,
    /// WeChat busy, unreachable or malformed.
    WechatUnavailable,
    /// WeChat refused for another reason.
    WechatRejected,
    /// WeChat reports a virtual "snapshot" user (a page opened from a Moments snapshot): the
    /// person must open the page in WeChat proper to log in.
    WechatSnapshotUser,
    /// WeChat's paid quota for the call is used up (errcode 1400001: the phone-number exchange
    /// after its free allowance): top it up in the WeChat console; nothing was changed.
    WechatQuotaExhausted,
    /// The Mini Program `session_key` on record is stale (the person called `wx.login` again,
    /// or it expired): call `wx.login`, log in again with the new code, then retry.
    SessionKeyExpired,
    /// Too many attempts from this address or for this app; `retryAfter` says when to try
    /// again (seconds).
    RateLimited,
    /// The service is overloaded or a dependency is down; try again.
    Unavailable,
    /// Our fault; the cause is in the log.
    Internal,
    /// A message's recipient has no identity on the app (never followed it or logged in there).
    NoIdentity,
    /// A message's recipient does not follow the Official Account.
    NotFollowing,
    /// A message's recipient holds no subscribe permission for the template.
    NoSubscribePermission,
    /// A message's data does not fit its template.
    InvalidMessageData,
    /// A message's template is not registered for the app.
    TemplateNotRegistered,
    /// WeChat does not know a message's template.
    TemplateInvalid,
    /// None of a message's routes can reach the person.
    Unreachable,
    /// The request ran past `graphql.execution_timeout_ms` and was cut off.
    Timeout,
    /// An automatic persisted query's hash is not in this instance's cache: send the query's
    /// text with it.
    PersistedQueryNotFound,
    /// Automatic persisted queries are off (`graphql.persisted_queries`).
    PersistedQueryNotSupported,
    /// The answer would be larger than `graphql.max_response_bytes`: ask for less (fewer
    /// fields, a smaller page).
    ResponseTooLarge,
    /// An admin disabled the user (`disableUser`): no login, refresh or message until
    /// `enableUser`.
    UserDisabled,
}

impl ErrorCode {
    /// The code as GraphQL's `extensions.code` and HTTP error pages show it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::WechatCodeInvalid => "WECHAT_CODE_INVALID",
            ErrorCode::WechatRateLimited => "WECHAT_RATE_LIMITED",
            ErrorCode::WechatUnavailable => "WECHAT_UNAVAILABLE",
            ErrorCode::WechatRejected => "WECHAT_REJECTED",
            ErrorCode::WechatSnapshotUser => "WECHAT_SNAPSHOT_USER",
            ErrorCode::WechatQuotaExhausted => "WECHAT_QUOTA_EXHAUSTED",
            ErrorCode::SessionKeyExpired => "SESSION_KEY_EXPIRED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::NoIdentity => "NO_IDENTITY",
            ErrorCode::NotFollowing => "NOT_FOLLOWING",
            ErrorCode::NoSubscribePermission => "NO_SUBSCRIBE_PERMISSION",
            ErrorCode::InvalidMessageData => "INVALID_MESSAGE_DATA",
            ErrorCode::TemplateNotRegistered => "TEMPLATE_NOT_REGISTERED",
            ErrorCode::TemplateInvalid => "TEMPLATE_INVALID",
            ErrorCode::Unreachable => "UNREACHABLE",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            ErrorCode::PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            ErrorCode::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            ErrorCode::UserDisabled => "USER_DISABLED",
        }
    }

    /// The status an HTTP route answers with this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthenticated | ErrorCode::SessionKeyExpired => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::WechatSnapshotUser | ErrorCode::UserDisabled => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::BadUserInput
            | ErrorCode::WechatCodeInvalid
            | ErrorCode::InvalidMessageData
            | ErrorCode::TemplateNotRegistered
            | ErrorCode::PersistedQueryNotFound
            | ErrorCode::PersistedQueryNotSupported
            | ErrorCode::ResponseTooLarge => StatusCode::BAD_REQUEST,
            ErrorCode::NoIdentity
            | ErrorCode::NotFollowing
            | ErrorCode::NoSubscribePermission
            | ErrorCode::TemplateInvalid
            | ErrorCode::Unreachable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::WechatRateLimited
            | ErrorCode::WechatQuotaExhausted
            | ErrorCode::Unavailable
            | ErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::WechatUnavailable | ErrorCode::WechatRejected => StatusCode::BAD_GATEWAY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request may succeed later, unchanged.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::Unavailable
                | ErrorCode::WechatRateLimited
                | ErrorCode::WechatUnavailable
        )
    }
}

/// An error as the API shows it.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    wechat_errcode: Option<i64>,
    retry_after_secs: Option<u64>,
    message_id: Option<String>,
}

impl ApiError {
    /// An error with this code and a message safe to show.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            wechat_errcode: None,
            retry_after_secs: None,
            message_id: None,
        }
    }

    /// The message recorded with a message failure.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// RATE_LIMITED, naming the limit, with the seconds to wait.
    pub fn rate_limited(limited: &crate::rate_limit::Limited) -> Self {
        Self {
            retry_after_secs: Some(limited.retry_after_secs),
            ..Self::new(
                ErrorCode::RateLimited,
                format!(
                    "too many attempts (limit `{}`); retry in {} s",
                    limited.limit, limited.retry_after_secs
                ),
            )
        }
    }

    /// Seconds to wait before retrying (RATE_LIMITED).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    /// BAD_USER_INPUT.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadUserInput, message)
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// WeChat's errcode, when WeChat refused.
    pub fn wechat_errcode(&self) -> Option<i64> {
        self.wechat_errcode
    }

    /// The message (safe to show).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// INTERNAL, logging the cause.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl From<WechatError> for ApiError {
    fn from(e: WechatError) -> Self {
        let (code, message) = match &e {
            WechatError::Unavailable { .. } => (
                ErrorCode::WechatUnavailable,
                "WeChat is unavailable; try again",
            ),
            WechatError::RateLimited { .. } => (
                ErrorCode::WechatRateLimited,
                "WeChat rate limit reached; try again later",
            ),
            WechatError::CodeInvalid { .. } => (
                ErrorCode::WechatCodeInvalid,
                "the WeChat code is invalid, expired or already used; get a new one",
            ),
            WechatError::Rejected {
                errcode: PHONE_QUOTA_EXHAUSTED,
                ..
            } => {
                tracing::error!(
                    "WeChat's paid phone-number quota is used up; top it up in the console"
                );
                (
                    ErrorCode::WechatQuotaExhausted,
                    "the app's paid WeChat quota for this call is used up; nothing was changed",
                )
            }
            WechatError::Rejected { errcode, .. } => {
                if matches!(errcode, 40001 | 40013 | 40125 | 40164 | 41002 | 41004) {
                    tracing::error!(
                        errcode,
                        "WeChat rejected our app credentials; check the app's config"
                    );
                }
                (ErrorCode::WechatRejected, "WeChat rejected the request")
            }
        };
        Self {
            wechat_errcode: e.errcode(),
            ..Self::new(code, message)
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Pool(cause) => {
                tracing::warn!(error = %cause, "no database connection to be had");
                Self::new(ErrorCode::Unavailable, "the service is busy; try again")
            }
            e => Self::internal(&e),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::BadInput(m) => Self::new(ErrorCode::BadUserInput, m),
            IdentityError::Conflict(m) => Self::new(ErrorCode::Conflict, m),
            IdentityError::NotFound(m) => Self::new(ErrorCode::NotFound, m),
            IdentityError::InvalidCredential(m) => Self::new(ErrorCode::Unauthenticated, m),
            e @ IdentityError::AccessDenied => Self::new(ErrorCode::Forbidden, e.to_string()),
            e @ IdentityError::SessionKeyExpired => {
                Self::new(ErrorCode::SessionKeyExpired, e.to_string())
            }
            e @ IdentityError::SnapshotUser => {
                Self::new(ErrorCode::WechatSnapshotUser, e.to_string())
            }
            e @ IdentityError::UserDisabled => Self::new(ErrorCode::UserDisabled, e.to_string()),
            IdentityError::RateLimited(limited) => Self::rate_limited(&limited),
            IdentityError::Wechat(w) => w.into(),
            IdentityError::Session(s) => s.into(),
            IdentityError::Auth(a) => a.into(),
            IdentityError::Db(d) => d.into(),
            IdentityError::Internal(m) => Self::internal(&m),
            IdentityError::Message(f) => f.into(),
        }
    }
}

impl From<Box<crate::identity::messages::Failure>> for ApiError {
    fn from(f: Box<crate::identity::messages::Failure>) -> Self {
        use crate::identity::messages::FailureCode as F;
        let code = match f.code {
            F::NoIdentity => ErrorCode::NoIdentity,
            F::NotFollowing => ErrorCode::NotFollowing,
            F::NoSubscribePermission => ErrorCode::NoSubscribePermission,
            F::InvalidMessageData => ErrorCode::InvalidMessageData,
            F::TemplateNotRegistered => ErrorCode::TemplateNotRegistered,
            F::TemplateInvalid => ErrorCode::TemplateInvalid,
            F::Unreachable => ErrorCode::Unreachable,
            F::WechatRateLimited => ErrorCode::WechatRateLimited,
            F::WechatUnavailable => ErrorCode::WechatUnavailable,
            F::WechatRejected | F::UserBlocked | F::DeliveryFailed => ErrorCode::WechatRejected,
            // JOB_FAILED is only recorded on a failed bulk job's messages, never returned.
            F::JobFailed | F::Internal => ErrorCode::Internal,
        };
        let f = *f;
        Self {
            wechat_errcode: f.wechat_errcode,
            message_id: f.message_id.map(crate::types::MessageId::into_inner),
            ..Self::new(code, f.message)
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => Self::new(ErrorCode::Unauthenticated, m),
            AuthError::Forbidden(m) => Self::new(ErrorCode::Forbidden, m),
            AuthError::Unavailable(m) => Self::new(ErrorCode::Unavailable, m),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid(m) => Self::new(ErrorCode::Unauthenticated, m),
            SessionError::Reused => Self::new(ErrorCode::Unauthenticated, e.to_string()),
            SessionError::Disabled => Self::new(ErrorCode::UserDisabled, e.to_string()),
            SessionError::Raced => Self::new(
                ErrorCode::Unavailable,
                "the refresh token is being used concurrently; try again",
            ),
            SessionError::Db(d) => d.into(),
        }
    }
}
