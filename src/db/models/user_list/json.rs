//! The compiled path's `users` page: the same filters and window as [`UserRow::list`], each
//! user as a `UserShape`'s JSON, in one statement.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

// The filter and window macros name these where they expand.
use super::{UserListFilter, UserWindow, lower};
use crate::db::models::user::UserRow;
use crate::db::models::user_json::{Limited, PageJson, UserShape, admit};
use crate::db::schema::users;
use crate::db::{Conn, DbError};
use crate::types::{AppId, AppKind, UserId};
use crate::with_conn;

/// A user of a page as the compiled path reads it: id, created_at, its JSON, and its JSON in a
/// second shape when the page asks for one.
pub type PageRow = (UserId, NaiveDateTime, String, Option<String>);

impl UserRow {
    /// The same page as [`UserRow::list`], each user as `shape`'s JSON (the compiled path's
    /// `users`): one statement, `(id, created_at, json)` per user.
    pub async fn list_json(
        conn: &mut Conn,
        filter: &UserListFilter,
        window: &UserWindow,
        shape: &UserShape,
        also: Option<&UserShape>,
    ) -> Result<Vec<PageRow>, DbError> {
        use diesel::sql_types::{Nullable, Text};
        let postgres = matches!(conn, Conn::Postgres(_));
        let json = shape.select_sql(postgres);
        let also = also.map_or_else(|| "NULL".to_owned(), |s| s.select_sql(postgres));
        // Kept prepared when its text is admitted (as the lookups' are): parsing and analysing
        // its long text on every run cost about a sixth of the page (bench-reads (c): 1,098 ->
        // 1,320 req/s). Its LIMIT is written in the text where one plan serves every value of
        // the filters ([`Limited`]): PostgreSQL then plans it once per connection, not per run.
        let cache = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        Ok(with_conn!(conn, c => {
            let mut q = users::table
                .select((
                    users::id,
                    users::created_at,
                    PageJson::<Text>::new(json, &cache),
                    PageJson::<Nullable<Text>>::new(also, &cache),
                ))
                .into_boxed();
            filter_users!(q, filter);
            window_users!(q, window, unlimited);
            let q = Limited::new(q, window.limit, filter.plans_alike());
            admit(&cache, &q)?;
            q.load::<PageRow>(c).await
        })?)
    }

    /// The text of [`UserRow::list_json`]'s statement on PostgreSQL, as diesel prints it: the
    /// SQL, then `-- binds: [...]` (for `bench-reads`, which runs it under pgbench).
    pub fn list_json_statement(
        filter: &UserListFilter,
        window: &UserWindow,
        shape: &UserShape,
    ) -> String {
        use diesel::sql_types::{Nullable, Text};
        let json = shape.select_sql(true);
        let mut q = users::table
            .select((
                users::id,
                users::created_at,
                diesel::dsl::sql::<Text>(&json),
                diesel::dsl::sql::<Nullable<Text>>("NULL"),
            ))
            .into_boxed::<diesel::pg::Pg>();
        filter_users!(q, filter);
        window_users!(q, window, unlimited);
        let q = Limited::new(q, window.limit, filter.plans_alike());
        diesel::debug_query::<diesel::pg::Pg, _>(&q).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{UserOrder, contains_pattern};
    use super::*;
    use crate::db::models::user_json::{UserField, UserPart};

    /// A compiled page writes its LIMIT (one generic plan once prepared) unless a filter's
    /// values decide the best plan, where every run is planned for its values.
    #[test]
    fn a_page_writes_its_limit_unless_its_values_decide_the_plan() {
        let shape = UserShape(vec![("id".into(), UserPart::Field(UserField::Id))]);
        let window = UserWindow {
            order: UserOrder::IdAsc,
            after: None,
            before: None,
            from_end: false,
            limit: 101,
        };
        let plain = UserRow::list_json_statement(&UserListFilter::default(), &window, &shape);
        assert!(plain.contains(" LIMIT 101 "), "{plain}");
        let rare = UserListFilter {
            nickname_like: Some(contains_pattern("zed")),
            ..Default::default()
        };
        let rare = UserRow::list_json_statement(&rare, &window, &shape);
        assert!(
            rare.contains(" LIMIT $3 ") && rare.ends_with(", 101]"),
            "{rare}"
        );
    }
}
