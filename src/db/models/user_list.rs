//! Listing and counting users for dashboards: the filters, the sort orders and keyset windows
//! (a page starts after / ends before the sort key of a row, so pages stay put when users are
//! added). One filter serves the page and its count. Every filter and order is served by an
//! index (migration `user_listing_indexes`; plans in `docs/QUERY_PLANS.md`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::users;
use crate::db::{Conn, DbError};
use crate::types::{AppId, AppKind, OpenId, UnionId, UserId};
use crate::with_conn;

use super::user::UserRow;

diesel::define_sql_function! {
    /// SQL `lower` (ASCII on SQLite, the database's locale on PostgreSQL).
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Which users a listing (or count) takes. Every condition is optional; all given must hold.
#[derive(Clone, Debug, Default)]
pub struct UserListFilter {
    /// Include merged users (tombstones).
    pub include_merged: bool,
    /// Include deleted (erased) users.
    pub include_deleted: bool,
    /// Only users with (`true`) or without (`false`) a unionid.
    pub has_unionid: Option<bool>,
    /// Only users with an identity in one of these apps (none: no such condition).
    pub identity_on: Vec<(AppKind, AppId)>,
    /// Only users with an identity in this app.
    pub app: Option<(AppKind, AppId)>,
    /// Only the user(s) with this unionid.
    pub unionid: Option<UnionId>,
    /// Only users with an identity of this openid, in any app.
    pub openid: Option<OpenId>,
    /// Only users whose nickname matches this LIKE pattern (lower case, `\` escapes; see
    /// [`contains_pattern`]), compared with the lower-cased nickname.
    pub nickname_like: Option<String>,
    /// Only users with exactly this phone number.
    pub phone_number: Option<String>,
    /// Only users created at or after this time.
    pub created_from: Option<NaiveDateTime>,
    /// Only users created before this time.
    pub created_until: Option<NaiveDateTime>,
    /// Only users with (`true`) or without (`false`) a Mini Program identity.
    pub has_mini_program: Option<bool>,
    /// Only users with (`true`) or without (`false`) an Official Account identity.
    pub has_official_account: Option<bool>,
    /// Only users with (`true`) or without (`false`) a website identity.
    pub has_website: Option<bool>,
    /// Only users with (`true`) or without (`false`) a mobile-app identity.
    pub has_mobile_app: Option<bool>,
    /// Only users who follow (`true`) or follow no (`false`) Official Account — only this one when
    /// given.
    pub subscribed: Option<(bool, Option<AppId>)>,
}

impl UserListFilter {
    /// Whether one plan serves every value of its parameters: no condition whose values decide
    /// between indexes (a nickname pattern, a time range, an app that few or many users have).
    /// Equalities on unique or nearly unique keys (unionid, openid, phone number) do not.
    pub fn plans_alike(&self) -> bool {
        self.nickname_like.is_none()
            && self.created_from.is_none()
            && self.created_until.is_none()
            && self.app.is_none()
            && self.identity_on.is_empty()
            && !matches!(self.subscribed, Some((_, Some(_))))
    }
}

/// The LIKE pattern for "contains `text`, ignoring case": `%text%` lower-cased, with `\`, `%`
/// and `_` escaped by `\`.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// The sort orders of a listing; every one ends on the id, so rows have one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserOrder {
    /// By id (UUIDv7: creation order as the ids were made).
    IdAsc,
    /// By id, newest first.
    IdDesc,
    /// By `created_at`, then id.
    CreatedAtAsc,
    /// By `created_at`, then id, newest first.
    CreatedAtDesc,
}

impl UserOrder {
    fn by_created(self) -> bool {
        matches!(self, UserOrder::CreatedAtAsc | UserOrder::CreatedAtDesc)
    }

    fn descending(self) -> bool {
        matches!(self, UserOrder::IdDesc | UserOrder::CreatedAtDesc)
    }
}

/// A row's place in an order: its sort key (`created_at` only for the `CreatedAt…` orders).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserKey {
    /// The row's id.
    pub id: UserId,
    /// The row's `created_at` (for the `CreatedAt…` orders).
    pub created_at: Option<NaiveDateTime>,
}

impl UserKey {
    /// The key of `row` in `order`.
    pub fn of(row: &UserRow, order: UserOrder) -> Self {
        Self {
            id: row.id.clone(),
            created_at: order.by_created().then_some(row.created_at),
        }
    }
}

/// The part of an ordered listing to read: rows strictly between `after` and `before` (in the
/// order), the first `limit` of them — or the last `limit` when `from_end`, still returned in
/// reverse order (the caller flips them).
#[derive(Clone, Debug)]
pub struct UserWindow {
    /// The order.
    pub order: UserOrder,
    /// Only rows after this one.
    pub after: Option<UserKey>,
    /// Only rows before this one.
    pub before: Option<UserKey>,
    /// Read from the end of the window backwards.
    pub from_end: bool,
    /// At most this many rows.
    pub limit: i64,
}

/// Adds `$filter`'s conditions to the boxed users query `$q` (expanded per backend inside
/// `with_conn!`, so the list and its count share one filter).
macro_rules! filter_users {
    ($q:ident, $filter:expr) => {{
        use crate::db::schema::{
            mini_program_identities as mp, mobile_app_identities as ma,
            official_account_identities as oa, website_identities as ws,
        };
        use diesel::dsl::{exists, not};
        let f: &UserListFilter = $filter;
        if !f.include_merged {
            $q = $q.filter(users::merged_into.is_null());
        }
        if !f.include_deleted {
            $q = $q.filter(users::deleted_at.is_null());
        }
        match f.has_unionid {
            Some(true) => $q = $q.filter(users::unionid.is_not_null()),
            Some(false) => $q = $q.filter(users::unionid.is_null()),
            None => {}
        }
        if let Some(unionid) = &f.unionid {
            $q = $q.filter(users::unionid.eq(unionid));
        }
        if let Some(phone) = &f.phone_number {
            $q = $q.filter(users::phone_number.eq(phone));
        }
        if let Some(from) = f.created_from {
            $q = $q.filter(users::created_at.ge(from));
        }
        if let Some(until) = f.created_until {
            $q = $q.filter(users::created_at.lt(until));
        }
        if let Some(pattern) = &f.nickname_like {
            $q = $q.filter(lower(users::nickname).like(pattern).escape('\\'));
        }
        if let Some(openid) = &f.openid {
            let owners = mp::table
                .filter(mp::openid.eq(openid))
                .select(mp::user_id)
                .union_all(oa::table.filter(oa::openid.eq(openid)).select(oa::user_id))
                .union_all(ws::table.filter(ws::openid.eq(openid)).select(ws::user_id))
                .union_all(ma::table.filter(ma::openid.eq(openid)).select(ma::user_id));
            $q = $q.filter(users::id.eq_any(owners));
        }
        // A user's identities in the table `$t` (of one kind), among `apps` when given.
        macro_rules! on {
            ($t:ident) => {
                exists($t::table.filter($t::user_id.eq(users::id)))
            };
            ($t:ident, $apps:expr) => {
                exists(
                    $t::table
                        .filter($t::user_id.eq(users::id))
                        .filter($t::app_id.eq_any($apps)),
                )
            };
        }
        if let Some((kind, app)) = &f.app {
            let app = std::slice::from_ref(app);
            $q = match kind {
                AppKind::MiniProgram => $q.filter(on!(mp, app)),
                AppKind::OfficialAccount => $q.filter(on!(oa, app)),
                AppKind::Website => $q.filter(on!(ws, app)),
                AppKind::MobileApp => $q.filter(on!(ma, app)),
            };
        }
        for (has, kind) in [
            (f.has_mini_program, AppKind::MiniProgram),
            (f.has_official_account, AppKind::OfficialAccount),
            (f.has_website, AppKind::Website),
            (f.has_mobile_app, AppKind::MobileApp),
        ] {
            let Some(has) = has else { continue };
            $q = match (kind, has) {
                (AppKind::MiniProgram, true) => $q.filter(on!(mp)),
                (AppKind::MiniProgram, false) => $q.filter(not(on!(mp))),
                (AppKind::OfficialAccount, true) => $q.filter(on!(oa)),
                (AppKind::OfficialAccount, false) => $q.filter(not(on!(oa))),
                (AppKind::Website, true) => $q.filter(on!(ws)),
                (AppKind::Website, false) => $q.filter(not(on!(ws))),
                (AppKind::MobileApp, true) => $q.filter(on!(ma)),
                (AppKind::MobileApp, false) => $q.filter(not(on!(ma))),
            };
        }
        let follows = || {
            oa::table
                .filter(oa::user_id.eq(users::id))
                .filter(oa::subscribed)
        };
        match &f.subscribed {
            Some((true, None)) => $q = $q.filter(exists(follows())),
            Some((false, None)) => $q = $q.filter(not(exists(follows()))),
            Some((true, Some(app))) => $q = $q.filter(exists(follows().filter(oa::app_id.eq(app)))),
            Some((false, Some(app))) => {
                $q = $q.filter(not(exists(follows().filter(oa::app_id.eq(app)))))
            }
            None => {}
        }
        if !f.identity_on.is_empty() {
            let apps = |kind: AppKind| -> Vec<AppId> {
                f.identity_on
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, a)| a.clone())
                    .collect()
            };
            $q = $q.filter(
                on!(mp, apps(AppKind::MiniProgram))
                    .or(on!(oa, apps(AppKind::OfficialAccount)))
                    .or(on!(ws, apps(AppKind::Website)))
                    .or(on!(ma, apps(AppKind::MobileApp))),
            );
        }
    }};
}

/// Narrows the boxed query `$q` over `users` to `$window` (its bounds, its order, its limit).
macro_rules! window_users {
    ($q:ident, $window:expr) => {{
        window_users!($q, $window, unlimited);
        $q = $q.limit($window.limit);
    }};
    // Without the LIMIT (the caller adds it: [`Limited`]).
    ($q:ident, $window:expr, unlimited) => {{
        let window: &UserWindow = $window;
        let order = window.order;
        // Which side of each bound the rows lie on: greater in the index's (ascending) terms?
        let mut bounds = Vec::new();
        if let Some(after) = &window.after {
            bounds.push((after, !order.descending()));
        }
        if let Some(before) = &window.before {
            bounds.push((before, order.descending()));
        }
        let scan_desc = order.descending() != window.from_end;
        for (key, greater) in &bounds {
            $q = match (key.created_at, *greater) {
                (None, true) => $q.filter(users::id.gt(&key.id)),
                (None, false) => $q.filter(users::id.lt(&key.id)),
                (Some(at), true) => $q.filter(
                    users::created_at
                        .ge(at)
                        .and(users::created_at.gt(at).or(users::id.gt(&key.id))),
                ),
                (Some(at), false) => $q.filter(
                    users::created_at
                        .le(at)
                        .and(users::created_at.lt(at).or(users::id.lt(&key.id))),
                ),
            };
        }
        $q = match (order.by_created(), scan_desc) {
            (false, false) => $q.order(users::id.asc()),
            (false, true) => $q.order(users::id.desc()),
            (true, false) => $q.order((users::created_at.asc(), users::id.asc())),
            (true, true) => $q.order((users::created_at.desc(), users::id.desc())),
        };
    }};
}

impl UserRow {
    /// The users of `filter` in `window` (see [`UserWindow`] for the order they come in).
    pub async fn list(
        conn: &mut Conn,
        filter: &UserListFilter,
        window: &UserWindow,
    ) -> Result<Vec<UserRow>, DbError> {
        // The body is expanded once per backend, so the boxed query gets each backend's type.
        Ok(with_conn!(conn, c => {
            let mut q = users::table.into_boxed();
            filter_users!(q, filter);
            window_users!(q, window);
            q.load::<UserRow>(c).await
        })?)
    }

    pub async fn count(conn: &mut Conn, filter: &UserListFilter) -> Result<i64, DbError> {
        Ok(with_conn!(conn, c => {
            let mut q = users::table.select(diesel::dsl::count_star()).into_boxed();
            filter_users!(q, filter);
            q.get_result::<i64>(c).await
        })?)
    }

    /// Up to `limit` users after the id `after`, in id (= creation) order.
    pub async fn page(
        conn: &mut Conn,
        after: Option<&UserId>,
        limit: i64,
        filter: &UserListFilter,
    ) -> Result<Vec<UserRow>, DbError> {
        let window = UserWindow {
            order: UserOrder::IdAsc,
            after: after.map(|id| UserKey {
                id: id.clone(),
                created_at: None,
            }),
            before: None,
            from_end: false,
            limit,
        };
        UserRow::list(conn, filter, &window).await
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn contains_pattern_escapes_wildcards_and_lowers() {
        assert_eq!(contains_pattern("Ab"), "%ab%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(contains_pattern("小明"), "%小明%");
    }
}

// The compiled path's pages (after the macros, which it uses).
mod json;
pub use json::PageRow;
