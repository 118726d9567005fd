//! Logins: each way a person arrives, as a method on [`super::access::Public`] that exchanges
//! WeChat's code and records the sighting. A new login kind (a website's QR code, a mobile
//! app) is a file here.
//!
//! - [`mini_program`]: `wx.login`'s code, and the data decrypted with its session key;
//! - [`official_account`]: the OA web authorization, both flows (the callback and the ticket);
//! - [`oauth_state`]: the OA flows' one-time states and login tickets.

pub mod mini_program;
pub mod oauth_state;
pub mod official_account;
