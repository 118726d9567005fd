//! The service's own side of WeChat's server API and pushes, on nobody's behalf but the
//! apps': what the job runner, the webhook route, admins and Official Account pages start.
//!
//! - [`wechat_token`]: the token manager, one access token (and an Official Account's
//!   `jsapi_ticket`) per app shared through the database (every server-API call goes through
//!   it);
//! - [`js_sdk`]: JS-SDK signatures (`wx.config`) for Official Account pages, anyone may ask;
//! - [`followers`] and [`follower_sync`]: an OA's followers, one by one and the whole list;
//! - [`webhook`]: WeChat's pushes, checked, stored and processed (`webhook_replay`: each
//!   signed query once).

pub mod follower_sync;
pub mod followers;
pub mod js_sdk;
pub mod webhook;
mod webhook_replay;
pub mod wechat_token;
