//! What the client needs to know of an app: its kind, and the id and secret it calls WeChat with.

/// The kinds of WeChat app this service logs people into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// 小程序.
    MiniProgram,
    /// 公众号.
    OfficialAccount,
    /// 网站应用: a website whose visitors log in by scanning a QR code with WeChat
    /// (`/connect/qrconnect`, scope `snsapi_login`).
    Website,
    /// 移动应用: an iOS or Android app logging people in through the WeChat SDK (`SendAuth`).
    MobileApp,
}

impl AppKind {
    /// Every kind, in the order the schema lists them.
    pub const ALL: [AppKind; 4] = [
        AppKind::MiniProgram,
        AppKind::OfficialAccount,
        AppKind::Website,
        AppKind::MobileApp,
    ];

    /// The name used in config files and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::MiniProgram => "mini_program",
            AppKind::OfficialAccount => "official_account",
            AppKind::Website => "website",
            AppKind::MobileApp => "mobile_app",
        }
    }

    /// The kind's name for people ("a Mini Program").
    pub fn name(self) -> &'static str {
        match self {
            AppKind::MiniProgram => "Mini Program",
            AppKind::OfficialAccount => "Official Account",
            AppKind::Website => "website app",
            AppKind::MobileApp => "mobile app",
        }
    }

    /// Whether people log in through WeChat's OAuth code exchange (`/sns/oauth2/access_token`):
    /// Official Accounts, websites and mobile apps (not Mini Programs: `jscode2session`).
    pub fn uses_oauth(self) -> bool {
        !matches!(self, AppKind::MiniProgram)
    }
}

/// An app's credentials as WeChat's API takes them (the service's app config implements it).
/// The secret goes only into requests, which the client never logs.
pub trait AppCredentials: Sync {
    /// WeChat's app id (`wx…`).
    fn app_id(&self) -> &str;
    /// The app secret.
    fn secret(&self) -> &str;
}
