//! A typed client for WeChat's API: the calls the identity service makes, WeChat's errors, the
//! crypto WeChat uses, the webhook protocol (signatures, AES, XML), the keyword rules of
//! template messages and the JS-SDK's ticket and signature.
//!
//! The base URL is configurable: production points at `https://api.weixin.qq.com`, tests and
//! sandbox mode at the sandbox (the `wechat-sandbox` crate), so the client code under test is the
//! code in production. This crate knows nothing of the service: an app is what
//! [`AppCredentials`] shows of it, and each call is reported to an optional [`CallObserver`].

pub mod app;
pub mod client;
pub mod crypto;
pub mod error;
pub mod html;
pub mod js_sdk;
pub mod keywords;
pub mod messages;
pub mod mini_program;
mod mirror;
pub mod official_account;
pub mod profile;
pub mod server_api;
pub mod webhook;

pub use app::{AppCredentials, AppKind};
pub use client::{CallObserver, CallReport, WechatClient};
pub use error::WechatError;
