//! Query root. Every field gets its handle from the request's access first.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use super::access;
use super::compiled::{self, Compiled};
use super::error::{ApiError, gql};
use super::login::{self, StartOfficialAccountLoginInput};
use super::merge_event::MergeEvent;
use super::node::{self, Node};
use super::paging::{Page, PageArgs};
use super::types::OfficialAccountScope;
use super::types::{User, WeChatApp, WeChatAppKind};
use super::users::{self, UserCount, UserFilter, UserOrderBy};
use crate::types::{MergeEventId, UnionId, UserId};

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
    /// The calling user. A token issued before a merge resolves to the surviving user.
    /// The user itself.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Compiled<User>>> {
        let me = access::self_user(ctx)?;
        if let Some(shape) = compiled::user_shape(ctx) {
            let json = me.live_user_json(&shape).await.map_err(gql)?;
            return Ok(Some(Compiled::Json(json)));
        }
        Ok(Some(Compiled::Resolved(User(
            me.live_user().await.map_err(gql)?,
        ))))
    }

    /// A user by id. A merged id answers the tombstone, whose `mergedInto` names the survivor.
    /// Null if there is no such user.
    /// Admin or service, or the user itself.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
    ) -> async_graphql::Result<Option<Compiled<User>>> {
        let id = user_id("id", &id)?;
        let access = access::access(ctx);
        if let Some(shape) = compiled::user_shape(ctx) {
            let json = access.user_json(&id, &shape).await.map_err(gql)?;
            return Ok(json.map(Compiled::Json));
        }
        let user = access.user(&id).await.map_err(gql)?;
        Ok(user.map(|u| Compiled::Resolved(User(u))))
    }

    /// The live user holding this unionid. Null if none.
    /// Admin or service.
    async fn user_by_unionid(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The unionid, 1-64 characters.")] unionid: String,
    ) -> async_graphql::Result<Option<Compiled<User>>> {
        let reader = access::reader(ctx)?;
        if unionid.is_empty() || unionid.len() > 64 {
            return Err(gql(ApiError::bad_input("unionid must be 1-64 characters")));
        }
        let unionid = UnionId::new(unionid);
        if let Some(shape) = compiled::user_shape(ctx) {
            let json = reader.user_by_unionid_json(&unionid, &shape).await;
            return Ok(json.map_err(gql)?.map(Compiled::Json));
        }
        let user = reader.user_by_unionid(&unionid).await.map_err(gql)?;
        Ok(user.map(|u| Compiled::Resolved(User(u))))
    }

    /// Users a page of 1-100 at a time (default 20), filtered and ordered: `first`/`after`
    /// pages forward, `last`/`before` backward; cursors carry the order's key, so paging
    /// continues where it was as users are added. Live users only unless
    /// `filter.includeMerged`.
    /// Admin or service.
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
        #[graphql(desc = "Which users; all conditions given must hold.")] filter: Option<
            UserFilter,
        >,
        #[graphql(default, desc = "The order.")] order_by: UserOrderBy,
    ) -> async_graphql::Result<Option<Compiled<Connection<String, User, UserCount>>>> {
        let args = PageArgs {
            first,
            after: after.as_deref(),
            last,
            before: before.as_deref(),
        };
        users::users(ctx, args, filter, order_by).await.map(Some)
    }

    /// An object by id (Relay): a user or an identity. Null if there is none.
    /// Admin or service, or the user itself (and its identities).
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's id.")] id: ID,
    ) -> async_graphql::Result<Option<Compiled<Node>>> {
        let mut found = node::nodes(ctx, std::slice::from_ref(&id)).await?;
        Ok(found.pop().flatten())
    }

    /// Objects by id (Relay), in the order asked, null where there is none.
    /// Admin or service, or the user itself (and its identities).
    #[graphql(complexity = "ids.len() * child_complexity + 1")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ids, at most 100.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Option<Vec<Option<Compiled<Node>>>>> {
        node::nodes(ctx, &ids).await.map(Some)
    }

    /// The WeChat authorize URL of a frontend-driven Official Account login, as
    /// `startOfficialAccountLogin` gives it (same checks and limits).
    /// Anyone.
    #[graphql(
        deprecation = "Use the mutation `startOfficialAccountLogin`: this field stores a single-use state, and clients cache queries (a second login would reuse a spent state). Removed in the next release."
    )]
    async fn official_account_authorize_url(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Official Account's app id.")] app_id: String,
        #[graphql(desc = "Where WeChat sends the person back.")] redirect_uri: String,
        #[graphql(default, desc = "The scope to ask for.")] scope: OfficialAccountScope,
        #[graphql(desc = "base64url(SHA-256(verifier)), 43 characters.")] code_challenge: Option<
            String,
        >,
    ) -> async_graphql::Result<Option<String>> {
        let input = StartOfficialAccountLoginInput {
            app_id,
            redirect_uri,
            scope,
            code_challenge,
        };
        Ok(Some(login::start(ctx, input).await?.authorize_url))
    }

    /// Merges and unlinks, oldest first, a page of 1-100 at a time (default 20): who
    /// (`actor`), when and why.
    /// Admin.
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
    async fn merge_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only events involving this user (as survivor or merged).")]
        user_id: Option<ID>,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Option<Connection<String, MergeEvent>>> {
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
        Ok(Some(page.connection(rows, |e| e.id.as_str(), MergeEvent)))
    }

    /// The WeChat apps this service logs people into, as configured.
    /// Admin or service.
    async fn wechat_apps(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<WeChatApp>>> {
        let reader = access::reader(ctx)?;
        Ok(Some(
            reader
                .apps()
                .iter()
                .map(|a| WeChatApp {
                    app_id: a.app_id.to_string(),
                    kind: WeChatAppKind::from(a.kind),
                    name: a.name.clone(),
                    open_platform: a.open_platform,
                })
                .collect(),
        ))
    }
}
