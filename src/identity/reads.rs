//! Reads of the merged view, on the handles that may make them (see [`super::access`]).

use super::IdentityError;
use super::access::{Reader, Related, SelfUser};
use crate::auth::AuthError;
use crate::config::AppConfig;
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::UserRow;
use crate::db::models::user_list::{UserListFilter, UserWindow};
use crate::types::{UnionId, UserId};

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
}
