//! The dashboards' `users` listing: its filter, its orders (keyset cursors that carry the sort
//! key) and `totalCount`, counted only when a query selects it.

use async_graphql::connection::Connection;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, InputObject, Object};
use chrono::{DateTime, NaiveDateTime, Utc};

use super::access;
use super::compiled::{self, Compiled};
use super::error::{ApiError, gql};
use super::loaders::DbLoader;
use super::paging::{Page, PageArgs, uuid_key};
use super::types::User;
use crate::db::models::user::UserRow;
use crate::db::models::user_list::{
    UserKey, UserListFilter, UserOrder, UserWindow, contains_pattern,
};
use crate::identity::access::Reader;
use crate::identity::phone::PhoneNumber;
use crate::types::{AppKind, OpenId, UnionId, UserId};

/// The longest text a filter field takes (unionid, openid, appId, phone number, nickname part).
const MAX_FILTER_TEXT: usize = 64;

/// Which users `users` lists (and `totalCount` counts); all conditions given must hold.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Also list merged users (tombstones). Default false.
    #[graphql(default)]
    pub include_merged: bool,
    /// Also list deleted (erased) users: tombstones with no personal data. Default false;
    /// admin only (a service key setting it is FORBIDDEN).
    #[graphql(default)]
    pub include_deleted: bool,
    /// Only users with (true) or without (false) a unionid.
    pub has_unionid: Option<bool>,
    /// Only the user with this unionid (and its tombstones, with `includeMerged`).
    pub unionid: Option<String>,
    /// Only the user with an identity of this openid, in any app.
    pub openid: Option<String>,
    /// Only users with an identity in this app (one of `wechatApps`). With `subscribed`: the
    /// Official Account whose followers count.
    pub app_id: Option<String>,
    /// Only users whose nickname contains this text, ignoring case (1-64 characters; `%` and `_`
    /// are plain characters).
    pub nickname_contains: Option<String>,
    /// Only users with this phone number: E.164 (`+8613800138000`, as stored), or a bare
    /// Chinese mobile number (`13800138000`). Anything else is BAD_USER_INPUT.
    pub phone_number: Option<String>,
    /// Only users created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only users created before this time (so `createdAfter`/`createdBefore` ranges tile).
    pub created_before: Option<DateTime<Utc>>,
    /// Only users with (true) or without (false) a Mini Program identity.
    pub has_mini_program: Option<bool>,
    /// Only users with (true) or without (false) an Official Account identity.
    pub has_official_account: Option<bool>,
    /// Only users with (true) or without (false) a website identity (QR-code login).
    pub has_website: Option<bool>,
    /// Only users with (true) or without (false) a mobile-app identity.
    pub has_mobile_app: Option<bool>,
    /// true: only users who follow an Official Account; false: only users who follow none. With
    /// `appId` (an Official Account): its identities that follow it (true) or do not (false).
    /// As last seen by a login, a follower sync or the webhook.
    pub subscribed: Option<bool>,
}

/// The order of `users`. Every order ends on the id, so each user has one place, and cursors
/// carry the sort key: a page continues where the last one ended even as users are added.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum UserOrderBy {
    /// By id: the order the users were created in (ids are time-ordered UUIDs). The default.
    #[default]
    IdAsc,
    /// By id, newest first.
    IdDesc,
    /// By `createdAt`, ties by id.
    CreatedAtAsc,
    /// By `createdAt`, newest first, ties by id.
    CreatedAtDesc,
}

impl UserOrderBy {
    fn order(self) -> UserOrder {
        match self {
            UserOrderBy::IdAsc => UserOrder::IdAsc,
            UserOrderBy::IdDesc => UserOrder::IdDesc,
            UserOrderBy::CreatedAtAsc => UserOrder::CreatedAtAsc,
            UserOrderBy::CreatedAtDesc => UserOrder::CreatedAtDesc,
        }
    }

    /// The cursors' kind (`user` for the default order, as before orders existed).
    fn cursor_kind(self) -> &'static str {
        match self {
            UserOrderBy::IdAsc => "user",
            UserOrderBy::IdDesc => "user-id-desc",
            UserOrderBy::CreatedAtAsc => "user-created-asc",
            UserOrderBy::CreatedAtDesc => "user-created-desc",
        }
    }
}

/// A cursor's key: the id, preceded by `created_at` in nanoseconds for the `CreatedAt…` orders.
fn encode_key(key: &UserKey) -> String {
    match key.created_at {
        None => key.id.to_string(),
        Some(at) => format!(
            "{}:{}",
            at.and_utc().timestamp_nanos_opt().unwrap_or_default(),
            key.id
        ),
    }
}

fn decode_key(by_created: bool) -> impl Fn(&str) -> Option<UserKey> {
    move |text| {
        let (at, id) = match text.split_once(':') {
            Some((nanos, id)) if by_created => {
                let nanos: i64 = nanos.parse().ok()?;
                (Some(DateTime::from_timestamp_nanos(nanos).naive_utc()), id)
            }
            None if !by_created => (None, text),
            _ => return None,
        };
        Some(UserKey {
            id: UserId::new(uuid_key(id)?),
            created_at: at,
        })
    }
}

/// Text of a filter field, 1-64 characters, or BAD_USER_INPUT naming the field.
fn text(name: &str, value: Option<String>) -> async_graphql::Result<Option<String>> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > MAX_FILTER_TEXT => {
            Err(gql(ApiError::bad_input(format!(
                "filter.{name} must be 1-{MAX_FILTER_TEXT} characters"
            ))))
        }
        v => Ok(v),
    }
}

fn naive(t: Option<DateTime<Utc>>) -> Option<NaiveDateTime> {
    t.map(|t| t.naive_utc())
}

impl UserFilter {
    /// The database's filter, checked: bounded texts, a configured `appId`, `subscribed` with an
    /// Official Account.
    fn checked(self, reader: &Reader<'_>) -> async_graphql::Result<UserListFilter> {
        let app = match text("appId", self.app_id)? {
            None => None,
            Some(app_id) => {
                let Some(app) = reader.apps().iter().find(|a| a.app_id.as_str() == app_id) else {
                    return Err(gql(ApiError::bad_input(
                        "filter.appId is not one of this service's apps",
                    )));
                };
                Some((app.kind, app.app_id.clone()))
            }
        };
        let subscribed = match (self.subscribed, &app) {
            (None, _) => None,
            (Some(follows), None) => Some((follows, None)),
            (Some(follows), Some((AppKind::OfficialAccount, app_id))) => {
                Some((follows, Some(app_id.clone())))
            }
            (Some(_), Some((_, _))) => {
                return Err(gql(ApiError::bad_input(
                    "filter.subscribed with filter.appId needs an Official Account's appId",
                )));
            }
        };
        Ok(UserListFilter {
            identity_on: Vec::new(),
            include_merged: self.include_merged,
            include_deleted: self.include_deleted,
            has_unionid: self.has_unionid,
            app,
            unionid: text("unionid", self.unionid)?.map(UnionId::new),
            openid: text("openid", self.openid)?.map(OpenId::new),
            nickname_like: text("nicknameContains", self.nickname_contains)?
                .map(|t| contains_pattern(&t)),
            phone_number: text("phoneNumber", self.phone_number)?
                .map(|p| {
                    PhoneNumber::parse(&p).ok_or_else(|| {
                        gql(ApiError::bad_input(
                            "filter.phoneNumber must be E.164 (+8613800138000) or a Chinese \
                             mobile number (13800138000)",
                        ))
                    })
                })
                .transpose()?
                .map(|p| p.as_str().to_owned()),
            created_from: naive(self.created_after),
            created_until: naive(self.created_before),
            has_mini_program: self.has_mini_program,
            has_official_account: self.has_official_account,
            has_website: self.has_website,
            has_mobile_app: self.has_mobile_app,
            subscribed,
        })
    }
}

/// The `users` connection's own fields.
pub struct UserCount(UserListFilter);

#[Object]
impl UserCount {
    /// How many users the filter takes, on all pages. Counted only when selected (one more SQL
    /// statement, which reads every matching user: ask for it on the first page only).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        access::reader(ctx)?.count_users(&self.0).await.map_err(gql)
    }
}

/// Reads the identities of the page's users now, if the query shows them: one statement per
/// kind for the whole page (the DataLoader alone may split a long page into several batches).
async fn prefetch_identities(ctx: &Context<'_>, rows: &[UserRow]) -> async_graphql::Result<()> {
    let look = ctx.look_ahead();
    let shows = |field: &str| {
        look.field("edges").field("node").field(field).exists()
            || look.field("nodes").field(field).exists()
    };
    let kinds: Vec<AppKind> = [
        (AppKind::MiniProgram, "miniProgramIdentities"),
        (AppKind::OfficialAccount, "officialAccountIdentities"),
        (AppKind::Website, "websiteIdentities"),
        (AppKind::MobileApp, "mobileAppIdentities"),
    ]
    .into_iter()
    .filter(|(_, field)| shows(field))
    .map(|(kind, _)| kind)
    .collect();
    let ids: Vec<UserId> = rows.iter().map(|u| u.id.clone()).collect();
    ctx.data_unchecked::<DataLoader<DbLoader>>()
        .loader()
        .0
        .prefetch_identities(&ids, &kinds)
        .await
        .map_err(gql)
}

/// The `users` field: a page of the filtered users in `order_by`.
pub async fn users(
    ctx: &Context<'_>,
    args: PageArgs<'_>,
    filter: Option<UserFilter>,
    order_by: UserOrderBy,
) -> async_graphql::Result<Compiled<Connection<String, User, UserCount>>> {
    let reader = access::reader(ctx)?;
    if filter.as_ref().is_some_and(|f| f.include_deleted) {
        // Who was erased is for admins.
        access::admin(ctx)?;
    }
    let order = order_by.order();
    let by_created = matches!(order, UserOrder::CreatedAtAsc | UserOrder::CreatedAtDesc);
    let page = Page::parse_keyed(order_by.cursor_kind(), &args, decode_key(by_created))?;
    let filter = filter.unwrap_or_default().checked(&reader)?;
    let window = UserWindow {
        order,
        after: page.after.clone(),
        before: page.before.clone(),
        from_end: page.from_end,
        limit: page.limit(),
    };
    if let Some(shape) = compiled::page_shape(ctx) {
        let rows = reader.users_json(&filter, &window, &shape.user, shape.nodes.as_ref());
        let (rows, has_previous, has_next) = page.window(rows.await.map_err(gql)?);
        let users: Vec<(String, String, String)> = rows
            .into_iter()
            .map(|(id, created_at, json, nodes)| {
                let key = UserKey {
                    id,
                    created_at: by_created.then_some(created_at),
                };
                let nodes = nodes.unwrap_or_else(|| json.clone());
                (page.cursor(&encode_key(&key)), json, nodes)
            })
            .collect();
        let total = match shape.counts {
            true => Some(reader.count_users(&filter).await.map_err(gql)?),
            false => None,
        };
        let json = shape.render(&users, has_previous, has_next, total);
        return Ok(Compiled::Json(json));
    }
    let rows = reader.users(&filter, &window).await.map_err(gql)?;
    prefetch_identities(ctx, &rows).await?;
    Ok(Compiled::Resolved(page.connection_with(
        rows,
        |u| encode_key(&UserKey::of(u, order)),
        User,
        UserCount(filter),
    )))
}
