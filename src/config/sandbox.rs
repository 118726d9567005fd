//! Sandbox mode: why it runs, and its demo apps.

use super::{AccessTokenApi, AppConfig, Secret};
use crate::types::AppId;

/// Why the sandbox runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxMode {
    /// A local start with no apps, on SQLite and a loopback address.
    Default,
    /// `sandbox = true` (or `WECHAT_IDENTITY_SANDBOX=true`).
    Asked,
}

/// The webhook Token of the sandbox's demo apps (what one would paste into WeChat's console).
pub const SANDBOX_WEBHOOK_TOKEN: &str = wechat_sandbox::DEMO_WEBHOOK_TOKEN;

/// The EncodingAESKey of the sandbox's demo Official Account (43 characters).
pub const SANDBOX_ENCODING_AES_KEY: &str = wechat_sandbox::DEMO_ENCODING_AES_KEY;

/// The sandbox's demo apps ([`wechat_sandbox::demo_apps`]): two Mini Programs and an OA bound to
/// one open platform, one unbound Mini Program, and the official WXBizDataCrypt sample's Mini
/// Program (unbound), whose published vector replays through the real paths.
pub fn sandbox_demo_apps() -> Vec<AppConfig> {
    let app = |app: wechat_sandbox::App| AppConfig {
        kind: app.kind,
        app_id: AppId::new(app.app_id),
        secret: Secret::new(app.secret),
        name: app.name,
        open_platform: app.open_platform,
        token: app.webhook_token.map(Secret::new),
        encoding_aes_key: app.encoding_aes_key.map(Secret::new),
        require_encryption: None,
        access_token_api: AccessTokenApi::Stable,
        follower_sync_interval_secs: None,
        message_rate_per_sec: None,
        js_sdk_domains: app.js_sdk_domains,
    };
    wechat_sandbox::demo_apps().into_iter().map(app).collect()
}
