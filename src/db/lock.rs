//! Row locks for read-then-write transactions, written once for both backends.
//!
//! [`for_update`] wraps a select: on PostgreSQL it appends `FOR UPDATE` (the rows stay locked
//! until the transaction ends); on SQLite it is the select itself, since [`transaction`]
//! (crate::db::transaction) begins with `BEGIN IMMEDIATE` and so already holds the database's
//! one write lock.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sqlite::Sqlite;

/// A select whose rows are locked until the transaction ends (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct ForUpdate<Q>(Q);

/// Locks the rows `query` selects. Put any `LIMIT` inside: `for_update(q.limit(1))`.
pub fn for_update<Q: Query>(query: Q) -> ForUpdate<Q> {
    ForUpdate(query)
}

impl<Q: Query> Query for ForUpdate<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryId> QueryId for ForUpdate<Q> {
    type QueryId = ForUpdate<Q::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for ForUpdate<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" FOR UPDATE");
        Ok(())
    }
}

impl<Q: QueryFragment<Sqlite>> QueryFragment<Sqlite> for ForUpdate<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> diesel::QueryResult<()> {
        self.0.walk_ast(out)
    }
}
