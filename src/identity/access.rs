//! Access sealed by type. The HTTP layer turns each request's `Authorization` header into one
//! [`Access`] ([`Identity::access`]); a resolver asks it for the handle its field needs and gets
//! either the handle or the error the caller sees (UNAUTHENTICATED, FORBIDDEN):
//!
//! | handle | who | may |
//! |---|---|---|
//! | [`Public`] | anyone (a bad token is refused) | log in, refresh, log out with a refresh token |
//! | [`Reader`] | admin and service API keys | read every user |
//! | [`Admin`] | admin API keys | merge, unlink, read the merge history |
//! | [`SelfUser`] | a user's access token | read and log out itself |
//! | [`Related`] | any caller, for relations of what it was shown | batched reads by user id |
//!
//! Handles are made only here, and the identity layer's data is reachable only through them, so
//! a resolver that skips the check has nothing to read with.

use super::mini_program::{LoginOutcome, MiniProgramLogin};
use super::oauth_state::ServerAuthorize;
use super::official_account::{OfficialAccountLogin, ServerLogin, ServerLoginError};
use super::rules::MergePair;
use super::{ClientInfo, Identity, IdentityError};
use crate::auth::sessions;
use crate::auth::{AuthError, Caller, Role, caller};
use crate::config::AppConfig;
use crate::db::models::merge_event::MergeEventRow;
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::{UserListFilter, UserRow};
use crate::rate_limit::Action;
use crate::types::{IdentityId, UnionId, UserId};
use crate::wechat::official_account::OauthScope;

/// One request's caller, as the identity layer lets it act.
pub struct Access {
    identity: Identity,
    caller: Result<Caller, AuthError>,
}

impl Identity {
    /// The access of a request with this `Authorization` header value (`Bearer <access token |
    /// API key>`; none: anonymous). Bad credentials are kept and refused on first use.
    pub fn access(&self, authorization: Option<&[u8]>) -> Access {
        let caller = match authorization.map(std::str::from_utf8) {
            None => Ok(Caller::Anonymous),
            Some(Ok(value)) => caller::authenticate(Some(value), &self.tokens, &self.api_keys),
            Some(Err(_)) => Err(AuthError::Unauthenticated(
                "Authorization header is not valid text",
            )),
        };
        Access {
            identity: self.clone(),
            caller,
        }
    }

    /// Anonymous access (routes that take no credentials).
    pub fn anonymous(&self) -> Access {
        Access {
            identity: self.clone(),
            caller: Ok(Caller::Anonymous),
        }
    }
}

fn need_credentials() -> IdentityError {
    AuthError::Unauthenticated("this field needs `Authorization: Bearer <token>`").into()
}

impl Access {
    /// Who is calling (an error if the credentials were bad).
    pub fn caller(&self) -> Result<&Caller, IdentityError> {
        self.caller.as_ref().map_err(|e| e.clone().into())
    }

    /// What anyone may do.
    pub fn public(&self) -> Result<Public<'_>, IdentityError> {
        self.caller()?;
        Ok(Public(&self.identity))
    }

    /// Reads of every user (admin and service API keys).
    pub fn reader(&self) -> Result<Reader<'_>, IdentityError> {
        match self.caller()? {
            Caller::ApiKey { .. } => Ok(Reader(&self.identity)),
            Caller::User { .. } => {
                Err(AuthError::Forbidden("needs an admin or service API key").into())
            }
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// Admin actions (admin API keys).
    pub fn admin(&self) -> Result<Admin<'_>, IdentityError> {
        match self.caller()? {
            Caller::ApiKey {
                name,
                role: Role::Admin,
            } => Ok(Admin {
                identity: &self.identity,
                name,
            }),
            Caller::ApiKey { .. } | Caller::User { .. } => {
                Err(AuthError::Forbidden("needs an admin API key").into())
            }
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// The calling user acting on itself (user access tokens).
    pub fn self_user(&self) -> Result<SelfUser<'_>, IdentityError> {
        match self.caller()? {
            Caller::User { user_id, .. } => Ok(SelfUser {
                identity: &self.identity,
                user_id,
            }),
            Caller::ApiKey { .. } => Err(AuthError::Forbidden("needs a user access token").into()),
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// Batched reads of the relations of objects this caller was already shown.
    pub fn related(&self) -> Related {
        Related(self.identity.clone())
    }

    /// A user by id: any user for admin/service keys (a merged id answers the tombstone); for a
    /// user token, only itself (or a tombstone merged into it).
    pub async fn user(&self, id: &UserId) -> Result<Option<UserRow>, IdentityError> {
        if let Caller::User { .. } = self.caller()? {
            let me = self.self_user()?.live_user().await?;
            return match self.identity.user(id).await? {
                Some(u) if u.id == me.id || u.merged_into.as_ref() == Some(&me.id) => Ok(Some(u)),
                _ => Err(AuthError::Forbidden("a user may only read itself").into()),
            };
        }
        self.reader()?.user(id).await
    }
}

/// What anyone may do: log in, refresh, log out with a refresh token.
pub struct Public<'a>(&'a Identity);

impl Public<'_> {
    /// See [`Identity::login_with_mini_program`].
    pub async fn login_with_mini_program(
        &self,
        input: &MiniProgramLogin,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        self.0.login_with_mini_program(input, client).await
    }

    /// See [`Identity::login_with_official_account`].
    pub async fn login_with_official_account(
        &self,
        input: &OfficialAccountLogin,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        self.0.login_with_official_account(input, client).await
    }

    /// See [`Identity::official_account_authorize_url`].
    pub async fn official_account_authorize_url(
        &self,
        app_id: &str,
        redirect_uri: &str,
        scope: OauthScope,
        code_challenge: Option<&str>,
        client: &ClientInfo,
    ) -> Result<String, IdentityError> {
        self.0
            .official_account_authorize_url(app_id, redirect_uri, scope, code_challenge, client)
            .await
    }

    /// See [`Identity::server_authorize_redirect`].
    pub async fn server_authorize_redirect(
        &self,
        app_id: &str,
        scope: OauthScope,
        return_to: &str,
        code_challenge: Option<&str>,
        client: &ClientInfo,
    ) -> Result<ServerAuthorize, IdentityError> {
        self.0
            .server_authorize_redirect(app_id, scope, return_to, code_challenge, client)
            .await
    }

    /// See [`Identity::complete_server_login`].
    pub async fn complete_server_login(
        &self,
        app_id: &str,
        code: Option<&str>,
        state: &str,
        browser_nonce: Option<&str>,
        client: &ClientInfo,
    ) -> Result<ServerLogin, ServerLoginError> {
        self.0
            .complete_server_login(app_id, code, state, browser_nonce, client)
            .await
    }

    /// See [`Identity::redeem_login_ticket`].
    pub async fn redeem_login_ticket(
        &self,
        ticket: &str,
        code_verifier: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        self.0
            .redeem_login_ticket(ticket, code_verifier, client)
            .await
    }

    /// Exchanges a refresh token for new tokens (rate-limited per address); see
    /// [`sessions::refresh`].
    pub async fn refresh_session(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        self.0.rate_limit(Action::Refresh, client, None)?;
        let (user, tokens) =
            sessions::refresh(&self.0.db, &self.0.tokens, refresh_token, client).await?;
        Ok(LoginOutcome {
            user,
            new_user: false,
            tokens,
        })
    }

    /// Ends the login a refresh token belongs to; see [`sessions::logout`].
    pub async fn logout(&self, refresh_token: &str) -> Result<bool, IdentityError> {
        Ok(sessions::logout(&self.0.db, refresh_token).await?)
    }

    /// Where the server-driven flow's cookies and redirects point.
    pub fn config(&self) -> &crate::config::Config {
        &self.0.config
    }
}

/// Reads of every user (admin and service API keys).
pub struct Reader<'a>(&'a Identity);

impl Reader<'_> {
    /// The user with this id, tombstone or live.
    pub async fn user(&self, id: &UserId) -> Result<Option<UserRow>, IdentityError> {
        self.0.user(id).await
    }

    /// The live user holding this unionid.
    pub async fn user_by_unionid(
        &self,
        unionid: &UnionId,
    ) -> Result<Option<UserRow>, IdentityError> {
        self.0.user_by_unionid(unionid).await
    }

    /// Up to `limit` users after `after`, in creation order.
    pub async fn users(
        &self,
        after: Option<&UserId>,
        limit: i64,
        filter: &UserListFilter,
    ) -> Result<Vec<UserRow>, IdentityError> {
        self.0.users(after, limit, filter).await
    }

    /// The configured apps.
    pub fn apps(&self) -> &[AppConfig] {
        &self.0.config.apps
    }
}

/// Admin actions (admin API keys); recorded with the key's name as the actor.
pub struct Admin<'a> {
    identity: &'a Identity,
    name: &'a str,
}

impl Admin<'_> {
    /// See [`Identity::merge_users`].
    pub async fn merge_users(&self, pair: MergePair<'_>) -> Result<UserRow, IdentityError> {
        self.identity.merge_users(pair, self.name).await
    }

    /// See [`Identity::unlink_identity`].
    pub async fn unlink_identity(&self, id: &IdentityId) -> Result<UserRow, IdentityError> {
        self.identity.unlink_identity(id, self.name).await
    }

    /// See [`Identity::merge_events`].
    pub async fn merge_events(
        &self,
        user_id: Option<&UserId>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MergeEventRow>, IdentityError> {
        self.identity.merge_events(user_id, after, limit).await
    }
}

/// The calling user (user access tokens).
pub struct SelfUser<'a> {
    identity: &'a Identity,
    user_id: &'a UserId,
}

impl SelfUser<'_> {
    /// The live user behind the token (the survivor, if the token's user was merged).
    pub async fn live_user(&self) -> Result<UserRow, IdentityError> {
        self.identity
            .live_user(self.user_id)
            .await?
            .ok_or_else(|| AuthError::Unauthenticated("the token's user no longer exists").into())
    }

    /// Ends every login of this user (and of users merged into it); returns how many were
    /// active.
    pub async fn logout_everywhere(&self) -> Result<usize, IdentityError> {
        Ok(sessions::logout_everywhere(&self.identity.db, self.user_id).await?)
    }
}

/// Batched reads of the relations (identities, owners, survivors) of objects a caller was already
/// shown through one of the other handles.
#[derive(Clone)]
pub struct Related(Identity);

impl Related {
    /// Several users by id.
    pub async fn users(&self, ids: &[UserId]) -> Result<Vec<UserRow>, IdentityError> {
        self.0.users_by_ids(ids).await
    }

    /// The Mini Program identities of these users.
    pub async fn mini_program_identities(
        &self,
        ids: &[UserId],
    ) -> Result<Vec<MiniProgramIdentityRow>, IdentityError> {
        self.0.mini_program_identities_of(ids).await
    }

    /// The Official Account identities of these users.
    pub async fn official_account_identities(
        &self,
        ids: &[UserId],
    ) -> Result<Vec<OfficialAccountIdentityRow>, IdentityError> {
        self.0.official_account_identities_of(ids).await
    }
}
