//! JS-SDK signatures for Official Account pages: what a page passes to `wx.config`, signed with
//! the app's `jsapi_ticket` (kept by the token manager like the access token: one per app across
//! instances, so a flood of page loads costs one `getticket` per ticket lifetime).
//!
//! Only pages on the app's JS-safe domains (`apps[].js_sdk_domains`, as registered in WeChat's
//! console) are signed; anything else is refused before WeChat is asked or anything is stored.

use crate::crypto;
use crate::identity::access::Public;
use crate::identity::{ClientInfo, IdentityError, truncate};
use crate::rate_limit::Action;
use crate::types::AppKind;
use crate::wechat::js_sdk::signed_url;

/// The longest page URL signed, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// What a page passes to `wx.config` (with its `jsApiList`).
#[derive(Clone, Debug)]
pub struct JsSdkConfig {
    /// The Official Account.
    pub app_id: String,
    /// When it was signed, in Unix seconds (WeChat's clock).
    pub timestamp: i64,
    /// A random string, signed with the rest.
    pub nonce_str: String,
    /// The signature: lower-case hex SHA-1 (see `crypto::js_sdk_signature`).
    pub signature: String,
}

impl Public<'_> {
    /// Signs a `wx.config` for the page at `url` (its `#fragment` is not signed) of the
    /// Official Account `app_id`. BAD_USER_INPUT for another kind of app, an unknown one, or a
    /// URL that is not an absolute http(s) URL of at most [`MAX_URL_BYTES`] on one of the app's
    /// `js_sdk_domains`; RATE_LIMITED past `rate_limits.js_sdk`.
    pub async fn wechat_js_sdk_config(
        &self,
        app_id: &str,
        url: &str,
        client: &ClientInfo,
    ) -> Result<JsSdkConfig, IdentityError> {
        let app = self.app(app_id, AppKind::OfficialAccount)?;
        self.rate_limit(Action::JsSdk, client, Some(app_id)).await?;
        check_page_url(url, &app.js_sdk_domains)?;
        let ticket = self.access_tokens.jsapi_ticket(app).await?;
        let timestamp = self.access_tokens.wechat_now().and_utc().timestamp();
        let nonce_str = crypto::hex(&crypto::random_bytes::<8>());
        let signature =
            crypto::js_sdk_signature(&ticket.secret, &nonce_str, timestamp, signed_url(url));
        Ok(JsSdkConfig {
            app_id: app.app_id.to_string(),
            timestamp,
            nonce_str,
            signature,
        })
    }
}

/// Checks a page URL: at most [`MAX_URL_BYTES`] of printable ASCII (what `location.href` is), an
/// absolute http(s) URL without credentials, its host one of `domains`.
fn check_page_url(url: &str, domains: &[String]) -> Result<(), IdentityError> {
    let refuse = |why: &str| {
        Err(IdentityError::BadInput(format!(
            "url `{}` {why}",
            truncate(url, 64)
        )))
    };
    if url.len() > MAX_URL_BYTES {
        return refuse(&format!("is longer than {MAX_URL_BYTES} bytes"));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return refuse("must be printable ASCII, as the page's location.href is");
    }
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => return refuse("must be an absolute http:// or https:// URL"),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse("must not carry a user name or password");
    }
    let host = parsed.host_str().unwrap_or_default();
    if !domains.iter().any(|d| d.eq_ignore_ascii_case(host)) {
        return refuse(
            "is not on one of the app's JS-safe domains (apps[].js_sdk_domains in the service's config)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_on_a_registered_host_pass() {
        let domains = vec!["h5.example.com".to_owned(), "Shop.Example.com".to_owned()];
        for ok in [
            "https://h5.example.com/a?b=c#/route",
            "http://H5.EXAMPLE.COM:8080/",
            "https://shop.example.com/",
        ] {
            check_page_url(ok, &domains).unwrap();
        }
        let long = format!("https://h5.example.com/{}", "a".repeat(MAX_URL_BYTES));
        for bad in [
            "/shop",
            "h5.example.com/shop",
            "javascript:alert(1)//h5.example.com",
            "ftp://h5.example.com/",
            "https://evil.example.com/",
            "https://h5.example.com.evil.example/",
            "https://user:pw@h5.example.com/",
            "https://h5.example.com/\npage",
            "https://h5.example.com/页面",
            long.as_str(),
        ] {
            assert!(check_page_url(bad, &domains).is_err(), "{bad}");
        }
    }
}
