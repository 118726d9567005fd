//! The data layer's contract: the model functions (`db::models`) and the identity rules
//! (`identity::sighting`, `identity::rules`, the admin merge and unlink), and `db::transaction`,
//! run directly on the database with no HTTP, on SQLite always and on PostgreSQL when
//! TEST_DATABASE_URL was set at build time. Every test starts from an empty database of its own
//! and asserts what is in the database afterwards.

mod common;

mod admin;
mod models_identities;
mod models_jobs;
mod models_jobs_queue;
mod models_jobs_rerun;
mod models_message_reports;
mod models_messages;
mod models_permissions;
mod models_sessions;
mod models_users;
mod models_webhook_events;
mod models_wechat_access_tokens;
mod rules;
mod rules_official_account;
mod transactions;
