//! Query root.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use super::access::{self, Reader};
use super::error::{ApiError, gql};
use super::merge_event::MergeEvent;
use super::paging::Page;
use super::types::{OfficialAccountScope, User, UserFilter, WeChatApp, WeChatAppKind};
use crate::auth::{AuthError, Caller};
use crate::db::models::user::{UserListFilter, UserRow};
use crate::types::AppKind;

/// The query root.
pub struct Query;

fn check_user_id(id: &str) -> async_graphql::Result<()> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| gql(ApiError::bad_input("id is not a user id")))
}

impl Reader<'_> {
    async fn user(&self, id: &str) -> async_graphql::Result<Option<UserRow>> {
        let mut conn = self.identity.db.conn().await.map_err(gql)?;
        UserRow::find(&mut conn, id).await.map_err(gql)
    }

    async fn user_by_unionid(&self, unionid: &str) -> async_graphql::Result<Option<UserRow>> {
        let mut conn = self.identity.db.conn().await.map_err(gql)?;
        UserRow::find_live_by_unionid(&mut conn, unionid)
            .await
            .map_err(gql)
    }

    async fn users(
        &self,
        after: Option<&str>,
        limit: i64,
        filter: &UserListFilter,
    ) -> async_graphql::Result<Vec<UserRow>> {
        let mut conn = self.identity.db.conn().await.map_err(gql)?;
        UserRow::page(&mut conn, after, limit, filter)
            .await
            .map_err(gql)
    }
}

#[Object]
impl Query {
    /// The calling user (user access token). A token issued before a merge resolves to the
    /// surviving user.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let me = access::self_user(ctx)?;
        Ok(User(me.live_user().await?))
    }

    /// A user by id (admin/service keys; a user may ask for itself). A merged id answers the
    /// tombstone, whose `mergedInto` names the survivor. Null if there is no such user.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        check_user_id(&id)?;
        if let Caller::User { .. } = access::caller(ctx)? {
            let me = access::self_user(ctx)?.live_user().await?;
            let mut conn = access::identity(ctx).db.conn().await.map_err(gql)?;
            let asked = UserRow::find(&mut conn, &id).await.map_err(gql)?;
            return match asked {
                Some(u) if u.id == me.id || u.merged_into.as_deref() == Some(me.id.as_str()) => {
                    Ok(Some(User(u)))
                }
                _ => Err(gql(AuthError::Forbidden("a user may only read itself"))),
            };
        }
        let reader = access::reader(ctx)?;
        Ok(reader.user(&id).await?.map(User))
    }

    /// The live user holding this unionid (admin/service keys). Null if none.
    async fn user_by_unionid(
        &self,
        ctx: &Context<'_>,
        unionid: String,
    ) -> async_graphql::Result<Option<User>> {
        let reader = access::reader(ctx)?;
        if unionid.is_empty() || unionid.len() > 64 {
            return Err(gql(ApiError::bad_input("unionid must be 1-64 characters")));
        }
        Ok(reader.user_by_unionid(&unionid).await?.map(User))
    }

    /// Users in creation order, a page at a time (admin/service keys). Live users only unless
    /// `filter.includeMerged`.
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        filter: Option<UserFilter>,
    ) -> async_graphql::Result<Connection<String, User>> {
        let reader = access::reader(ctx)?;
        let page = Page::parse("user", first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = UserListFilter {
            include_merged: filter.include_merged,
            has_unionid: filter.has_unionid,
        };
        let rows = reader
            .users(page.after.as_deref(), page.limit(), &filter)
            .await?;
        Ok(page.connection(rows, |u| &u.id, User))
    }

    /// Frontend-driven Official Account login, step 1 (no token needed): the WeChat authorize
    /// URL to send the person to, with a signed, single-use `state` that expires (10 minutes by
    /// default). WeChat comes back to `redirectUri` with `code` and `state`; pass both to
    /// `loginWithOfficialAccount`. `redirectUri` must be on a domain configured for the Official
    /// Account in WeChat. Recommended: keep a random verifier in the page's sessionStorage and pass
    /// `codeChallenge` = base64url(SHA-256(verifier)); the login then needs the verifier, so a
    /// finished redirect handed to someone else's browser logs nobody in.
    async fn official_account_authorize_url(
        &self,
        ctx: &Context<'_>,
        app_id: String,
        redirect_uri: String,
        #[graphql(default)] scope: OfficialAccountScope,
        code_challenge: Option<String>,
    ) -> async_graphql::Result<String> {
        access::identity(ctx)
            .official_account_authorize_url(
                &app_id,
                &redirect_uri,
                scope.into(),
                code_challenge.as_deref(),
                &access::client_info(ctx),
            )
            .await
            .map_err(gql)
    }

    /// Merges and unlinks, oldest first, a page at a time (admin keys): who (`actor`), when and
    /// why; only those involving `userId` when given.
    async fn merge_events(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, MergeEvent>> {
        let admin = access::admin(ctx)?;
        if let Some(id) = &user_id {
            check_user_id(id)?;
        }
        let page = Page::parse("merge", first, after.as_deref())?;
        let rows = admin
            .identity
            .merge_events(
                user_id.as_ref().map(|id| id.as_str()),
                page.after.as_deref(),
                page.limit(),
            )
            .await
            .map_err(gql)?;
        Ok(page.connection(rows, |e| &e.id, MergeEvent))
    }

    /// The WeChat apps this service logs people into (admin/service keys).
    async fn apps(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WeChatApp>> {
        let reader = access::reader(ctx)?;
        Ok(reader
            .identity
            .config
            .apps
            .iter()
            .map(|a| WeChatApp {
                app_id: a.app_id.to_string(),
                kind: match a.kind {
                    AppKind::MiniProgram => WeChatAppKind::MiniProgram,
                    AppKind::OfficialAccount => WeChatAppKind::OfficialAccount,
                },
                name: a.name.clone(),
                open_platform: a.open_platform,
            })
            .collect())
    }
}
