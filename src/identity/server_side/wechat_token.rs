//! The token manager: what WeChat hands an app's server for a while — its access token and (an
//! Official Account's) `jsapi_ticket` — kept one per app and [`Kept`] kind, shared by every
//! instance. One piece of code keeps both:
//!
//! - [`AccessTokens::token`] and [`AccessTokens::jsapi_ticket`] answer from this process's cache
//!   while fresh, else from the database, else refresh: one refresh in flight per app and kind
//!   in this process (the others wait on the same lock) and one across instances (a lease on the
//!   row of `wechat_access_tokens`; the others poll the row until the new value is there).
//! - A value is refreshed ahead of its expiry (`wechat.token_refresh_ahead_secs`, at most half
//!   its lifetime), its life measured on WeChat's clock ([`WechatClock`]: the sandbox's in
//!   sandbox mode). How each kind is fetched is [`fetch`]'s: an access token through
//!   `POST /cgi-bin/stable_token` (or `GET /cgi-bin/token` where the app asks for it), a ticket
//!   through `GET /cgi-bin/ticket/getticket` made with [`AccessTokens::call`].
//! - [`AccessTokens::call`] runs one API call with the access token; when WeChat calls the token
//!   invalid (40001, 42001, 40014) it invalidates that token only if it is still the stored one,
//!   gets a fresh one and retries once — a ticket's fetch too, so a token revoked mid-way costs
//!   one token refresh and one more `getticket`, nothing else.
//! - Quota and rate errors on a refresh (45009, 45011) stop refreshes of that app's kind for a
//!   while (`wechat.token_backoff_secs`): callers get WECHAT_RATE_LIMITED at once, not a loop.
//!
//! Tokens and tickets are secrets: sealed at rest, never logged. A token is handed out only
//! through [`crate::identity::access::Reader::wechat_access_token`] (audited); a ticket never
//! leaves: only signatures made with it do (`Public::wechat_js_sdk_config`).

mod fetch;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeDelta};

use crate::config::AppConfig;
use crate::crypto::{self, SecretBox};
use crate::db::models::now;
use crate::db::models::wechat_access_token::{AccessTokenRow, StoredToken};
use crate::db::{Db, DbError};
use crate::identity::IdentityError;
use crate::types::AppId;
use crate::wechat::{WechatClient, WechatClock, WechatError};

pub use crate::db::models::wechat_access_token::Kept;
pub use fetch::{FORCE_PER_DAY, FORCE_SPACING_SECS};

/// What the manager keeps for an app: its access token or its `jsapi_ticket`.
#[derive(Clone)]
pub struct KeptSecret {
    /// The token or ticket (a secret).
    pub secret: String,
    /// Its SHA-256, to invalidate exactly this one.
    pub hash: String,
    /// When it expires (WeChat's clock).
    pub expires_at: NaiveDateTime,
    /// Until when it is used without a refresh.
    fresh_until: NaiveDateTime,
}

impl std::fmt::Debug for KeptSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptSecret")
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Settings of the token manager.
#[derive(Clone, Copy, Debug)]
pub struct TokenSettings {
    /// Refresh this long before expiry (at most half the value's lifetime).
    pub refresh_ahead: Duration,
    /// How long refreshes of an app's kind stop after WeChat's quota or rate errors.
    pub backoff: Duration,
    /// How long an instance waits for another's refresh of an access token (and holds its own
    /// lease); a ticket's, which may refresh the token first, three times this.
    pub refresh_wait: Duration,
}

/// The token manager (see the module docs); cheap to clone.
#[derive(Clone)]
pub struct AccessTokens(Arc<Inner>);

/// What is kept: an app's value of one kind.
type Key = (AppId, Kept);

struct Inner {
    db: Db,
    wechat: WechatClient,
    sealer: SecretBox,
    clock: WechatClock,
    settings: TokenSettings,
    owner: String,
    cache: Mutex<HashMap<Key, KeptSecret>>,
    flights: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    blocked: Mutex<HashMap<Key, (Instant, i64)>>,
}

/// The sealing context of a kind (a token cannot be opened as a ticket, nor the reverse).
fn seal_context(kept: Kept) -> &'static [u8] {
    match kept {
        Kept::AccessToken => b"wechat-access-token",
        Kept::JsapiTicket => b"wechat-jsapi-ticket",
    }
}

impl AccessTokens {
    /// A manager over `db`, calling WeChat through `wechat`, measuring lives on `clock`.
    pub fn new(
        db: Db,
        wechat: WechatClient,
        sealer: SecretBox,
        clock: WechatClock,
        settings: TokenSettings,
    ) -> Self {
        Self(Arc::new(Inner {
            db,
            wechat,
            sealer,
            clock,
            settings,
            owner: format!("tokens-{}", crypto::random_token()),
            cache: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            blocked: Mutex::new(HashMap::new()),
        }))
    }

    /// Now on WeChat's clock (what a JS-SDK signature's timestamp says).
    pub fn wechat_now(&self) -> NaiveDateTime {
        self.0.clock.now()
    }

    /// Runs `call` with the app's token; on a token error, once more with a fresh token.
    pub async fn call<T, F, Fut>(&self, app: &AppConfig, call: F) -> Result<T, IdentityError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, WechatError>>,
    {
        let token = self.token(app).await?;
        let first = call(token.secret.clone()).await;
        crate::metrics::apps::record(app.app_id.as_str(), &first);
        if let Err(e) = &first {
            tracing::warn!(app = %app.app_id, errcode = e.errcode(), error = %e, "WeChat call failed");
        }
        match first {
            Err(e) if e.is_token_invalid() => {
                tracing::info!(app = %app.app_id, errcode = e.errcode(), "WeChat refused the access token; refreshing it");
                self.invalidate(app, Kept::AccessToken, &token).await?;
                // Never the refused token again, even if a concurrent read of it put it back
                // in the cache meanwhile.
                let fresh = self.keep(app, Kept::AccessToken, Some(&token.hash)).await?;
                let second = call(fresh.secret).await;
                crate::metrics::apps::record(app.app_id.as_str(), &second);
                Ok(second?)
            }
            result => Ok(result?),
        }
    }

    /// The app's access token: cached, stored, or refreshed (see the module docs).
    pub async fn token(&self, app: &AppConfig) -> Result<KeptSecret, IdentityError> {
        self.keep(app, Kept::AccessToken, None).await
    }

    /// The Official Account's `jsapi_ticket`, kept like its access token.
    pub async fn jsapi_ticket(&self, app: &AppConfig) -> Result<KeptSecret, IdentityError> {
        self.keep(app, Kept::JsapiTicket, None).await
    }

    /// The app's value of kind `kept`: cached, stored, or refreshed; never the one with
    /// SHA-256 `refused`.
    async fn keep(
        &self,
        app: &AppConfig,
        kept: Kept,
        refused: Option<&str>,
    ) -> Result<KeptSecret, IdentityError> {
        let key: Key = (app.app_id.clone(), kept);
        let not_refused = |t: &KeptSecret| Some(t.hash.as_str()) != refused;
        let stored = |row: &Option<AccessTokenRow>| {
            row.as_ref()
                .and_then(|r| self.usable(r))
                .filter(not_refused)
        };
        if let Some(t) = self.cached(&key).filter(not_refused) {
            return Ok(t);
        }
        let flight = lock(&self.0.flights)
            .entry(key.clone())
            .or_default()
            .clone();
        let _one = flight.lock().await;
        if let Some(t) = self.cached(&key).filter(not_refused) {
            return Ok(t);
        }
        let wait = match kept {
            Kept::AccessToken => self.0.settings.refresh_wait,
            Kept::JsapiTicket => self.0.settings.refresh_wait * 3,
        };
        let deadline = Instant::now() + wait;
        loop {
            let mut conn = self.0.db.conn().await?;
            let row = AccessTokenRow::find(&mut conn, &app.app_id, kept).await?;
            if let Some(t) = stored(&row) {
                return Ok(self.remember(key, t));
            }
            self.check_blocked(&key)?;
            // Leases are between instances: real time, whatever WeChat's clock says.
            let (at, owner) = (now(), self.0.owner.as_str());
            let row_key = (&app.app_id, kept);
            if AccessTokenRow::lease_refresh(&mut conn, row_key, owner, at, at + delta(wait))
                .await?
            {
                // Read again under the lease: another instance may have stored a value between
                // the read above and the lease (then it is used, and WeChat is not asked).
                let row = AccessTokenRow::find(&mut conn, &app.app_id, kept).await?;
                if let Some(t) = stored(&row) {
                    AccessTokenRow::release(&mut conn, row_key, owner).await?;
                    return Ok(self.remember(key, t));
                }
                drop(conn);
                let t = self.refresh(app, kept, row.as_ref()).await?;
                return Ok(self.remember(key, t));
            }
            drop(conn);
            if Instant::now() >= deadline {
                return Err(IdentityError::Wechat(WechatError::Unavailable {
                    reason: format!(
                        "another instance is refreshing the {}; try again",
                        what(kept)
                    ),
                    errcode: None,
                }));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Marks `value` as refused, in this process and (if it is still the stored one) in the
    /// database, so that the next read of the app's `kept` refreshes it.
    async fn invalidate(
        &self,
        app: &AppConfig,
        kept: Kept,
        value: &KeptSecret,
    ) -> Result<(), DbError> {
        let key: Key = (app.app_id.clone(), kept);
        {
            let mut cache = lock(&self.0.cache);
            if cache.get(&key).is_some_and(|c| c.hash == value.hash) {
                cache.remove(&key);
            }
        }
        let mut conn = self.0.db.conn().await?;
        let at = self.0.clock.now();
        AccessTokenRow::invalidate(&mut conn, (&app.app_id, kept), &value.hash, at).await?;
        Ok(())
    }

    fn cached(&self, key: &Key) -> Option<KeptSecret> {
        let now = self.0.clock.now();
        let cache = lock(&self.0.cache);
        cache.get(key).filter(|t| now < t.fresh_until).cloned()
    }

    fn remember(&self, key: Key, value: KeptSecret) -> KeptSecret {
        lock(&self.0.cache).insert(key, value.clone());
        value
    }

    /// The stored value, if it is fresh and can be opened.
    fn usable(&self, row: &AccessTokenRow) -> Option<KeptSecret> {
        let (sealed, hash) = (row.token.as_ref()?, row.token_hash.as_ref()?);
        let (expires_at, fetched_at) = (row.expires_at?, row.fetched_at?);
        let fresh_until = self.fresh_until(fetched_at, expires_at);
        if self.0.clock.now() >= fresh_until {
            return None;
        }
        let Ok(secret) = self.0.sealer.open(sealed, seal_context(row.kind)) else {
            tracing::warn!(app = %row.app_id, kind = %row.kind, "the stored value cannot be opened: every instance must have the same wechat.session_key_encryption_key");
            return None;
        };
        Some(KeptSecret {
            secret: String::from_utf8(secret).ok()?,
            hash: hash.clone(),
            expires_at,
            fresh_until,
        })
    }

    fn fresh_until(&self, fetched_at: NaiveDateTime, expires_at: NaiveDateTime) -> NaiveDateTime {
        let ahead = delta(self.0.settings.refresh_ahead).min((expires_at - fetched_at) / 2);
        expires_at - ahead
    }

    /// Fetches the app's `kept` from WeChat under this instance's lease and stores it.
    async fn refresh(
        &self,
        app: &AppConfig,
        kept: Kept,
        row: Option<&AccessTokenRow>,
    ) -> Result<KeptSecret, IdentityError> {
        let key: Key = (app.app_id.clone(), kept);
        let result = self.fetch(app, kept, row).await;
        crate::metrics::token_refresh(kept.as_str(), if result.is_ok() { "ok" } else { "error" });
        if let Err(e) = &result {
            tracing::warn!(app = %app.app_id, %kept, error = %e, "refresh failed");
        }
        if let Err(IdentityError::Wechat(WechatError::RateLimited { errcode })) = &result {
            self.block(&key, *errcode);
        }
        let mut conn = self.0.db.conn().await?;
        let row_key = (&app.app_id, kept);
        let fetched = match result {
            Ok(fetched) => fetched,
            Err(e) => {
                AccessTokenRow::release(&mut conn, row_key, &self.0.owner).await?;
                return Err(e);
            }
        };
        let at = self.0.clock.now();
        // WeChat says how long it lives (a ticket handed out again: what is left of its life).
        let expires_at = at + TimeDelta::seconds(fetched.expires_in.clamp(1, 7200));
        let hash = crypto::sha256_hex(fetched.secret.as_bytes());
        let sealed = self
            .0
            .sealer
            .seal(fetched.secret.as_bytes(), seal_context(kept));
        let stored = StoredToken {
            sealed: &sealed,
            hash: &hash,
            expires_at,
            fetched_at: at,
            forced: fetched.forced.as_ref().map(|(day, n)| (day.as_str(), *n)),
        };
        if !AccessTokenRow::store(&mut conn, row_key, &self.0.owner, &stored).await? {
            tracing::warn!(app = %app.app_id, %kept, "refresh outlived its lease; stored by another instance meanwhile");
        }
        tracing::info!(app = %app.app_id, %kept, forced = fetched.forced.is_some(), expires_in = fetched.expires_in, "refreshed");
        Ok(KeptSecret {
            secret: fetched.secret,
            hash,
            expires_at,
            fresh_until: self.fresh_until(at, expires_at),
        })
    }

    fn block(&self, key: &Key, errcode: i64) {
        let until = Instant::now() + self.0.settings.backoff;
        lock(&self.0.blocked).insert(key.clone(), (until, errcode));
        tracing::warn!(app = %key.0, kept = %key.1, errcode, backoff_secs = self.0.settings.backoff.as_secs(), "WeChat quota reached; refreshes paused");
    }

    fn check_blocked(&self, key: &Key) -> Result<(), WechatError> {
        let mut blocked = lock(&self.0.blocked);
        match blocked.get(key) {
            Some((until, errcode)) if Instant::now() < *until => {
                Err(WechatError::RateLimited { errcode: *errcode })
            }
            Some(_) => {
                blocked.remove(key);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// What a kind is called in messages.
fn what(kept: Kept) -> &'static str {
    match kept {
        Kept::AccessToken => "access token",
        Kept::JsapiTicket => "jsapi_ticket",
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
