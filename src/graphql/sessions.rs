//! Logins people can see and end (`User.sessions`, `endSession`), an admin ending a user's
//! logins (`revokeSessions`) and rotating the signing key (`rotateSigningKey`).

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::access::{self, access};
use super::error::gql;
use super::types::utc;
use crate::error::ApiError;
use crate::identity::values::LoginSession;
use crate::types::UserId;

/// The default of `sessions(first)`.
const DEFAULT_SESSIONS: i32 = 20;

/// A login, shown as `UserSession`.
pub struct UserSession(pub LoginSession);

/// One login of a user: from a login mutation (or a server-driven login) until `logout`,
/// `endSession`, `revokeSessions` or the refresh token's expiry. Refreshing keeps the login.
#[Object]
impl UserSession {
    /// The login's id: the `sid` claim of its access tokens, and what `endSession` takes.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// When the person logged in.
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    /// When the login last got tokens: the login itself or its latest refresh.
    async fn last_used_at(&self) -> DateTime<Utc> {
        utc(self.0.last_used_at)
    }
    /// The client's `User-Agent` then (at most 256 characters); null if it sent none.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    /// The client's address then (through the trusted proxies); null if unknown.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
    /// The app the person logged in through; null for logins from before apps were recorded.
    async fn app_id(&self) -> Option<&str> {
        self.0.app_id.as_ref().map(|a| a.as_str())
    }
    /// Whether the access token of this request belongs to this login (always false for an
    /// admin key).
    async fn current(&self) -> bool {
        self.0.current
    }
}

/// `User.sessions`.
pub(super) async fn sessions(
    ctx: &Context<'_>,
    user: &UserId,
    first: Option<i32>,
) -> async_graphql::Result<Vec<UserSession>> {
    let first = first.unwrap_or(DEFAULT_SESSIONS);
    if !(1..=100).contains(&first) {
        return Err(gql(ApiError::bad_input("`first` must be 1-100")));
    }
    let logins = access(ctx)
        .sessions(user, usize::try_from(first).unwrap_or(1))
        .await
        .map_err(gql)?;
    Ok(logins.into_iter().map(UserSession).collect())
}

/// What `rotateSigningKey` did.
#[derive(SimpleObject)]
pub struct SigningKeyRotation {
    /// The new key's id: the `kid` of every access token signed from now on, published in the
    /// JWKS.
    pub kid: String,
    /// When the keys it replaced leave the JWKS and stop verifying: once the last access token
    /// they signed has expired (the purge job retires them then).
    pub previous_keys_retire_at: DateTime<Utc>,
}

/// The session and key mutations.
#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Ends one of the calling user's own logins (an id from `me { sessions { id } }`): its
    /// refresh token stops working at once and its access tokens within
    /// `jwt.revocation_check_secs` (5 s by default) on every instance. Returns whether the
    /// login was still live. Another user's login, or an unknown id, is NOT_FOUND.
    /// One per request with `logout`, `endSession`, `revokeSessions` and `rotateSigningKey`
    /// (aliases count).
    /// The user itself.
    async fn end_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The login's id (at most 64 characters).")] id: ID,
    ) -> async_graphql::Result<Option<bool>> {
        let me = access::self_user(ctx)?;
        me.end_session(&id).await.map(Some).map_err(gql)
    }

    /// Ends every login of a user (and of users merged into it), as `endSession` ends one.
    /// Returns how many were live. An unknown user is NOT_FOUND.
    /// One per request with `logout`, `endSession`, `revokeSessions` and `rotateSigningKey`
    /// (aliases count).
    /// Admin.
    async fn revoke_sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
    ) -> async_graphql::Result<Option<i32>> {
        let admin = access::admin(ctx)?;
        if user_id.len() > 64 {
            return Err(gql(ApiError::bad_input("userId is at most 64 characters")));
        }
        let ended = admin
            .revoke_sessions(&UserId::new(user_id.0))
            .await
            .map_err(gql)?;
        Ok(Some(i32::try_from(ended).unwrap_or(i32::MAX)))
    }

    /// Makes a new signing key: access tokens are signed with it from now on, on every
    /// instance within `jwt.key_reload_secs` (5 s by default); the keys before it stay in the
    /// JWKS and keep verifying until the last token they signed has expired. At most once a
    /// minute (RATE_LIMITED with `retryAfter`); with HS256 there is nothing to rotate
    /// (CONFLICT: change `jwt.hs256_secret`). Also `wechat-identity keys rotate`.
    /// One per request with `logout`, `endSession`, `revokeSessions` and `rotateSigningKey`
    /// (aliases count).
    /// Admin.
    async fn rotate_signing_key(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<SigningKeyRotation>> {
        let rotation = access::admin(ctx)?
            .rotate_signing_key()
            .await
            .map_err(gql)?;
        Ok(Some(SigningKeyRotation {
            kid: rotation.kid,
            previous_keys_retire_at: utc(rotation.previous_retire_after),
        }))
    }
}
