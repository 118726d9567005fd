//! GraphQL object types over the database rows.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, Interface, Object, SimpleObject};
use chrono::{DateTime, NaiveDateTime, Utc};

use super::error::{ApiError, ErrorCode, gql};
use super::loaders::{DbLoader, MiniProgramIdentitiesOf, OfficialAccountIdentitiesOf, UserById};
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::UserRow;
use crate::identity::values::LoginOutcome;
use crate::types::{UnionId, UserId};

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub(super) fn loader<'a>(ctx: &Context<'a>) -> &'a DataLoader<DbLoader> {
    ctx.data_unchecked::<DataLoader<DbLoader>>()
}

pub(super) fn load_failed(
    e: std::sync::Arc<crate::identity::IdentityError>,
) -> async_graphql::Error {
    match std::sync::Arc::try_unwrap(e) {
        Ok(e) => gql(e),
        Err(shared) => gql(ApiError::internal(&shared)),
    }
}

/// The user with this id, through the request's loader; None if there is none.
async fn load_user(ctx: &Context<'_>, id: &UserId) -> async_graphql::Result<Option<User>> {
    let user = loader(ctx).load_one(UserById(id.clone())).await;
    Ok(user.map_err(load_failed)?.map(User))
}

/// The user with this id (a relation of an object already shown), or NOT_FOUND saying whose
/// `what` is gone.
pub(super) async fn related_user(
    ctx: &Context<'_>,
    id: &UserId,
    what: &str,
) -> async_graphql::Result<User> {
    load_user(ctx, id).await?.ok_or_else(|| {
        gql(ApiError::new(
            ErrorCode::NotFound,
            format!("{what} is gone"),
        ))
    })
}

/// A person: one per human across every app of the open platform.
pub struct User(pub UserRow);

#[Object]
impl User {
    /// Our public, stable id.
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The WeChat unionid, once known.
    async fn unionid(&self) -> Option<&str> {
        self.0.unionid.as_ref().map(UnionId::as_str)
    }
    /// Display name.
    async fn nickname(&self) -> Option<&str> {
        self.0.nickname.as_deref()
    }
    /// Avatar URL.
    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }
    /// Phone number with country code, when the person shared it.
    async fn phone_number(&self) -> Option<&str> {
        self.0.phone_number.as_deref()
    }
    /// When the user was created.
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    /// When the user last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        utc(self.0.updated_at)
    }
    /// For a merged user (a tombstone): the user it was merged into. Null for live users.
    async fn merged_into(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match &self.0.merged_into {
            Some(id) => load_user(ctx, id).await,
            None => Ok(None),
        }
    }
    /// The user's identities in Mini Programs.
    async fn mini_program_identities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<MiniProgramIdentity>> {
        let rows = loader(ctx)
            .load_one(MiniProgramIdentitiesOf(self.0.id.clone()))
            .await
            .map_err(load_failed)?
            .unwrap_or_default();
        Ok(rows.into_iter().map(MiniProgramIdentity).collect())
    }
    /// The user's identities in Official Accounts.
    async fn official_account_identities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<OfficialAccountIdentity>> {
        let rows = loader(ctx)
            .load_one(OfficialAccountIdentitiesOf(self.0.id.clone()))
            .await
            .map_err(load_failed)?
            .unwrap_or_default();
        Ok(rows.into_iter().map(OfficialAccountIdentity).collect())
    }
}

/// A person in one WeChat app, of either kind. An interface rather than a union: both kinds share
/// their key (`appId`, `openid`), `unionid` and owner, which a client reads without a fragment;
/// a kind's own fields (`subscribed`, `scope`, …) take `... on OfficialAccountIdentity`.
// Each interface field repeats `ty = …`, which clippy takes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID", desc = "Row id."),
    field(name = "app_id", ty = "&str", desc = "The app's id."),
    field(
        name = "openid",
        ty = "&str",
        desc = "The person's openid in that app."
    ),
    field(
        name = "unionid",
        ty = "Option<&str>",
        desc = "The unionid WeChat reported for this identity."
    ),
    field(
        name = "user",
        ty = "User",
        desc = "The user this identity belongs to."
    ),
    field(name = "created_at", ty = "DateTime<Utc>", desc = "First sighting.")
)]
pub enum Identity {
    /// In a Mini Program.
    MiniProgram(MiniProgramIdentity),
    /// In an Official Account.
    OfficialAccount(OfficialAccountIdentity),
}

/// The `#[Object]` impl of an identity type, with the [`Identity`] interface's fields written
/// once: `id`, `appId`, `openid`, `unionid`, `user`, then the kind's own fields (`own`), then
/// `createdAt`, then `after`. `app` names the kind's app in the docs ("Mini Program").
macro_rules! identity_object {
    ($ty:ident, app = $app:tt, own = { $($own:tt)* }, after = { $($after:tt)* }) => {
        #[Object]
        impl $ty {
            /// Row id.
            pub(super) async fn id(&self) -> ID {
                ID(self.0.id.to_string())
            }
            #[doc = concat!("The ", $app, "'s app id.")]
            async fn app_id(&self) -> &str {
                self.0.app_id.as_str()
            }
            #[doc = concat!("The person's openid in that ", $app, ".")]
            async fn openid(&self) -> &str {
                self.0.openid.as_str()
            }
            /// The unionid WeChat reported for this identity.
            async fn unionid(&self) -> Option<&str> {
                self.0.unionid.as_ref().map(UnionId::as_str)
            }
            /// The user this identity belongs to.
            async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
                related_user(ctx, &self.0.user_id, "the identity's user").await
            }
            $($own)*
            /// First sighting.
            async fn created_at(&self) -> DateTime<Utc> {
                utc(self.0.created_at)
            }
            $($after)*
        }
    };
}

/// A person in one Mini Program.
pub struct MiniProgramIdentity(pub MiniProgramIdentityRow);

identity_object!(
    MiniProgramIdentity,
    app = "Mini Program",
    own = {},
    after = {
        /// Latest login.
        async fn last_login_at(&self) -> DateTime<Utc> {
            utc(self.0.last_login_at)
        }
    }
);

/// A person in one Official Account.
pub struct OfficialAccountIdentity(pub OfficialAccountIdentityRow);

identity_object!(
    OfficialAccountIdentity,
    app = "Official Account",
    own = {
        /// The latest web-authorization scope (`snsapi_base` or `snsapi_userinfo`).
        async fn scope(&self) -> Option<&str> {
            self.0.scope.as_deref()
        }
        /// Whether the person follows the account.
        async fn subscribed(&self) -> bool {
            self.0.subscribed
        }
        /// When they followed.
        async fn subscribed_at(&self) -> Option<DateTime<Utc>> {
            self.0.subscribed_at.map(utc)
        }
        /// Nickname from WeChat.
        async fn nickname(&self) -> Option<&str> {
            self.0.nickname.as_deref()
        }
        /// Avatar from WeChat.
        async fn avatar_url(&self) -> Option<&str> {
            self.0.avatar_url.as_deref()
        }
        /// Sex as WeChat reports it (0 unknown, 1 male, 2 female).
        async fn sex(&self) -> Option<i32> {
            self.0.sex
        }
        /// Province.
        async fn province(&self) -> Option<&str> {
            self.0.province.as_deref()
        }
        /// City.
        async fn city(&self) -> Option<&str> {
            self.0.city.as_deref()
        }
        /// Country.
        async fn country(&self) -> Option<&str> {
            self.0.country.as_deref()
        }
    },
    after = {
        /// Latest login, if the person ever logged in here.
        async fn last_login_at(&self) -> Option<DateTime<Utc>> {
            self.0.last_login_at.map(utc)
        }
    }
);

/// The kind of a WeChat app.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "WeChatAppKind")]
pub enum WeChatAppKind {
    /// 小程序.
    MiniProgram,
    /// 公众号.
    OfficialAccount,
}

/// A WeChat app this service logs people into.
#[derive(SimpleObject)]
#[graphql(name = "WeChatApp")]
pub struct WeChatApp {
    /// WeChat's app id.
    pub app_id: String,
    /// Mini Program or Official Account.
    pub kind: WeChatAppKind,
    /// Display name.
    pub name: String,
    /// Whether the app is bound to the open platform (WeChat sends unionids).
    pub open_platform: bool,
}

/// Tokens and the user after a login or refresh.
pub struct AuthPayload(pub LoginOutcome);

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
}

/// The two web-authorization scopes of an Official Account.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum OfficialAccountScope {
    /// Silent: the openid only (`snsapi_base`).
    #[default]
    SnsapiBase,
    /// With the person's consent: profile and unionid (`snsapi_userinfo`).
    SnsapiUserinfo,
}

impl From<OfficialAccountScope> for crate::wechat::official_account::OauthScope {
    fn from(s: OfficialAccountScope) -> Self {
        match s {
            OfficialAccountScope::SnsapiBase => Self::Base,
            OfficialAccountScope::SnsapiUserinfo => Self::UserInfo,
        }
    }
}

/// `loginWithOfficialAccount` input.
#[derive(InputObject)]
pub struct LoginWithOfficialAccountInput {
    /// The Official Account's app id.
    pub app_id: String,
    /// The `code` WeChat appended to the redirect URI.
    pub code: String,
    /// The `state` WeChat passed back (from `officialAccountAuthorizeUrl`).
    pub state: String,
    /// The verifier whose base64url(SHA-256) was the `codeChallenge` of
    /// `officialAccountAuthorizeUrl`; required when one was given.
    pub code_verifier: Option<String>,
}
