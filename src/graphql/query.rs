//! Query root. Every field gets its handle from the request's access first.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use super::access;
use super::error::{ApiError, gql};
use super::merge_event::MergeEvent;
use super::paging::Page;
use super::types::{OfficialAccountScope, User, UserFilter, WeChatApp, WeChatAppKind};
use crate::db::models::user::UserListFilter;
use crate::types::{AppKind, UnionId, UserId};

/// The query root.
pub struct Query;

/// A user id from the API: a UUID, or BAD_USER_INPUT naming the argument.
pub(super) fn user_id(name: &str, id: &str) -> async_graphql::Result<UserId> {
    uuid::Uuid::parse_str(id)
        .map(|_| UserId::new(id))
        .map_err(|_| gql(ApiError::bad_input(format!("{name} is not a user id"))))
}

#[Object(name = "CoreQuery")]
impl Query {
    /// The calling user (user access token). A token issued before a merge resolves to the
    /// surviving user.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let me = access::self_user(ctx)?;
        Ok(User(me.live_user().await.map_err(gql)?))
    }

    /// A user by id (admin/service keys; a user may ask for itself). A merged id answers the
    /// tombstone, whose `mergedInto` names the survivor. Null if there is no such user.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let id = user_id("id", &id)?;
        let user = access::access(ctx).user(&id).await.map_err(gql)?;
        Ok(user.map(User))
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
        let user = reader
            .user_by_unionid(&UnionId::new(unionid))
            .await
            .map_err(gql)?;
        Ok(user.map(User))
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
            identity_on: Vec::new(),
            include_merged: filter.include_merged,
            has_unionid: filter.has_unionid,
        };
        let after = page.after.clone().map(UserId::new);
        let rows = reader
            .users(after.as_ref(), page.limit(), &filter)
            .await
            .map_err(gql)?;
        Ok(page.connection(rows, |u| u.id.as_str(), User))
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
        access::public(ctx)?
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
        let user_id = match &user_id {
            Some(id) => Some(self::user_id("userId", id)?),
            None => None,
        };
        let page = Page::parse("merge", first, after.as_deref())?;
        let rows = admin
            .merge_events(user_id.as_ref(), page.after.as_deref(), page.limit())
            .await
            .map_err(gql)?;
        Ok(page.connection(rows, |e| e.id.as_str(), MergeEvent))
    }

    /// The WeChat apps this service logs people into (admin/service keys).
    async fn apps(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WeChatApp>> {
        let reader = access::reader(ctx)?;
        Ok(reader
            .apps()
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
