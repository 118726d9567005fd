//! The identity layer: logins, merges on unionid, links and unlinks, and every read of the
//! merged view. No HTTP, no GraphQL.
//!
//! - Every sighting of a WeChat identity — a login, a follower in a sync, a webhook event — goes
//!   through [`sighting::record`] inside one database transaction.
//! - Nobody outside this module reaches the database, WeChat or the keys: [`Identity`]'s parts
//!   are private. A caller is turned once per request into an [`access::Access`], and its
//!   handles ([`access::Public`], [`access::Reader`], [`access::Admin`], [`access::SelfUser`],
//!   [`access::Related`]) carry exactly the methods that caller may use.

pub mod access;
pub mod admin;
pub mod audit;
pub mod compiled;
pub mod events;
mod fast_path;
pub mod login;
pub mod messages;
pub mod mini_program_data;
pub mod nodes;
pub mod operations;
pub mod people;
pub mod phone;
pub mod profile;
mod reads;
pub mod rules;
pub mod server_side;
pub mod sessions;
pub mod sighting;
pub mod values;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::ApiKeys;
use crate::auth::keys::KeyStore;
use crate::auth::revocation::LiveLogins;
use crate::auth::sessions::SessionError;
use crate::auth::{AuthError, TokenIssuer};
use crate::config::{AppConfig, Config};
use crate::crypto::{SecretBox, Signer};
use crate::db::{Db, DbError, Race, Retryable};
use crate::rate_limit::{Action, Limited, Limiter};
use crate::types::AppKind;
use crate::wechat::{WechatClient, WechatClock, WechatError};
use access::System;

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
    /// The Mini Program session_key on record no longer opens the person's data: they must
    /// call `wx.login` and log in again.
    #[error(
        "the session_key on record is stale: call wx.login, log in again with the new code, then retry"
    )]
    SessionKeyExpired,
    /// An admin disabled the user: no login until `enableUser`; nothing was stored.
    #[error("this user is disabled")]
    UserDisabled,
    /// A refresh or logout failed in the session store.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The caller is not authenticated, or not allowed to do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Too many attempts from this address or for this app; nothing was done.
    #[error("rate limit `{}` reached; retry in {} s", .0.limit, .0.retry_after_secs)]
    RateLimited(Limited),
    /// A message was refused or failed (its code, and the recorded message if there is one).
    #[error("{}", .0.message)]
    Message(Box<messages::Failure>),
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
            IdentityError::Session(e) => e.race(),
            _ => None,
        }
    }
}

/// The identity service. Cheap to clone (one `Arc`); its parts are private to this module.
#[derive(Clone)]
pub struct Identity(Arc<Parts>);

/// Everything the identity layer works with.
pub struct Parts {
    /// Configuration (apps and their secrets).
    config: Arc<Config>,
    /// The database.
    db: Db,
    /// WeChat's API.
    wechat: WechatClient,
    /// Signs our tokens.
    tokens: Arc<TokenIssuer>,
    /// The signing keys in the database (EdDSA), read again when they change.
    signing: sessions::keys::SigningKeys,
    /// Which logins are live, as this instance last saw them.
    live_logins: LiveLogins,
    /// Seals session keys at rest.
    sealer: SecretBox,
    /// Signs OA web-authorization states.
    state_signer: Signer,
    /// The configured API keys.
    api_keys: ApiKeys,
    /// Rate limits per client address and per app.
    limiter: Limiter,
    /// Whether returning Mini Program logins may take the PostgreSQL fast path.
    fast_path: bool,
    /// Apps' access tokens for WeChat's server API, and Official Accounts' `jsapi_ticket`s.
    access_tokens: server_side::wechat_token::AccessTokens,
    /// Delivers user events to endpoints (`events::delivery`).
    event_client: reqwest::Client,
    /// Each app's send rate for bulk messages (none: unlimited).
    send_limits: std::collections::HashMap<String, governor::DefaultDirectRateLimiter>,
}

impl Deref for Identity {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What [`Identity::new`] is built from.
pub struct Setup {
    /// Configuration.
    pub config: Config,
    /// The database.
    pub db: Db,
    /// WeChat's API.
    pub wechat: WechatClient,
    /// Signs our tokens.
    pub tokens: TokenIssuer,
    /// The signing keys in the database (none with HS256).
    pub key_store: Option<KeyStore>,
    /// Seals session keys at rest.
    pub sealer: SecretBox,
    /// Seals apps' access tokens and tickets at rest.
    pub token_sealer: SecretBox,
    /// WeChat's clock (the sandbox's in sandbox mode).
    pub wechat_clock: WechatClock,
    /// Signs OA web-authorization states.
    pub state_signer: Signer,
    /// The configured API keys.
    pub api_keys: ApiKeys,
}

impl Identity {
    /// The identity service over these parts.
    pub fn new(setup: Setup) -> Self {
        let app_ids: Vec<&str> = setup
            .config
            .apps
            .iter()
            .map(|a| a.app_id.as_str())
            .collect();
        let key_names: Vec<&str> = setup
            .config
            .api_keys
            .iter()
            .map(|k| k.name.as_str())
            .collect();
        let limiter = Limiter::new(&setup.config.rate_limits, &app_ids, &key_names);
        let fast_path = setup.config.database_fast_path;
        let wechat = &setup.config.wechat;
        let settings = server_side::wechat_token::TokenSettings {
            refresh_ahead: Duration::from_secs(wechat.token_refresh_ahead_secs),
            backoff: Duration::from_secs(wechat.token_backoff_secs),
            refresh_wait: Duration::from_millis(wechat.timeout_ms.saturating_mul(2) + 1000),
        };
        let access_tokens = server_side::wechat_token::AccessTokens::new(
            setup.db.clone(),
            setup.wechat.clone(),
            setup.token_sealer,
            setup.wechat_clock,
            settings,
        );
        let send_limits = setup
            .config
            .apps
            .iter()
            .filter_map(|a| {
                let rate = a
                    .message_rate_per_sec
                    .unwrap_or(setup.config.messages.send_rate_per_sec);
                let rate = std::num::NonZeroU32::new(rate)?;
                let quota = governor::Quota::per_second(rate);
                Some((
                    a.app_id.as_str().to_owned(),
                    governor::RateLimiter::direct(quota),
                ))
            })
            .collect();
        let live_logins =
            LiveLogins::new(Duration::from_secs(setup.config.jwt.revocation_check_secs));
        let events = &setup.config.events;
        let event_client = events::delivery::client(
            Duration::from_millis(events.timeout_ms),
            events.private_networks_allowed(setup.config.sandbox_enabled()),
        );
        Self(Arc::new(Parts {
            config: Arc::new(setup.config),
            db: setup.db,
            wechat: setup.wechat,
            tokens: Arc::new(setup.tokens),
            signing: sessions::keys::SigningKeys::new(setup.key_store),
            live_logins,
            sealer: setup.sealer,
            state_signer: setup.state_signer,
            api_keys: setup.api_keys,
            limiter,
            fast_path,
            access_tokens,
            event_client,
            send_limits,
        }))
    }

    /// The configuration (read-only; secrets stay wrapped).
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl System {
    /// The configuration (read-only; secrets stay wrapped).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// SQL statements this instance has sent to its database so far (see
    /// [`Db::statements`]): how tests and operators see what a request costs.
    pub fn db_statements(&self) -> u64 {
        self.db.statements()
    }

    /// Forgets the rate-limit buckets of addresses gone quiet (run periodically).
    pub fn forget_idle_limits(&self) {
        self.limiter.forget_idle();
    }
}

impl Parts {
    /// Takes one `action` from the caller's rate limits (per address, and per app when given).
    async fn rate_limit(
        &self,
        action: Action,
        client: &ClientInfo,
        app_id: Option<&str>,
    ) -> Result<(), IdentityError> {
        self.limiter
            .check(action, client.ip, app_id)
            .await
            .map_err(|limited| {
                crate::metrics::rate_limit_refusal(&limited.limit);
                tracing::info!(limit = %limited.limit, ip = ?client.ip, "rate limited");
                IdentityError::RateLimited(limited)
            })
    }

    /// The configured app `app_id` of either kind, or a BAD_USER_INPUT error naming it.
    fn any_app(&self, app_id: &str) -> Result<&AppConfig, IdentityError> {
        self.config.app(app_id).ok_or_else(|| {
            IdentityError::BadInput(format!("unknown appId `{}`", truncate(app_id, 64)))
        })
    }

    /// The configured app `app_id` of `kind`, or a BAD_USER_INPUT error naming it.
    fn app(&self, app_id: &str, kind: AppKind) -> Result<&AppConfig, IdentityError> {
        match self.config.app(app_id) {
            Some(app) if app.kind == kind => Ok(app),
            Some(_) => Err(IdentityError::BadInput(format!(
                "app `{app_id}` is not a {}",
                kind.name()
            ))),
            None => Err(IdentityError::BadInput(format!(
                "unknown appId `{}`",
                truncate(app_id, 64)
            ))),
        }
    }
}

/// Runs a login attempt of `kind` (`mini_program`, `official_account`, ...), records how long
/// it took and how it ended (`ok`, or what kind of error), and passes its result on.
pub(crate) async fn count_login<T>(
    kind: &'static str,
    login: impl std::future::Future<Output = Result<T, IdentityError>>,
) -> Result<T, IdentityError> {
    let started = std::time::Instant::now();
    let result = login.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => login_outcome(e),
    };
    crate::metrics::login(kind, outcome, started.elapsed());
    result
}

/// A failed login's outcome label: what kind of error it was (a fixed set).
fn login_outcome(e: &IdentityError) -> &'static str {
    match e {
        IdentityError::BadInput(_) => "bad_input",
        IdentityError::Conflict(_) => "conflict",
        IdentityError::NotFound(_) => "not_found",
        IdentityError::InvalidCredential(_) | IdentityError::Auth(_) => "unauthenticated",
        IdentityError::AccessDenied => "forbidden",
        IdentityError::SessionKeyExpired => "session_key_expired",
        IdentityError::SnapshotUser => "snapshot_user",
        IdentityError::UserDisabled => "user_disabled",
        IdentityError::RateLimited(_) => "rate_limited",
        IdentityError::Wechat(WechatError::CodeInvalid { .. }) => "wechat_code_invalid",
        IdentityError::Wechat(WechatError::RateLimited { .. }) => "wechat_rate_limited",
        IdentityError::Wechat(WechatError::Rejected { .. }) => "wechat_rejected",
        IdentityError::Wechat(WechatError::Unavailable { .. }) => "wechat_unavailable",
        IdentityError::Session(_) => "session",
        IdentityError::Db(_) => "database",
        IdentityError::Internal(_) | IdentityError::Message(_) => "internal",
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
