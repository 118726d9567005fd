//! What the client needs to know of an app: its kind, and the id and secret it calls WeChat with.

/// The two kinds of WeChat app this service logs people into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// 小程序.
    MiniProgram,
    /// 公众号.
    OfficialAccount,
}

impl AppKind {
    /// The name used in config files and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::MiniProgram => "mini_program",
            AppKind::OfficialAccount => "official_account",
        }
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
