//! A website app's QR-code login (网站应用微信登录): the person scans the QR code the page shows
//! with WeChat on their phone, and the browser comes back with a code. Two ways, like the
//! Official Account's web authorization:
//! - embedded (`wxLogin.js` draws the code inside the page): [`Public::start_website_login`]
//!   hands out the state and what the script takes, [`Public::login_with_state`] logs in;
//! - server-driven (`/auth/website/{appId}/authorize` → WeChat's `qrconnect` page → our
//!   callback → a one-time ticket): the same code as the Official Account's
//!   ([`Public::server_authorize_redirect`], [`Public::complete_server_login`]).

use chrono::NaiveDateTime;

use super::oauth_state::check_code_challenge;
use crate::config::check_return_to;
use crate::identity::access::Public;
use crate::identity::{ClientInfo, IdentityError};
use crate::rate_limit::Action;
use crate::types::AppKind;
use crate::wechat::official_account::OauthScope;

/// What the embedded website login (`wxLogin.js`) takes: the app, the scope, where WeChat sends
/// the browser back, and the state.
pub struct WebsiteStart {
    /// The website app's id.
    pub app_id: String,
    /// Always `snsapi_login`.
    pub scope: OauthScope,
    /// Where WeChat sends the browser back with `code` and `state`.
    pub redirect_uri: String,
    /// The single-use state.
    pub state: String,
    /// When the state expires.
    pub expires_at: NaiveDateTime,
}

impl Public<'_> {
    /// The embedded website login: a fresh state and what `wxLogin.js` takes. `redirect_uri`
    /// must be under `official_account_login.return_to` (the QR code sends the whole page
    /// there). With `code_challenge`, `loginWithWebsite` must present its verifier.
    pub async fn start_website_login(
        &self,
        app_id: &str,
        redirect_uri: &str,
        code_challenge: Option<&str>,
        client: &ClientInfo,
    ) -> Result<WebsiteStart, IdentityError> {
        self.app(app_id, AppKind::Website)?;
        self.rate_limit(Action::Authorize, client, Some(app_id))
            .await?;
        let redirect_uri = check_return_to(&self.config.return_to_rules(), redirect_uri)
            .map_err(|e| IdentityError::BadInput(e.replace("returnTo", "redirectUri")))?;
        check_code_challenge(code_challenge)?;
        let issued = self
            .issue_state(app_id, OauthScope::Login, None, code_challenge)
            .await?;
        Ok(WebsiteStart {
            app_id: app_id.to_owned(),
            scope: OauthScope::Login,
            redirect_uri: redirect_uri.to_string(),
            state: issued.state,
            expires_at: issued.expires_at,
        })
    }
}
