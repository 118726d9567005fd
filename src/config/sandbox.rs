//! Sandbox mode: why it runs, and its demo apps.

use super::{AccessTokenApi, AppConfig, Secret};
use crate::types::{AppId, AppKind};

/// Why the sandbox runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxMode {
    /// A local start with no apps, on SQLite and a loopback address.
    Default,
    /// `sandbox = true` (or `WECHAT_IDENTITY_SANDBOX=true`).
    Asked,
}

/// The webhook Token of the sandbox's demo apps (what one would paste into WeChat's console).
pub const SANDBOX_WEBHOOK_TOKEN: &str = "sandboxwebhooktoken";

/// The EncodingAESKey of the sandbox's demo Official Account (43 characters).
pub const SANDBOX_ENCODING_AES_KEY: &str = "sandboxEncodingAESKey0123456789abcdefghijkA";

/// The sandbox's demo apps: two Mini Programs and an OA bound to one open platform, one unbound
/// Mini Program.
pub fn sandbox_demo_apps() -> Vec<AppConfig> {
    let app = |kind, id: &str, name: &str, open_platform| AppConfig {
        kind,
        app_id: AppId::new(id),
        secret: Secret::new(format!("sandbox-secret-{id}")),
        name: name.into(),
        open_platform,
        token: Some(Secret::new(SANDBOX_WEBHOOK_TOKEN)),
        encoding_aes_key: (kind == AppKind::OfficialAccount)
            .then(|| Secret::new(SANDBOX_ENCODING_AES_KEY)),
        require_encryption: None,
        access_token_api: AccessTokenApi::Stable,
        follower_sync_interval_secs: None,
        message_rate_per_sec: None,
    };
    vec![
        app(
            AppKind::MiniProgram,
            "wxsandboxminiapp01",
            "Sandbox Mini Program A",
            true,
        ),
        app(
            AppKind::MiniProgram,
            "wxsandboxminiapp02",
            "Sandbox Mini Program B",
            true,
        ),
        app(
            AppKind::OfficialAccount,
            "wxsandboxofficial1",
            "Sandbox Official Account",
            true,
        ),
        app(
            AppKind::MiniProgram,
            "wxsandboxunbound01",
            "Sandbox Unbound Mini Program",
            false,
        ),
    ]
}
