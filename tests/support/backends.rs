//! Shared by both test suites (`tests/it`, `tests/contract`): which backend a test runs on,
//! the macro that runs a story on both, and statements on the PostgreSQL server of
//! TEST_DATABASE_URL. Each suite includes it with `#[path]` and re-exports it from `common`.

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite` and `postgres` test functions for a story `async fn name(Backend)`.
/// The PostgreSQL one is ignored unless TEST_DATABASE_URL was set when the tests were built.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(test_postgres), ignore = "set TEST_DATABASE_URL to run on PostgreSQL")]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )+};
}

/// The PostgreSQL server tests may create databases on.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL must be set for PostgreSQL tests")
}

/// Runs one statement on the PostgreSQL server of TEST_DATABASE_URL, on its own thread and runtime
/// (usable from Drop).
pub fn pg_admin(sql: String) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use diesel_async::{AsyncConnection, SimpleAsyncConnection};
            let mut conn = diesel_async::AsyncPgConnection::establish(&pg_admin_url())
                .await
                .expect("connect to TEST_DATABASE_URL");
            conn.batch_execute(&sql).await.expect(&sql);
        });
    })
    .join()
    .expect("admin statement thread");
}
