//! What the login mutations take and give: their inputs, the Official Account's scopes, the
//! start of a frontend-driven Official Account login, and `AuthPayload`.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::access;
use super::error::gql;
use super::types::{OfficialAccountScope, User};
use crate::identity::values::LoginOutcome;

/// A login's or refresh's outcome, shown as `AuthPayload`.
pub struct AuthPayload(pub LoginOutcome);

/// Tokens and the user after a login or refresh.
#[Object]
impl AuthPayload {
    /// The access JWT: `Authorization: Bearer <accessToken>`.
    async fn access_token(&self) -> &str {
        &self.0.tokens.access_token
    }
    /// Always `Bearer`.
    async fn token_type(&self) -> &str {
        "Bearer"
    }
    /// Seconds until the access token expires.
    async fn expires_in(&self) -> u64 {
        self.0.tokens.expires_in
    }
    /// The refresh token, for `refreshSession` (rotated on every use).
    async fn refresh_token(&self) -> &str {
        &self.0.tokens.refresh_token
    }
    /// Seconds until the refresh token expires.
    async fn refresh_expires_in(&self) -> u64 {
        self.0.tokens.refresh_expires_in
    }
    /// The logged-in user.
    async fn user(&self) -> User {
        User(self.0.user.clone())
    }
    /// Whether this login created the user.
    async fn new_user(&self) -> bool {
        self.0.new_user
    }
}

/// `loginWithMiniProgram` input.
#[derive(InputObject)]
pub struct LoginWithMiniProgramInput {
    /// The Mini Program's app id.
    pub app_id: String,
    /// The code from `wx.login()`.
    pub code: String,
    /// Optional `encryptedData` (user info or phone number) from the same session.
    pub encrypted_data: Option<String>,
    /// The iv that came with `encryptedData`.
    pub iv: Option<String>,
    /// Optional `code` from the phone button (`<button open-type="getPhoneNumber">`): the
    /// login also stores the person's number, verified (see `linkPhoneNumber`).
    pub phone_code: Option<String>,
}

/// `startOfficialAccountLogin` input.
#[derive(InputObject)]
pub struct StartOfficialAccountLoginInput {
    /// The Official Account's app id.
    pub app_id: String,
    /// Where WeChat sends the person back (with `code` and `state`): an absolute http(s) URL
    /// without a fragment, at most 1024 characters, on a domain configured for the Official
    /// Account in WeChat.
    pub redirect_uri: String,
    /// The scope to ask for.
    #[graphql(default)]
    pub scope: OfficialAccountScope,
    /// Recommended: base64url(SHA-256(verifier)), 43 characters, for a random verifier the page
    /// keeps (sessionStorage); `loginWithOfficialAccount` then needs the verifier, so a
    /// finished redirect handed to someone else's browser logs nobody in.
    pub code_challenge: Option<String>,
}

/// Where to send the person to log in with the Official Account.
#[derive(SimpleObject)]
pub struct StartOfficialAccountLoginPayload {
    /// WeChat's authorize URL, with a signed, single-use `state`; the page navigates there.
    pub authorize_url: String,
    /// When the `state` expires (`official_account_login.state_ttl_secs` after it was issued, 10
    /// minutes by default): the person must come back and log in before then.
    pub expires_at: DateTime<Utc>,
}

/// `loginWithOfficialAccount` input.
#[derive(InputObject)]
pub struct LoginWithOfficialAccountInput {
    /// The Official Account's app id.
    pub app_id: String,
    /// The `code` WeChat appended to the redirect URI.
    pub code: String,
    /// The `state` WeChat passed back (from `startOfficialAccountLogin`).
    pub state: String,
    /// The verifier whose base64url(SHA-256) was the `codeChallenge` given to
    /// `startOfficialAccountLogin`; required when one was given.
    pub code_verifier: Option<String>,
}

/// Starts a frontend-driven Official Account login (`startOfficialAccountLogin`, and the
/// deprecated `officialAccountAuthorizeUrl`): one handle method, one limit.
pub(super) async fn start(
    ctx: &Context<'_>,
    input: StartOfficialAccountLoginInput,
) -> async_graphql::Result<StartOfficialAccountLoginPayload> {
    let start = access::public(ctx)?
        .official_account_authorize_url(
            &input.app_id,
            &input.redirect_uri,
            input.scope.into(),
            input.code_challenge.as_deref(),
            &access::client_info(ctx),
        )
        .await
        .map_err(gql)?;
    Ok(StartOfficialAccountLoginPayload {
        authorize_url: start.url,
        expires_at: start.expires_at.and_utc(),
    })
}

/// A login with a code and the state this service issued: an Official Account's web
/// authorization, or a website's embedded QR code (`kind`).
pub(super) async fn state_login(
    ctx: &Context<'_>,
    kind: crate::types::AppKind,
    login: crate::identity::login::official_account::OfficialAccountLogin,
) -> async_graphql::Result<Option<AuthPayload>> {
    access::public(ctx)?
        .login_with_state(kind, &login, &access::client_info(ctx))
        .await
        .map(|o| Some(AuthPayload(o)))
        .map_err(gql)
}
