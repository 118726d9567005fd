//! The token manager: one access token per app, shared by every instance.
//!
//! - [`AccessTokens::token`] answers from this process's cache while the token is fresh, else
//!   from the database, else refreshes it: one refresh in flight per app in this process (the
//!   others wait on the same lock) and one across instances (a lease on the app's row in
//!   `wechat_access_tokens`; the others poll the row until the new token is there).
//! - A token is refreshed ahead of its expiry (`wechat.token_refresh_ahead_secs`, at most half
//!   its lifetime), through `POST /cgi-bin/stable_token` in normal mode, or `GET /cgi-bin/token`
//!   where the app asks for it.
//! - [`AccessTokens::call`] runs one API call with the token; when WeChat calls the token
//!   invalid (40001, 42001, 40014) it invalidates that token only if it is still the stored one,
//!   gets a fresh one and retries once. A stable token WeChat refused but normal mode hands out
//!   again is replaced in force mode, within WeChat's limits (20 a day, 30 s apart).
//! - Quota and rate errors on a refresh (45009, 45011) stop refreshes of that app for a while
//!   (`wechat.token_backoff_secs`): callers get WECHAT_RATE_LIMITED at once instead of a loop.
//!
//! Tokens are secrets: sealed at rest, never logged, handed out only through
//! [`crate::identity::access::Reader::wechat_access_token`] (audited).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{FixedOffset, NaiveDateTime, TimeDelta};

use crate::config::{AccessTokenApi, AppConfig};
use crate::crypto::{self, SecretBox};
use crate::db::models::now;
use crate::db::models::wechat_access_token::{AccessTokenRow, StoredToken};
use crate::db::{Db, DbError};
use crate::identity::IdentityError;
use crate::types::AppId;
use crate::wechat::server_api::AccessToken;
use crate::wechat::{WechatClient, WechatError};

/// Force-mode refreshes WeChat allows per app and day.
pub const FORCE_PER_DAY: i32 = 20;
/// Seconds WeChat wants between two force-mode refreshes.
pub const FORCE_SPACING_SECS: i64 = 30;

/// An app's current access token.
#[derive(Clone)]
pub struct AppToken {
    /// The token (a secret).
    pub token: String,
    /// Its SHA-256, to invalidate exactly this one.
    pub hash: String,
    /// When it expires.
    pub expires_at: NaiveDateTime,
    /// Until when it is used without a refresh.
    fresh_until: NaiveDateTime,
}

impl std::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Settings of the token manager.
#[derive(Clone, Copy, Debug)]
pub struct TokenSettings {
    /// Refresh this long before expiry (at most half the token's lifetime).
    pub refresh_ahead: Duration,
    /// How long refreshes of an app stop after WeChat's quota or rate errors.
    pub backoff: Duration,
    /// How long an instance waits for another's refresh (and holds its own lease).
    pub refresh_wait: Duration,
}

/// The token manager (see the module docs); cheap to clone.
#[derive(Clone)]
pub struct AccessTokens(Arc<Inner>);

struct Inner {
    db: Db,
    wechat: WechatClient,
    sealer: SecretBox,
    settings: TokenSettings,
    owner: String,
    cache: Mutex<HashMap<AppId, AppToken>>,
    flights: Mutex<HashMap<AppId, Arc<tokio::sync::Mutex<()>>>>,
    blocked: Mutex<HashMap<AppId, (Instant, i64)>>,
}

const SEAL_CONTEXT: &[u8] = b"wechat-access-token";

impl AccessTokens {
    /// A manager over `db`, calling WeChat through `wechat`.
    pub fn new(db: Db, wechat: WechatClient, sealer: SecretBox, settings: TokenSettings) -> Self {
        Self(Arc::new(Inner {
            db,
            wechat,
            sealer,
            settings,
            owner: format!("tokens-{}", crypto::random_token()),
            cache: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            blocked: Mutex::new(HashMap::new()),
        }))
    }

    /// Runs `call` with the app's token; on a token error, once more with a fresh token.
    pub async fn call<T, F, Fut>(&self, app: &AppConfig, call: F) -> Result<T, IdentityError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, WechatError>>,
    {
        let token = self.token(app).await?;
        match call(token.token.clone()).await {
            Err(e) if e.is_token_invalid() => {
                tracing::info!(app = %app.app_id, errcode = e.errcode(), "WeChat refused the access token; refreshing it");
                self.invalidate(app, &token).await?;
                // Never the refused token again, even if a concurrent read of it put it back
                // in the cache meanwhile.
                let fresh = self.fetch_token(app, Some(&token.hash)).await?;
                Ok(call(fresh.token).await?)
            }
            result => Ok(result?),
        }
    }

    /// The app's token: cached, stored, or refreshed (see the module docs).
    pub async fn token(&self, app: &AppConfig) -> Result<AppToken, IdentityError> {
        self.fetch_token(app, None).await
    }

    /// [`Self::token`], but never the token with SHA-256 `refused`.
    async fn fetch_token(
        &self,
        app: &AppConfig,
        refused: Option<&str>,
    ) -> Result<AppToken, IdentityError> {
        let not_refused = |t: &AppToken| Some(t.hash.as_str()) != refused;
        let stored = |row: &Option<AccessTokenRow>| {
            row.as_ref()
                .and_then(|r| self.usable(r))
                .filter(not_refused)
        };
        if let Some(t) = self.cached(&app.app_id).filter(not_refused) {
            return Ok(t);
        }
        let flight = {
            let mut flights = lock(&self.0.flights);
            flights.entry(app.app_id.clone()).or_default().clone()
        };
        let _one = flight.lock().await;
        if let Some(t) = self.cached(&app.app_id).filter(not_refused) {
            return Ok(t);
        }
        let deadline = Instant::now() + self.0.settings.refresh_wait;
        loop {
            let mut conn = self.0.db.conn().await?;
            let row = AccessTokenRow::find(&mut conn, &app.app_id).await?;
            if let Some(t) = stored(&row) {
                return Ok(self.remember(&app.app_id, t));
            }
            self.check_blocked(&app.app_id)?;
            let at = now();
            let until = at + delta(self.0.settings.refresh_wait);
            if AccessTokenRow::lease_refresh(&mut conn, &app.app_id, &self.0.owner, at, until)
                .await?
            {
                // Read again under the lease: another instance may have stored a token between
                // the read above and the lease (then it is used, and WeChat is not asked).
                let row = AccessTokenRow::find(&mut conn, &app.app_id).await?;
                if let Some(t) = stored(&row) {
                    AccessTokenRow::release(&mut conn, &app.app_id, &self.0.owner).await?;
                    return Ok(self.remember(&app.app_id, t));
                }
                drop(conn);
                let t = self.refresh(app, row.as_ref()).await?;
                return Ok(self.remember(&app.app_id, t));
            }
            drop(conn);
            if Instant::now() >= deadline {
                return Err(IdentityError::Wechat(WechatError::Unavailable {
                    reason: "another instance is refreshing the access token; try again".into(),
                    errcode: None,
                }));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Marks `token` as refused, in this process and (if it is still the stored one) in the
    /// database, so that the next [`Self::token`] refreshes it.
    async fn invalidate(&self, app: &AppConfig, token: &AppToken) -> Result<(), DbError> {
        {
            let mut cache = lock(&self.0.cache);
            if cache.get(&app.app_id).is_some_and(|c| c.hash == token.hash) {
                cache.remove(&app.app_id);
            }
        }
        let mut conn = self.0.db.conn().await?;
        AccessTokenRow::invalidate(&mut conn, &app.app_id, &token.hash, now()).await?;
        Ok(())
    }

    fn cached(&self, app_id: &AppId) -> Option<AppToken> {
        let cache = lock(&self.0.cache);
        cache.get(app_id).filter(|t| now() < t.fresh_until).cloned()
    }

    fn remember(&self, app_id: &AppId, token: AppToken) -> AppToken {
        lock(&self.0.cache).insert(app_id.clone(), token.clone());
        token
    }

    /// The stored token, if it is fresh and can be opened.
    fn usable(&self, row: &AccessTokenRow) -> Option<AppToken> {
        let (sealed, hash) = (row.token.as_ref()?, row.token_hash.as_ref()?);
        let (expires_at, fetched_at) = (row.expires_at?, row.fetched_at?);
        let fresh_until = self.fresh_until(fetched_at, expires_at);
        if now() >= fresh_until {
            return None;
        }
        let Ok(token) = self.0.sealer.open(sealed, SEAL_CONTEXT) else {
            tracing::warn!(app = %row.app_id, "the stored access token cannot be opened: every instance must have the same wechat.session_key_encryption_key");
            return None;
        };
        Some(AppToken {
            token: String::from_utf8(token).ok()?,
            hash: hash.clone(),
            expires_at,
            fresh_until,
        })
    }

    fn fresh_until(&self, fetched_at: NaiveDateTime, expires_at: NaiveDateTime) -> NaiveDateTime {
        let ahead = delta(self.0.settings.refresh_ahead).min((expires_at - fetched_at) / 2);
        expires_at - ahead
    }

    /// Fetches a token from WeChat under this instance's lease and stores it.
    async fn refresh(
        &self,
        app: &AppConfig,
        row: Option<&AccessTokenRow>,
    ) -> Result<AppToken, IdentityError> {
        let result = self.fetch(app, row).await;
        if let Err(WechatError::RateLimited { errcode }) = &result {
            self.block(&app.app_id, *errcode);
        }
        let mut conn = self.0.db.conn().await?;
        let (fetched, forced) = match result {
            Ok(ok) => ok,
            Err(e) => {
                AccessTokenRow::release(&mut conn, &app.app_id, &self.0.owner).await?;
                return Err(e.into());
            }
        };
        let at = now();
        let expires_at = at + TimeDelta::seconds(fetched.expires_in.clamp(60, 7200));
        let hash = crypto::sha256_hex(fetched.access_token.as_bytes());
        let sealed = self
            .0
            .sealer
            .seal(fetched.access_token.as_bytes(), SEAL_CONTEXT);
        let stored = StoredToken {
            sealed: &sealed,
            hash: &hash,
            expires_at,
            fetched_at: at,
            forced: forced.as_ref().map(|(day, n)| (day.as_str(), *n)),
        };
        if !AccessTokenRow::store(&mut conn, &app.app_id, &self.0.owner, &stored).await? {
            tracing::warn!(app = %app.app_id, "access token refresh outlived its lease; stored by another instance meanwhile");
        }
        tracing::info!(app = %app.app_id, forced = forced.is_some(), expires_in = fetched.expires_in, "refreshed the access token");
        Ok(AppToken {
            token: fetched.access_token,
            hash,
            expires_at,
            fresh_until: self.fresh_until(at, expires_at),
        })
    }

    /// Calls WeChat: normal mode first; force mode only when normal mode hands out the token
    /// WeChat refused, and only within its limits. The force bookkeeping comes back with it.
    async fn fetch(
        &self,
        app: &AppConfig,
        row: Option<&AccessTokenRow>,
    ) -> Result<(AccessToken, Option<(String, i32)>), WechatError> {
        if app.access_token_api == AccessTokenApi::Token {
            return Ok((self.0.wechat.plain_token(app).await?, None));
        }
        let token = self.0.wechat.stable_token(app, false).await?;
        let failed = row.and_then(|r| r.failed_hash.as_deref());
        if failed != Some(crypto::sha256_hex(token.access_token.as_bytes()).as_str()) {
            return Ok((token, None));
        }
        let at = now();
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
        let token = self.0.wechat.stable_token(app, true).await?;
        Ok((token, Some((day, count + 1))))
    }

    fn block(&self, app_id: &AppId, errcode: i64) {
        let until = Instant::now() + self.0.settings.backoff;
        lock(&self.0.blocked).insert(app_id.clone(), (until, errcode));
        tracing::warn!(app = %app_id, errcode, backoff_secs = self.0.settings.backoff.as_secs(), "WeChat quota reached; access token refreshes paused");
    }

    fn check_blocked(&self, app_id: &AppId) -> Result<(), WechatError> {
        let mut blocked = lock(&self.0.blocked);
        match blocked.get(app_id) {
            Some((until, errcode)) if Instant::now() < *until => {
                Err(WechatError::RateLimited { errcode: *errcode })
            }
            Some(_) => {
                blocked.remove(app_id);
                Ok(())
            }
            None => Ok(()),
        }
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

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
