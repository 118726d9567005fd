//! The signing keys as this instance sees them: read again every `jwt.key_reload_secs` (so a key
//! rotated elsewhere signs here within seconds) and at once when a token names a key this
//! instance has not seen (at most once a second, so made-up `kid`s cost one statement a second);
//! rotated by an admin or `wechat-identity keys rotate`; retired by the purge job.

use crate::identity::audit::AuditAction;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::access::{Admin, System};
use super::super::{IdentityError, Parts};
use crate::auth::TokenIssuer;
use crate::auth::jwt::LEEWAY_SECS;
use crate::auth::keys::{KeyError, KeyStore, Rotation};
use crate::config::JwtConfig;
use crate::db::Db;
use crate::rate_limit::Limited;

/// The least time between two reads of the keys for tokens naming unknown keys.
const UNKNOWN_KEY_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// How long keys replaced by a rotation keep verifying: the longest an access token they signed
/// lives, plus the time other instances may go on signing with them before they see the
/// rotation, plus the clock leeway.
pub fn retire_secs(config: &JwtConfig) -> i64 {
    let secs = config.access_ttl_secs + config.key_reload_secs + 2 * LEEWAY_SECS;
    i64::try_from(secs).unwrap_or(i64::MAX / 2)
}

/// The key store (none with HS256, whose only key is the configured secret) and when it was
/// last read for an unknown key.
pub struct SigningKeys {
    store: Option<KeyStore>,
    unknown_key_reload: Mutex<Option<Instant>>,
}

impl SigningKeys {
    /// Keys kept in `store` (EdDSA), or none (HS256).
    pub fn new(store: Option<KeyStore>) -> Self {
        Self {
            store,
            unknown_key_reload: Mutex::new(None),
        }
    }

    /// Reads the keys again and signs and verifies with them from now on.
    async fn reload(&self, db: &Db, tokens: &TokenIssuer) -> Result<(), KeyError> {
        if let Some(store) = &self.store {
            let keys = store.load(db).await?;
            if keys.kids() != tokens.keys().kids() {
                tracing::info!(kids = ?keys.kids(), "signing keys changed");
                tokens.replace_keys(keys);
            }
        }
        Ok(())
    }

    /// For a token naming a key this instance does not hold: reads the keys again unless that
    /// was done less than a second ago. Returns whether it read them.
    pub async fn reload_for_unknown_key(&self, db: &Db, tokens: &TokenIssuer) -> bool {
        {
            let mut last = self.unknown_key_reload.lock().expect("reload time");
            if last.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_RELOAD_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match self.reload(db, tokens).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "reading the signing keys failed");
                false
            }
        }
    }
}

impl From<KeyError> for IdentityError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::TooSoon { retry_after_secs } => IdentityError::RateLimited(Limited {
                limit: "signing key rotation (once a minute)".into(),
                retry_after_secs,
            }),
            KeyError::Db(e) => IdentityError::Db(e),
            e => IdentityError::Internal(e.to_string()),
        }
    }
}

impl Parts {
    async fn rotate_keys(&self) -> Result<Rotation, IdentityError> {
        let Some(store) = &self.signing.store else {
            return Err(IdentityError::Conflict(
                "HS256 has one shared secret and nothing to rotate: change jwt.hs256_secret on \
                 every instance (tokens signed with the old one are refused from then on)"
                    .into(),
            ));
        };
        let rotation = store
            .rotate(&self.db, retire_secs(&self.config.jwt))
            .await?;
        // This instance signs with the new key at once; the others within key_reload_secs.
        self.signing.reload(&self.db, &self.tokens).await?;
        tracing::info!(kid = %rotation.kid, "signing key rotated");
        Ok(rotation)
    }
}

impl Admin<'_> {
    /// A new signing key signs from now on (on every instance within `jwt.key_reload_secs`);
    /// the previous ones verify until the tokens they signed have expired. At most once a
    /// minute.
    pub async fn rotate_signing_key(&self) -> Result<Rotation, IdentityError> {
        let rotation = self.rotate_keys().await?;
        tracing::info!(actor = %self.name, kid = %rotation.kid, "signing key rotated by an admin");
        let details = serde_json::json!({"kid": rotation.kid});
        self.audit(self.name, AuditAction::RotateSigningKey, None, details)
            .await;
        Ok(rotation)
    }
}

impl System {
    /// Reads the signing keys again (run every `jwt.key_reload_secs`).
    pub async fn reload_signing_keys(&self) -> Result<(), IdentityError> {
        Ok(self.signing.reload(&self.db, &self.tokens).await?)
    }

    /// Rotates the signing key (the command line's `keys rotate`).
    pub async fn rotate_signing_key(&self) -> Result<Rotation, IdentityError> {
        self.rotate_keys().await
    }

    /// Retires the signing keys whose tokens have all expired (the purge job).
    pub async fn purge_signing_keys(&self) -> Result<usize, IdentityError> {
        Ok(KeyStore::retire_expired(&self.db).await?)
    }
}
