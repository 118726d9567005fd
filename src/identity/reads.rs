//! Reads of the merged view. Private to the identity layer: callers reach them through the
//! handles of [`super::access`], which decide who may read what.

use super::{Identity, IdentityError};
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::{UserListFilter, UserRow};
use crate::types::{UnionId, UserId};

impl Identity {
    /// The user with this id, tombstone or live.
    pub(super) async fn user(&self, id: &UserId) -> Result<Option<UserRow>, IdentityError> {
        Ok(UserRow::find(&mut self.db.conn().await?, id).await?)
    }

    /// The live user behind this id (the survivor of a tombstone).
    pub(super) async fn live_user(&self, id: &UserId) -> Result<Option<UserRow>, IdentityError> {
        Ok(UserRow::find_live(&mut self.db.conn().await?, id).await?)
    }

    /// The live user holding this unionid.
    pub(super) async fn user_by_unionid(
        &self,
        unionid: &UnionId,
    ) -> Result<Option<UserRow>, IdentityError> {
        Ok(UserRow::find_live_by_unionid(&mut self.db.conn().await?, unionid).await?)
    }

    /// Up to `limit` users after the id `after`, in creation order.
    pub(super) async fn users(
        &self,
        after: Option<&UserId>,
        limit: i64,
        filter: &UserListFilter,
    ) -> Result<Vec<UserRow>, IdentityError> {
        Ok(UserRow::page(&mut self.db.conn().await?, after, limit, filter).await?)
    }

    /// Several users by id (batched reads of relations).
    pub(super) async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<UserRow>, IdentityError> {
        Ok(UserRow::find_many(&mut self.db.conn().await?, ids).await?)
    }

    /// The Mini Program identities of these users.
    pub(super) async fn mini_program_identities_of(
        &self,
        ids: &[UserId],
    ) -> Result<Vec<MiniProgramIdentityRow>, IdentityError> {
        Ok(MiniProgramIdentityRow::for_users(&mut self.db.conn().await?, ids).await?)
    }

    /// The Official Account identities of these users.
    pub(super) async fn official_account_identities_of(
        &self,
        ids: &[UserId],
    ) -> Result<Vec<OfficialAccountIdentityRow>, IdentityError> {
        Ok(OfficialAccountIdentityRow::for_users(&mut self.db.conn().await?, ids).await?)
    }
}
