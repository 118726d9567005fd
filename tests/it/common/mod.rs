//! The test harness: a real service on a loopback port, with the sandbox (fake WeChat) in-process,
//! on a fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! - [`server`]: starting and stopping a [`TestApp`], its temp dir and database;
//! - [`graphql`]: the GraphQL client (operations, logins, `me`);
//! - [`sandbox`]: the sandbox's own endpoints (login codes, faults);
//! - [`db`]: reading the database directly (counts, the catalog, "nothing written").

mod db;
mod graphql;
mod sandbox;
mod server;

use serde_json::Value;

pub use db::{Column, Written};
pub use server::{TestApp, pg_admin, pg_admin_url};

pub const MP_A: &str = "wxsandboxminiapp01";
pub const MP_B: &str = "wxsandboxminiapp02";
pub const OA: &str = "wxsandboxofficial1";
pub const MP_UNBOUND: &str = "wxsandboxunbound01";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
pub const SERVICE_KEY: &str = "test-service-key-0123456789abcdef";

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

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body:#}"))
}
