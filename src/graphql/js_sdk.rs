//! JS-SDK configs for Official Account pages in GraphQL (`wechatJsSdkConfig`).

use async_graphql::{Context, Object, SimpleObject};

use super::access;
use super::error::gql;
use crate::identity::server_side::js_sdk::JsSdkConfig;

/// What an Official Account page passes to `wx.config` (with its own `jsApiList` and
/// `openTagList`), signed for one page URL with the app's `jsapi_ticket`.
#[derive(SimpleObject)]
pub struct WeChatJsSdkConfig {
    /// The Official Account's app id (`wx.config`'s `appId`).
    pub app_id: String,
    /// When it was signed, in Unix seconds (`wx.config`'s `timestamp`).
    pub timestamp: i64,
    /// A random string of 16 characters, part of what is signed (`wx.config`'s `nonceStr`).
    pub nonce_str: String,
    /// Lower-case hex SHA-1 of the ticket, `nonceStr`, `timestamp` and the page URL without its
    /// fragment (`wx.config`'s `signature`).
    pub signature: String,
}

impl From<JsSdkConfig> for WeChatJsSdkConfig {
    fn from(c: JsSdkConfig) -> Self {
        Self {
            app_id: c.app_id,
            timestamp: c.timestamp,
            nonce_str: c.nonce_str,
            signature: c.signature,
        }
    }
}

/// JS-SDK queries (merged into the query root).
#[derive(Default)]
pub struct JsSdkQuery;

#[Object]
impl JsSdkQuery {
    /// A signed `wx.config` for one page of an Official Account: pass
    /// `location.href.split('#')[0]` (a fragment is ignored). The page's host must be one of the
    /// app's JS-safe domains (`js_sdk_domains` in the service's config); another kind of app, an
    /// unknown one, or another URL is BAD_USER_INPUT. Ask on each page load: a config holds only
    /// while the app's `jsapi_ticket` does (about two hours), and the ticket is shared, so
    /// asking costs WeChat nothing. Rate-limited per address and per app (`rate_limits.js_sdk`:
    /// RATE_LIMITED); counts against `limits.wechat_fields_per_request`.
    /// Anyone.
    async fn wechat_js_sdk_config(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Official Account's app id.")] app_id: String,
        #[graphql(
            desc = "The page's URL (`location.href`): absolute http(s), at most 2048 bytes."
        )]
        url: String,
    ) -> async_graphql::Result<Option<WeChatJsSdkConfig>> {
        let public = access::public(ctx)?;
        let config = public
            .wechat_js_sdk_config(&app_id, &url, &access::client_info(ctx))
            .await
            .map_err(gql)?;
        Ok(Some(config.into()))
    }
}
