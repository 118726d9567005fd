//! Reads of the merged view, on the handles that may make them (see [`super::access`]).

use super::IdentityError;
use super::access::{Reader, Related, SelfUser};
use super::values::{recall, remember};
use crate::auth::AuthError;
use crate::config::AppConfig;
use crate::db::models::app_login_identity::{MobileAppIdentityRow, WebsiteIdentityRow};
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::UserRow;
use crate::db::models::user_list::{UserListFilter, UserWindow};
use crate::types::{AppId, AppKind, OpenId, UnionId, UserId};

impl Reader<'_> {
    /// The user with this id, tombstone or live.
    pub async fn user(&self, id: &UserId) -> Result<Option<UserRow>, IdentityError> {
        Ok(UserRow::find(&mut self.db.conn().await?, id).await?)
    }

    /// The live user holding this unionid.
    pub async fn user_by_unionid(
        &self,
        unionid: &UnionId,
    ) -> Result<Option<UserRow>, IdentityError> {
        Ok(UserRow::find_live_by_unionid(&mut self.db.conn().await?, unionid).await?)
    }

    /// The users of `filter` in `window` (a page of the dashboards' listing).
    pub async fn users(
        &self,
        filter: &UserListFilter,
        window: &UserWindow,
    ) -> Result<Vec<UserRow>, IdentityError> {
        Ok(UserRow::list(&mut self.db.conn().await?, filter, window).await?)
    }

    /// How many users `filter` takes.
    pub async fn count_users(&self, filter: &UserListFilter) -> Result<i64, IdentityError> {
        Ok(UserRow::count(&mut self.db.conn().await?, filter).await?)
    }

    /// The configured apps.
    pub fn apps(&self) -> &[AppConfig] {
        &self.config.apps
    }
}

impl SelfUser<'_> {
    /// The live user behind the token (the survivor, if the token's user was merged).
    pub async fn live_user(&self) -> Result<UserRow, IdentityError> {
        UserRow::find_live(&mut self.db.conn().await?, self.user_id)
            .await?
            .ok_or_else(|| AuthError::Unauthenticated("the token's user no longer exists").into())
    }
}

impl Related {
    /// Several users by id.
    pub async fn users(&self, ids: &[UserId]) -> Result<Vec<UserRow>, IdentityError> {
        Ok(UserRow::find_many(&mut self.db.conn().await?, ids).await?)
    }

    /// Reads the identities of the `kinds` of a page of users now, one statement per kind, so
    /// that the batched reads of the page's users take them from memory, however they are
    /// batched.
    pub async fn prefetch_identities(
        &self,
        ids: &[UserId],
        kinds: &[AppKind],
    ) -> Result<(), IdentityError> {
        if ids.is_empty() || kinds.is_empty() {
            return Ok(());
        }
        let mut conn = self.db.conn().await?;
        let memo = &self.1;
        for kind in kinds {
            match kind {
                AppKind::MiniProgram => {
                    let rows = MiniProgramIdentityRow::for_users(&mut conn, ids).await?;
                    remember(&memo.mini_program, ids, rows, |r| &r.user_id);
                }
                AppKind::OfficialAccount => {
                    let rows = OfficialAccountIdentityRow::for_users(&mut conn, ids).await?;
                    remember(&memo.official_account, ids, rows, |r| &r.user_id);
                }
                AppKind::Website => {
                    let rows = WebsiteIdentityRow::for_users(&mut conn, ids).await?;
                    remember(&memo.website, ids, rows, |r| &r.user_id);
                }
                AppKind::MobileApp => {
                    let rows = MobileAppIdentityRow::for_users(&mut conn, ids).await?;
                    remember(&memo.mobile_app, ids, rows, |r| &r.user_id);
                }
            }
        }
        Ok(())
    }

    /// The kind of the configured app `app_id` (None: no such app).
    pub fn app_kind(&self, app_id: &str) -> Option<AppKind> {
        self.config.app(app_id).map(|a| a.kind)
    }

    /// The Mini Program identities among `app_ids` × `openids` (see
    /// [`MiniProgramIdentityRow::for_keys`]).
    pub async fn mini_program_identities_by_key(
        &self,
        app_ids: &[AppId],
        openids: &[OpenId],
    ) -> Result<Vec<MiniProgramIdentityRow>, IdentityError> {
        Ok(MiniProgramIdentityRow::for_keys(&mut self.db.conn().await?, app_ids, openids).await?)
    }

    /// The Official Account identities among `app_ids` × `openids`.
    pub async fn official_account_identities_by_key(
        &self,
        app_ids: &[AppId],
        openids: &[OpenId],
    ) -> Result<Vec<OfficialAccountIdentityRow>, IdentityError> {
        Ok(
            OfficialAccountIdentityRow::for_keys(&mut self.db.conn().await?, app_ids, openids)
                .await?,
        )
    }

    /// The website identities among `app_ids` × `openids`.
    pub async fn website_identities_by_key(
        &self,
        app_ids: &[AppId],
        openids: &[OpenId],
    ) -> Result<Vec<WebsiteIdentityRow>, IdentityError> {
        Ok(WebsiteIdentityRow::for_keys(&mut self.db.conn().await?, app_ids, openids).await?)
    }

    /// The mobile-app identities among `app_ids` × `openids`.
    pub async fn mobile_app_identities_by_key(
        &self,
        app_ids: &[AppId],
        openids: &[OpenId],
    ) -> Result<Vec<MobileAppIdentityRow>, IdentityError> {
        Ok(MobileAppIdentityRow::for_keys(&mut self.db.conn().await?, app_ids, openids).await?)
    }
}

/// `Related`'s read of one kind's identities of some users: what was prefetched, and the rest
/// from the database.
macro_rules! identities_of {
    ($($(#[$doc:meta])* $name:ident: $row:ident => $memo:ident;)+) => {
        impl Related {$(
            $(#[$doc])*
            pub async fn $name(&self, ids: &[UserId]) -> Result<Vec<$row>, IdentityError> {
                let (mut rows, missing) = recall(&self.1.$memo, ids);
                if !missing.is_empty() {
                    let conn = &mut self.db.conn().await?;
                    rows.extend($row::for_users(conn, &missing).await?);
                }
                Ok(rows)
            }
        )+}
    };
}

identities_of! {
    /// The Mini Program identities of these users.
    mini_program_identities: MiniProgramIdentityRow => mini_program;
    /// The Official Account identities of these users.
    official_account_identities: OfficialAccountIdentityRow => official_account;
    /// The website identities of these users.
    website_identities: WebsiteIdentityRow => website;
    /// The mobile-app identities of these users.
    mobile_app_identities: MobileAppIdentityRow => mobile_app;
}
