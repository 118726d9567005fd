//! Mutation root.

use async_graphql::{Context, ID, Object};

use super::access;
use super::error::{ApiError, gql};
use super::query::user_id;
use super::types::{AuthPayload, LoginWithMiniProgramInput, LoginWithOfficialAccountInput, User};
use crate::identity::login::mini_program::MiniProgramLogin;
use crate::identity::login::official_account::OfficialAccountLogin;
use crate::identity::rules::MergePair;
use crate::types::IdentityId;

/// The mutation root.
pub struct Mutation;

#[Object(name = "CoreMutation")]
impl Mutation {
    /// Logs a person in with a Mini Program `wx.login()` code (no token needed). Optional
    /// `encryptedData` + `iv` from the same session fill the profile (user info or phone).
    async fn login_with_mini_program(
        &self,
        ctx: &Context<'_>,
        input: LoginWithMiniProgramInput,
    ) -> async_graphql::Result<AuthPayload> {
        let login = MiniProgramLogin {
            app_id: input.app_id,
            code: input.code,
            encrypted_data: input.encrypted_data,
            iv: input.iv,
        };
        access::public(ctx)?
            .login_with_mini_program(&login, &access::client_info(ctx))
            .await
            .map(AuthPayload)
            .map_err(gql)
    }

    /// Logs a person in with an Official Account web-authorization `code` and the `state` from
    /// `officialAccountAuthorizeUrl` (no token needed). With `snsapi_userinfo` the profile and
    /// unionid are fetched and stored. Snapshot (virtual) users get WECHAT_SNAPSHOT_USER.
    async fn login_with_official_account(
        &self,
        ctx: &Context<'_>,
        input: LoginWithOfficialAccountInput,
    ) -> async_graphql::Result<AuthPayload> {
        let login = OfficialAccountLogin {
            app_id: input.app_id,
            code: input.code,
            state: input.state,
            code_verifier: input.code_verifier,
        };
        access::public(ctx)?
            .login_with_official_account(&login, &access::client_info(ctx))
            .await
            .map(AuthPayload)
            .map_err(gql)
    }

    /// Redeems the one-time `ticket` that the server-driven Official Account login
    /// (`/auth/official-account/{appId}/authorize`) put on the `returnTo` URL; valid once, for
    /// a short time. `codeVerifier` is required when the login was started with a
    /// `codeChallenge`.
    async fn redeem_login_ticket(
        &self,
        ctx: &Context<'_>,
        ticket: String,
        code_verifier: Option<String>,
    ) -> async_graphql::Result<AuthPayload> {
        access::public(ctx)?
            .redeem_login_ticket(&ticket, code_verifier.as_deref(), &access::client_info(ctx))
            .await
            .map(AuthPayload)
            .map_err(gql)
    }

    /// Merges user `sourceId` into `targetId` (admin): identities and sessions move, empty
    /// profile fields of the target are filled, the source becomes a tombstone with
    /// `mergedInto`. CONFLICT when their unionids differ or either is already merged.
    async fn merge_users(
        &self,
        ctx: &Context<'_>,
        source_id: ID,
        target_id: ID,
    ) -> async_graphql::Result<User> {
        let admin = access::admin(ctx)?;
        let source = user_id("sourceId", &source_id)?;
        let target = user_id("targetId", &target_id)?;
        let pair = MergePair {
            source: &source,
            target: &target,
        };
        let user = admin.merge_users(pair).await.map_err(gql)?;
        Ok(User(user))
    }

    /// Moves one identity (Mini Program or Official Account) to a new user of its own (admin);
    /// returns that user. The old user's refresh sessions are revoked, so both people log in
    /// again onto the right user (access tokens already issued run out within `expiresIn`).
    /// CONFLICT when the identity carries a unionid or is the user's only one.
    async fn unlink_identity(
        &self,
        ctx: &Context<'_>,
        identity_id: ID,
    ) -> async_graphql::Result<User> {
        let admin = access::admin(ctx)?;
        if uuid::Uuid::parse_str(&identity_id).is_err() {
            return Err(gql(ApiError::bad_input("identityId is not an identity id")));
        }
        let user = admin
            .unlink_identity(&IdentityId::new(identity_id.as_str()))
            .await
            .map_err(gql)?;
        Ok(User(user))
    }

    /// Exchanges a refresh token for new tokens; the old refresh token stops working. Presenting
    /// an already-used refresh token revokes that login everywhere.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        access::public(ctx)?
            .refresh_session(&refresh_token, &access::client_info(ctx))
            .await
            .map(AuthPayload)
            .map_err(gql)
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
            let ended = me.logout_everywhere().await.map_err(gql)?;
            return Ok(ended > 0);
        }
        let Some(refresh_token) = refresh_token.filter(|t| !t.is_empty() && t.len() <= 256) else {
            return Err(gql(ApiError::bad_input(
                "give refreshToken, or allSessions: true with an access token",
            )));
        };
        access::public(ctx)?
            .logout(&refresh_token)
            .await
            .map_err(gql)
    }
}
