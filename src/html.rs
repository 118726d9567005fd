//! Escaping for the few HTML pages the service serves (login errors, the sandbox login demo): the
//! WeChat client crate's, which the sandbox's approval page uses too.

pub use wechat_client::html::escape;
