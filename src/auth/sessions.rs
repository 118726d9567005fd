//! Refresh-token sessions: issued at login, rotated on refresh (reuse of a rotated token revokes
//! the whole family), revoked on logout. Only SHA-256 hashes of refresh tokens are stored.
//!
//! A client that retries a refresh (a lost response, several tabs at once) presents the same
//! token again moments after it was rotated. Within `jwt.refresh_reuse_grace_secs` of the
//! rotation, and while the login is still active, that gets fresh tokens of the same login
//! instead of revoking it; after the window, reuse revokes the whole login as before. Such a
//! retry adds a sibling session to the login (the client keeps whichever answer it saw last),
//! at most [`MAX_LIVE_PER_LOGIN`] live ones, however many retries arrive at once: retries and
//! logout lock the login first ([`SessionRow::lock_login`]) and count after the lock, so the cap
//! holds and a logout never misses a sibling being added.

use chrono::Duration;

use super::TokenIssuer;
use crate::crypto;
use crate::db::models::now;
use crate::db::models::session::{NewSession, SessionRow};
use crate::db::models::user::UserRow;
use crate::db::transaction;
use crate::db::{Conn, Db, DbError, Race, Retryable};
use crate::types::{AppId, SessionId, UserId};

/// What a client learns about the caller's connection (stored with the session).
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// `User-Agent`, truncated.
    pub user_agent: Option<String>,
    /// The client's address (the peer, or from `X-Forwarded-For` via a trusted proxy).
    pub ip: Option<std::net::IpAddr>,
}

/// Tokens handed to a client after a login or refresh.
#[derive(Clone)]
pub struct IssuedTokens {
    /// The access JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// The opaque refresh token (shown once, stored only as a hash).
    pub refresh_token: String,
    /// Its lifetime in seconds.
    pub refresh_expires_in: u64,
    /// The session id (of the refresh token).
    pub session_id: SessionId,
}

/// Why a refresh or logout failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The refresh token is unknown, expired, revoked, or was already used.
    #[error("{0}")]
    Invalid(&'static str),
    /// A rotated refresh token was presented again: its whole login is revoked.
    #[error("refresh token already used; the session has been revoked")]
    Reused,
    /// The login's user is disabled (`disableUser`).
    #[error("this user is disabled")]
    Disabled,
    /// A concurrent refresh with the same token rotated it first; run again to see its outcome.
    #[error("refresh token rotated concurrently")]
    Raced,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Retryable for SessionError {
    fn race(&self) -> Option<Race> {
        match self {
            // Another refresh rotated the token between our read and our write.
            SessionError::Raced => Some(Race::Serialization),
            SessionError::Db(e) => e.race(),
            SessionError::Invalid(_) | SessionError::Reused | SessionError::Disabled => None,
        }
    }
}

/// A session about to be stored: its id and refresh token, generated before the write.
pub struct PendingSession {
    /// Session id (and family of a new login).
    pub id: SessionId,
    /// The refresh token handed to the client once.
    pub refresh_token: String,
    /// Its SHA-256, the only form stored.
    pub token_hash: String,
    /// Now.
    pub created_at: chrono::NaiveDateTime,
    /// When the refresh token stops working.
    pub expires_at: chrono::NaiveDateTime,
}

impl PendingSession {
    /// Generates an id and a refresh token.
    pub fn generate(issuer: &TokenIssuer) -> Self {
        let refresh_token = crypto::random_token();
        let created_at = now();
        let refresh_ttl = i64::try_from(issuer.refresh_ttl_secs).unwrap_or(i64::MAX / 2);
        Self {
            id: SessionId::generate(),
            token_hash: crypto::sha256_hex(refresh_token.as_bytes()),
            refresh_token,
            created_at,
            expires_at: created_at + Duration::seconds(refresh_ttl),
        }
    }

    /// The tokens for the client, once the session is stored for `user_id` in the login
    /// `family` (the access token's `sid`; a new login's is the session's own id), which came
    /// through `app_id`.
    pub fn into_tokens(
        self,
        issuer: &TokenIssuer,
        user_id: &UserId,
        family: Option<&SessionId>,
        app_id: Option<&AppId>,
    ) -> IssuedTokens {
        let login = family.unwrap_or(&self.id);
        IssuedTokens {
            access_token: issuer.issue(user_id.as_str(), login.as_str(), app_id.map(AppId::as_str)),
            expires_in: issuer.access_ttl_secs,
            refresh_token: self.refresh_token,
            refresh_expires_in: issuer.refresh_ttl_secs,
            session_id: self.id,
        }
    }
}

/// Starts a session for `user_id` (a new family unless `family` is given), which came through
/// `app_id`, inside the caller's transaction and signs its access token.
pub async fn create(
    conn: &mut Conn,
    issuer: &TokenIssuer,
    user_id: &UserId,
    (family, app_id): (Option<&SessionId>, Option<&AppId>),
    client: &ClientInfo,
) -> Result<IssuedTokens, DbError> {
    let pending = PendingSession::generate(issuer);
    let ip = client.ip.map(|ip| ip.to_string());
    SessionRow::insert(
        conn,
        &NewSession {
            id: &pending.id,
            user_id,
            family: family.unwrap_or(&pending.id),
            token_hash: &pending.token_hash,
            expires_at: pending.expires_at,
            created_at: pending.created_at,
            user_agent: client.user_agent.as_deref(),
            ip: ip.as_deref(),
            app_id,
        },
    )
    .await?;
    Ok(pending.into_tokens(issuer, user_id, family, app_id))
}

/// Live sessions one login may fork into through retries within the grace window.
pub const MAX_LIVE_PER_LOGIN: usize = 16;

enum Refreshed {
    Rotated(Box<(UserRow, IssuedTokens)>),
    Reused,
}

/// Exchanges a refresh token for new tokens, rotating it. Presenting an already-rotated token
/// revokes its whole family (someone holds a stolen copy). Sessions of a merged user resolve to
/// the survivor.
pub async fn refresh(
    db: &Db,
    issuer: &TokenIssuer,
    refresh_token: &str,
    client: &ClientInfo,
) -> Result<(UserRow, IssuedTokens), SessionError> {
    if refresh_token.is_empty() || refresh_token.len() > 256 {
        return Err(SessionError::Invalid("refresh token invalid"));
    }
    let hash = crypto::sha256_hex(refresh_token.as_bytes());
    let grace = Duration::seconds(i64::try_from(issuer.refresh_reuse_grace_secs).unwrap_or(0));
    let outcome: Result<Refreshed, SessionError> =
        transaction(db, async |conn: &mut Conn| -> Result<_, SessionError> {
            let Some(session) = SessionRow::find_by_hash(conn, &hash).await? else {
                return Err(SessionError::Invalid("refresh token invalid"));
            };
            let at = now();
            let retry = match (session.revoked_at, &session.replaced_by) {
                (None, _) => false,
                (Some(rotated_at), Some(_)) => {
                    let within_grace = at - rotated_at <= grace;
                    // Retries of one login take turns here, each counting what the ones
                    // before it added: the cap holds however many arrive at once.
                    let active = SessionRow::lock_login(conn, &session.family).await?;
                    if !within_grace || active == 0 {
                        SessionRow::revoke_family(conn, &session.family, at).await?;
                        return Ok(Refreshed::Reused);
                    }
                    if active >= MAX_LIVE_PER_LOGIN {
                        // Retries past this are refused; the login goes on.
                        return Err(SessionError::Invalid("refresh token already used"));
                    }
                    true
                }
                (Some(_), None) => return Err(SessionError::Invalid("refresh token revoked")),
            };
            if session.expires_at <= at {
                return Err(SessionError::Invalid("refresh token expired"));
            }
            let user = UserRow::find_live(conn, &session.user_id)
                .await?
                .ok_or(SessionError::Invalid("refresh token invalid"))?;
            if user.disabled_at.is_some() {
                return Err(SessionError::Disabled);
            }
            let login = (Some(&session.family), session.app_id.as_ref());
            let tokens = create(conn, issuer, &user.id, login, client).await?;
            // A retry within the grace window gets a sibling in the same login; the token it
            // presented stays rotated.
            if !retry
                && !SessionRow::revoke(conn, &session.id, Some(&tokens.session_id), at).await?
            {
                // A concurrent refresh with the same token rotated it first: run again, and see it
                // as a retry (or as reuse, past the window).
                return Err(SessionError::Raced);
            }
            Ok(Refreshed::Rotated(Box::new((user, tokens))))
        })
        .await;
    match outcome? {
        Refreshed::Rotated(rotated) => Ok(*rotated),
        Refreshed::Reused => {
            tracing::warn!(
                "a rotated refresh token was presented again; its session family is revoked"
            );
            Err(SessionError::Reused)
        }
    }
}

/// Ends the login that `refresh_token` belongs to (its whole family). Returns whether an active
/// session was ended.
pub async fn logout(db: &Db, refresh_token: &str) -> Result<bool, SessionError> {
    let hash = crypto::sha256_hex(refresh_token.as_bytes());
    transaction(db, async |conn: &mut Conn| -> Result<_, SessionError> {
        let Some(session) = SessionRow::find_by_hash(conn, &hash).await? else {
            return Ok(false);
        };
        Ok(SessionRow::revoke_family(conn, &session.family, now()).await? > 0)
    })
    .await
}

/// Ends every session of a user (and of users merged into it). Returns how many logins were
/// active, or `None` when there is no such user.
pub async fn logout_everywhere(db: &Db, user_id: &UserId) -> Result<Option<usize>, SessionError> {
    transaction(db, async |conn: &mut Conn| -> Result<_, SessionError> {
        let Some(user) = UserRow::find_live(conn, user_id).await? else {
            return Ok(None);
        };
        Ok(Some(SessionRow::revoke_user(conn, &user.id, now()).await?))
    })
    .await
}

/// Ends `user_id`'s login `family` (every session of it). `None` when no such login of that
/// user exists (another user's is not told apart from none); otherwise whether it was active.
pub async fn end_login(
    db: &Db,
    user_id: &UserId,
    family: &SessionId,
) -> Result<Option<bool>, SessionError> {
    transaction(db, async |conn: &mut Conn| -> Result<_, SessionError> {
        match SessionRow::find(conn, family.as_str()).await? {
            Some(first) if first.family == *family && first.user_id == *user_id => {
                let at = now();
                // Live: a session neither revoked nor expired (a lapsed login is not "ended").
                let live = SessionRow::login_is_live(conn, family.as_str(), at).await?;
                SessionRow::revoke_family(conn, family, at).await?;
                Ok(Some(live))
            }
            _ => Ok(None),
        }
    })
    .await
}
