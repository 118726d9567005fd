//! Phone numbers and `encryptedData`, without HTTP.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::crypto::tests::{SAMPLE_ENCRYPTED_DATA, SAMPLE_IV, SAMPLE_SESSION_KEY};

const SAMPLE_APP: &str = "wx4f4bc4dec97d474b";

/// `plain` encrypted as WeChat would with a fixed key and iv; the three base64 strings.
fn encrypted(plain: &str) -> (String, String, String) {
    let (key, iv) = ([7u8; 16], [1u8; 16]);
    let data = crypto::aes128_cbc_encrypt(&key, &iv, plain.as_bytes()).unwrap();
    (
        STANDARD.encode(key),
        STANDARD.encode(data),
        STANDARD.encode(iv),
    )
}

#[test]
fn phone_info_takes_the_country_code_as_a_string_or_a_number_and_hides_the_numbers() {
    for country_code in [r#""86""#, "86"] {
        let reply = format!(
            r#"{{"errcode":0,"errmsg":"ok","phone_info":{{"phoneNumber":"13800138000",
            "purePhoneNumber":"13800138000","countryCode":{country_code},
            "watermark":{{"timestamp":1637744274,"appid":"wxa1"}}}}}}"#
        );
        let info = serde_json::from_str::<PhoneReply>(&reply)
            .unwrap()
            .phone_info;
        assert_eq!(info.country_code, "86");
        assert_eq!(info.pure_phone_number, "13800138000");
        assert_eq!(info.watermark.appid, "wxa1");
        let debug = format!("{info:?}");
        assert!(!debug.contains("138"), "{debug}");
        assert!(debug.contains("86") && debug.contains("wxa1"), "{debug}");
    }
    let without_watermark = r#"{"phoneNumber":"1","purePhoneNumber":"1","countryCode":"86"}"#;
    assert!(serde_json::from_str::<PhoneInfo>(without_watermark).is_err());
}

#[test]
fn the_published_sample_decrypts_for_its_app_only() {
    let data = decrypt_user_data(
        SAMPLE_SESSION_KEY,
        SAMPLE_ENCRYPTED_DATA,
        SAMPLE_IV,
        SAMPLE_APP,
    )
    .unwrap();
    assert_eq!(data.nick_name.as_deref(), Some("Band"));
    assert_eq!(
        data.union_id.as_deref(),
        Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA")
    );
    assert_eq!(data.phone_number, None);
    let json = decrypt_json(
        SAMPLE_SESSION_KEY,
        SAMPLE_ENCRYPTED_DATA,
        SAMPLE_IV,
        SAMPLE_APP,
    )
    .unwrap();
    assert_eq!(json["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    assert_eq!(json["city"], "Guangzhou");
    let other = "wxsandboxminiapp01";
    assert!(matches!(
        decrypt_json(SAMPLE_SESSION_KEY, SAMPLE_ENCRYPTED_DATA, SAMPLE_IV, other),
        Err(DecryptError::WrongApp)
    ));
    assert!(matches!(
        decrypt_user_data(SAMPLE_SESSION_KEY, SAMPLE_ENCRYPTED_DATA, SAMPLE_IV, other),
        Err(DecryptError::WrongApp)
    ));
}

#[test]
fn phone_numbers_in_encrypted_data_are_read_and_hidden_from_debug() {
    let (key, data, iv) = encrypted(
        r#"{"phoneNumber":"+1 2025550123","purePhoneNumber":"2025550123","countryCode":1,
        "watermark":{"appid":"wxa1","timestamp":1}}"#,
    );
    let user = decrypt_user_data(&key, &data, &iv, "wxa1").unwrap();
    assert_eq!(user.phone_number.as_deref(), Some("+1 2025550123"));
    assert_eq!(user.pure_phone_number.as_deref(), Some("2025550123"));
    assert_eq!(user.country_code.as_deref(), Some("1"));
    let debug = format!("{user:?}");
    assert!(!debug.contains("2025550123"), "{debug}");
    let (key, data, iv) = encrypted(r#"{"countryCode":"852","watermark":{"appid":"wxa1"}}"#);
    let user = decrypt_user_data(&key, &data, &iv, "wxa1").unwrap();
    assert_eq!(user.country_code.as_deref(), Some("852"));
    assert_eq!(user.phone_number, None);
}

#[test]
fn anything_but_a_watermarked_object_is_not_user_data() {
    for plain in [
        r#"["watermark"]"#,
        r#""wxa1""#,
        r#"{"nickName":"x"}"#,
        r#"{"watermark":{"appid":1}}"#,
        "not json",
    ] {
        let (key, data, iv) = encrypted(plain);
        assert!(
            matches!(
                decrypt_json(&key, &data, &iv, "wxa1"),
                Err(DecryptError::NotUserData)
            ),
            "{plain}"
        );
    }
    // A watermarked object whose fields are not what WeChat sends.
    let (key, data, iv) = encrypted(r#"{"nickName":7,"watermark":{"appid":"wxa1"}}"#);
    assert!(decrypt_json(&key, &data, &iv, "wxa1").is_ok());
    assert!(matches!(
        decrypt_user_data(&key, &data, &iv, "wxa1"),
        Err(DecryptError::NotUserData)
    ));
    assert!(matches!(
        decrypt_json(&key, "not base64!", &iv, "wxa1"),
        Err(DecryptError::Undecryptable)
    ));
}
