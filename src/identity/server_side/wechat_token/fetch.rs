//! How the token manager gets each [`Kept`] kind from WeChat, under its lease.
//!
//! - An access token: `POST /cgi-bin/stable_token` in normal mode; force mode only when normal
//!   mode hands out the token WeChat refused, within WeChat's limits ([`FORCE_PER_DAY`] a day,
//!   [`FORCE_SPACING_SECS`] apart); or `GET /cgi-bin/token` where the app asks for it.
//! - A `jsapi_ticket`: `GET /cgi-bin/ticket/getticket` through [`AccessTokens::call`], so a token
//!   WeChat refuses on the way is replaced and the ticket call retried once.

use chrono::{FixedOffset, NaiveDateTime, TimeDelta};

use super::{AccessTokens, Kept};
use crate::config::{AccessTokenApi, AppConfig};
use crate::crypto;
use crate::db::models::wechat_access_token::AccessTokenRow;
use crate::identity::IdentityError;
use crate::wechat::WechatError;
use crate::wechat::server_api::AccessToken;

/// Force-mode refreshes WeChat allows per app and day.
pub const FORCE_PER_DAY: i32 = 20;
/// Seconds WeChat wants between two force-mode refreshes.
pub const FORCE_SPACING_SECS: i64 = 30;

/// What WeChat handed out, with the force bookkeeping when an access token was forced.
pub(super) struct Fetched {
    /// The token or ticket.
    pub(super) secret: String,
    /// Seconds it lives from now.
    pub(super) expires_in: i64,
    /// Force mode: the (Beijing) day and that day's count after this refresh.
    pub(super) forced: Option<(String, i32)>,
}

impl From<AccessToken> for Fetched {
    fn from(token: AccessToken) -> Self {
        Self {
            secret: token.access_token,
            expires_in: token.expires_in,
            forced: None,
        }
    }
}

impl AccessTokens {
    /// Fetches the app's `kept` from WeChat; `row` is what is stored now.
    pub(super) async fn fetch(
        &self,
        app: &AppConfig,
        kept: Kept,
        row: Option<&AccessTokenRow>,
    ) -> Result<Fetched, IdentityError> {
        match kept {
            Kept::AccessToken => Ok(self.fetch_access_token(app, row).await?),
            Kept::JsapiTicket => {
                let wechat = &self.0.wechat;
                // Boxed: the call may refresh the access token, which this same code keeps.
                let ticket =
                    Box::pin(self.call(
                        app,
                        |token| async move { wechat.jsapi_ticket(&token).await },
                    ))
                    .await?;
                Ok(Fetched {
                    secret: ticket.ticket,
                    expires_in: ticket.expires_in,
                    forced: None,
                })
            }
        }
    }

    /// An access token: normal mode first; force mode only when normal mode hands out the
    /// token WeChat refused, and only within its limits.
    async fn fetch_access_token(
        &self,
        app: &AppConfig,
        row: Option<&AccessTokenRow>,
    ) -> Result<Fetched, WechatError> {
        let wechat = &self.0.wechat;
        if app.access_token_api == AccessTokenApi::Token {
            return Ok(wechat.plain_token(app).await?.into());
        }
        let token = wechat.stable_token(app, false).await?;
        let failed = row.and_then(|r| r.failed_hash.as_deref());
        if failed != Some(crypto::sha256_hex(token.access_token.as_bytes()).as_str()) {
            return Ok(token.into());
        }
        let at = self.0.clock.now();
        let day = beijing_day(at);
        let count = match row {
            Some(r) if r.force_day.as_deref() == Some(day.as_str()) => r.force_count,
            _ => 0,
        };
        let too_soon = row
            .and_then(|r| r.last_force_at)
            .is_some_and(|last| at - last < TimeDelta::seconds(FORCE_SPACING_SECS));
        if count >= FORCE_PER_DAY || too_soon {
            tracing::warn!(app = %app.app_id, count, too_soon, "WeChat refuses the stable token but force mode is at its limit");
            return Err(WechatError::Unavailable {
                reason: "WeChat refuses the access token and force refresh is at its limit (20 a day, 30 s apart)".into(),
                errcode: None,
            });
        }
        let token = wechat.stable_token(app, true).await?;
        Ok(Fetched {
            forced: Some((day, count + 1)),
            ..token.into()
        })
    }
}

/// The day WeChat counts force refreshes by (Beijing time).
fn beijing_day(at: NaiveDateTime) -> String {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    at.and_utc()
        .with_timezone(&beijing)
        .format("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_refreshes_count_by_beijing_day() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(beijing_day(at("2026-11-29 15:59:59")), "2026-11-29");
        assert_eq!(beijing_day(at("2026-11-29 16:00:00")), "2026-11-30");
    }
}
