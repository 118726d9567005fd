//! WeChat's OAuth logins: Official Account web authorization (网页授权), a website's QR-code
//! login (网站应用, `qrconnect`) and a mobile app's SDK login (移动应用) — their start URLs, the
//! code exchange they share (`/sns/oauth2/access_token`) and the profile (`/sns/userinfo`).

use serde::Deserialize;

use crate::{AppCredentials, WechatClient, WechatError};

/// The OAuth scopes: an Official Account's two web-authorization scopes, and a website's QR
/// login (mobile apps ask for `snsapi_userinfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OauthScope {
    /// Silent: the openid only (a unionid only if WeChat chooses to send it).
    Base,
    /// With consent: the profile and the unionid via `/sns/userinfo`.
    UserInfo,
    /// A website's QR-code login: the profile and the unionid via `/sns/userinfo`.
    Login,
}

impl OauthScope {
    /// WeChat's name (`snsapi_base`, `snsapi_userinfo`, `snsapi_login`).
    pub fn as_str(self) -> &'static str {
        match self {
            OauthScope::Base => "snsapi_base",
            OauthScope::UserInfo => "snsapi_userinfo",
            OauthScope::Login => "snsapi_login",
        }
    }

    /// Parses WeChat's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "snsapi_base" => Some(OauthScope::Base),
            "snsapi_userinfo" => Some(OauthScope::UserInfo),
            "snsapi_login" => Some(OauthScope::Login),
            _ => None,
        }
    }

    /// Whether a token of this scope may read the person's profile (`/sns/userinfo`).
    pub fn shows_profile(self) -> bool {
        !matches!(self, OauthScope::Base)
    }
}

/// What `/sns/oauth2/access_token` returns. The tokens are the person's, valid for this app:
/// secrets, never logged.
#[derive(Clone, Deserialize)]
pub struct OauthToken {
    /// The web-authorization access token (for `/sns/userinfo`).
    pub access_token: String,
    /// Its lifetime in seconds (7200).
    #[serde(default)]
    pub expires_in: i64,
    /// The refresh token (30 days).
    #[serde(default)]
    pub refresh_token: String,
    /// The person's openid in this Official Account.
    pub openid: String,
    /// The scope the person granted (comma-separated if several).
    #[serde(default)]
    pub scope: String,
    /// The unionid, when WeChat sends one.
    pub unionid: Option<String>,
    /// 1 for a virtual "snapshot" user (a page opened from a Moments snapshot).
    pub is_snapshotuser: Option<i64>,
}

impl OauthToken {
    /// The scope granted: the one that shows the most among those WeChat lists
    /// (`snsapi_login`, then `snsapi_userinfo`, else `snsapi_base`).
    pub fn granted(&self) -> OauthScope {
        let listed = |scope: OauthScope| self.scope.split(',').any(|s| s.trim() == scope.as_str());
        [OauthScope::Login, OauthScope::UserInfo]
            .into_iter()
            .find(|s| listed(*s))
            .unwrap_or(OauthScope::Base)
    }

    /// Whether WeChat flags the person as a virtual snapshot user.
    pub fn is_snapshot_user(&self) -> bool {
        self.is_snapshotuser == Some(1)
    }
}

impl std::fmt::Debug for OauthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthToken")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("openid", &self.openid)
            .field("scope", &self.scope)
            .field("unionid", &self.unionid)
            .field("is_snapshotuser", &self.is_snapshotuser)
            .finish()
    }
}

/// What `/sns/userinfo` returns.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OauthUserInfo {
    /// The openid the token belongs to.
    pub openid: String,
    /// Nickname.
    pub nickname: Option<String>,
    /// 0 unknown, 1 male, 2 female (WeChat now usually sends 0).
    pub sex: Option<i32>,
    /// Province.
    pub province: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Avatar URL.
    pub headimgurl: Option<String>,
    /// The unionid, when the account is bound to an open platform.
    pub unionid: Option<String>,
}

impl WechatClient {
    /// Exchanges a web-authorization code: `GET /sns/oauth2/access_token`.
    pub async fn oauth_access_token(
        &self,
        app: &dyn AppCredentials,
        code: &str,
    ) -> Result<OauthToken, WechatError> {
        self.exchange_code(
            "oauth2_access_token",
            "/sns/oauth2/access_token",
            app,
            ("code", code),
        )
        .await
    }

    /// The person's profile with a `snsapi_userinfo` token: `GET /sns/userinfo`.
    pub async fn oauth_userinfo(
        &self,
        access_token: &str,
        openid: &str,
    ) -> Result<OauthUserInfo, WechatError> {
        self.get(
            "sns_userinfo",
            "/sns/userinfo",
            &[
                ("access_token", access_token),
                ("openid", openid),
                ("lang", "zh_CN"),
            ],
        )
        .await
    }
}

/// The URL that starts web authorization in WeChat's browser:
/// `{open_base}/connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state#wechat_redirect`
/// (WeChat insists on this parameter order).
pub fn authorize_url(
    open_base_url: &str,
    app_id: &str,
    redirect_uri: &str,
    scope: OauthScope,
    state: &str,
) -> String {
    format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
        open_base_url.trim_end_matches('/'),
        percent_encode(app_id),
        percent_encode(redirect_uri),
        scope.as_str(),
        percent_encode(state),
    )
}

/// The website QR-code login page (网站应用微信登录):
/// `{open_base}/connect/qrconnect?appid&redirect_uri&response_type=code&scope=snsapi_login&state#wechat_redirect`.
/// The person scans the code with WeChat; the browser is sent to `redirect_uri` with `code` and
/// `state` (only `state` when they refuse).
pub fn qrconnect_url(open_base_url: &str, app_id: &str, redirect_uri: &str, state: &str) -> String {
    format!(
        "{}/connect/qrconnect?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
        open_base_url.trim_end_matches('/'),
        percent_encode(app_id),
        percent_encode(redirect_uri),
        OauthScope::Login.as_str(),
        percent_encode(state),
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_has_wechats_parameter_order_and_encoding() {
        let url = authorize_url(
            "https://open.weixin.qq.com/",
            "wx2222",
            "https://id.example.com/auth/official-account/wx2222/callback?x=1&y=2",
            OauthScope::UserInfo,
            "abc123",
        );
        assert_eq!(
            url,
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx2222&redirect_uri=https%3A%2F%2Fid.example.com%2Fauth%2Fofficial-account%2Fwx2222%2Fcallback%3Fx%3D1%26y%3D2&response_type=code&scope=snsapi_userinfo&state=abc123#wechat_redirect"
        );
    }

    #[test]
    fn granted_scope_reads_wechats_list() {
        let t = |scope: &str| OauthToken {
            access_token: String::new(),
            expires_in: 7200,
            refresh_token: String::new(),
            openid: "o".into(),
            scope: scope.into(),
            unionid: None,
            is_snapshotuser: None,
        };
        assert_eq!(t("snsapi_userinfo").granted(), OauthScope::UserInfo);
        assert_eq!(
            t("snsapi_base,snsapi_userinfo").granted(),
            OauthScope::UserInfo
        );
        assert_eq!(t("snsapi_base").granted(), OauthScope::Base);
        assert!(!format!("{:?}", t("x")).contains("access_token: \"\""));
    }
}
