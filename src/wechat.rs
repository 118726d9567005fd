//! WeChat, as the service sees it: the `wechat-client` crate (typed calls, errors, crypto, the
//! webhook protocol, the keyword rules) re-exported under the service's paths, the sandbox
//! (`wechat-sandbox`, the fake WeChat of sandbox mode and tests), the glue that hands them
//! the service's app config, and WeChat's clock ([`WechatClock`]).

pub use wechat_client::{
    AppCredentials, CallObserver, CallReport, WechatClient, WechatError, client, crypto, error,
    js_sdk, mini_program, official_account, profile, server_api, webhook,
};
pub use wechat_sandbox as sandbox;

use chrono::{NaiveDateTime, TimeDelta};

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

/// WeChat's time: what the token manager measures the lives of access tokens and
/// `jsapi_ticket`s by, and what a JS-SDK signature's timestamp says. The real clock; in sandbox
/// mode the sandbox's (`POST /sandbox/wechat/clock` moves it), so that tokens and tickets age
/// here as the fake WeChat ages them.
#[derive(Clone, Default)]
pub struct WechatClock(Option<sandbox::Sandbox>);

impl WechatClock {
    /// The sandbox's clock.
    pub fn of_sandbox(sandbox: &sandbox::Sandbox) -> Self {
        Self(Some(sandbox.clone()))
    }

    /// Now (UTC, no zone, like the database's times).
    pub fn now(&self) -> NaiveDateTime {
        let real = chrono::Utc::now().naive_utc();
        match &self.0 {
            Some(sandbox) => real + TimeDelta::from_std(sandbox.clock_offset()).unwrap_or_default(),
            None => real,
        }
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
            js_sdk_domains: app.js_sdk_domains.clone(),
        }
    }
}
