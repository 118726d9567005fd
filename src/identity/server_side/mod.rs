//! The service's own side of WeChat's server API and pushes, on nobody's behalf but the
//! apps': what the job runner, the webhook route and admins start.
//!
//! - [`wechat_token`]: the token manager, one access token per app shared through the
//!   database (every server-API call goes through it);
//! - [`followers`] and [`follower_sync`]: an OA's followers, one by one and the whole list;
//! - [`webhook`]: WeChat's pushes, checked, stored and processed (`webhook_replay`: each
//!   signed query once).

pub mod follower_sync;
pub mod followers;
pub mod webhook;
mod webhook_replay;
pub mod wechat_token;
