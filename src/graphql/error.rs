//! GraphQL errors: every error a resolver returns carries a stable `extensions.code`; WeChat
//! failures also carry `extensions.wechatErrcode`. Internal causes are logged, never returned.
//!
//! [`ApiError`] deliberately has no `Display`, so it cannot slip into async-graphql's blanket
//! `From<impl Display>` conversion (which would lose the code and could leak a cause).

use crate::auth::AuthError;
use crate::auth::sessions::SessionError;
use crate::db::DbError;
use crate::identity::IdentityError;
use crate::wechat::WechatError;

/// The stable error codes of the API.
pub mod code {
    /// No or bad credentials.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Valid credentials, not allowed.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// Bad input; nothing changed.
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// No such thing.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Conflicts with what is on record; nothing changed.
    pub const CONFLICT: &str = "CONFLICT";
    /// WeChat says the code is invalid, used or expired.
    pub const WECHAT_CODE_INVALID: &str = "WECHAT_CODE_INVALID";
    /// WeChat rate-limited us.
    pub const WECHAT_RATE_LIMITED: &str = "WECHAT_RATE_LIMITED";
    /// WeChat busy, unreachable or malformed.
    pub const WECHAT_UNAVAILABLE: &str = "WECHAT_UNAVAILABLE";
    /// WeChat refused for another reason.
    pub const WECHAT_REJECTED: &str = "WECHAT_REJECTED";
    /// WeChat reports a virtual "snapshot" user (a page opened from a Moments snapshot): the
    /// person must open the page in WeChat proper to log in.
    pub const WECHAT_SNAPSHOT_USER: &str = "WECHAT_SNAPSHOT_USER";
    /// Too many attempts from this address or for this app; `extensions.retryAfter` says when
    /// to try again (seconds).
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The service is overloaded or a dependency is down; try again.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// Our fault; the cause is in the log.
    pub const INTERNAL: &str = "INTERNAL";
}

/// An error as the API shows it.
#[derive(Debug)]
pub struct ApiError {
    code: &'static str,
    message: String,
    wechat_errcode: Option<i64>,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with this code and a message safe to show.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            wechat_errcode: None,
            retry_after_secs: None,
        }
    }

    /// RATE_LIMITED, naming the limit, with the seconds to wait.
    pub fn rate_limited(limited: &crate::rate_limit::Limited) -> Self {
        Self {
            retry_after_secs: Some(limited.retry_after_secs),
            ..Self::new(
                code::RATE_LIMITED,
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
        Self::new(code::BAD_USER_INPUT, message)
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message (safe to show).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// INTERNAL, logging the cause.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(code::INTERNAL, "internal error")
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let mut error = async_graphql::Error::new(e.message);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", e.code);
        if let Some(errcode) = e.wechat_errcode {
            extensions.set("wechatErrcode", errcode);
        }
        if let Some(secs) = e.retry_after_secs {
            extensions.set("retryAfter", secs);
        }
        error.extensions = Some(extensions);
        error
    }
}

impl From<WechatError> for ApiError {
    fn from(e: WechatError) -> Self {
        let (code, message) = match &e {
            WechatError::Unavailable { .. } => {
                (code::WECHAT_UNAVAILABLE, "WeChat is unavailable; try again")
            }
            WechatError::RateLimited { .. } => (
                code::WECHAT_RATE_LIMITED,
                "WeChat rate limit reached; try again later",
            ),
            WechatError::CodeInvalid { .. } => (
                code::WECHAT_CODE_INVALID,
                "the WeChat code is invalid, expired or already used; get a new one",
            ),
            WechatError::Rejected { errcode, .. } => {
                if matches!(errcode, 40001 | 40013 | 40125 | 40164 | 41002 | 41004) {
                    tracing::error!(
                        errcode,
                        "WeChat rejected our app credentials; check the app's config"
                    );
                }
                (code::WECHAT_REJECTED, "WeChat rejected the request")
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
                Self::new(code::UNAVAILABLE, "the service is busy; try again")
            }
            e => Self::internal(&e),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::BadInput(m) => Self::new(code::BAD_USER_INPUT, m),
            IdentityError::Conflict(m) => Self::new(code::CONFLICT, m),
            IdentityError::NotFound(m) => Self::new(code::NOT_FOUND, m),
            IdentityError::InvalidCredential(m) => Self::new(code::UNAUTHENTICATED, m),
            e @ IdentityError::AccessDenied => Self::new(code::FORBIDDEN, e.to_string()),
            e @ IdentityError::SnapshotUser => Self::new(code::WECHAT_SNAPSHOT_USER, e.to_string()),
            IdentityError::RateLimited(limited) => Self::rate_limited(&limited),
            IdentityError::Wechat(w) => w.into(),
            IdentityError::Db(d) => d.into(),
            IdentityError::Internal(m) => Self::internal(&m),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => Self::new(code::UNAUTHENTICATED, m),
            AuthError::Forbidden(m) => Self::new(code::FORBIDDEN, m),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid(m) => Self::new(code::UNAUTHENTICATED, m),
            SessionError::Raced => Self::new(
                code::UNAVAILABLE,
                "the refresh token is being used concurrently; try again",
            ),
            SessionError::Db(d) => d.into(),
        }
    }
}

/// Converts any layer's error into the GraphQL error the client sees.
pub fn gql(e: impl Into<ApiError>) -> async_graphql::Error {
    e.into().into()
}
