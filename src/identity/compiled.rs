//! The compiled read path's reads: the users of the hot reads as the JSON the database builds
//! (`db::models::user_json`), on the same handles and with the same access decisions as the
//! rows of `reads.rs` — a caller that may not read a user gets the same error either way.

use chrono::NaiveDateTime;

use super::IdentityError;
use super::access::{Access, ReadScope, Reader, Related, SelfUser};
use crate::auth::AuthError;
use crate::db::models::user::UserRow;
use crate::db::models::user_json::{UserJson, UserShape};
use crate::db::models::user_list::{UserListFilter, UserWindow};
use crate::types::{UnionId, UserId};

impl Access {
    /// [`Access::user`] as `shape`'s JSON: any user for admin/service keys (a merged id answers
    /// the tombstone); for a user token only itself or a tombstone merged into it.
    pub async fn user_json(
        &self,
        id: &UserId,
        shape: &UserShape,
    ) -> Result<Option<String>, IdentityError> {
        let scope = self.read_scope().await?;
        let user = shape.by_id(&mut self.identity.db.conn().await?, id).await?;
        scope.check(user.as_ref().map(UserJson::live_id))?;
        Ok(user.map(|u| u.json))
    }
}

impl Reader<'_> {
    /// [`Reader::user_by_unionid`] as `shape`'s JSON.
    pub async fn user_by_unionid_json(
        &self,
        unionid: &UnionId,
        shape: &UserShape,
    ) -> Result<Option<String>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(shape
            .live_by_unionid(&mut conn, unionid)
            .await?
            .map(|u| u.json))
    }

    /// [`Reader::users`] as `shape`'s JSON: `(id, created_at, json)` per user.
    pub async fn users_json(
        &self,
        filter: &UserListFilter,
        window: &UserWindow,
        shape: &UserShape,
    ) -> Result<Vec<(UserId, NaiveDateTime, String)>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(UserRow::list_json(&mut conn, filter, window, shape).await?)
    }
}

impl SelfUser<'_> {
    /// [`SelfUser::live_user`] as `shape`'s JSON.
    pub async fn live_user_json(&self, shape: &UserShape) -> Result<String, IdentityError> {
        let mut conn = self.db.conn().await?;
        let ids = std::slice::from_ref(self.user_id);
        match shape.following_merges(&mut conn, ids).await?.pop() {
            Some(user) => Ok(user.json),
            None => Err(AuthError::Unauthenticated("the token's user no longer exists").into()),
        }
    }
}

impl Related {
    /// The live users behind `ids` as `shape`'s JSON (a merged id: the user it was merged
    /// into), in no particular order; `asked` names the id each answers. Whether the caller
    /// may see each is for the caller's [`ReadScope`] to say, on [`UserJson::live_id`].
    pub async fn users_json(
        &self,
        ids: &[UserId],
        shape: &UserShape,
    ) -> Result<Vec<UserJson>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(shape.following_merges(&mut conn, ids).await?)
    }
}

/// Whether `scope` may see the live user `user` stands for (`None`: nothing was found), as
/// [`ReadScope::check`] decides for rows.
pub fn check(scope: &ReadScope, user: Option<&UserJson>) -> Result<(), IdentityError> {
    scope.check(user.map(UserJson::live_id))
}
