//! The compiled lookups as prepared statements, and how many distinct ones are kept.

use diesel::sql_types::Text;

/// The most distinct statements kept prepared on each connection. A statement's text follows
/// the query's selection (its response keys are in it), so callers could make any number; the
/// first [`MAX_PREPARED`] texts of this process are prepared once per connection and run
/// from then on without being planned again (diesel caches them by text); any other text is
/// sent unprepared, planned on each run, and kept nowhere.
pub const MAX_PREPARED: usize = 64;

/// Whether `sql` is (or now becomes) one of the statements kept prepared.
pub(super) fn admitted(sql: &str) -> bool {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, RandomState};
    use std::sync::{Mutex, OnceLock};
    static ADMITTED: OnceLock<(RandomState, Mutex<HashSet<u64>>)> = OnceLock::new();
    let (hasher, set) = ADMITTED.get_or_init(Default::default);
    let hash = hasher.hash_one(sql);
    let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
    set.contains(&hash) || (set.len() < MAX_PREPARED && set.insert(hash))
}

/// A lookup with its one parameter, cached as a prepared statement by its text (`sql_query`
/// is never cached: diesel cannot know raw SQL is safe to).
pub(super) struct Prepared<'a> {
    pub before: &'a str,
    pub param: &'a str,
    pub after: &'a str,
}

impl diesel::query_builder::QueryId for Prepared<'_> {
    type QueryId = ();
    // Not static: diesel caches the statement by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for Prepared<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<DB> diesel::query_builder::QueryFragment<DB> for Prepared<'_>
where
    DB: diesel::backend::Backend,
    str: diesel::serialize::ToSql<Text, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        out.push_sql(self.before);
        out.push_bind_param::<Text, str>(self.param)?;
        out.push_sql(self.after);
        Ok(())
    }
}
