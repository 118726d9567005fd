//! Federation v2 and lookups by key. `User` is an entity keyed by `id`, the identity types
//! (`MiniProgramIdentity`, `OfficialAccountIdentity`, `WebsiteIdentity`, `MobileAppIdentity`)
//! by `appId openid`, so another team's subgraph can add fields to
//! them and reference them through a gateway (`_entities`, `_service { sdl }`: async-graphql's
//! federation support, with the entity resolvers below). `usersByIds` and `wechatIdentity` are
//! the same lookups for callers without a gateway.
//!
//! Every lookup here is batched through the request's DataLoader (a whole `_entities` list or
//! `usersByIds` is one query per kind, plus one for the survivors of merged ids), checked against
//! the caller's [`ReadScope`] like every read (`user(id)` too), and resolves a merged user's id
//! to the live survivor.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, ID, Object};
use async_graphql_value::{ConstValue, Value};
use futures_util::future::try_join_all;

use super::access;
use super::app_login::{MobileAppIdentity, WebsiteIdentity};
use super::compiled::{self, Compiled};
use super::error::{ApiError, gql};
use super::loaders::{
    DbLoader, MiniProgramIdentityByKey, MobileAppIdentityByKey, OfficialAccountIdentityByKey,
    UserById, WebsiteIdentityByKey,
};
use super::query::user_id;
use super::types::{
    Identity, MiniProgramIdentity, OfficialAccountIdentity, User, load_failed, loader,
};
use crate::db::models::user_json::UserJson;
use crate::identity::IdentityError;
use crate::identity::access::ReadScope;
use crate::identity::compiled::check;
use crate::types::{AppId, AppKind, OpenId, UserId};

/// At most this many ids in one `usersByIds`, representations in one `_entities`.
pub const MAX_KEYS: usize = 100;

/// Longest app id or openid looked up (WeChat's are 18 and 28 characters).
const MAX_KEY_LEN: usize = 64;

/// Lookups by key: the federation entity resolvers, `usersByIds` and `wechatIdentity`.
pub struct FederationQuery;

#[Object]
impl FederationQuery {
    /// Users by id, in the order asked. A merged id answers its live survivor; an unknown id
    /// answers null.
    /// Admin or service, or the user itself.
    #[graphql(complexity = "ids.len() * child_complexity + 1")]
    async fn users_by_ids(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ids, at most 100.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Option<Compiled<Vec<Option<User>>>>> {
        if ids.len() > MAX_KEYS {
            return Err(too_many("usersByIds takes", "ids", ids.len()));
        }
        let ids = ids
            .iter()
            .enumerate()
            .map(|(i, id)| user_id(&format!("ids[{i}]"), id))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let scope = read_scope(ctx).await?;
        if let Some(shape) = compiled::user_shape(ctx) {
            let related = access::access(ctx).related();
            let found = related.users_json(&ids, &shape).await.map_err(gql)?;
            let found: HashMap<&str, &UserJson> =
                found.iter().map(|u| (u.asked.as_str(), u)).collect();
            let mut json = String::from("[");
            for (i, id) in ids.iter().enumerate() {
                let user = found.get(id.as_str()).copied();
                check(&scope, user).map_err(gql)?;
                if i > 0 {
                    json.push(',');
                }
                json.push_str(user.map_or("null", |u| u.json.as_str()));
            }
            json.push(']');
            return Ok(Some(Compiled::Json(json)));
        }
        try_join_all(ids.into_iter().map(|id| live_user(ctx, &scope, id)))
            .await
            .map(|users| Some(Compiled::Resolved(users)))
    }

    /// The identity with this key in any configured app. Null if there is none.
    /// Admin or service, or the user itself (its own identities).
    async fn wechat_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The app's id, 1-64 characters.")] app_id: String,
        #[graphql(desc = "The person's openid in that app, 1-64 characters.")] openid: String,
    ) -> async_graphql::Result<Option<Identity>> {
        let (app, openid) = identity_key(&app_id, &openid)?;
        let scope = read_scope(ctx).await?;
        match access::access(ctx).related().app_kind(app.as_str()) {
            Some(AppKind::MiniProgram) => {
                let key = MiniProgramIdentityByKey(app, openid);
                identity_by_key(
                    ctx,
                    &scope,
                    key,
                    |r| &r.user_id,
                    |r| Identity::MiniProgram(MiniProgramIdentity(r)),
                )
                .await
            }
            Some(AppKind::OfficialAccount) => {
                let key = OfficialAccountIdentityByKey(app, openid);
                identity_by_key(
                    ctx,
                    &scope,
                    key,
                    |r| &r.user_id,
                    |r| Identity::OfficialAccount(OfficialAccountIdentity(r)),
                )
                .await
            }
            Some(AppKind::Website) => {
                let key = WebsiteIdentityByKey(app, openid);
                let wrap = |r| Identity::Website(WebsiteIdentity(r));
                identity_by_key(ctx, &scope, key, |r| &r.user_id, wrap).await
            }
            Some(AppKind::MobileApp) => {
                let key = MobileAppIdentityByKey(app, openid);
                let wrap = |r| Identity::MobileApp(MobileAppIdentity(r));
                identity_by_key(ctx, &scope, key, |r| &r.user_id, wrap).await
            }
            None => Err(gql(ApiError::bad_input(format!(
                "appId `{}` is not an app of this service",
                app.as_str()
            )))),
        }
    }

    /// Federation: a `User` representation (`{__typename: "User", id}`).
    #[graphql(entity)]
    async fn find_user_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Compiled<User>>> {
        check_representations(ctx)?;
        let id = user_id("id", &id)?;
        let scope = read_scope(ctx).await?;
        if let Some(shape) = compiled::user_shape(ctx) {
            let users = compiled::entities(ctx, &shape).await?;
            let user = users.get(id.as_str());
            check(&scope, user).map_err(gql)?;
            return Ok(user.map(|u| Compiled::Json(u.json.clone())));
        }
        let user = live_user(ctx, &scope, id).await?;
        Ok(user.map(Compiled::Resolved))
    }

    /// Federation: a `MiniProgramIdentity` representation (`appId`, `openid`).
    #[graphql(entity)]
    async fn find_mini_program_identity(
        &self,
        ctx: &Context<'_>,
        app_id: String,
        openid: String,
    ) -> async_graphql::Result<Option<MiniProgramIdentity>> {
        check_representations(ctx)?;
        let (app, openid) = identity_key(&app_id, &openid)?;
        let scope = read_scope(ctx).await?;
        let key = MiniProgramIdentityByKey(app, openid);
        identity_by_key(ctx, &scope, key, |r| &r.user_id, MiniProgramIdentity).await
    }

    /// Federation: an `OfficialAccountIdentity` representation (`appId`, `openid`).
    #[graphql(entity)]
    async fn find_official_account_identity(
        &self,
        ctx: &Context<'_>,
        app_id: String,
        openid: String,
    ) -> async_graphql::Result<Option<OfficialAccountIdentity>> {
        check_representations(ctx)?;
        let (app, openid) = identity_key(&app_id, &openid)?;
        let scope = read_scope(ctx).await?;
        let key = OfficialAccountIdentityByKey(app, openid);
        identity_by_key(ctx, &scope, key, |r| &r.user_id, OfficialAccountIdentity).await
    }

    /// Federation: a `WebsiteIdentity` representation (`appId`, `openid`).
    #[graphql(entity)]
    async fn find_website_identity(
        &self,
        ctx: &Context<'_>,
        app_id: String,
        openid: String,
    ) -> async_graphql::Result<Option<WebsiteIdentity>> {
        check_representations(ctx)?;
        let (app, openid) = identity_key(&app_id, &openid)?;
        let scope = read_scope(ctx).await?;
        let key = WebsiteIdentityByKey(app, openid);
        identity_by_key(ctx, &scope, key, |r| &r.user_id, WebsiteIdentity).await
    }

    /// Federation: a `MobileAppIdentity` representation (`appId`, `openid`).
    #[graphql(entity)]
    async fn find_mobile_app_identity(
        &self,
        ctx: &Context<'_>,
        app_id: String,
        openid: String,
    ) -> async_graphql::Result<Option<MobileAppIdentity>> {
        check_representations(ctx)?;
        let (app, openid) = identity_key(&app_id, &openid)?;
        let scope = read_scope(ctx).await?;
        let key = MobileAppIdentityByKey(app, openid);
        identity_by_key(ctx, &scope, key, |r| &r.user_id, MobileAppIdentity).await
    }
}

fn too_many(what: &str, items: &str, found: usize) -> async_graphql::Error {
    gql(ApiError::bad_input(format!(
        "{what} at most {MAX_KEYS} {items} per request; this one has {found}: send them a page \
         at a time"
    )))
}

/// The caller's read scope (read once per request), or UNAUTHENTICATED before anything is read.
async fn read_scope(ctx: &Context<'_>) -> async_graphql::Result<ReadScope> {
    access::access(ctx).read_scope().await.map_err(gql)
}

/// An identity key from the API, bounded, or BAD_USER_INPUT naming the argument.
fn identity_key(app_id: &str, openid: &str) -> async_graphql::Result<(AppId, OpenId)> {
    for (name, value) in [("appId", app_id), ("openid", openid)] {
        if value.is_empty() || value.len() > MAX_KEY_LEN {
            return Err(gql(ApiError::bad_input(format!(
                "{name} must be 1-{MAX_KEY_LEN} characters"
            ))));
        }
    }
    Ok((AppId::new(app_id), OpenId::new(openid)))
}

/// `_entities` takes at most [`MAX_KEYS`] representations. Counted on the field's argument
/// (literal or variable) without parsing it again, so each entity's check costs O(1).
fn check_representations(ctx: &Context<'_>) -> async_graphql::Result<()> {
    let count = match ctx
        .item
        .node
        .get_argument("representations")
        .map(|v| &v.node)
    {
        Some(Value::List(items)) => items.len(),
        Some(Value::Variable(name)) => match ctx.query_env.variables.get(name) {
            Some(ConstValue::List(items)) => items.len(),
            _ => 0,
        },
        _ => 0,
    };
    match count > MAX_KEYS {
        true => Err(too_many("_entities takes", "representations", count)),
        false => Ok(()),
    }
}

/// The live user behind `id` (its survivor if merged), if `scope` may read it; None if there is
/// no such user (FORBIDDEN for a user token: it learns nothing about other ids).
async fn live_user(
    ctx: &Context<'_>,
    scope: &ReadScope,
    id: UserId,
) -> async_graphql::Result<Option<User>> {
    let load = |id| async move {
        loader(ctx)
            .load_one(UserById(id))
            .await
            .map_err(load_failed)
    };
    let user = match load(id).await? {
        Some(row) => match row.merged_into.clone() {
            Some(survivor) => load(survivor).await?,
            None => Some(row),
        },
        None => None,
    };
    scope
        .check(user.as_ref().map(|u| u.live_id()))
        .map_err(gql)?;
    Ok(user.map(User))
}

/// The identity with `key` (one of the `…ByKey` loader keys), if `scope` may read its user.
async fn identity_by_key<K, R, T>(
    ctx: &Context<'_>,
    scope: &ReadScope,
    key: K,
    owner: fn(&R) -> &UserId,
    wrap: fn(R) -> T,
) -> async_graphql::Result<Option<T>>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    R: Send + Sync + Clone + 'static,
    DbLoader: Loader<K, Value = R, Error = Arc<IdentityError>>,
{
    let row = loader(ctx).load_one(key).await.map_err(load_failed)?;
    scope.check(row.as_ref().map(owner)).map_err(gql)?;
    Ok(row.map(wrap))
}
