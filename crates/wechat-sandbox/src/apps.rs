//! The apps the sandbox plays WeChat for, and its demo apps.

use wechat_client::AppKind;

/// An app as WeChat's console knows it: what the sandbox needs to check its calls and to push
/// to its webhook. The identity service converts its app config into this.
#[derive(Clone)]
pub struct App {
    /// Mini Program or Official Account.
    pub kind: AppKind,
    /// WeChat's app id.
    pub app_id: String,
    /// A display name.
    pub name: String,
    /// The app secret (calls with another are refused, 40125).
    pub secret: String,
    /// Whether the app is bound to the sandbox's open platform (so its people get unionids).
    pub open_platform: bool,
    /// The Token the pushes to the app's webhook are signed with.
    pub webhook_token: Option<String>,
    /// The EncodingAESKey the pushes are encrypted with (compatible and safe mode).
    pub encoding_aes_key: Option<String>,
    /// Official Accounts: the hosts registered as JS-safe domains, where pages may call
    /// `wx.config` (`POST /js-sdk/verify` refuses pages elsewhere).
    pub js_sdk_domains: Vec<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("kind", &self.kind)
            .field("app_id", &self.app_id)
            .field("name", &self.name)
            .field("open_platform", &self.open_platform)
            .field("js_sdk_domains", &self.js_sdk_domains)
            .finish_non_exhaustive()
    }
}

impl From<&App> for App {
    fn from(app: &App) -> Self {
        app.clone()
    }
}

/// The webhook Token of the demo apps (what one would paste into WeChat's console).
pub const DEMO_WEBHOOK_TOKEN: &str = "sandboxwebhooktoken";

/// The EncodingAESKey of the demo Official Account (43 characters).
pub const DEMO_ENCODING_AES_KEY: &str = "sandboxEncodingAESKey0123456789abcdefghijkA";

/// The app id of the Mini Program in WeChat's `WXBizDataCrypt` sample (one of the demo apps).
pub const SAMPLE_MINI_PROGRAM: &str = "wx4f4bc4dec97d474b";

/// The demo apps: two Mini Programs, an OA, a website and a mobile app bound to one open
/// platform, one unbound Mini Program, and the unbound Mini Program of WeChat's published `WXBizDataCrypt` sample
/// ([`SAMPLE_MINI_PROGRAM`]): a code for it with the sample's `openid` and `sessionKey`
/// (`POST /codes` overrides) lets a real login replay the sample's `encryptedData`. Each app's
/// secret is `sandbox-secret-{appId}`. No app has JS-safe domains: the service in sandbox mode
/// adds its own host to its Official Accounts'.
pub fn demo_apps() -> Vec<App> {
    let app = |kind, id: &str, name: &str, open_platform| App {
        kind,
        app_id: id.into(),
        name: name.into(),
        secret: format!("sandbox-secret-{id}"),
        open_platform,
        // Websites and mobile apps have no message push.
        webhook_token: matches!(kind, AppKind::MiniProgram | AppKind::OfficialAccount)
            .then(|| DEMO_WEBHOOK_TOKEN.into()),
        encoding_aes_key: (kind == AppKind::OfficialAccount).then(|| DEMO_ENCODING_AES_KEY.into()),
        js_sdk_domains: Vec::new(),
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
            AppKind::Website,
            "wxsandboxwebsite01",
            "Sandbox Website",
            true,
        ),
        app(
            AppKind::MobileApp,
            "wxsandboxmobile001",
            "Sandbox Mobile App",
            true,
        ),
        app(
            AppKind::MiniProgram,
            "wxsandboxunbound01",
            "Sandbox Unbound Mini Program",
            false,
        ),
        app(
            AppKind::MiniProgram,
            SAMPLE_MINI_PROGRAM,
            "WXBizDataCrypt sample Mini Program",
            false,
        ),
    ]
}
