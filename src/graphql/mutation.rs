//! Mutation root.

use async_graphql::{Context, Object};

use super::access;
use super::error::{ApiError, gql};
use super::types::{AuthPayload, LoginWithMiniProgramInput};
use crate::auth::sessions;
use crate::identity::mini_program::MiniProgramLogin;

/// The mutation root.
pub struct Mutation;

#[Object]
impl Mutation {
    /// Logs a person in with a Mini Program `wx.login()` code (no token needed). Optional
    /// `encryptedData` + `iv` from the same session fill the profile (user info or phone).
    async fn login_with_mini_program(
        &self,
        ctx: &Context<'_>,
        input: LoginWithMiniProgramInput,
    ) -> async_graphql::Result<AuthPayload> {
        let identity = access::identity(ctx);
        let login = MiniProgramLogin {
            app_id: input.app_id,
            code: input.code,
            encrypted_data: input.encrypted_data,
            iv: input.iv,
        };
        let outcome = identity
            .login_with_mini_program(&login, &access::client_info(ctx))
            .await
            .map_err(gql)?;
        Ok(AuthPayload {
            tokens: outcome.tokens,
            user: outcome.user,
            new_user: outcome.new_user,
        })
    }

    /// Exchanges a refresh token for new tokens; the old refresh token stops working. Presenting
    /// an already-used refresh token revokes that login everywhere.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let identity = access::identity(ctx);
        let (user, tokens) = sessions::refresh(
            &identity.db,
            &identity.tokens,
            &refresh_token,
            &access::client_info(ctx),
        )
        .await
        .map_err(gql)?;
        Ok(AuthPayload {
            tokens,
            user,
            new_user: false,
        })
    }

    /// Ends a login: the one `refreshToken` belongs to, or with `allSessions: true` every login
    /// of the calling user (needs its access token). Access tokens already issued stay valid
    /// until they expire (`expiresIn`). Returns whether an active session was ended.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        refresh_token: Option<String>,
        #[graphql(default)] all_sessions: bool,
    ) -> async_graphql::Result<bool> {
        if all_sessions {
            let me = access::self_user(ctx)?;
            let ended = sessions::logout_everywhere(&me.identity.db, me.user_id)
                .await
                .map_err(gql)?;
            return Ok(ended > 0);
        }
        let Some(refresh_token) = refresh_token.filter(|t| !t.is_empty() && t.len() <= 256) else {
            return Err(gql(ApiError::bad_input(
                "give refreshToken, or allSessions: true with an access token",
            )));
        };
        let identity = access::identity(ctx);
        sessions::logout(&identity.db, &refresh_token)
            .await
            .map_err(gql)
    }
}
