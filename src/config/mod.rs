//! Configuration: a TOML file (`--config`), `WECHAT_IDENTITY_*` env overrides and `DATABASE_URL`,
//! validated in one place at start-up. Secrets sit in [`Secret`], which never prints its value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use smart_default::SmartDefault;

mod apps;
mod env;
mod events;
mod federation;
mod graphql;
mod jobs;
mod limits;
mod messages;
mod return_to;
mod sandbox;
mod secret;
mod startup;
mod validate;
pub use apps::{AccessTokenApi, ApiKeyConfig, ApiKeyRole, AppConfig};
pub use events::EventsConfig;
pub use federation::FederationConfig;
pub use graphql::GraphqlConfig;
pub use jobs::JobsConfig;
pub use limits::{ActionLimit, Bucket, Limits, RateLimits};
pub use messages::MessagesConfig;
pub use return_to::{ReturnToRule, check_return_to};
pub use sandbox::{
    SANDBOX_ENCODING_AES_KEY, SANDBOX_WEBHOOK_TOKEN, SandboxMode, sandbox_demo_apps,
};
pub use secret::Secret;

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key).
        message: String,
    },
    /// A key has a value we cannot use.
    #[error("invalid config key `{key}`: {message}")]
    Invalid {
        /// The key, as written in the file or the env variable's name.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The JWT signing algorithm for access tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    /// Ed25519 signatures, public key published in the JWKS (the default).
    EdDSA,
    /// HMAC-SHA256 with a shared secret (nothing is published in the JWKS).
    HS256,
}

/// Access and refresh token settings.
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Signing algorithm.
    #[default(JwtAlgorithm::EdDSA)]
    pub algorithm: JwtAlgorithm,
    /// `iss` claim and the discovery document's `issuer`; unset: the public URL
    /// ([`Config::jwt_issuer`]).
    pub issuer: Option<String>,
    /// `aud` claim.
    #[default("wechat-identity")]
    pub audience: String,
    /// Access token lifetime in seconds.
    #[default(900)]
    pub access_ttl_secs: u64,
    /// Refresh token lifetime in seconds.
    #[default(30 * 24 * 3600)]
    pub refresh_ttl_secs: u64,
    /// A refresh token presented again within this many seconds of its rotation (a client
    /// retrying) gets fresh tokens of the same login instead of revoking it.
    #[default(5)]
    pub refresh_reuse_grace_secs: u64,
    /// How long an instance may keep its answer to "is this access token's login still live?"
    /// (seconds; 0: ask the database on every call). A logout is refused by every instance
    /// within this window.
    #[default(5)]
    pub revocation_check_secs: u64,
    /// How often an instance reads the signing keys again, to sign with a key rotated on
    /// another instance (seconds). A token naming a key it has not seen makes it look at once
    /// (at most once a second).
    #[default(5)]
    pub key_reload_secs: u64,
    /// A PKCS#8 PEM file with an Ed25519 private key from before keys were kept in the
    /// database: imported on start unless it is there already (so tokens it signed keep
    /// working). Signing keys live in the database; `<data_dir>/jwt-ed25519.pem` is imported the
    /// same way when present.
    pub private_key_file: Option<PathBuf>,
    /// The HS256 shared secret (at least 32 bytes); required with `algorithm = "HS256"`.
    pub hs256_secret: Option<Secret>,
}

/// How the service talks to WeChat's API.
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct WechatConfig {
    /// Base URL of WeChat's API; tests and sandbox mode point it at the sandbox.
    #[default("https://api.weixin.qq.com")]
    pub api_base_url: String,
    /// Base URL of WeChat's web-authorization pages (`/connect/oauth2/authorize`); sandbox mode
    /// points it at the sandbox's approval page.
    #[default("https://open.weixin.qq.com")]
    pub open_base_url: String,
    /// Per-request timeout in milliseconds.
    #[default(5000)]
    pub timeout_ms: u64,
    /// Follower sync: `user/info/batchget` calls (of 100 followers each, recorded in one
    /// transaction) in flight at once; at most half of `database_pool_size`.
    #[default(8)]
    pub follower_sync_concurrency: usize,
    /// How long a follower sync stopped by WeChat's API quota (45009) waits before it carries
    /// on from its checkpoint, in seconds.
    #[default(600)]
    pub quota_pause_secs: u64,
    /// Refresh an app's access token this long before it expires (at most half its lifetime).
    #[default(300)]
    pub token_refresh_ahead_secs: u64,
    /// After WeChat's quota or rate errors (45009, 45011) on a token refresh, no refresh of that
    /// app for this long: callers get WECHAT_RATE_LIMITED at once.
    #[default(60)]
    pub token_backoff_secs: u64,
    /// Base64 of 32 bytes: the AES-256-GCM key for session_key at rest (and, derived from it, the
    /// key that signs OA web-authorization states); generated in the data dir when absent.
    pub session_key_encryption_key: Option<Secret>,
}

/// Official Account web authorization (both the frontend-driven and the server-driven flow).
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct OaLoginConfig {
    /// Where the server-driven flow may send the browser back to: URL prefixes (same scheme,
    /// host and port; the path must equal the entry's or lie under it). Empty: no server-driven
    /// logins (sandbox mode adds the service's own `/sandbox/` pages).
    pub return_to: Vec<String>,
    /// How long an authorization `state` stays valid, in seconds.
    #[default(600)]
    pub state_ttl_secs: u64,
    /// How long the server-driven flow's login ticket stays redeemable, in seconds.
    #[default(120)]
    pub ticket_ttl_secs: u64,
}

/// How people are recognised as one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Merge two users when WeChat vouches for the same phone number on both (the phone
    /// button). Off by default: carriers recycle numbers, so a shared number merges nobody and
    /// admins find candidates with `users(filter: {phoneNumber})`. Users with different
    /// unionids are never merged either way (CONFLICT).
    pub merge_on_phone_number: bool,
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    #[default(SocketAddr::from(([127, 0, 0, 1], 8080)))]
    pub listen: SocketAddr,
    /// The service's base URL as browsers and WeChat reach it (for the OA callback URL);
    /// defaults to `http://` + the listen address.
    pub public_url: Option<String>,
    /// Directory for the SQLite file and generated keys.
    #[default(PathBuf::from("./data"))]
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to a SQLite file in the data dir.
    pub database_url: Option<Secret>,
    /// Database pool size.
    #[default(16)]
    pub database_pool_size: usize,
    /// PostgreSQL: log returning Mini Program users in with one statement when nothing needs
    /// deciding (`identity::fast_path`). On by default; off runs every login the full way.
    #[default(true)]
    pub database_fast_path: bool,
    /// Force sandbox mode on or off. Unset, it is on only with no apps configured, on SQLite and
    /// a loopback listen address (a fresh `cargo run`); anywhere else it must be asked for.
    pub sandbox: Option<bool>,
    /// WeChat API settings.
    pub wechat: WechatConfig,
    /// Token settings.
    pub jwt: JwtConfig,
    /// Official Account web authorization.
    pub official_account_login: OaLoginConfig,
    /// How people are recognised as one.
    pub identity: IdentityConfig,
    /// The WeChat apps.
    pub apps: Vec<AppConfig>,
    /// API keys for back-end callers.
    pub api_keys: Vec<ApiKeyConfig>,
    /// Request, connection and table limits.
    pub limits: Limits,
    /// The GraphQL endpoint: introspection, GraphiQL, depth, complexity, time, persisted queries.
    pub graphql: GraphqlConfig,
    /// What a federation gateway is shown: which root fields it may publish.
    pub federation: FederationConfig,
    /// Rate limits per client address and per app.
    pub rate_limits: RateLimits,
    /// The background job runner.
    pub jobs: JobsConfig,
    /// Messages to users.
    pub messages: MessagesConfig,
    /// User events to other systems, and the audit log.
    pub events: EventsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Refuse to start when a start-up check finds the configuration unfit for production
    /// (real apps and no `public_url`, or a loopback one on a public listen address) instead
    /// of warning.
    pub strict: bool,
    /// How sandbox mode came about, once [`Config::finish`] ran (None: off).
    #[serde(skip)]
    pub sandbox_mode: Option<SandboxMode>,
}

/// How the service logs (`[log]`); the level comes from `RUST_LOG` (default `info`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (one JSON object per line) or `text`; unset: JSON unless stdout is a terminal.
    pub format: Option<LogFormat>,
}

/// A log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, the request's span fields included.
    Json,
    /// Human-readable lines (colours only on a terminal).
    Text,
}

impl LogConfig {
    /// The format to use: as configured, else JSON unless stdout is a terminal.
    pub fn format(&self) -> LogFormat {
        use std::io::IsTerminal as _;
        self.format.unwrap_or(if std::io::stdout().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        })
    }
}

impl Config {
    /// Reads the file (if any), applies env overrides, fills sandbox defaults and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        config.finish()?;
        Ok(config)
    }

    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Whether the built-in sandbox (fake WeChat) is mounted.
    pub fn sandbox_enabled(&self) -> bool {
        self.sandbox.unwrap_or_else(|| self.sandbox_by_default())
    }

    /// Whether this is a fresh local start that gets the sandbox without asking: no apps, the
    /// embedded SQLite backend, a loopback listen address, and no sign of being deployed behind
    /// a proxy (no trusted proxies, no public URL other than a loopback one).
    fn sandbox_by_default(&self) -> bool {
        let local_url = self.public_url.as_deref().is_none_or(|url| {
            reqwest::Url::parse(url).is_ok_and(|u| match u.host_str() {
                Some("localhost") => true,
                Some(host) => host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()),
                None => false,
            })
        });
        self.apps.is_empty()
            && self.database_url().starts_with("sqlite://")
            && self.listen.ip().is_loopback()
            && self.limits.trusted_proxies.is_empty()
            && local_url
    }

    /// Fills defaults that depend on other keys, then validates everything. With no apps and no
    /// sandbox anywhere but a local SQLite start, refuses: a deployment that lost its app
    /// config must not turn into a fake WeChat where anyone logs in as anyone.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        let sandbox = self.sandbox_enabled();
        if self.apps.is_empty() && !sandbox {
            return Err(invalid(
                "apps",
                "no WeChat apps are configured; list them under [[apps]], or set `sandbox = true` \
                 (WECHAT_IDENTITY_SANDBOX=true) to run the fake WeChat, which lets anyone log in as \
                 anyone (sandbox mode starts by itself only on SQLite with a loopback listen address)",
            ));
        }
        self.sandbox_mode = match self.sandbox {
            Some(true) => Some(SandboxMode::Asked),
            Some(false) => None,
            None => sandbox.then_some(SandboxMode::Default),
        };
        self.sandbox = Some(sandbox);
        if self.apps.is_empty() && sandbox {
            self.apps = sandbox_demo_apps();
        }
        self.validate()
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("wechat-identity.db").display()
            ),
        }
    }

    /// The configured app with this id.
    pub fn app(&self, app_id: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.app_id.as_str() == app_id)
    }

    /// The parsed `official_account_login.return_to` allow-list (validated at start).
    pub fn return_to_rules(&self) -> Vec<ReturnToRule> {
        self.official_account_login
            .return_to
            .iter()
            .filter_map(|entry| ReturnToRule::parse(entry).ok())
            .collect()
    }

    /// The `iss` of our access tokens: `jwt.issuer`, else the public URL.
    pub fn jwt_issuer(&self) -> String {
        self.jwt.issuer.clone().unwrap_or_else(|| self.public_url())
    }

    /// The public base URL in effect, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

#[cfg(test)]
mod tests;
