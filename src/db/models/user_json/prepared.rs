//! The compiled lookups as prepared statements, and how many distinct ones are kept.

use diesel::sql_types::Text;

/// The most distinct statements of each kind (lookups, pages) kept prepared on each
/// connection. A statement's text follows the query's selection (its response keys are in it)
/// and, for pages, the filters and window, so callers could make any number; the first
/// [`MAX_PREPARED`] texts of each kind in this process are prepared once per connection and
/// run from then on without being parsed again (diesel caches them by text); any other text is
/// sent unprepared, parsed and planned on each run, and kept nowhere. Each kind has its own
/// budget, so that a dashboard's many page texts cannot take the lookups' places.
pub const MAX_PREPARED: usize = 64;

type Admitted = std::sync::OnceLock<(
    std::hash::RandomState,
    std::sync::Mutex<std::collections::HashSet<u64>>,
)>;

static LOOKUPS: Admitted = Admitted::new();
static PAGES: Admitted = Admitted::new();

/// Whether the lookup `sql` is (or now becomes) one of the statements kept prepared.
pub(super) fn admitted(sql: &str) -> bool {
    admitted_in(&LOOKUPS, sql)
}

fn admitted_in(kind: &Admitted, sql: &str) -> bool {
    use std::hash::BuildHasher;
    let (hasher, set) = kind.get_or_init(Default::default);
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

/// A select expression of SQL text that lets its statement be kept prepared, as a statement
/// [`admitted`] is (`diesel::dsl::sql`'s never is): the compiled page's users' JSON. The page's
/// statement is a boxed query, so whether it is admitted is known only from its whole text,
/// after it is built; until [`PageJson::admit`] says so it is not cached.
#[derive(Debug, Clone)]
pub struct PageJson<ST> {
    sql: String,
    cache: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _type: std::marker::PhantomData<ST>,
}

impl<ST> PageJson<ST> {
    /// `sql`, and the switch it shares with the other expressions of its statement.
    pub fn new(sql: String, cache: &std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        Self {
            sql,
            cache: cache.clone(),
            _type: std::marker::PhantomData,
        }
    }
}

/// Sets the switch of `query`'s [`PageJson`]s (`cache`, on while it is built): it stays on
/// when diesel would cache the rest of the statement (not, say, SQLite's `IN (?, ?, …)`) and
/// its text is admitted among the pages'.
pub fn admit<DB, Q>(cache: &std::sync::atomic::AtomicBool, query: &Q) -> diesel::QueryResult<()>
where
    DB: diesel::backend::Backend + Default,
    DB::QueryBuilder: Default,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    use diesel::query_builder::QueryBuilder as _;
    let backend = DB::default();
    let cacheable = query.is_safe_to_cache_prepared(&backend)?;
    let mut builder = DB::QueryBuilder::default();
    query.to_sql(&mut builder, &backend)?;
    let admitted = cacheable && admitted_in(&PAGES, &builder.finish());
    cache.store(admitted, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

impl<ST: diesel::sql_types::SingleValue> diesel::Expression for PageJson<ST> {
    type SqlType = ST;
}

impl<DB: diesel::backend::Backend, ST> diesel::query_builder::QueryFragment<DB> for PageJson<ST> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        if !self.cache.load(std::sync::atomic::Ordering::Relaxed) {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql(&self.sql);
        Ok(())
    }
}

impl<ST> diesel::query_builder::QueryId for PageJson<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<QS, ST> diesel::SelectableExpression<QS> for PageJson<ST> where Self: diesel::Expression {}

impl<QS, ST> diesel::AppearsOnTable<QS> for PageJson<ST> where Self: diesel::Expression {}

impl<ST, GB> diesel::expression::ValidGrouping<GB> for PageJson<ST> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// `query` with `LIMIT n`, written in its text when `written`, else bound. Written, a page kept
/// prepared gets one generic plan after five runs (with a bound LIMIT PostgreSQL assumes a
/// tenth of the table and plans every run again); a page's `n` is `first`/`last` + 1, so its
/// texts stay few. Bound, every run is planned for its values: for filters whose values decide
/// the best plan (a rare or a common nickname), which one generic plan would not serve.
pub struct Limited<Q> {
    query: Q,
    limit: i64,
    written: bool,
}

impl<Q> Limited<Q> {
    pub fn new(query: Q, limit: i64, written: bool) -> Self {
        Self {
            query,
            limit,
            written,
        }
    }
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Limited<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> diesel::query_builder::QueryId for Limited<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB, Q> diesel::query_builder::QueryFragment<DB> for Limited<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        if self.written {
            out.push_sql(&format!(" LIMIT {}", self.limit));
        } else {
            out.push_sql(" LIMIT ");
            out.push_bind_param::<diesel::sql_types::BigInt, i64>(&self.limit)?;
        }
        Ok(())
    }
}

impl<Q, Conn> diesel::RunQueryDsl<Conn> for Limited<Q> {}
