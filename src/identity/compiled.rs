//! The compiled read path's reads: the users of the hot reads as the JSON the database builds
//! (`db::models::user_json`), on the same handles and with the same access decisions as the
//! rows of `reads.rs` — a caller that may not read a user gets the same error either way.

use std::collections::HashMap;

use super::IdentityError;
use super::access::{Access, ReadScope, Reader, Related, SelfUser};
use crate::auth::{AuthError, Caller};
use crate::db::models::user::UserRow;
use crate::db::models::user_json::{UserJson, UserShape};
use crate::db::models::user_list::{PageRow, UserListFilter, UserWindow};
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

impl Access {
    /// [`Access::nodes`] as `shape`'s JSON when every id is a user's (None otherwise: the
    /// caller reads them as rows): anything for admin/service keys; for a user token only
    /// itself and users merged into it — any other id is FORBIDDEN.
    pub async fn nodes_json(
        &self,
        ids: &[String],
        shape: &UserShape,
    ) -> Result<Option<Vec<String>>, IdentityError> {
        let me = match self.caller()? {
            Caller::User { .. } => Some(self.self_user()?.live_user().await?.id),
            _ => {
                self.reader()?;
                None
            }
        };
        let asked: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut conn = self.identity.db.conn().await?;
        let found = shape.many_by_id(&mut conn, &asked).await?;
        let found: HashMap<&str, &UserJson> = found.iter().map(|u| (u.asked.as_str(), u)).collect();
        let Some(users) = asked
            .iter()
            .map(|id| found.get(id).copied())
            .collect::<Option<Vec<&UserJson>>>()
        else {
            return Ok(None);
        };
        if let Some(me) = me {
            let mine = |u: &&UserJson| u.id == me || u.merged_into.as_ref() == Some(&me);
            if !users.iter().all(mine) {
                return Err(
                    AuthError::Forbidden("a user may only read itself and its identities").into(),
                );
            }
        }
        Ok(Some(users.into_iter().map(|u| u.json.clone()).collect()))
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

    /// [`Reader::users`] as `shape`'s JSON (and `also`'s, when the page shows its users
    /// twice, differently): `(id, created_at, json, also)` per user.
    pub async fn users_json(
        &self,
        filter: &UserListFilter,
        window: &UserWindow,
        shape: &UserShape,
        also: Option<&UserShape>,
    ) -> Result<Vec<PageRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(UserRow::list_json(&mut conn, filter, window, shape, also).await?)
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
