//! WeChat's server-side API for an app: its access token (`/cgi-bin/stable_token`,
//! `/cgi-bin/token`) and, for Official Accounts, its followers (`/cgi-bin/user/get`,
//! `/cgi-bin/user/info`, `/cgi-bin/user/info/batchget`).
//!
//! Every call but the token calls takes the app's access token; which token to pass, and what to
//! do when WeChat calls it invalid, is the token manager's business
//! (the service's). Tokens are secrets: they travel only in queries, which the
//! client never logs.

use serde::{Deserialize, Serialize};

use crate::{AppCredentials, WechatClient, WechatError};

/// Followers `/cgi-bin/user/get` lists per page at most.
pub const FOLLOWERS_PER_PAGE: usize = 10_000;

/// Openids `/cgi-bin/user/info/batchget` takes per call at most.
pub const BATCHGET_MAX: usize = 100;

/// An app's access token as WeChat hands it out.
#[derive(Clone, Deserialize)]
pub struct AccessToken {
    /// The token (a secret).
    pub access_token: String,
    /// Seconds it stays valid from now.
    pub expires_in: i64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// One page of `/cgi-bin/user/get`.
#[derive(Clone, Debug, Deserialize)]
pub struct FollowerPage {
    /// Followers in all (WeChat always sends it: a reply without it is malformed, not an
    /// empty list).
    pub total: i64,
    /// Openids on this page.
    pub count: i64,
    /// The openids (absent on an empty page).
    #[serde(default)]
    pub data: Option<FollowerOpenids>,
    /// The cursor of the next page: the last openid of this one ("" at the end).
    pub next_openid: String,
}

impl FollowerPage {
    /// The openids on this page.
    pub fn openids(&self) -> &[String] {
        self.data.as_ref().map_or(&[], |d| &d.openid)
    }
}

/// The `data` of a [`FollowerPage`].
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FollowerOpenids {
    /// The followers' openids.
    #[serde(default)]
    pub openid: Vec<String>,
}

/// What `/cgi-bin/user/info` (and each entry of `batchget`) says of a person.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct FollowerInfo {
    /// 1 if the person follows the account; 0 (and nothing else but the openid) if not.
    /// Required: a reply without it says nothing about following.
    pub subscribe: i32,
    /// The person's openid in this account.
    pub openid: String,
    /// The unionid (only for followers of an account bound to an open platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// When they last followed (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe_time: Option<i64>,
}

impl FollowerInfo {
    /// Whether the person follows the account.
    pub fn follows(&self) -> bool {
        self.subscribe == 1
    }
}

#[derive(Deserialize)]
struct BatchInfo {
    #[serde(default)]
    user_info_list: Vec<FollowerInfo>,
}

#[derive(Serialize)]
struct BatchQuery<'a> {
    user_list: Vec<BatchEntry<'a>>,
}

#[derive(Serialize)]
struct BatchEntry<'a> {
    openid: &'a str,
    lang: &'static str,
}

#[derive(Serialize)]
struct StableTokenQuery<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

impl WechatClient {
    /// `POST /cgi-bin/stable_token`: in normal mode (`force` false) WeChat hands every caller
    /// the same token until it expires; force mode (at most 20 a day, 30 s apart) replaces it.
    pub async fn stable_token(
        &self,
        app: &dyn AppCredentials,
        force: bool,
    ) -> Result<AccessToken, WechatError> {
        let body = StableTokenQuery {
            grant_type: "client_credential",
            appid: app.app_id(),
            secret: app.secret(),
            force_refresh: force,
        };
        self.post_json("stable_token", "/cgi-bin/stable_token", &[], &body)
            .await
    }

    /// `GET /cgi-bin/token`: a new token on every call; the previous one keeps working for a
    /// few minutes.
    pub async fn plain_token(&self, app: &dyn AppCredentials) -> Result<AccessToken, WechatError> {
        self.get(
            "token",
            "/cgi-bin/token",
            &[
                ("grant_type", "client_credential"),
                ("appid", app.app_id()),
                ("secret", app.secret()),
            ],
        )
        .await
    }

    /// `GET /cgi-bin/user/get`: the page of followers after `next_openid` (from the start when
    /// empty).
    pub async fn followers(
        &self,
        access_token: &str,
        next_openid: &str,
    ) -> Result<FollowerPage, WechatError> {
        self.get(
            "user_get",
            "/cgi-bin/user/get",
            &[("access_token", access_token), ("next_openid", next_openid)],
        )
        .await
    }

    /// `GET /cgi-bin/user/info`: one person as the account sees them.
    pub async fn follower_info(
        &self,
        access_token: &str,
        openid: &str,
    ) -> Result<FollowerInfo, WechatError> {
        self.get(
            "user_info",
            "/cgi-bin/user/info",
            &[
                ("access_token", access_token),
                ("openid", openid),
                ("lang", "zh_CN"),
            ],
        )
        .await
    }

    /// `POST /cgi-bin/user/info/batchget`: up to [`BATCHGET_MAX`] people at once.
    pub async fn follower_infos(
        &self,
        access_token: &str,
        openids: &[String],
    ) -> Result<Vec<FollowerInfo>, WechatError> {
        debug_assert!(openids.len() <= BATCHGET_MAX);
        let body = BatchQuery {
            user_list: openids
                .iter()
                .map(|openid| BatchEntry {
                    openid,
                    lang: "zh_CN",
                })
                .collect(),
        };
        let batch: BatchInfo = self
            .post_json(
                "user_info_batchget",
                "/cgi-bin/user/info/batchget",
                &[("access_token", access_token)],
                &body,
            )
            .await?;
        Ok(batch.user_info_list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_without_the_fields_that_matter_are_malformed_not_empty() {
        // An empty object is not "no more followers" nor "does not follow".
        assert!(serde_json::from_str::<FollowerPage>("{}").is_err());
        assert!(serde_json::from_str::<FollowerInfo>(r#"{"openid":"o1"}"#).is_err());
        let last: FollowerPage =
            serde_json::from_str(r#"{"total":3,"count":0,"next_openid":""}"#).unwrap();
        assert!(last.openids().is_empty());
    }
}
