//! Stories: data a Mini Program page opens later with the stored session_key, and the profile a
//! person types in (WeChat hands out only placeholders since 2022-11).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::common::mini_program::{sample, wechat_encrypt};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    the_published_sample_replays_through_login_and_later_decryption,
    a_stale_session_key_asks_for_a_new_login,
    a_person_sets_their_own_nickname_and_avatar,
    placeholders_never_replace_a_profile,
);

async fn the_published_sample_replays_through_login_and_later_decryption(backend: Backend) {
    let app = TestApp::start(backend).await;
    let code = app
        .code_with(
            sample::APP_ID,
            "band",
            json!({ "openid": sample::OPENID, "sessionKey": sample::SESSION_KEY }),
        )
        .await;
    let body = app
        .login_mp_input(json!({ "appId": sample::APP_ID, "code": code,
            "encryptedData": sample::ENCRYPTED_DATA, "iv": sample::IV }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let login = &body["data"]["loginWithMiniProgram"];
    assert_eq!(login["user"]["unionid"], sample::UNIONID, "from the data");
    assert_eq!(login["user"]["nickname"], "Band");
    let token = login["accessToken"].as_str().unwrap();

    let body = app
        .decrypt_data(token, sample::APP_ID, sample::ENCRYPTED_DATA, sample::IV)
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let data = &body["data"]["decryptMiniProgramData"];
    assert_eq!(data["openId"], sample::OPENID);
    assert_eq!(data["city"], "Guangzhou");
    assert_eq!(data["watermark"]["appid"], sample::APP_ID);

    // Altered data: the key on record is current (WeChat's checksession says so), so it is
    // the data that is wrong. (The first check fetches the app's access token: the shared
    // token is stored, nothing else; the second writes nothing at all.)
    let mut altered = STANDARD.decode(sample::ENCRYPTED_DATA).unwrap();
    altered[40] ^= 0x5a;
    let altered = STANDARD.encode(&altered);
    let body = app
        .decrypt_data(token, sample::APP_ID, &altered, sample::IV)
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    let before = app.written().await;
    let body = app
        .decrypt_data(token, sample::APP_ID, &altered, sample::IV)
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    // Data that decrypts (good padding) to something that is not WeChat's JSON gets the very
    // same answer as data that does not decrypt at all: no padding oracle.
    let key: [u8; 16] = STANDARD
        .decode(sample::SESSION_KEY)
        .unwrap()
        .try_into()
        .unwrap();
    let iv: [u8; 16] = STANDARD.decode(sample::IV).unwrap().try_into().unwrap();
    let not_json = wechat_encrypt(&key, &iv, &json!("just a string, no watermark"));
    let other = app
        .decrypt_data(token, sample::APP_ID, &not_json, sample::IV)
        .await;
    assert_eq!(error_code(&other), "BAD_USER_INPUT");
    assert_eq!(other["errors"][0]["message"], body["errors"][0]["message"]);
    // Not base64, a bad iv, more than 8 KiB, another app's data: refused the same way.
    let huge = STANDARD.encode(vec![0u8; 8 * 1024]);
    for (data, iv) in [
        ("not base64!", sample::IV),
        (sample::ENCRYPTED_DATA, "AAAA"),
        (huge.as_str(), sample::IV),
    ] {
        let body = app.decrypt_data(token, sample::APP_ID, data, iv).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{data:.20} {iv}");
    }
    let body = app
        .decrypt_data(token, MP_A, sample::ENCRYPTED_DATA, sample::IV)
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "no identity there: {body:#}"
    );
    let body = app
        .login_mp_input(json!({ "appId": MP_A, "code": app.code(MP_A, "x").await,
            "encryptedData": huge, "iv": sample::IV }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "logins take 8 KiB too");
    assert_eq!(app.count("users").await, 1);
    // Anonymous callers have no session_key.
    let body = app
        .gql(
            None,
            "mutation($i: DecryptMiniProgramDataInput!) { decryptMiniProgramData(input: $i) }",
            json!({ "i": { "appId": sample::APP_ID, "encryptedData": sample::ENCRYPTED_DATA, "iv": sample::IV } }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(app.written().await, before);
}

async fn a_stale_session_key_asks_for_a_new_login(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (old_key, new_key, iv) = ([0x11u8; 16], [0x22u8; 16], [0x33u8; 16]);
    let code = app
        .code_with(
            MP_A,
            "erin",
            json!({ "sessionKey": STANDARD.encode(old_key) }),
        )
        .await;
    let login = app.login_mp_code(MP_A, &code).await;
    let token = login["data"]["loginWithMiniProgram"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // The page called wx.login again (a new session_key at WeChat) without logging in with it,
    // then got data encrypted with the new key.
    let code = app
        .code_with(
            MP_A,
            "erin",
            json!({ "sessionKey": STANDARD.encode(new_key) }),
        )
        .await;
    let data = json!({ "openGId": "group-1", "watermark": { "appid": MP_A, "timestamp": 1 } });
    let encrypted = wechat_encrypt(&new_key, &iv, &data);
    let body = app
        .decrypt_data(&token, MP_A, &encrypted, &STANDARD.encode(iv))
        .await;
    assert_eq!(error_code(&body), "SESSION_KEY_EXPIRED", "{body:#}");

    // Logging in with the new code stores the new key: the same data opens.
    let body = app.login_mp_code(MP_A, &code).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let body = app
        .decrypt_data(&token, MP_A, &encrypted, &STANDARD.encode(iv))
        .await;
    assert_eq!(
        body["data"]["decryptMiniProgramData"]["openGId"], "group-1",
        "{body:#}"
    );
}

const AVATAR: &str = "https://cdn.example.com/avatars/erin.png";

async fn a_person_sets_their_own_nickname_and_avatar(backend: Backend) {
    let app = TestApp::start(backend).await;
    let login = app.login_mp(MP_A, "erin").await;
    let token = login["accessToken"].as_str().unwrap();
    let body = app
        .update_profile(token, json!({ "nickname": "小爱", "avatarUrl": AVATAR }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["updateMyProfile"]["nickname"], "小爱");
    assert_eq!(body["data"]["updateMyProfile"]["avatarUrl"], AVATAR);
    // One field at a time; the other stays.
    let body = app
        .update_profile(token, json!({ "nickname": "Erin" }))
        .await;
    assert_eq!(body["data"]["updateMyProfile"]["nickname"], "Erin");
    assert_eq!(body["data"]["updateMyProfile"]["avatarUrl"], AVATAR);

    let before = app.written().await;
    for bad in [
        json!({}),
        json!({ "nickname": "" }),
        json!({ "nickname": "   " }),
        json!({ "nickname": "x".repeat(65) }),
        json!({ "nickname": "line\nbreak" }),
        json!({ "avatarUrl": "http://cdn.example.com/a.png" }),
        json!({ "avatarUrl": "javascript:alert(1)" }),
        json!({ "avatarUrl": format!("https://cdn.example.com/{}", "a".repeat(1024)) }),
    ] {
        let body = app.update_profile(token, bad.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{bad}");
    }
    let body = app
        .gql(
            None,
            "mutation { updateMyProfile(input: {nickname: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app
        .gql(
            Some(ADMIN_KEY),
            "mutation { updateMyProfile(input: {nickname: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    // One profile update per request: aliases do not make one request many writes.
    let body = app
        .gql(
            Some(token),
            "mutation { a: updateMyProfile(input: {nickname: \"a\"}) { id }
                        b: updateMyProfile(input: {nickname: \"b\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert_eq!(app.written().await, before);
    // 64 characters (not bytes) is fine.
    let body = app
        .update_profile(token, json!({ "nickname": "爱".repeat(64) }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
}

const PLACEHOLDER_AVATAR: &str = "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132";

async fn placeholders_never_replace_a_profile(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (key, iv) = ([0x42u8; 16], [0x17u8; 16]);
    let placeholder = json!({ "nickName": "微信用户", "avatarUrl": PLACEHOLDER_AVATAR,
        "watermark": { "appid": MP_A, "timestamp": 1 } });
    let login_with_placeholder = async || {
        let code = app
            .code_with(MP_A, "gina", json!({ "sessionKey": STANDARD.encode(key) }))
            .await;
        let body = app
            .login_mp_input(json!({ "appId": MP_A, "code": code,
                "encryptedData": wechat_encrypt(&key, &iv, &placeholder), "iv": STANDARD.encode(iv) }))
            .await;
        assert!(body.get("errors").is_none(), "{body:#}");
        body["data"]["loginWithMiniProgram"].clone()
    };
    // A placeholder fills nothing: the profile stays empty, for the person to fill in.
    let first = login_with_placeholder().await;
    assert!(first["user"]["nickname"].is_null(), "{first:#}");
    assert!(first["user"]["avatarUrl"].is_null());
    let token = first["accessToken"].as_str().unwrap();
    let body = app
        .update_profile(token, json!({ "nickname": "Gina", "avatarUrl": AVATAR }))
        .await;
    assert_eq!(body["data"]["updateMyProfile"]["nickname"], "Gina");
    // Neither a later sighting nor the mutation puts a placeholder over it.
    let again = login_with_placeholder().await;
    assert_eq!(again["user"]["nickname"], "Gina");
    assert_eq!(again["user"]["avatarUrl"], AVATAR);
    let body = app
        .update_profile(
            token,
            json!({ "nickname": "微信用户", "avatarUrl": PLACEHOLDER_AVATAR }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["updateMyProfile"]["nickname"], "Gina");
    assert_eq!(body["data"]["updateMyProfile"]["avatarUrl"], AVATAR);
}
