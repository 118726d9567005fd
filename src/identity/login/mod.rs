//! Logins: each way a person arrives, as a method on [`super::access::Public`] that exchanges
//! WeChat's code and records the sighting. A new login kind is a file here.
//!
//! - [`mini_program`]: `wx.login`'s code, and the data decrypted with its session key;
//! - [`official_account`]: the OA web authorization, both flows (the callback and the ticket);
//! - [`website`]: a website's QR-code login, embedded or server-driven (the OA flows' code);
//! - [`mobile_app`]: a mobile app's WeChat SDK login;
//! - `oauth`: the code exchange and profile the last three share;
//! - [`oauth_state`]: the browser flows' one-time states and login tickets.

pub mod mini_program;
pub mod mobile_app;
mod oauth;
pub mod oauth_state;
pub mod official_account;
pub mod website;

/// USER_DISABLED for a disabled user, before any token or ticket is issued (the caller's
/// transaction then stores nothing of the login).
pub(in crate::identity) fn refuse_disabled(
    user: &crate::db::models::user::UserRow,
) -> Result<(), super::IdentityError> {
    if user.deleted_at.is_some() {
        return Err(super::IdentityError::Conflict(
            "the person was deleted while logging in; log in again".into(),
        ));
    }
    match user.disabled_at {
        Some(_) => Err(super::IdentityError::UserDisabled),
        None => Ok(()),
    }
}
