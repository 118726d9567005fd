//! wechat-identity: a GraphQL identity service for the WeChat ecosystem.
//!
//! Dependency direction: [`http`] → [`graphql`] → [`identity`] → [`db`] / [`wechat`] / [`auth`];
//! [`jobs`] → [`identity`]; [`app`] builds and starts them all. [`wechat`] is the two crates of
//! the workspace (`wechat-client`, `wechat-sandbox` → `wechat-client`), which know nothing of
//! the service.

pub mod app;
pub mod auth;
pub mod bench;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod fs;
pub mod graphql;
pub mod html;
pub mod http;
pub mod identity;
pub mod jobs;
pub mod metrics;
pub mod mirror;
pub mod rate_limit;
pub mod soak;
pub mod types;
pub mod wechat;
