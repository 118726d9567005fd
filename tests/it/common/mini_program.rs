//! What a Mini Program page does beyond `wx.login`: the phone button's codes (from the
//! sandbox), `encryptedData` as WeChat makes it, and the mutations on the user's own identity.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::TestApp;

/// The official WXBizDataCrypt sample's Mini Program and its published vector.
pub mod sample {
    pub const APP_ID: &str = "wx4f4bc4dec97d474b";
    pub const OPENID: &str = "oGZUI0egBJY1zhBYw2KhdUfwVJJE";
    pub const SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    pub const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    pub const ENCRYPTED_DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
    pub const UNIONID: &str = "ocMvos6NjeKLIBqg5Mr9QjxrP1FA";
}

/// Encrypts like WeChat does for `encryptedData` with a session key.
pub fn wechat_encrypt(session_key: &[u8; 16], iv: &[u8; 16], data: &Value) -> String {
    let ct =
        wechat_identity::crypto::aes128_cbc_encrypt(session_key, iv, data.to_string().as_bytes())
            .unwrap();
    STANDARD.encode(ct)
}

impl TestApp {
    /// A phone-button code for `user` in `app_id` from the sandbox; `extra` may set
    /// `phoneNumber` and `countryCode`.
    pub async fn phone_code(&self, app_id: &str, user: &str, extra: Value) -> String {
        let mut body = json!({ "appId": app_id, "user": user });
        if let Value::Object(extra) = extra {
            body.as_object_mut().unwrap().extend(extra);
        }
        let (status, answer) = self.sandbox_post("/phone-codes", body).await;
        assert_eq!(status, 200, "{answer}");
        answer["code"].as_str().unwrap().to_owned()
    }

    /// The sandbox's count of `getuserphonenumber` calls for `app_id`: (calls, paid).
    pub async fn phone_calls(&self, app_id: &str) -> (u64, u64) {
        let stats = self.sandbox_stats(app_id).await;
        let calls = &stats["phoneNumberCalls"];
        (
            calls["calls"].as_u64().unwrap(),
            calls["paid"].as_u64().unwrap(),
        )
    }

    /// `linkPhoneNumber` as `token`; returns the whole response.
    pub async fn link_phone(&self, token: Option<&str>, app_id: &str, phone_code: &str) -> Value {
        self.gql(
            token,
            "mutation($i: LinkPhoneNumberInput!) { linkPhoneNumber(input: $i) {
                id unionid phoneNumber phoneNumberVerifiedAt } }",
            json!({ "i": { "appId": app_id, "phoneCode": phone_code } }),
        )
        .await
    }

    /// `decryptMiniProgramData` as `token`; returns the whole response.
    pub async fn decrypt_data(&self, token: &str, app_id: &str, data: &str, iv: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($i: DecryptMiniProgramDataInput!) { decryptMiniProgramData(input: $i) }",
            json!({ "i": { "appId": app_id, "encryptedData": data, "iv": iv } }),
        )
        .await
    }

    /// `updateMyProfile` as `token` with `input`; returns the whole response.
    pub async fn update_profile(&self, token: &str, input: Value) -> Value {
        self.gql(
            Some(token),
            "mutation($i: UpdateMyProfileInput!) { updateMyProfile(input: $i) {
                id nickname avatarUrl } }",
            json!({ "i": input }),
        )
        .await
    }
}
