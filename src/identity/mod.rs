//! The identity rules: logins, merges on unionid, links and unlinks. No HTTP, no GraphQL.
//!
//! Every sighting of a WeChat identity — a login, later a follower sync or webhook event — goes
//! through [`rules::resolve`] inside one database transaction.

pub mod admin;
pub mod mini_program;
pub mod oauth_state;
pub mod official_account;
pub mod rules;

use std::sync::Arc;

use crate::auth::TokenIssuer;
use crate::config::{AppConfig, Config};
use crate::crypto::{SecretBox, Signer};
use crate::db::{Db, DbError, Race, Retryable};
use crate::rate_limit::{Action, Limited, Limiter};
use crate::types::AppKind;
use crate::wechat::{WechatClient, WechatError};

pub use crate::auth::sessions::ClientInfo;

/// Errors of the identity layer.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The input is unusable (said in the message, which is safe to show).
    #[error("{0}")]
    BadInput(String),
    /// WeChat refused or failed.
    #[error(transparent)]
    Wechat(#[from] WechatError),
    /// A unionid conflicts with the one already on record; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A credential (a login ticket) is unknown, expired or used.
    #[error("{0}")]
    InvalidCredential(&'static str),
    /// The person declined the authorization in WeChat.
    #[error("the person did not authorize the login")]
    AccessDenied,
    /// WeChat flags the person as a virtual "snapshot" user (a page opened from a Moments
    /// snapshot): there is nobody to log in; nothing was stored.
    #[error("WeChat reports a snapshot (virtual) user; open the page in WeChat to log in")]
    SnapshotUser,
    /// Too many attempts from this address or for this app; nothing was done.
    #[error("rate limit `{}` reached; retry in {} s", .0.limit, .0.retry_after_secs)]
    RateLimited(Limited),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Our records broke an invariant (logged; the caller sees INTERNAL).
    #[error("{0}")]
    Internal(String),
}

impl Retryable for IdentityError {
    fn race(&self) -> Option<Race> {
        match self {
            IdentityError::Db(e) => e.race(),
            _ => None,
        }
    }
}

/// The identity service: everything a login needs.
#[derive(Clone)]
pub struct Identity {
    /// Configuration (apps and their secrets).
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// WeChat's API.
    pub wechat: WechatClient,
    /// Signs our tokens.
    pub tokens: Arc<TokenIssuer>,
    /// Seals session keys at rest.
    pub sealer: Arc<SecretBox>,
    /// Signs OA web-authorization states.
    pub state_signer: Arc<Signer>,
    /// Rate limits per client address and per app.
    pub limiter: Arc<Limiter>,
    /// When new OA states check the per-app cap.
    pub state_cap: Arc<oauth_state::StateCapCheck>,
}

impl Identity {
    /// Takes one `action` from the caller's rate limits (per address, and per app when given).
    pub fn rate_limit(
        &self,
        action: Action,
        client: &ClientInfo,
        app_id: Option<&str>,
    ) -> Result<(), IdentityError> {
        self.limiter
            .check(action, client.ip, app_id)
            .map_err(|limited| {
                tracing::info!(limit = %limited.limit, ip = ?client.ip, "rate limited");
                IdentityError::RateLimited(limited)
            })
    }

    /// The configured app `app_id` of `kind`, or a BAD_USER_INPUT error naming it.
    pub fn app(&self, app_id: &str, kind: AppKind) -> Result<&AppConfig, IdentityError> {
        match self.config.app(app_id) {
            Some(app) if app.kind == kind => Ok(app),
            Some(_) => Err(IdentityError::BadInput(format!(
                "app `{app_id}` is not a {}",
                match kind {
                    AppKind::MiniProgram => "Mini Program",
                    AppKind::OfficialAccount => "Official Account",
                }
            ))),
            None => Err(IdentityError::BadInput(format!(
                "unknown appId `{}`",
                truncate(app_id, 64)
            ))),
        }
    }
}

/// `s` cut to at most `max` characters, for echoing input in messages.
pub fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Checks a WeChat login code before any call: non-empty, short, printable ASCII.
pub fn check_code(code: &str) -> Result<(), IdentityError> {
    if code.is_empty() {
        return Err(IdentityError::BadInput("code must not be empty".into()));
    }
    if code.len() > 128 || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(IdentityError::BadInput(
            "code must be at most 128 printable ASCII characters".into(),
        ));
    }
    Ok(())
}

/// Checks an id WeChat sent us (openid/unionid): non-empty, ≤ 64 characters, URL-safe.
pub(crate) fn check_wechat_id(kind: &str, id: &str) -> Result<(), IdentityError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        tracing::warn!(kind, "WeChat sent an id that does not look like one");
        return Err(IdentityError::Wechat(WechatError::Unavailable {
            reason: format!("WeChat sent a malformed {kind}"),
            errcode: None,
        }));
    }
    Ok(())
}
