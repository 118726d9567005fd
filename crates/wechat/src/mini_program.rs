//! Mini Program calls: `jscode2session`, the phone number of a `getPhoneNumber` code
//! (`/wxa/business/getuserphonenumber`), the session-key check (`/wxa/checksession`), and
//! decrypting `encryptedData` with the session_key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{AppCredentials, WechatClient, WechatError, crypto};

/// WeChat's errcode for a `checksession` signature that does not match the person's current
/// session key (the key is stale: the person called `wx.login` again since). Mapped to
/// [`WechatError::Rejected`] like any errcode without a variant of its own.
pub const SESSION_KEY_INVALID: i64 = 87009;

/// WeChat's errcode when the app's paid quota of `getuserphonenumber` is used up (each number
/// handed out costs money). Mapped to [`WechatError::Rejected`].
pub const PHONE_QUOTA_EXHAUSTED: i64 = 1_400_001;

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

/// The person's phone number, as `getuserphonenumber` returns it (its `phone_info`). The numbers
/// are personal data: [`Debug`] does not show them.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneInfo {
    /// The number as the person sees it: with the country code outside China (`+1 2025550123`).
    pub phone_number: String,
    /// The number without the country code.
    pub pure_phone_number: String,
    /// The country code, digits only (`86`); WeChat sends a string or a number.
    #[serde(deserialize_with = "country_code")]
    pub country_code: String,
    /// Which app the number was handed out for, and when.
    pub watermark: Watermark,
}

impl std::fmt::Debug for PhoneInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneInfo")
            .field("phone_number", &"<redacted>")
            .field("pure_phone_number", &"<redacted>")
            .field("country_code", &self.country_code)
            .field("watermark", &self.watermark)
            .finish()
    }
}

#[derive(Deserialize)]
struct PhoneReply {
    phone_info: PhoneInfo,
}

#[derive(Serialize)]
struct PhoneCode<'a> {
    code: &'a str,
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

    /// Exchanges the code of a `getPhoneNumber` button for the person's phone number:
    /// `POST /wxa/business/getuserphonenumber` with the app's access token. Single use, valid
    /// 5 minutes (40029 otherwise); a paid call ([`PHONE_QUOTA_EXHAUSTED`] when the quota is
    /// used up).
    pub async fn phone_number(
        &self,
        access_token: &str,
        code: &str,
    ) -> Result<PhoneInfo, WechatError> {
        let reply: PhoneReply = self
            .post_json(
                "getuserphonenumber",
                "/wxa/business/getuserphonenumber",
                &[("access_token", access_token)],
                &PhoneCode { code },
            )
            .await?;
        Ok(reply.phone_info)
    }

    /// Asks WeChat whether `session_key` is still the current session key of `openid` in the
    /// app of `access_token`: `GET /wxa/checksession`, signed with
    /// [`crypto::session_signature`]. `Ok` if it is; [`SESSION_KEY_INVALID`] if not (a newer
    /// `wx.login` replaced it). The key itself is never sent.
    pub async fn check_session(
        &self,
        access_token: &str,
        openid: &str,
        session_key: &str,
    ) -> Result<(), WechatError> {
        let signature = crypto::session_signature(session_key);
        let _: serde::de::IgnoredAny = self
            .get(
                "checksession",
                "/wxa/checksession",
                &[
                    ("access_token", access_token),
                    ("signature", &signature),
                    ("openid", openid),
                    ("sig_method", "hmac_sha256"),
                ],
            )
            .await?;
        Ok(())
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

/// What a decrypted `encryptedData` may carry (user info or phone number). The phone numbers
/// are personal data: [`Debug`] does not show them.
#[derive(Clone, Default, Deserialize)]
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
    /// `getPhoneNumber`: the number without country code.
    pub pure_phone_number: Option<String>,
    /// `getPhoneNumber`: the country code, digits only (WeChat sends a string or a number).
    #[serde(default, deserialize_with = "optional_country_code")]
    pub country_code: Option<String>,
    /// Which app the data was produced for.
    pub watermark: Option<Watermark>,
}

impl std::fmt::Debug for UserData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("UserData")
            .field("nick_name", &self.nick_name)
            .field("avatar_url", &self.avatar_url)
            .field("union_id", &self.union_id)
            .field("phone_number", &redacted(&self.phone_number))
            .field("pure_phone_number", &redacted(&self.pure_phone_number))
            .field("country_code", &self.country_code)
            .field("watermark", &self.watermark)
            .finish()
    }
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

/// A country code as WeChat sends it: documented as a string, a number in its own example.
#[derive(Deserialize)]
#[serde(untagged)]
enum CountryCode {
    Text(String),
    Number(u64),
}

impl From<CountryCode> for String {
    fn from(code: CountryCode) -> Self {
        match code {
            CountryCode::Text(s) => s,
            CountryCode::Number(n) => n.to_string(),
        }
    }
}

fn country_code<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    CountryCode::deserialize(d).map(String::from)
}

fn optional_country_code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<CountryCode>::deserialize(d).map(|code| code.map(String::from))
}

/// Decrypts `encryptedData` (AES-128-CBC, key = session_key, both base64) into the JSON object
/// WeChat encrypted, and checks its watermark names `app_id` ([`DecryptError::WrongApp`]
/// otherwise; [`DecryptError::NotUserData`] for anything but an object with a watermark).
pub fn decrypt_json(
    session_key_b64: &str,
    encrypted_b64: &str,
    iv_b64: &str,
    app_id: &str,
) -> Result<serde_json::Value, DecryptError> {
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
    let parsed: serde_json::Value =
        serde_json::from_slice(&plain).map_err(|_| DecryptError::NotUserData)?;
    let watermark_app = parsed
        .as_object()
        .and_then(|o| o.get("watermark"))
        .and_then(|w| w.get("appid"))
        .and_then(serde_json::Value::as_str);
    match watermark_app {
        Some(appid) if appid == app_id => Ok(parsed),
        Some(_) => Err(DecryptError::WrongApp),
        None => Err(DecryptError::NotUserData),
    }
}

/// Decrypts `encryptedData` like [`decrypt_json`] and reads it as [`UserData`].
pub fn decrypt_user_data(
    session_key_b64: &str,
    encrypted_b64: &str,
    iv_b64: &str,
    app_id: &str,
) -> Result<UserData, DecryptError> {
    let json = decrypt_json(session_key_b64, encrypted_b64, iv_b64, app_id)?;
    serde_json::from_value(json).map_err(|_| DecryptError::NotUserData)
}

#[cfg(test)]
mod tests;
