//! Mini Program calls: `jscode2session`, and decrypting `encryptedData` with the session_key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::{AppCredentials, WechatClient, WechatError, crypto};

/// What `jscode2session` returns.
#[derive(Clone, Deserialize)]
pub struct Code2Session {
    /// The person's openid in this Mini Program.
    pub openid: String,
    /// The session key (base64 of 16 bytes); a secret.
    pub session_key: String,
    /// The unionid, when the Mini Program is bound to an Open Platform account.
    pub unionid: Option<String>,
}

impl std::fmt::Debug for Code2Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code2Session")
            .field("openid", &self.openid)
            .field("session_key", &"<redacted>")
            .field("unionid", &self.unionid)
            .finish()
    }
}

impl WechatClient {
    /// Exchanges a `wx.login` code: `GET /sns/jscode2session`.
    pub async fn code_to_session(
        &self,
        app: &dyn AppCredentials,
        code: &str,
    ) -> Result<Code2Session, WechatError> {
        self.exchange_code(
            "jscode2session",
            "/sns/jscode2session",
            app,
            ("js_code", code),
        )
        .await
    }
}

/// Why `encryptedData` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// Not base64, wrong lengths, or does not decrypt with this session's key.
    #[error("encryptedData does not decrypt with this login's session key and iv")]
    Undecryptable,
    /// Decrypted, but not the JSON WeChat produces.
    #[error("encryptedData is not WeChat user data")]
    NotUserData,
    /// The watermark names another app: the data was produced for someone else.
    #[error("encryptedData was produced for another app")]
    WrongApp,
}

/// What a decrypted `encryptedData` may carry (user info or phone number).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserData {
    /// `getUserInfo` nickname.
    pub nick_name: Option<String>,
    /// `getUserInfo` avatar.
    pub avatar_url: Option<String>,
    /// `getUserInfo` unionid (when jscode2session had none).
    pub union_id: Option<String>,
    /// `getPhoneNumber`: the number with country code.
    pub phone_number: Option<String>,
    /// Which app the data was produced for.
    pub watermark: Option<Watermark>,
}

/// The watermark WeChat puts in every `encryptedData`.
#[derive(Clone, Debug, Deserialize)]
pub struct Watermark {
    /// The app id.
    pub appid: String,
    /// When it was produced.
    #[serde(default)]
    pub timestamp: i64,
}

/// Decrypts `encryptedData` (AES-128-CBC, key = session_key, both base64) and checks the
/// watermark names `app_id`.
pub fn decrypt_user_data(
    session_key_b64: &str,
    encrypted_b64: &str,
    iv_b64: &str,
    app_id: &str,
) -> Result<UserData, DecryptError> {
    let decode = |b64: &str| {
        STANDARD
            .decode(b64)
            .map_err(|_| DecryptError::Undecryptable)
    };
    let (key, iv, data) = (
        decode(session_key_b64)?,
        decode(iv_b64)?,
        decode(encrypted_b64)?,
    );
    let plain =
        crypto::aes128_cbc_decrypt(&key, &iv, &data).map_err(|_| DecryptError::Undecryptable)?;
    let parsed: UserData = serde_json::from_slice(&plain).map_err(|_| DecryptError::NotUserData)?;
    match &parsed.watermark {
        Some(w) if w.appid == app_id => Ok(parsed),
        Some(_) => Err(DecryptError::WrongApp),
        None => Err(DecryptError::NotUserData),
    }
}
