//! Integration tests: the real service over HTTP, the sandbox on loopback, SQLite always and
//! PostgreSQL when TEST_DATABASE_URL is set.

mod common;

mod access;
mod bad_input;
mod mini_program_login;
mod schema;
mod sessions;
mod merge;
mod official_account_login;
mod server_driven_login;
mod browser;
mod sandbox;
