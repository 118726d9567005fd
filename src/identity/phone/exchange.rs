//! Exchanging a phone code at most once. WeChat charges for every successful
//! `getuserphonenumber`, and a code can be submitted twice (a double tap, a client retrying a
//! login with a new `wx.login` code): the first submission claims the code in
//! `phone_code_exchanges` (by its SHA-256) before calling WeChat; a later submission by the
//! same Mini Program identity gets the stored number, or waits for the first exchange to end;
//! anyone else's is WECHAT_CODE_INVALID (a code belongs to the person it was issued to). A
//! failed exchange releases its claim: WeChat charged nothing, the code may be tried again.

use std::time::{Duration, Instant};

use chrono::TimeDelta;

use super::PhoneNumber;
use crate::config::AppConfig;
use crate::db::models::Claim;
use crate::db::models::now;
use crate::db::models::phone_exchange::PhoneExchangeRow;
use crate::identity::access::System;
use crate::identity::{IdentityError, Parts};
use crate::types::OpenId;
use crate::wechat::WechatError;
use crate::wechat::crypto::sha256_hex;

/// How long WeChat honours a phone code (and its claim is kept).
const PHONE_CODE_TTL: TimeDelta = TimeDelta::minutes(5);
/// How often a second submission looks whether the first exchange has ended.
const POLL: Duration = Duration::from_millis(50);

/// A phone code that is not the submitter's, or not this app's: WeChat's own answer to a code
/// it does not honour.
fn not_yours(why: &str) -> IdentityError {
    IdentityError::Wechat(WechatError::CodeInvalid {
        errcode: 40029,
        errmsg: why.to_owned(),
    })
}

impl Parts {
    /// The number behind `phone_code`, submitted by the identity `openid` of the Mini Program
    /// `app`: from WeChat at most once per code (see the module docs). Callers check the code
    /// first ([`super::check_phone_code`], before their rate limit and WeChat calls).
    pub(in crate::identity) async fn phone_number(
        &self,
        app: &AppConfig,
        openid: &OpenId,
        phone_code: &str,
    ) -> Result<PhoneNumber, IdentityError> {
        let at = now();
        let claim = PhoneExchangeRow {
            code_hash: sha256_hex(phone_code.as_bytes()),
            app_id: app.app_id.clone(),
            openid: openid.clone(),
            phone_number: None,
            created_at: at,
            expires_at: at + PHONE_CODE_TTL,
        };
        // The first exchange may still be in flight: wait for it as long as it may take.
        let deadline = Instant::now() + Duration::from_millis(self.config.wechat.timeout_ms * 2);
        loop {
            let seen = {
                let mut conn = self.db.conn().await?;
                PhoneExchangeRow::claim(&mut conn, &claim).await?
            };
            match seen {
                Claim::New => return self.exchange(app, &claim.code_hash, phone_code).await,
                Claim::Seen(row) if row.app_id != app.app_id || row.openid != *openid => {
                    tracing::warn!(app = %app.app_id, "a phone code was submitted by a second person");
                    return Err(not_yours("this phone code was issued to someone else"));
                }
                Claim::Seen(PhoneExchangeRow {
                    phone_number: Some(number),
                    ..
                }) => return Ok(PhoneNumber(number)),
                Claim::Seen(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Claim::Seen(_) => {
                    return Err(IdentityError::Wechat(WechatError::Unavailable {
                        reason: "the first exchange of this phone code has not ended; retry".into(),
                        errcode: None,
                    }));
                }
            }
        }
    }

    /// Calls WeChat for the claimed code; stores the number, or releases the claim.
    async fn exchange(
        &self,
        app: &AppConfig,
        code_hash: &str,
        phone_code: &str,
    ) -> Result<PhoneNumber, IdentityError> {
        let answer = self
            .access_tokens
            .call(app, |token| {
                let wechat = self.wechat.clone();
                let code = phone_code.to_owned();
                async move { wechat.phone_number(&token, &code).await }
            })
            .await
            .and_then(|info| {
                if info.watermark.appid != app.app_id.as_str() {
                    tracing::warn!(app = %app.app_id, "WeChat answered a phone number for another app");
                    return Err(not_yours("this phone code was issued for another app"));
                }
                PhoneNumber::from_parts(&info.country_code, &info.pure_phone_number).ok_or_else(
                    || {
                        IdentityError::Wechat(WechatError::Unavailable {
                            reason: "WeChat sent a phone number that is not one".into(),
                            errcode: None,
                        })
                    },
                )
            });
        let mut conn = self.db.conn().await?;
        match &answer {
            Ok(number) => PhoneExchangeRow::finish(&mut conn, code_hash, number.as_str()).await?,
            Err(_) => PhoneExchangeRow::release(&mut conn, code_hash).await?,
        }
        answer
    }
}

impl System {
    /// Deletes the phone-code claims past the codes' life (the purge job); how many.
    pub async fn purge_phone_code_exchanges(&self) -> Result<usize, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(PhoneExchangeRow::purge_expired(&mut conn, now()).await?)
    }
}
