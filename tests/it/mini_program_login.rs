//! Stories: a person logs into Mini Programs and is one user.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::common::mini_program::wechat_encrypt;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    alice_logs_into_two_bound_mini_programs_and_is_one_user,
    a_returning_user_gets_the_same_user_and_fresh_tokens,
    the_unbound_mini_program_gives_a_separate_user_until_a_unionid_links_it,
    encrypted_user_data_fills_the_profile,
    encrypted_data_from_another_app_is_refused_and_nothing_is_written,
    the_session_key_is_stored_sealed,
);

async fn alice_logs_into_two_bound_mini_programs_and_is_one_user(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = app.login_mp(MP_A, "alice").await;
    assert_eq!(first["newUser"], true);
    assert_eq!(first["tokenType"], "Bearer");
    assert_eq!(first["expiresIn"], 900);
    let alice = first["user"]["id"].as_str().unwrap().to_owned();
    let unionid = first["user"]["unionid"].as_str().unwrap().to_owned();
    assert_eq!(unionid.len(), 28);

    let me = app.me(first["accessToken"].as_str().unwrap()).await;
    assert_eq!(me["data"]["me"]["id"], alice.as_str());
    assert_eq!(
        me["data"]["me"]["miniProgramIdentities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let second = app.login_mp(MP_B, "alice").await;
    assert_eq!(second["newUser"], false);
    assert_eq!(
        second["user"]["id"],
        alice.as_str(),
        "same person, same user"
    );
    let me = app.me(second["accessToken"].as_str().unwrap()).await;
    let identities = me["data"]["me"]["miniProgramIdentities"]
        .as_array()
        .unwrap();
    let apps: Vec<&str> = identities
        .iter()
        .map(|i| i["appId"].as_str().unwrap())
        .collect();
    assert_eq!(apps, [MP_A, MP_B]);
    assert_ne!(
        identities[0]["openid"], identities[1]["openid"],
        "one openid per app"
    );
    assert!(
        identities
            .iter()
            .all(|i| i["unionid"] == unionid.as_str() && i["user"]["id"] == alice.as_str())
    );

    let bob = app.login_mp(MP_A, "bob").await;
    assert_eq!(bob["newUser"], true);
    assert_ne!(bob["user"]["id"], alice.as_str());
    assert_eq!(app.count("users").await, 2);
}

async fn a_returning_user_gets_the_same_user_and_fresh_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = app.login_mp(MP_A, "carol").await;
    let again = app.login_mp(MP_A, "carol").await;
    assert_eq!(again["newUser"], false);
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    assert_ne!(again["refreshToken"], first["refreshToken"]);
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("mini_program_identities").await, 1);
    assert_eq!(
        app.count("sessions").await,
        2,
        "each login opens its own session"
    );
}

async fn the_unbound_mini_program_gives_a_separate_user_until_a_unionid_links_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let bound = app.login_mp(MP_A, "dave").await;
    let dave = bound["user"]["id"].as_str().unwrap().to_owned();
    let unionid = bound["user"]["unionid"].as_str().unwrap().to_owned();

    let unbound = app.login_mp(MP_UNBOUND, "dave").await;
    assert_eq!(
        unbound["newUser"], true,
        "no unionid in an unbound app: WeChat can't tell it's dave"
    );
    assert!(unbound["user"]["unionid"].is_null());
    let other = unbound["user"]["id"].as_str().unwrap().to_owned();
    assert_ne!(other, dave);
    let old_token = unbound["accessToken"].as_str().unwrap().to_owned();

    // The app gets bound to the open platform: WeChat now sends dave's unionid for the same openid.
    let code = app
        .code_with(MP_UNBOUND, "dave", json!({ "unionid": unionid }))
        .await;
    let linked = app.login_mp_code(MP_UNBOUND, &code).await;
    let linked = &linked["data"]["loginWithMiniProgram"];
    assert_eq!(
        linked["user"]["id"],
        dave.as_str(),
        "the identity now belongs to dave"
    );
    assert_eq!(linked["newUser"], false);

    // The old user is a tombstone pointing at dave; its token resolves to dave.
    let me = app.me(&old_token).await;
    assert_eq!(me["data"]["me"]["id"], dave.as_str());
    assert_eq!(
        me["data"]["me"]["miniProgramIdentities"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let tomb = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($id: ID!) { user(id: $id) { id mergedInto { id } } }",
            json!({ "id": other }),
        )
        .await;
    assert_eq!(tomb["user"]["id"], other.as_str());
    assert_eq!(tomb["user"]["mergedInto"]["id"], dave.as_str());
    assert_eq!(app.count("merge_events").await, 1);
    let live = app
        .gql_ok(
            Some(ADMIN_KEY),
            "{ users { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        live["users"]["edges"].as_array().unwrap().len(),
        1,
        "one live user: dave"
    );
}

async fn encrypted_user_data_fills_the_profile(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = [0x42u8; 16];
    let iv = [0x17u8; 16];
    let code = app
        .code_with(MP_A, "erin", json!({ "sessionKey": STANDARD.encode(key) }))
        .await;
    let data = json!({
        "nickName": "Erin", "avatarUrl": "https://thirdwx.qlogo.cn/erin.png",
        "watermark": { "appid": MP_A, "timestamp": 1_700_000_000 }
    });
    let body = app.login_mp_input(json!({ "appId": MP_A, "code": code, "encryptedData": wechat_encrypt(&key, &iv, &data), "iv": STANDARD.encode(iv) })).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        body["data"]["loginWithMiniProgram"]["user"]["nickname"],
        "Erin"
    );

    // A later phone-number login fills the phone and keeps the nickname.
    let code = app
        .code_with(MP_A, "erin", json!({ "sessionKey": STANDARD.encode(key) }))
        .await;
    let phone = json!({ "phoneNumber": "+8613800138000", "purePhoneNumber": "13800138000", "countryCode": "86",
                        "watermark": { "appid": MP_A, "timestamp": 1_700_000_100 } });
    let body = app.login_mp_input(json!({ "appId": MP_A, "code": code, "encryptedData": wechat_encrypt(&key, &iv, &phone), "iv": STANDARD.encode(iv) })).await;
    let token = body["data"]["loginWithMiniProgram"]["accessToken"]
        .as_str()
        .unwrap();
    let me = app.me(token).await;
    assert_eq!(me["data"]["me"]["nickname"], "Erin");
    assert_eq!(me["data"]["me"]["phoneNumber"], "+8613800138000");

    // WeChat's legacy data as older clients send it (the number alone, no country code): the
    // same E.164, verified, replacing the old number (it is what WeChat vouches for now).
    let code = app
        .code_with(MP_A, "erin", json!({ "sessionKey": STANDARD.encode(key) }))
        .await;
    let phone =
        json!({ "phoneNumber": "13900139000", "watermark": { "appid": MP_A, "timestamp": 1 } });
    let body = app.login_mp_input(json!({ "appId": MP_A, "code": code, "encryptedData": wechat_encrypt(&key, &iv, &phone), "iv": STANDARD.encode(iv) })).await;
    let token = body["data"]["loginWithMiniProgram"]["accessToken"]
        .as_str()
        .unwrap();
    let me = app
        .gql_ok(
            Some(token),
            "{ me { phoneNumber phoneNumberVerifiedAt } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["phoneNumber"], "+8613900139000");
    assert!(me["me"]["phoneNumberVerifiedAt"].is_string(), "{me:#}");
}

async fn encrypted_data_from_another_app_is_refused_and_nothing_is_written(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = [0x42u8; 16];
    let iv = [0x17u8; 16];
    let code = app
        .code_with(MP_A, "frank", json!({ "sessionKey": STANDARD.encode(key) }))
        .await;
    let data = json!({ "nickName": "Frank", "watermark": { "appid": MP_B, "timestamp": 1 } });
    let body = app.login_mp_input(json!({ "appId": MP_A, "code": code, "encryptedData": wechat_encrypt(&key, &iv, &data), "iv": STANDARD.encode(iv) })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    // Encrypted with another session's key: also refused.
    let code = app.code_with(MP_A, "frank", json!({})).await;
    let data = json!({ "nickName": "Frank", "watermark": { "appid": MP_A, "timestamp": 1 } });
    let body = app.login_mp_input(json!({ "appId": MP_A, "code": code, "encryptedData": wechat_encrypt(&key, &iv, &data), "iv": STANDARD.encode(iv) })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(app.written().await.is_empty());
}

async fn the_session_key_is_stored_sealed(backend: Backend) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use wechat_identity::db::schema::mini_program_identities as mpi;

    let app = TestApp::start(backend).await;
    let session_key = STANDARD.encode([0x33u8; 16]);
    let code = app
        .code_with(MP_A, "gina", json!({ "sessionKey": session_key }))
        .await;
    let body = app.login_mp_code(MP_A, &code).await;
    assert!(body.get("errors").is_none());
    assert!(
        !body.to_string().contains(&session_key),
        "session_key must never be returned"
    );

    let q = mpi::table.select(mpi::session_key);
    let mut conn = app.db_conn().await;
    let stored: Option<String> =
        wechat_identity::with_conn!(&mut conn, c => q.first(c).await).unwrap();
    let stored = stored.expect("a session key is kept for later decryption");
    assert_ne!(stored, session_key);
    assert!(!stored.contains(&session_key));
    let openid = wechat_identity::wechat::sandbox::derive_id("openid", MP_A, "gina");
    // Sealed with the master key the service generated in its data dir on first start.
    let master =
        std::fs::read_to_string(app.dir.path().join("session-key-encryption.key")).unwrap();
    let sealer = wechat_identity::crypto::SecretBox::new(
        &wechat_identity::crypto::key_from_base64(&master).unwrap(),
    );
    let opened = sealer
        .open(&stored, format!("{MP_A}:{openid}").as_bytes())
        .unwrap();
    assert_eq!(opened, session_key.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_real_apps_configured_the_sandbox_is_off_and_the_client_uses_the_configured_url() {
    use wechat_identity::config::{AppConfig, Secret, sandbox_demo_apps};
    use wechat_identity::wechat::sandbox::{CodeRequest, Sandbox};

    // A stand-alone fake WeChat on its own loopback port plays the real API.
    let apps: Vec<AppConfig> = sandbox_demo_apps();
    let wechat = Sandbox::new(&apps);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wechat_url = wechat.spawn(listener);
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.sandbox = None;
        c.apps = apps.clone();
        c.wechat.api_base_url = wechat_url.clone();
        c.wechat.session_key_encryption_key = Some(Secret::new(STANDARD.encode([9u8; 32])));
    })
    .await;
    let res = app
        .http
        .post(format!("{}/sandbox/wechat/codes", app.base))
        .json(&json!({ "appId": MP_A, "user": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "no sandbox control endpoints with real apps configured"
    );
    let code = wechat.issue_code(&CodeRequest::new(MP_A, "alice")).unwrap();
    let body = app.login_mp_code(MP_A, &code).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["loginWithMiniProgram"]["newUser"], true);
}
