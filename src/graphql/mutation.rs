//! Mutation root.

use async_graphql::{Context, ID, Object};

use super::access;
use super::error::{ApiError, gql};
use super::login::{
    self, AuthPayload, LoginWithMiniProgramInput, LoginWithOfficialAccountInput,
    StartOfficialAccountLoginInput, StartOfficialAccountLoginPayload,
};
use super::query::user_id;
use super::types::User;
use crate::identity::login::mini_program::MiniProgramLogin;
use crate::identity::login::official_account::OfficialAccountLogin;
use crate::identity::rules::MergePair;
use crate::types::IdentityId;

/// The mutation root.
pub struct Mutation;

#[Object(name = "CoreMutation")]
impl Mutation {
    /// Logs a person in with a Mini Program `wx.login()` code. With `phoneCode` (the phone
    /// button's code) the login also stores the person's number, verified; WeChat charges for
    /// that exchange, so a code sent again by the same person is not exchanged twice (see
    /// `linkPhoneNumber`). Optional `encryptedData` + `iv` from the same session fill the profile
    /// (user info, or a phone number the legacy way). At most `limits.logins_per_request` login
    /// mutations, and one phone exchange, per request.
    /// Anyone.
    async fn login_with_mini_program(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The code, and optionally what the session shared.")]
        input: LoginWithMiniProgramInput,
    ) -> async_graphql::Result<Option<AuthPayload>> {
        let login = MiniProgramLogin {
            app_id: input.app_id,
            code: input.code,
            encrypted_data: input.encrypted_data,
            iv: input.iv,
            phone_code: input.phone_code,
        };
        access::public(ctx)?
            .login_with_mini_program(&login, &access::client_info(ctx))
            .await
            .map(|o| Some(AuthPayload(o)))
            .map_err(gql)
    }

    /// Frontend-driven Official Account login, step 1: the WeChat authorize URL to send the
    /// person to, with a signed, single-use `state` that expires (`expiresAt`). WeChat comes
    /// back to `redirectUri` with `code` and `state`; pass both to `loginWithOfficialAccount`.
    /// A mutation because it stores the state: a client must not cache or repeat it. At most
    /// `limits.states_per_request` per request, and rate-limited per address and app
    /// (`rate_limits.authorize`).
    /// Anyone.
    async fn start_official_account_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The app, where to come back, the scope and the code challenge.")]
        input: StartOfficialAccountLoginInput,
    ) -> async_graphql::Result<Option<StartOfficialAccountLoginPayload>> {
        login::start(ctx, input).await.map(Some)
    }

    /// Logs a person in with an Official Account web-authorization `code` and the `state` from
    /// `startOfficialAccountLogin`. With `snsapi_userinfo` the profile and unionid are fetched
    /// and stored. Snapshot (virtual) users get WECHAT_SNAPSHOT_USER. At most
    /// `limits.logins_per_request` login mutations per request.
    /// Anyone.
    async fn login_with_official_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The code and state WeChat sent back, and the verifier.")]
        input: LoginWithOfficialAccountInput,
    ) -> async_graphql::Result<Option<AuthPayload>> {
        let login = OfficialAccountLogin {
            app_id: input.app_id,
            code: input.code,
            state: input.state,
            code_verifier: input.code_verifier,
        };
        login::state_login(ctx, crate::types::AppKind::OfficialAccount, login).await
    }

    /// Redeems the one-time `ticket` that the server-driven Official Account login
    /// (`/auth/official-account/{appId}/authorize`) put on the `returnTo` URL; valid once, for
    /// `official_account_login.ticket_ttl_secs` (2 minutes by default). At most
    /// `limits.logins_per_request` login mutations per request.
    /// Anyone.
    async fn redeem_login_ticket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `ticket` from the `returnTo` URL.")] ticket: String,
        #[graphql(
            desc = "The verifier of the `codeChallenge` the login was started with; required when it was."
        )]
        code_verifier: Option<String>,
    ) -> async_graphql::Result<Option<AuthPayload>> {
        access::public(ctx)?
            .redeem_login_ticket(&ticket, code_verifier.as_deref(), &access::client_info(ctx))
            .await
            .map(|o| Some(AuthPayload(o)))
            .map_err(gql)
    }

    /// Merges user `sourceId` into `targetId`: identities and sessions move, empty profile
    /// fields of the target are filled, the source becomes a tombstone with `mergedInto`.
    /// Returns the target. CONFLICT when their unionids differ or either is already merged.
    /// Admin.
    async fn merge_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user that becomes a tombstone.")] source_id: ID,
        #[graphql(desc = "The user that remains.")] target_id: ID,
    ) -> async_graphql::Result<Option<User>> {
        let admin = access::admin(ctx)?;
        let source = user_id("sourceId", &source_id)?;
        let target = user_id("targetId", &target_id)?;
        let pair = MergePair {
            source: &source,
            target: &target,
        };
        let user = admin.merge_users(pair).await.map_err(gql)?;
        Ok(Some(User(user)))
    }

    /// Moves one identity (Mini Program or Official Account) to a new user of its own; returns
    /// that user. The old user's refresh sessions are revoked, so both people log in again
    /// onto the right user (access tokens already issued run out within `expiresIn`).
    /// CONFLICT when the identity carries a unionid or is the user's only one.
    /// Admin.
    async fn unlink_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The identity's id (`id` of a `WeChatIdentity`).")] identity_id: ID,
    ) -> async_graphql::Result<Option<User>> {
        let admin = access::admin(ctx)?;
        if uuid::Uuid::parse_str(&identity_id).is_err() {
            return Err(gql(ApiError::bad_input("identityId is not an identity id")));
        }
        let user = admin
            .unlink_identity(&IdentityId::new(identity_id.as_str()))
            .await
            .map_err(gql)?;
        Ok(Some(User(user)))
    }

    /// Exchanges a refresh token for new tokens; the old refresh token stops working. Presenting
    /// an already-used refresh token revokes that login everywhere. At most
    /// `limits.logins_per_request` login mutations per request.
    /// Anyone.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The latest refresh token of the login.")] refresh_token: String,
    ) -> async_graphql::Result<Option<AuthPayload>> {
        access::public(ctx)?
            .refresh_session(&refresh_token, &access::client_info(ctx))
            .await
            .map(|o| Some(AuthPayload(o)))
            .map_err(gql)
    }

    /// Ends a login: the one `refreshToken` belongs to, or with `allSessions: true` every login
    /// of the calling user. Its refresh tokens stop working at once, its access tokens within
    /// `jwt.revocation_check_secs` (5 s by default) on every instance. Returns whether an
    /// active session was ended.
    /// One per request with `logout`, `endSession`, `revokeSessions` and `rotateSigningKey`
    /// (aliases count).
    /// Anyone; with `allSessions`, the user itself.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token of the login to end (at most 256 characters).")]
        refresh_token: Option<String>,
        #[graphql(
            default,
            desc = "End every login of the calling user instead (needs its access token)."
        )]
        all_sessions: bool,
    ) -> async_graphql::Result<Option<bool>> {
        if all_sessions {
            let me = access::self_user(ctx)?;
            let ended = me.logout_everywhere().await.map_err(gql)?;
            return Ok(Some(ended > 0));
        }
        let Some(refresh_token) = refresh_token.filter(|t| !t.is_empty() && t.len() <= 256) else {
            return Err(gql(ApiError::bad_input(
                "give refreshToken, or allSessions: true with an access token",
            )));
        };
        access::public(ctx)?
            .logout(&refresh_token)
            .await
            .map(Some)
            .map_err(gql)
    }
}
