//! Websites (QR-code login) and mobile apps (WeChat SDK login) in the schema: their identity
//! types and the user's lists of them.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::loaders::{MobileAppIdentitiesOf, WebsiteIdentitiesOf};
use super::types::{User, identity_object, load_failed, loader, related_user};
use crate::db::models::app_login_identity::{MobileAppIdentityRow, WebsiteIdentityRow};
use crate::types::{UnionId, UserId};

fn utc(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

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
