//! The JS-SDK (`wx.config`) of Official Account pages: the `jsapi_ticket` an app's server
//! fetches (`/cgi-bin/ticket/getticket`) and the page URL its signature covers. The signature
//! itself is [`crate::crypto::js_sdk_signature`].
//!
//! A ticket lives 7200 s and WeChat allows few `getticket` calls a day: the caller keeps one
//! per app and shares it (the service's token manager does). Tickets are secrets: never logged.

use serde::Deserialize;

use crate::{WechatClient, WechatError};

/// An app's `jsapi_ticket` as WeChat hands it out.
#[derive(Clone, Deserialize)]
pub struct JsapiTicket {
    /// The ticket (a secret).
    pub ticket: String,
    /// Seconds it stays valid from now.
    pub expires_in: i64,
}

impl std::fmt::Debug for JsapiTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsapiTicket")
            .field("ticket", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The part of a page URL a `wx.config` signature covers: the URL as the page has it
/// (`location.href`), not escaped, without its `#` fragment.
pub fn signed_url(url: &str) -> &str {
    url.split('#').next().unwrap_or(url)
}

impl WechatClient {
    /// `GET /cgi-bin/ticket/getticket?type=jsapi`: the app's current `jsapi_ticket` (an
    /// Official Account's; WeChat hands the same one out until it expires).
    pub async fn jsapi_ticket(&self, access_token: &str) -> Result<JsapiTicket, WechatError> {
        self.get(
            "getticket",
            "/cgi-bin/ticket/getticket",
            &[("access_token", access_token), ("type", "jsapi")],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_is_not_signed_and_the_ticket_not_shown() {
        assert_eq!(
            signed_url("https://h5.example.com/a?b=c#/route?x=1#y"),
            "https://h5.example.com/a?b=c"
        );
        assert_eq!(
            signed_url("https://h5.example.com/"),
            "https://h5.example.com/"
        );
        let ticket: JsapiTicket = serde_json::from_str(
            r#"{"errcode":0,"errmsg":"ok","ticket":"sM4AOVdWfPE4DxkX","expires_in":7200}"#,
        )
        .unwrap();
        assert_eq!(ticket.expires_in, 7200);
        assert!(!format!("{ticket:?}").contains("sM4AOVdWfPE4DxkX"));
    }
}
