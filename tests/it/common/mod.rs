//! The test harness: a real service on a loopback port, with the sandbox (fake WeChat) in-process,
//! on a fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! - [`server`]: starting and stopping a [`TestApp`], its temp dir and database;
//! - [`graphql`]: the GraphQL client (operations, logins, `me`);
//! - [`sandbox`]: the sandbox's own endpoints (login codes, faults);
//! - [`db`]: reading the database directly (counts, the catalog, "nothing written");
//! - [`tcp`]: raw connections from other loopback addresses, and the binary run on its own;
//! - [`runners`]: job runners of their own on a scratch database, and [`steps`], a job to run.
//! - [`node`]: the Node.js scripts of `tests/federation` (composition, Apollo Gateway);
//! - [`flows`]: a browser's hops through the server-driven logins (Official Account, website);
//! - [`mini_program`]: the phone button's codes, `encryptedData`, a user's own mutations.

mod db;
pub mod flows;
mod graphql;
pub mod mini_program;
pub mod node;
mod official_account;
pub mod receiver;
pub mod runners;
mod sandbox;
mod server;
pub mod tcp;

use serde_json::Value;

pub use db::{Column, Written};
pub use official_account::{event_xml, signed_query};
pub use server::{TestApp, with_known_key};

#[path = "../../support/backends.rs"]
mod backends;
pub use backends::{Backend, pg_admin, pg_admin_url};
#[path = "../../support/eventually.rs"]
mod waiting;
pub use waiting::eventually;
#[path = "../../support/steps.rs"]
pub mod steps;

pub const MP_A: &str = "wxsandboxminiapp01";
pub const MP_B: &str = "wxsandboxminiapp02";
pub const OA: &str = "wxsandboxofficial1";
pub const MP_UNBOUND: &str = "wxsandboxunbound01";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
pub const SERVICE_KEY: &str = "test-service-key-0123456789abcdef";

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body:#}"))
}
