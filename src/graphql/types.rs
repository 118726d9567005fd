//! GraphQL object types over the database rows.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, Interface, Object, SimpleObject};
use chrono::{DateTime, NaiveDateTime, Utc};

use super::error::{ApiError, ErrorCode, gql};
use super::loaders::{DbLoader, MiniProgramIdentitiesOf, OfficialAccountIdentitiesOf, UserById};
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::UserRow;
use crate::types::{UnionId, UserId};
use crate::wechat::official_account::OauthScope;

/// A stored time (UTC) as the API shows it.
pub(super) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
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

/// A user row, shown as `User`.
pub struct User(pub UserRow);

/// A person: one per human across every app of the open platform, with an identity in each
/// app they used. Two users found to be one person are merged: the other becomes a tombstone
/// (`mergedInto`).
#[Object]
impl User {
    /// Our public, stable id.
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The WeChat unionid, once known (null until a login, follower sync or webhook event on
    /// an app bound to the open platform reports it).
    async fn unionid(&self) -> Option<&str> {
        self.0.unionid.as_ref().map(UnionId::as_str)
    }
    /// Display name: what the person set (`updateMyProfile`), else the first WeChat profile
    /// that had one; null if none did. WeChat's placeholder "微信用户" is never one.
    async fn nickname(&self) -> Option<&str> {
        self.0.nickname.as_deref()
    }
    /// Avatar URL: what the person set (`updateMyProfile`), else the first WeChat profile that
    /// had one; null if none did. WeChat's grey placeholder is never one.
    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }
    /// Phone number in E.164 (`+8613800138000`), once the person shared it in a Mini Program.
    async fn phone_number(&self) -> Option<&str> {
        self.0.phone_number.as_deref()
    }
    /// When WeChat last vouched for `phoneNumber` (the phone button); null if it never did.
    async fn phone_number_verified_at(&self) -> Option<DateTime<Utc>> {
        self.0.phone_number_verified_at.map(utc)
    }
    /// When an admin disabled the user (`disableUser`): its logins, refreshes and messages are
    /// refused with USER_DISABLED. Null if enabled.
    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at.map(utc)
    }
    /// Why the user was disabled (the admin's words); null if enabled.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// When the user was erased (`deleteUser`): a tombstone with no personal data. Null for
    /// users that were not.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at.map(utc)
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
    /// The user's identities in website apps (QR-code logins).
    async fn website_identities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::app_login::WebsiteIdentity>> {
        super::app_login::website_identities(ctx, &self.0.id).await
    }
    /// The user's identities in mobile apps (WeChat SDK logins).
    async fn mobile_app_identities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::app_login::MobileAppIdentity>> {
        super::app_login::mobile_app_identities(ctx, &self.0.id).await
    }
    /// The user's live logins (neither ended nor expired), most recently used first: at most
    /// `first` (1-100, default 20). The user itself (its own login marked `current`), or an
    /// admin key; a service key is FORBIDDEN.
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many logins: 1-100 (default 20).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<super::sessions::UserSession>> {
        super::sessions::sessions(ctx, &self.0.id, first).await
    }
}

/// A person in one WeChat app, of any kind. An interface rather than a union: the kinds share
/// their key (`appId`, `openid`), `unionid` and owner, which a client reads without a fragment;
/// a kind's own fields (`subscribed`, `scope`, …) take `... on OfficialAccountIdentity`.
/// (`WeChatIdentity` in the schema: other subgraphs may well have an `Identity` of their own.)
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
        desc = "The unionid WeChat reported for this identity; null if it never did."
    ),
    field(
        name = "user",
        ty = "User",
        desc = "The user this identity belongs to."
    ),
    field(name = "created_at", ty = "DateTime<Utc>", desc = "First sighting.")
)]
#[graphql(name = "WeChatIdentity")]
pub enum Identity {
    /// In a Mini Program.
    MiniProgram(MiniProgramIdentity),
    /// In an Official Account.
    OfficialAccount(OfficialAccountIdentity),
    /// In a website app.
    Website(super::app_login::WebsiteIdentity),
    /// In a mobile app.
    MobileApp(super::app_login::MobileAppIdentity),
}

/// The `#[Object]` impl of an identity type (its docs, the type's description, first), with the
/// [`Identity`] interface's fields written once: `id`, `appId`, `openid`, `unionid`, `user`,
/// then the kind's own fields (`own`), then `createdAt`, then `after`. `app` names the kind's
/// app in the docs ("Mini Program").
macro_rules! identity_object {
    ($(#[doc = $doc:literal])* $ty:ident, app = $app:tt, own = { $($own:tt)* }, after = { $($after:tt)* }) => {
        $(#[doc = $doc])*
        #[Object]
        impl $ty {
            /// Row id.
            pub(super) async fn id(&self) -> ID {
                ID(self.0.id.to_string())
            }
            #[doc = concat!("The ", $app, "'s app id.")]
            pub(super) async fn app_id(&self) -> &str {
                self.0.app_id.as_str()
            }
            #[doc = concat!("The person's openid in that ", $app, ".")]
            pub(super) async fn openid(&self) -> &str {
                self.0.openid.as_str()
            }
            /// The unionid WeChat reported for this identity; null if it never did.
            pub(super) async fn unionid(&self) -> Option<&str> {
                self.0.unionid.as_ref().map(UnionId::as_str)
            }
            /// The user this identity belongs to.
            pub(super) async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
                related_user(ctx, &self.0.user_id, "the identity's user").await
            }
            $($own)*
            /// First sighting.
            pub(super) async fn created_at(&self) -> DateTime<Utc> {
                utc(self.0.created_at)
            }
            $($after)*
        }
    };
}

pub(super) use identity_object;

/// A Mini Program identity row, shown as `MiniProgramIdentity`.
pub struct MiniProgramIdentity(pub MiniProgramIdentityRow);

identity_object!(
    /// A person in one Mini Program (小程序), seen at a login.
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

/// An Official Account identity row, shown as `OfficialAccountIdentity`.
pub struct OfficialAccountIdentity(pub OfficialAccountIdentityRow);

identity_object!(
    /// A person in one Official Account (公众号), seen at a web-authorization login, a follower
    /// sync or a webhook event.
    OfficialAccountIdentity,
    app = "Official Account",
    own = {
        /// The scope of the person's latest web-authorization login; null if they never
        /// logged in here (seen by a follower sync or the webhook only).
        async fn scope(&self) -> async_graphql::Result<Option<OfficialAccountScope>> {
            let Some(stored) = self.0.scope.as_deref() else {
                return Ok(None);
            };
            match OauthScope::parse(stored).and_then(OfficialAccountScope::of) {
                Some(scope) => Ok(Some(scope)),
                None => Err(gql(ApiError::internal(&format!(
                    "identity {} has an unknown scope `{stored}`",
                    self.0.id
                )))),
            }
        }
        /// Whether the person follows the account, as last seen by a login, a follower sync or
        /// the webhook.
        async fn subscribed(&self) -> bool {
            self.0.subscribed
        }
        /// When they followed, as WeChat last reported it; null if it never did.
        async fn subscribed_at(&self) -> Option<DateTime<Utc>> {
            self.0.subscribed_at.map(utc)
        }
        /// Nickname from WeChat's profile (`snsapi_userinfo` logins); null if never given.
        async fn nickname(&self) -> Option<&str> {
            self.0.nickname.as_deref()
        }
        /// Avatar URL from WeChat's profile (`snsapi_userinfo` logins); null if never given.
        async fn avatar_url(&self) -> Option<&str> {
            self.0.avatar_url.as_deref()
        }
        /// Sex as WeChat reported it before it stopped (0 unknown, 1 male, 2 female).
        #[graphql(deprecation = "WeChat stopped returning it: 2021-10-24 for web authorization, 2021-12-27 for `user/info`.")]
        async fn sex(&self) -> Option<i32> {
            self.0.sex
        }
        /// Province, as WeChat reported it before it stopped.
        #[graphql(deprecation = "WeChat stopped returning it: 2021-10-24 for web authorization, 2021-12-27 for `user/info`.")]
        async fn province(&self) -> Option<&str> {
            self.0.province.as_deref()
        }
        /// City, as WeChat reported it before it stopped.
        #[graphql(deprecation = "WeChat stopped returning it: 2021-10-24 for web authorization, 2021-12-27 for `user/info`.")]
        async fn city(&self) -> Option<&str> {
            self.0.city.as_deref()
        }
        /// Country, as WeChat reported it before it stopped.
        #[graphql(deprecation = "WeChat stopped returning it: 2021-10-24 for web authorization, 2021-12-27 for `user/info`.")]
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
pub enum WeChatAppKind {
    /// A Mini Program (小程序).
    MiniProgram,
    /// An Official Account (公众号).
    OfficialAccount,
    /// A website app (网站应用): people log in by scanning a QR code with WeChat.
    Website,
    /// A mobile app (移动应用): people log in through the WeChat SDK.
    MobileApp,
}

impl From<crate::types::AppKind> for WeChatAppKind {
    fn from(kind: crate::types::AppKind) -> Self {
        use crate::types::AppKind;
        match kind {
            AppKind::MiniProgram => Self::MiniProgram,
            AppKind::OfficialAccount => Self::OfficialAccount,
            AppKind::Website => Self::Website,
            AppKind::MobileApp => Self::MobileApp,
        }
    }
}

/// A WeChat app this service logs people into.
#[derive(SimpleObject)]
pub struct WeChatApp {
    /// WeChat's app id.
    pub app_id: String,
    /// Mini Program, Official Account, website or mobile app.
    pub kind: WeChatAppKind,
    /// Its name in this service's configuration.
    pub name: String,
    /// Whether the app is bound to the open platform (WeChat sends unionids).
    pub open_platform: bool,
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

impl From<OfficialAccountScope> for OauthScope {
    fn from(s: OfficialAccountScope) -> Self {
        match s {
            OfficialAccountScope::SnsapiBase => Self::Base,
            OfficialAccountScope::SnsapiUserinfo => Self::UserInfo,
        }
    }
}

impl OfficialAccountScope {
    /// An Official Account's scope (None for a website's `snsapi_login`).
    fn of(s: OauthScope) -> Option<Self> {
        match s {
            OauthScope::Base => Some(Self::SnsapiBase),
            OauthScope::UserInfo => Some(Self::SnsapiUserinfo),
            OauthScope::Login => None,
        }
    }
}
