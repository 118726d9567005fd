//! The apps this service logs people into (`[[apps]]`) and the API keys of back-end callers
//! (`[[api_keys]]`).

use serde::Deserialize;

use super::Secret;
use crate::types::{AppId, AppKind};

/// One WeChat app this service logs people into.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// `mini_program`, `official_account`, `website` (QR-code login) or `mobile_app` (WeChat
    /// SDK login).
    pub kind: AppKind,
    /// WeChat's app id.
    pub app_id: AppId,
    /// The app secret.
    pub secret: Secret,
    /// A display name.
    pub name: String,
    /// Whether the app is bound to the company's Open Platform account (so WeChat sends unionids).
    #[serde(default = "yes")]
    pub open_platform: bool,
    /// The Token entered in WeChat's console for the server URL (`/wechat/{appId}/events`):
    /// 3-32 letters and digits. Without it the webhook refuses every request.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The EncodingAESKey from WeChat's console (43 characters) for compatible and safe mode.
    #[serde(default)]
    pub encoding_aes_key: Option<Secret>,
    /// Refuse plaintext pushes (only compatible and safe mode, which carry the message
    /// encrypted and signed). Default: on when `encoding_aes_key` is set, since a plaintext push
    /// signs only its timestamp and nonce, not its body.
    #[serde(default)]
    pub require_encryption: Option<bool>,
    /// Which WeChat call fetches the app's access token.
    #[serde(default)]
    pub access_token_api: AccessTokenApi,
    /// Official Accounts: run a full follower sync this often, in seconds (none: only when an
    /// admin asks).
    #[serde(default)]
    pub follower_sync_interval_secs: Option<u64>,
    /// Bulk messages sent per second on this app at most (overrides
    /// `messages.send_rate_per_sec`; 0: unlimited).
    #[serde(default)]
    pub message_rate_per_sec: Option<u32>,
    /// Official Accounts: the hosts registered as JS-safe domains (JS接口安全域名) in WeChat's
    /// console (`h5.example.com`: no scheme, port or path). `wechatJsSdkConfig` signs pages on
    /// these hosts only. Sandbox mode adds the service's own host.
    #[serde(default)]
    pub js_sdk_domains: Vec<String>,
}

impl AppConfig {
    /// Whether the webhook refuses plaintext pushes (see `require_encryption`).
    pub fn requires_encryption(&self) -> bool {
        self.require_encryption
            .unwrap_or(self.encoding_aes_key.is_some())
    }
}

/// The WeChat call that fetches an app's access token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenApi {
    /// `POST /cgi-bin/stable_token` (normal mode; force mode only after WeChat refused a token).
    #[default]
    Stable,
    /// `GET /cgi-bin/token` (each call replaces the previous token after a short overlap).
    Token,
}

fn yes() -> bool {
    true
}

/// The role of an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyRole {
    /// Everything.
    Admin,
    /// Read users and identities.
    Service,
}

/// An API key for a back-end caller.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who holds it (shown in logs).
    pub name: String,
    /// What it may do.
    pub role: ApiKeyRole,
    /// The key itself (at least 24 characters).
    pub key: Secret,
}
