//! Query root. Every field gets its handle from the request's access first.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use super::access;
use super::error::{ApiError, gql};
use super::merge_event::MergeEvent;
use super::node::{self, Node};
use super::paging::{Page, PageArgs};
use super::types::{OfficialAccountScope, User, WeChatApp, WeChatAppKind};
use super::users::{self, UserCount, UserFilter, UserOrderBy};
use crate::types::{AppKind, MergeEventId, UnionId, UserId};

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

    /// Users a page at a time, filtered and ordered (admin/service keys): `first`/`after` pages
    /// forward, `last`/`before` backward; cursors carry the order's key, so paging continues
    /// where it was as users are added. Live users only unless `filter.includeMerged`.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::paging::page_weight(first.or(last)) * child_complexity + 1")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1-100 (default 20; not with `last`).")]
        first: Option<i32>,
        #[graphql(desc = "An `endCursor`: the page starts after it.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1-100 (not with `first`).")] last: Option<i32>,
        #[graphql(desc = "A `startCursor`: the page ends before it.")] before: Option<String>,
        filter: Option<UserFilter>,
        #[graphql(default)] order_by: UserOrderBy,
    ) -> async_graphql::Result<Connection<String, User, UserCount>> {
        let args = PageArgs {
            first,
            after: after.as_deref(),
            last,
            before: before.as_deref(),
        };
        users::users(ctx, args, filter, order_by).await
    }

    /// An object by id (Relay): a user or an identity. Admin/service keys: any; a user token:
    /// itself and its identities. Null if there is none.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let mut found = node::nodes(ctx, std::slice::from_ref(&id)).await?;
        Ok(found.pop().flatten())
    }

    /// Objects by id (Relay), in the order asked, null where there is none; at most 100 ids.
    /// Access as for `node`.
    #[graphql(complexity = "ids.len() * child_complexity + 1")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        node::nodes(ctx, &ids).await
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
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
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
            .merge_events(
                user_id.as_ref(),
                page.after.as_deref().map(MergeEventId::new).as_ref(),
                page.limit(),
            )
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
