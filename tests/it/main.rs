//! Integration tests: the real service over HTTP, the sandbox on loopback, SQLite always and
//! PostgreSQL when TEST_DATABASE_URL is set.

mod common;

mod access;
mod admin;
mod app_logins;
mod bad_input;
mod bounded_answers;
mod browser;
mod connections;
mod dashboards;
mod db_schema;
mod fast_path;
mod fast_path_races;
mod federation;
mod federation_compose;
mod federation_gateway;
mod follower_sync;
mod follower_sync_crash;
mod hardening;
mod harness_checks;
mod jobs;
mod js_sdk;
mod limits;
mod merge;
mod message_text;
mod messages;
mod mini_program_data;
mod mini_program_login;
mod oa_fast_path;
mod official_account_login;
mod phone_number;
mod protocol;
mod readme;
mod sandbox;
mod schema;
mod server_driven_login;
mod sessions;
mod state_cap;
mod tokens;
mod unread_answers;
mod wake;
mod webhook;
mod webhook_replay;
