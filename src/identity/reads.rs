//! Reads of the merged view, on the handles that may make them (see [`super::access`]).

use super::IdentityError;
use super::access::{Reader, Related, SelfUser};
use crate::auth::AuthError;
use crate::config::AppConfig;
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::{UserListFilter, UserRow};
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

    /// Up to `limit` users after the id `after`, in creation order.
    pub async fn users(
        &self,
        after: Option<&UserId>,
        limit: i64,
        filter: &UserListFilter,
    ) -> Result<Vec<UserRow>, IdentityError> {
        Ok(UserRow::page(&mut self.db.conn().await?, after, limit, filter).await?)
    }

    /// The configured apps.
    pub fn apps(&self) -> &[AppConfig] {
        &self.config().apps
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

    /// The Mini Program identities of these users.
    pub async fn mini_program_identities(
        &self,
        ids: &[UserId],
    ) -> Result<Vec<MiniProgramIdentityRow>, IdentityError> {
        Ok(MiniProgramIdentityRow::for_users(&mut self.db.conn().await?, ids).await?)
    }

    /// The Official Account identities of these users.
    pub async fn official_account_identities(
        &self,
        ids: &[UserId],
    ) -> Result<Vec<OfficialAccountIdentityRow>, IdentityError> {
        Ok(OfficialAccountIdentityRow::for_users(&mut self.db.conn().await?, ids).await?)
    }

    /// The kind of the configured app `app_id` (None: no such app).
    pub fn app_kind(&self, app_id: &str) -> Option<AppKind> {
        self.config().app(app_id).map(|a| a.kind)
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
}
