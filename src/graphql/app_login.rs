//! Websites (QR-code login) and mobile apps (WeChat SDK login) in the schema: their logins,
//! their identity types and the user's lists of them.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::access;
use super::error::gql;
use super::loaders::{MobileAppIdentitiesOf, WebsiteIdentitiesOf};
use super::login::AuthPayload;
use super::types::{User, identity_object, load_failed, loader, related_user, utc};
use crate::db::models::app_login_identity::{MobileAppIdentityRow, WebsiteIdentityRow};
use crate::identity::login::official_account::OfficialAccountLogin;
use crate::types::{UnionId, UserId};

/// A website identity row, shown as `WebsiteIdentity`.
pub struct WebsiteIdentity(pub WebsiteIdentityRow);

/// A mobile-app identity row, shown as `MobileAppIdentity`.
pub struct MobileAppIdentity(pub MobileAppIdentityRow);

/// The fields a login identity adds to the interface's (both kinds have the same).
macro_rules! app_login_fields {
    ($(#[doc = $doc:literal])* $ty:ident, app = $app:tt) => {
        identity_object!(
            $(#[doc = $doc])*
            $ty,
            app = $app,
            own = {
                /// Nickname from WeChat's profile at the latest login that had a real one.
                async fn nickname(&self) -> Option<&str> {
                    self.0.nickname.as_deref()
                }
                /// Avatar URL from WeChat's profile at the latest login that had a real one.
                async fn avatar_url(&self) -> Option<&str> {
                    self.0.avatar_url.as_deref()
                }
            },
            after = {
                /// Latest login.
                async fn last_login_at(&self) -> DateTime<Utc> {
                    utc(self.0.last_login_at)
                }
            }
        );
    };
}

app_login_fields!(
    /// A person in one website app (网站应用), seen when they logged in by scanning its QR code
    /// with WeChat.
    WebsiteIdentity,
    app = "website app"
);

app_login_fields!(
    /// A person in one mobile app (移动应用), seen when they logged in through the WeChat SDK.
    MobileAppIdentity,
    app = "mobile app"
);

/// The website identities of user `id`, through the request's loader.
pub(super) async fn website_identities(
    ctx: &Context<'_>,
    id: &UserId,
) -> async_graphql::Result<Vec<WebsiteIdentity>> {
    let rows = loader(ctx)
        .load_one(WebsiteIdentitiesOf(id.clone()))
        .await
        .map_err(load_failed)?
        .unwrap_or_default();
    Ok(rows.into_iter().map(WebsiteIdentity).collect())
}

/// The mobile-app identities of user `id`, through the request's loader.
pub(super) async fn mobile_app_identities(
    ctx: &Context<'_>,
    id: &UserId,
) -> async_graphql::Result<Vec<MobileAppIdentity>> {
    let rows = loader(ctx)
        .load_one(MobileAppIdentitiesOf(id.clone()))
        .await
        .map_err(load_failed)?
        .unwrap_or_default();
    Ok(rows.into_iter().map(MobileAppIdentity).collect())
}

/// `startWebsiteLogin` input.
#[derive(InputObject)]
pub struct StartWebsiteLoginInput {
    /// The website app's id.
    pub app_id: String,
    /// Where WeChat sends the browser back (with `code` and `state`) once the person scanned
    /// the QR code: under one of `official_account_login.return_to`, on the domain registered
    /// for the website app in WeChat.
    pub redirect_uri: String,
    /// Recommended: base64url(SHA-256(verifier)), 43 characters; `loginWithWebsite` then needs
    /// the verifier.
    pub code_challenge: Option<String>,
}

/// What `wxLogin.js` takes to draw the QR code inside the page:
/// `new WxLogin({id, appid: appId, scope, redirect_uri: encodeURIComponent(redirectUri), state})`.
#[derive(SimpleObject)]
pub struct StartWebsiteLoginPayload {
    /// The website app's id (`appid`).
    pub app_id: String,
    /// Always `snsapi_login`.
    pub scope: String,
    /// Where WeChat sends the browser back (`redirect_uri`).
    pub redirect_uri: String,
    /// The signed, single-use state (`state`).
    pub state: String,
    /// When the state expires (`official_account_login.state_ttl_secs` after it was issued).
    pub expires_at: DateTime<Utc>,
}

/// `loginWithWebsite` input.
#[derive(InputObject)]
pub struct LoginWithWebsiteInput {
    /// The website app's id.
    pub app_id: String,
    /// The `code` WeChat appended to the redirect URI.
    pub code: String,
    /// The `state` WeChat passed back (from `startWebsiteLogin`).
    pub state: String,
    /// The verifier of the `codeChallenge` given to `startWebsiteLogin`; required when one was.
    pub code_verifier: Option<String>,
}

/// `loginWithMobileApp` input.
#[derive(InputObject)]
pub struct LoginWithMobileAppInput {
    /// The mobile app's id.
    pub app_id: String,
    /// The `code` the WeChat SDK's `SendAuth` (scope `snsapi_userinfo`) gave the app.
    pub code: String,
}

/// The website and mobile-app logins.
pub struct AppLoginMutation;

#[Object]
impl AppLoginMutation {
    /// Embedded website QR-code login, step 1: a signed, single-use `state` and what
    /// `wxLogin.js` takes to draw the QR code in the page. The person scans it with WeChat; the
    /// browser goes to `redirectUri` with `code` and `state`; pass both to `loginWithWebsite`.
    /// (Or let this service drive it: `/auth/website/{appId}/authorize`.) A mutation because it
    /// stores the state. At most `limits.states_per_request` per request, and rate-limited per
    /// address and app (`rate_limits.authorize`).
    /// Anyone.
    async fn start_website_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The website app, where to come back, and the code challenge.")]
        input: StartWebsiteLoginInput,
    ) -> async_graphql::Result<Option<StartWebsiteLoginPayload>> {
        let start = access::public(ctx)?
            .start_website_login(
                &input.app_id,
                &input.redirect_uri,
                input.code_challenge.as_deref(),
                &access::client_info(ctx),
            )
            .await
            .map_err(gql)?;
        Ok(Some(StartWebsiteLoginPayload {
            app_id: start.app_id,
            scope: start.scope.as_str().to_owned(),
            redirect_uri: start.redirect_uri,
            state: start.state,
            expires_at: utc(start.expires_at),
        }))
    }

    /// Logs a person in with the `code` the website's QR code sent the browser back with, and
    /// the `state` from `startWebsiteLogin`. The profile and unionid come from WeChat, so the
    /// person is the same user as in the company's Mini Programs and Official Accounts. At most
    /// `limits.logins_per_request` login mutations per request.
    /// Anyone.
    async fn login_with_website(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The code and state WeChat sent back, and the verifier.")]
        input: LoginWithWebsiteInput,
    ) -> async_graphql::Result<Option<AuthPayload>> {
        let login = OfficialAccountLogin {
            app_id: input.app_id,
            code: input.code,
            state: input.state,
            code_verifier: input.code_verifier,
        };
        super::login::state_login(ctx, crate::types::AppKind::Website, login).await
    }

    /// Logs a person into a mobile app with the `code` the WeChat SDK's `SendAuth` gave it. The
    /// profile and unionid come from WeChat, so the person is the same user as in the company's
    /// other apps. At most `limits.logins_per_request` login mutations per request.
    /// Anyone.
    async fn login_with_mobile_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mobile app and the SDK's code.")] input: LoginWithMobileAppInput,
    ) -> async_graphql::Result<Option<AuthPayload>> {
        access::public(ctx)?
            .login_with_mobile_app(&input.app_id, &input.code, &access::client_info(ctx))
            .await
            .map(|o| Some(AuthPayload(o)))
            .map_err(gql)
    }
}
