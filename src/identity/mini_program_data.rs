//! What a logged-in Mini Program user does with their own identity later: open data that only
//! the stored `session_key` decrypts (share tickets, WeRun), with WeChat's `checksession`
//! telling a stale key (SESSION_KEY_EXPIRED: call `wx.login` and log in again) from tampered
//! data (BAD_USER_INPUT). Nothing is stored.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::access::SelfUser;
use super::{ClientInfo, IdentityError};
use crate::config::AppConfig;
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::user::UserRow;
use crate::rate_limit::Action;
use crate::types::AppKind;
use crate::wechat::mini_program::{DecryptError, SESSION_KEY_INVALID, decrypt_json};

/// The one answer to data that does not decrypt to WeChat's JSON with a current key, whatever
/// went wrong inside (see [`SelfUser::decrypt_mini_program_data`]).
pub const UNUSABLE_DATA: &str = "encryptedData and iv do not decrypt to WeChat's data with the \
     session_key on record, which is current: the data was altered or is not from this person's \
     session";

/// `encryptedData` longer than this (base64 characters) is refused before anything else.
pub const MAX_ENCRYPTED_DATA: usize = 8 * 1024;

/// `encryptedData` and its `iv`, as a Mini Program page hands them over.
#[derive(Clone, Copy, Debug)]
pub struct EncryptedData<'a> {
    /// The data (base64).
    pub data: &'a str,
    /// Its iv (base64 of 16 bytes).
    pub iv: &'a str,
}

impl EncryptedData<'_> {
    /// Checks the shape before any key is used: base64, at most [`MAX_ENCRYPTED_DATA`]
    /// characters, whole AES blocks, a 16-byte iv.
    pub fn check(&self) -> Result<(), IdentityError> {
        let bad = || {
            IdentityError::BadInput(format!(
                "encryptedData must be base64 of whole 16-byte blocks, at most \
                 {MAX_ENCRYPTED_DATA} characters, and iv base64 of 16 bytes"
            ))
        };
        if self.data.is_empty() || self.data.len() > MAX_ENCRYPTED_DATA || self.iv.len() > 64 {
            return Err(bad());
        }
        let data = STANDARD.decode(self.data).map_err(|_| bad())?;
        let iv = STANDARD.decode(self.iv).map_err(|_| bad())?;
        if data.is_empty() || data.len() % 16 != 0 || iv.len() != 16 {
            return Err(bad());
        }
        Ok(())
    }
}

impl SelfUser<'_> {
    /// Decrypts `data` with the session_key on record for the caller's identity in the Mini
    /// Program `app_id`; returns the JSON object after checking its watermark names the app.
    /// Takes from the login rate limits; calls WeChat (`checksession`) only when decryption
    /// fails, to tell a stale key from bad data.
    pub async fn decrypt_mini_program_data(
        &self,
        app_id: &str,
        data: EncryptedData<'_>,
        client: &ClientInfo,
    ) -> Result<serde_json::Value, IdentityError> {
        let app = self.app(app_id, AppKind::MiniProgram)?;
        data.check()?;
        self.rate_limit(Action::Login, client, Some(app_id)).await?;
        let identity = self.own_mini_program_identity(app).await?;
        let Some(sealed) = &identity.session_key else {
            return Err(IdentityError::SessionKeyExpired);
        };
        let context = format!("{}:{}", app.app_id, identity.openid);
        let key = self
            .sealer
            .open(sealed, context.as_bytes())
            .ok()
            .and_then(|k| String::from_utf8(k).ok())
            .ok_or_else(|| IdentityError::Internal("a sealed session_key does not open".into()))?;
        match decrypt_json(&key, data.data, data.iv, app.app_id.as_str()) {
            Ok(value) => Ok(value),
            Err(e @ DecryptError::WrongApp) => Err(IdentityError::BadInput(e.to_string())),
            // Bad padding and a good padding around no JSON answer alike, after the same
            // WeChat call: telling them apart would be a padding oracle on the session_key, with
            // which a caller could make ciphertext this mutation returns as genuine.
            Err(DecryptError::Undecryptable | DecryptError::NotUserData) => {
                let openid = identity.openid.as_str();
                let checked = self
                    .access_tokens
                    .call(app, |token| {
                        let (wechat, key) = (self.wechat.clone(), key.clone());
                        async move { wechat.check_session(&token, openid, &key).await }
                    })
                    .await;
                match checked {
                    Ok(()) => Err(IdentityError::BadInput(UNUSABLE_DATA.into())),
                    Err(IdentityError::Wechat(w)) if w.errcode() == Some(SESSION_KEY_INVALID) => {
                        Err(IdentityError::SessionKeyExpired)
                    }
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// The caller's identity in the Mini Program `app` (NOT_FOUND if they have none: they must
    /// log in there first).
    pub(super) async fn own_mini_program_identity(
        &self,
        app: &AppConfig,
    ) -> Result<MiniProgramIdentityRow, IdentityError> {
        let mut conn = self.db.conn().await?;
        let live = UserRow::find_live(&mut conn, self.user_id)
            .await?
            .map_or_else(|| self.user_id.clone(), |u| u.id);
        MiniProgramIdentityRow::of_user(&mut conn, &live, &app.app_id)
            .await?
            .ok_or_else(|| {
                IdentityError::NotFound(format!(
                    "you have no identity in the Mini Program `{}`: log in there first",
                    app.app_id
                ))
            })
    }
}
