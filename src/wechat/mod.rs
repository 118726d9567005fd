//! A typed client for WeChat's API, and the sandbox that fakes it.
//!
//! The base URL is configurable: production points at `https://api.weixin.qq.com`, tests and
//! sandbox mode at the [`sandbox`], so the client code under test is the code in production.

pub mod client;
pub mod error;
pub mod keywords;
pub mod messages;
pub mod mini_program;
pub mod official_account;
pub mod sandbox;
pub mod server_api;
pub mod webhook;

pub use client::WechatClient;
pub use error::WechatError;
