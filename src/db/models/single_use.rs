//! What the single-use, expiring tables (`oauth_states`, `login_tickets`) share: a row is
//! stored once, found by its key, used at most once (`used_at`) and purged after `expires_at`.
//! [`single_use_table!`] writes those queries once for both.

/// Implements `insert`, `find`, `mark_used` and `purge_expired` on `$row`, the row of `$table`
/// (a table keyed by one text column, with `expires_at` and `used_at`), found by a `&$key`. The
/// caller has `diesel::prelude::*` and `diesel_async::RunQueryDsl` in scope.
macro_rules! single_use_table {
    ($row:ident, $table:ident, $key:ty) => {
        impl $row {
            /// Stores a new row.
            pub async fn insert(
                conn: &mut $crate::db::Conn,
                row: &$row,
            ) -> Result<(), $crate::db::DbError> {
                super::insert(conn, $table::table, row).await
            }

            /// The row with this key.
            pub async fn find(
                conn: &mut $crate::db::Conn,
                key: &$key,
            ) -> Result<Option<Self>, $crate::db::DbError> {
                let q = $table::table.find(key);
                Ok($crate::with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
            }

            /// Marks it used if it was not; returns whether this call used it.
            pub async fn mark_used(
                conn: &mut $crate::db::Conn,
                key: &$key,
                at: chrono::NaiveDateTime,
            ) -> Result<bool, $crate::db::DbError> {
                let unused = $table::table.find(key).filter($table::used_at.is_null());
                let q = diesel::update(unused).set($table::used_at.eq(at));
                Ok($crate::with_conn!(conn, c => q.execute(c).await)? == 1)
            }

            /// Deletes the rows that expired before `at`; returns how many.
            pub async fn purge_expired(
                conn: &mut $crate::db::Conn,
                at: chrono::NaiveDateTime,
            ) -> Result<u64, $crate::db::DbError> {
                let q = diesel::delete($table::table.filter($table::expires_at.lt(at)));
                Ok($crate::with_conn!(conn, c => q.execute(c).await)? as u64)
            }
        }
    };
}

pub(super) use single_use_table;
