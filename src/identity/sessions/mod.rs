//! Logins as other teams and people see them: every access token checked against its login
//! (`sid`, through the per-instance window of `auth::revocation`), the logins a user can list
//! and end, an admin ending them all, introspection (RFC 7662) and revocation (RFC 7009); the
//! signing keys in `keys.rs`.

pub mod keys;

use crate::identity::audit::AuditAction;
use std::collections::HashMap;

use super::access::{Access, Admin, Public, Reader, SelfUser, need_credentials};
use super::values::{Introspection, LoginSession, Revocation};
use super::{ClientInfo, IdentityError, Parts};
use crate::auth::caller::{self, Credential};
use crate::auth::jwt::VerifyError;
use crate::auth::revocation::LiveLogins;
use crate::auth::sessions::{self, MAX_LIVE_PER_LOGIN};
use crate::auth::{AccessClaims, AuthError, Caller, Role};
use crate::crypto;
use crate::db::models::now;
use crate::db::models::session::SessionRow;
use crate::db::models::user::UserRow;
use crate::rate_limit::Action;
use crate::types::{SessionId, UserId};

/// The most logins `sessions` lists (newest first).
pub const MAX_LISTED: usize = 100;

/// The longest token introspection or revocation looks at (ours are far shorter).
const MAX_TOKEN_LEN: usize = 4096;

fn ended() -> AuthError {
    AuthError::Unauthenticated("the session has ended; log in again")
}

impl Parts {
    /// The caller of a request with this `Authorization` header value: an API key, or a user
    /// whose access token verifies and whose login is live.
    pub(super) async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Caller, AuthError> {
        let value = match authorization.map(std::str::from_utf8) {
            None => return Ok(Caller::Anonymous),
            Some(Ok(value)) => value,
            Some(Err(_)) => {
                return Err(AuthError::Unauthenticated(
                    "Authorization header is not valid text",
                ));
            }
        };
        match caller::credential(value, &self.api_keys)? {
            Credential::ApiKey(caller) => Ok(caller),
            Credential::AccessToken(token) => {
                let claims = self.verify_access_token(token).await?;
                let live = self
                    .live_logins
                    .is_live(&self.db, &claims.sid)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "checking a login failed");
                        AuthError::Unavailable("the session could not be checked; try again")
                    })?;
                if !live {
                    return Err(ended());
                }
                Ok(Caller::User {
                    user_id: UserId::new(claims.sub),
                    session_id: claims.sid,
                })
            }
        }
    }

    /// Checks an access token's signature, key, issuer, audience and expiry; a key this
    /// instance has not seen makes it read the keys again first (a rotation elsewhere).
    async fn verify_access_token(&self, token: &str) -> Result<AccessClaims, AuthError> {
        match self.tokens.verify(token) {
            Err(VerifyError::UnknownKey)
                if self
                    .signing
                    .reload_for_unknown_key(&self.db, &self.tokens)
                    .await =>
            {
                Ok(self.tokens.verify(token)?)
            }
            verified => Ok(verified?),
        }
    }

    /// The live logins of `user`, newest activity first, at most `first`; `current` marks
    /// the caller's.
    async fn logins(
        &self,
        user: &UserId,
        current: Option<&str>,
        first: usize,
    ) -> Result<Vec<LoginSession>, IdentityError> {
        let first = first.clamp(1, MAX_LISTED);
        let mut conn = self.db.conn().await?;
        let limit = i64::try_from(first * MAX_LIVE_PER_LOGIN).unwrap_or(i64::MAX);
        let rows = SessionRow::live_of_user(&mut conn, user, now(), limit).await?;
        let mut logins: Vec<LoginSession> = Vec::new();
        let mut index: HashMap<SessionId, usize> = HashMap::new();
        for row in rows {
            let is_current =
                current.is_some_and(|c| c == row.family.as_str() || c == row.id.as_str());
            if let Some(&i) = index.get(&row.family) {
                logins[i].current |= is_current;
                continue;
            }
            if logins.len() == first {
                continue;
            }
            index.insert(row.family.clone(), logins.len());
            logins.push(LoginSession {
                id: row.family,
                created_at: row.created_at,
                last_used_at: row.created_at,
                user_agent: row.user_agent,
                ip: row.ip,
                app_id: row.app_id,
                current: is_current,
            });
        }
        let families: Vec<SessionId> = logins.iter().map(|l| l.id.clone()).collect();
        for (family, started) in SessionRow::login_starts(&mut conn, &families).await? {
            if let Some(&i) = index.get(&family) {
                logins[i].created_at = started;
            }
        }
        Ok(logins)
    }

    /// Access token: live if it verifies and its login is live now (not from the window).
    async fn introspect_access(&self, token: &str) -> Result<Introspection, IdentityError> {
        let Ok(claims) = self.verify_access_token(token).await else {
            return Ok(Introspection::default());
        };
        if !LiveLogins::is_live_now(&self.db, &claims.sid).await? {
            return Ok(Introspection::default());
        }
        Ok(Introspection {
            active: true,
            token_type: Some("Bearer"),
            token_use: Some("access"),
            sub: Some(claims.sub),
            sid: Some(claims.sid),
            client_id: claims.app_id,
            app_kind: claims.app_kind,
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            jti: Some(claims.jti).filter(|j| !j.is_empty()),
        })
    }

    /// Refresh token: live if stored, neither rotated, revoked nor expired, and its user live.
    async fn introspect_refresh(&self, token: &str) -> Result<Introspection, IdentityError> {
        let mut conn = self.db.conn().await?;
        let hash = crypto::sha256_hex(token.as_bytes());
        let at = now();
        let Some(row) = SessionRow::find_by_hash(&mut conn, &hash).await? else {
            return Ok(Introspection::default());
        };
        if row.revoked_at.is_some() || row.expires_at <= at {
            return Ok(Introspection::default());
        }
        let Some(user) = UserRow::find_live(&mut conn, &row.user_id).await? else {
            return Ok(Introspection::default());
        };
        let unix = |t: chrono::NaiveDateTime| u64::try_from(t.and_utc().timestamp()).ok();
        let app_kind = row
            .app_id
            .as_ref()
            .and_then(|a| self.config.app(a.as_str()))
            .map(|a| a.kind.as_str().to_owned());
        Ok(Introspection {
            active: true,
            token_use: Some("refresh"),
            sub: Some(user.id.to_string()),
            sid: Some(row.family.to_string()),
            client_id: row.app_id.map(|a| a.to_string()),
            app_kind,
            exp: unix(row.expires_at),
            iat: unix(row.created_at),
            iss: Some(self.tokens.issuer().to_owned()),
            ..Introspection::default()
        })
    }
}

impl Access {
    /// The live logins of user `user` (newest first, at most `first`, 1–100): the user itself
    /// (its own login marked `current`) or an admin key; anyone else is refused.
    pub async fn sessions(
        &self,
        user: &UserId,
        first: usize,
    ) -> Result<Vec<LoginSession>, IdentityError> {
        match self.caller()? {
            Caller::User { session_id, .. } => {
                self.read_scope().await?.check(Some(user))?;
                self.identity.logins(user, Some(session_id), first).await
            }
            Caller::ApiKey {
                role: Role::Admin, ..
            } => self.identity.logins(user, None, first).await,
            Caller::ApiKey { .. } => Err(AuthError::Forbidden(
                "a user's sessions are shown to the user and to admin keys",
            )
            .into()),
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// RFC 7662 for an admin or service key (see [`Reader::introspect`], rate-limited per key);
    /// UNAUTHENTICATED or FORBIDDEN for anyone else.
    pub async fn introspect(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<Introspection, IdentityError> {
        let reader = self.reader()?;
        let Caller::ApiKey { name, .. } = self.caller()? else {
            return Err(need_credentials());
        };
        reader.introspect(name, token, client).await
    }
}

impl SelfUser<'_> {
    /// Ends one of the user's own logins; whether it was still live. Someone else's login, or
    /// none, is NOT_FOUND (whether it exists is not told).
    pub async fn end_session(&self, id: &str) -> Result<bool, IdentityError> {
        let not_found = || IdentityError::NotFound("no such session".into());
        if id.is_empty() || id.len() > 64 {
            return Err(not_found());
        }
        let me = self.live_user().await?;
        let ended = sessions::end_login(&self.db, &me.id, &SessionId::new(id))
            .await?
            .ok_or_else(not_found)?;
        if ended {
            self.live_logins.forget();
        }
        Ok(ended)
    }
}

impl Admin<'_> {
    /// Ends every login of a user (and of users merged into it); how many were live. An unknown
    /// user is NOT_FOUND.
    pub async fn revoke_sessions(&self, user_id: &UserId) -> Result<usize, IdentityError> {
        let ended = sessions::logout_everywhere(&self.db, user_id)
            .await?
            .ok_or_else(|| IdentityError::NotFound("no such user".into()))?;
        if ended > 0 {
            self.live_logins.forget();
        }
        tracing::info!(actor = %self.name, user = %user_id, ended, "sessions revoked by an admin");
        let details = serde_json::json!({"loginsEnded": ended});
        self.audit(
            self.name,
            AuditAction::RevokeSessions,
            Some(user_id),
            details,
        )
        .await;
        Ok(ended)
    }
}

impl Reader<'_> {
    /// RFC 7662: whether `token` (an access or refresh token of ours) is live, and what it is.
    /// Anything else — expired, revoked, logged out, malformed, another issuer's — is
    /// `{active: false}`. Rate-limited per API key (`key`, the caller's name).
    pub async fn introspect(
        &self,
        key: &str,
        token: &str,
        client: &ClientInfo,
    ) -> Result<Introspection, IdentityError> {
        self.rate_limit(Action::Introspect, client, Some(key))
            .await?;
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(Introspection::default());
        }
        if token.matches('.').count() == 2 {
            self.introspect_access(token).await
        } else {
            self.introspect_refresh(token).await
        }
    }
}

impl Public<'_> {
    /// RFC 7009: ends the login of a refresh token (rate-limited per address). An unknown or
    /// spent token is no error; an access token is refused as a type this endpoint does not
    /// revoke (its login ends with the refresh token).
    pub async fn revoke_token(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<Revocation, IdentityError> {
        self.rate_limit(Action::Revoke, client, None).await?;
        if token.matches('.').count() == 2 {
            return Ok(Revocation::UnsupportedTokenType);
        }
        if !token.is_empty()
            && token.len() <= MAX_TOKEN_LEN
            && sessions::logout(&self.db, token).await?
        {
            self.live_logins.forget();
        }
        Ok(Revocation::Done)
    }
}
