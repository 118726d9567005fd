//! WeChat, as the service sees it: the `wechat-client` crate (typed calls, errors, crypto, the
//! webhook protocol, the keyword rules) re-exported under the service's paths, the sandbox
//! (`wechat-sandbox`, the fake WeChat of sandbox mode and tests), and the glue that hands them
//! the service's app config.

pub use wechat_client::{
    AppCredentials, CallObserver, WechatClient, WechatError, client, crypto, error, mini_program,
    official_account, profile, server_api, webhook,
};
pub use wechat_sandbox as sandbox;

use crate::config::AppConfig;

/// The keyword rules of template messages, with the macro the GraphQL enum mirrors.
pub mod keywords {
    pub use wechat_client::keyword_type_variants;
    pub use wechat_client::keywords::*;
}

/// The three send APIs and WeChat's delivery results, with the macro the GraphQL enum mirrors.
pub mod messages {
    pub use wechat_client::channel_variants;
    pub use wechat_client::messages::*;
}

impl AppCredentials for AppConfig {
    fn app_id(&self) -> &str {
        self.app_id.as_str()
    }

    fn secret(&self) -> &str {
        self.secret.expose()
    }
}

/// The sandbox plays WeChat for the configured apps (sandbox mode: the demo apps).
impl From<&AppConfig> for sandbox::App {
    fn from(app: &AppConfig) -> Self {
        Self {
            kind: app.kind,
            app_id: app.app_id.as_str().to_owned(),
            name: app.name.clone(),
            secret: app.secret.expose().to_owned(),
            open_platform: app.open_platform,
            webhook_token: app.token.as_ref().map(|t| t.expose().to_owned()),
            encoding_aes_key: app.encoding_aes_key.as_ref().map(|k| k.expose().to_owned()),
        }
    }
}
