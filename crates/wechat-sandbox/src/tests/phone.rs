//! Faked phone numbers and session checks, over the sandbox's router as the service calls them
//! (and once through the real client over HTTP).

use std::time::Duration;

use serde_json::{Value, json};
use wechat_client::WechatClient;
use wechat_client::crypto::session_signature;
use wechat_client::mini_program::{PHONE_QUOTA_EXHAUSTED, SESSION_KEY_INVALID};

use super::messages::{MP, OA, access_token, call, post};
use crate::{
    CodeRequest, SAMPLE_MINI_PROGRAM, Sandbox, default_phone_number, demo_apps, derive_id,
};

const MP_B: &str = "wxsandboxminiapp02";

/// A phone code from `POST /phone-codes` for `body`.
async fn phone_code(sb: &Sandbox, body: Value) -> String {
    let (status, answer) = post(sb, "/phone-codes", body).await;
    assert_eq!(status, 200, "{answer}");
    answer["code"].as_str().unwrap().to_owned()
}

/// `getuserphonenumber` with `token` and `code`: WeChat's answer (always HTTP 200).
async fn exchange(sb: &Sandbox, token: &str, code: &str) -> Value {
    let uri = format!("/wxa/business/getuserphonenumber?access_token={token}");
    let (status, answer) = post(sb, &uri, json!({ "code": code })).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn stats(sb: &Sandbox, app_id: &str) -> Value {
    let (status, stats) = call(sb, "GET", &format!("/stats?appId={app_id}"), None).await;
    assert_eq!(status, 200, "{stats}");
    stats
}

/// `checksession` for `openid` signed with `key`: WeChat's answer.
async fn check(sb: &Sandbox, token: &str, openid: &str, key: &str, method: &str) -> Value {
    let uri = format!(
        "/wxa/checksession?access_token={token}&signature={}&openid={openid}&sig_method={method}",
        session_signature(key)
    );
    let (status, answer) = call(sb, "GET", &uri, None).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Issues a Mini Program login code for `user` with this session key (a `wx.login`).
fn login(sb: &Sandbox, app_id: &str, user: &str, session_key: &str) {
    let mut req = CodeRequest::new(app_id, user);
    req.session_key = Some(session_key.into());
    sb.issue_code(&req).unwrap();
}

#[tokio::test]
async fn a_phone_code_gives_the_number_once_to_its_app_only() {
    let sb = Sandbox::new(&demo_apps());
    let (token, token_b) = (access_token(&sb, MP).await, access_token(&sb, MP_B).await);
    let code = phone_code(&sb, json!({ "appId": MP, "user": "alice" })).await;
    assert_eq!(code.len(), 64);

    // Another Mini Program's token: 40029, and the code stays good for its own app.
    let answer = exchange(&sb, &token_b, &code).await;
    assert_eq!(answer["errcode"], 40029, "{answer}");
    let answer = exchange(&sb, &token, &code).await;
    assert_eq!(answer["errcode"], 0, "{answer}");
    let info = &answer["phone_info"];
    let alice = default_phone_number("alice");
    assert_eq!(info["phoneNumber"], alice.as_str());
    assert_eq!(info["purePhoneNumber"], alice.as_str());
    assert_eq!(info["countryCode"], "86");
    assert_eq!(info["watermark"]["appid"], MP);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((info["watermark"]["timestamp"].as_i64().unwrap() - now).abs() <= 5);

    // Single use; unknown codes and missing ones are refused too.
    let answer = exchange(&sb, &token, &code).await;
    assert_eq!(answer["errcode"], 40029, "{answer}");
    assert_eq!(exchange(&sb, &token, "nonsense").await["errcode"], 40029);
    let uri = format!("/wxa/business/getuserphonenumber?access_token={token}");
    let (_, answer) = post(&sb, &uri, json!({})).await;
    assert_eq!(answer["errcode"], 41008, "{answer}");
    let (_, answer) = call(&sb, "POST", &uri, Some("{".into())).await;
    assert_eq!(answer["errcode"], 47001, "{answer}");

    // An Official Account's token, or none: refused before the code is looked at (uncounted).
    let code = phone_code(&sb, json!({ "appId": MP, "user": "alice" })).await;
    let oa_token = access_token(&sb, OA).await;
    assert_eq!(exchange(&sb, &oa_token, &code).await["errcode"], 48001);
    assert_eq!(exchange(&sb, "", &code).await["errcode"], 41001);
    assert_eq!(exchange(&sb, "sbx_forged", &code).await["errcode"], 40001);

    // Expired after 5 minutes on the sandbox clock.
    sb.advance_clock(Duration::from_secs(301)).unwrap();
    let token = access_token(&sb, MP).await;
    assert_eq!(exchange(&sb, &token, &code).await["errcode"], 40029);

    // Every call with a valid token counts; only the number handed out is paid.
    let s = stats(&sb, MP).await;
    assert_eq!(
        s["phoneNumberCalls"],
        json!({ "calls": 6, "paid": 1 }),
        "{s}"
    );
    let s = stats(&sb, MP_B).await;
    assert_eq!(s["phoneNumberCalls"], json!({ "calls": 1, "paid": 0 }));
    assert_eq!(sb.phone_number_calls(OA).calls, 0);
}

#[tokio::test]
async fn each_user_has_a_number_of_their_own_unless_the_request_names_one() {
    let sb = Sandbox::new(&demo_apps());
    let alice = default_phone_number("alice");
    assert_eq!(alice, default_phone_number("alice"));
    assert_ne!(alice, default_phone_number("bob"));
    for n in [&alice, &default_phone_number("bob")] {
        assert!(n.len() == 11 && n.starts_with("13"), "{n}");
        assert!(n.bytes().all(|b| b.is_ascii_digit()), "{n}");
    }
    // The same number in every Mini Program.
    for app in [MP, MP_B] {
        let token = access_token(&sb, app).await;
        let code = phone_code(&sb, json!({ "appId": app, "user": "alice" })).await;
        let answer = exchange(&sb, &token, &code).await;
        assert_eq!(answer["phone_info"]["purePhoneNumber"], alice.as_str());
    }

    let token = access_token(&sb, MP).await;
    let cases = [
        (
            json!({ "countryCode": "1", "phoneNumber": "2025550123" }),
            "+1 2025550123",
            "2025550123",
            "1",
        ),
        (
            json!({ "countryCode": "852" }),
            &*format!("+852 {alice}"),
            &*alice,
            "852",
        ),
        (
            json!({ "phoneNumber": "13900000000" }),
            "13900000000",
            "13900000000",
            "86",
        ),
    ];
    for (overrides, number, pure, country) in cases {
        let mut body = json!({ "appId": MP, "user": "alice" });
        body.as_object_mut()
            .unwrap()
            .extend(overrides.as_object().unwrap().clone());
        let code = phone_code(&sb, body).await;
        let info = exchange(&sb, &token, &code).await["phone_info"].clone();
        assert_eq!(info["phoneNumber"], number, "{info}");
        assert_eq!(info["purePhoneNumber"], pure, "{info}");
        assert_eq!(info["countryCode"], country, "{info}");
    }
}

#[tokio::test]
async fn bad_phone_code_requests_are_refused() {
    let sb = Sandbox::new(&demo_apps());
    for (body, why) in [
        (
            json!({ "appId": "wxnosuchapp", "user": "alice" }),
            "unknown appId",
        ),
        (
            json!({ "appId": OA, "user": "alice" }),
            "not a sandbox Mini Program",
        ),
        (
            json!({ "appId": MP, "user": "Alice Smith" }),
            "user must be",
        ),
        (json!({ "appId": MP, "user": "" }), "user must be"),
        (
            json!({ "appId": MP, "user": "alice", "phoneNumber": "123" }),
            "phoneNumber",
        ),
        (
            json!({ "appId": MP, "user": "alice", "phoneNumber": "123456789012345" }),
            "phoneNumber",
        ),
        (
            json!({ "appId": MP, "user": "alice", "phoneNumber": "+8613900000000" }),
            "phoneNumber",
        ),
        (
            json!({ "appId": MP, "user": "alice", "countryCode": "0086" }),
            "countryCode",
        ),
        (
            json!({ "appId": MP, "user": "alice", "countryCode": "" }),
            "countryCode",
        ),
    ] {
        let (status, answer) = post(&sb, "/phone-codes", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(why), "{body}: {error}");
    }
    // Unknown fields and wrong types are refused by the JSON extractor, as for `POST /codes`.
    let body = json!({ "appId": MP, "user": "alice", "phone": "13900000000" });
    assert_eq!(post(&sb, "/phone-codes", body).await.0, 422);
    let body = json!({ "appId": MP, "user": "alice", "countryCode": 86 });
    assert_eq!(post(&sb, "/phone-codes", body).await.0, 422);
}

#[tokio::test]
async fn checksession_knows_the_key_of_the_latest_login_only() {
    let sb = Sandbox::new(&demo_apps());
    let (token, token_b) = (access_token(&sb, MP).await, access_token(&sb, MP_B).await);
    let alice = derive_id("openid", MP, "alice");
    let (first, second) = ("Zmlyc3Qtc2Vzc2lvbi1rZQ==", "c2Vjb25kLXNlc3Npb24ta2U=");

    // No login yet: no key to match.
    let answer = check(&sb, &token, &alice, first, "hmac_sha256").await;
    assert_eq!(answer["errcode"], SESSION_KEY_INVALID, "{answer}");

    login(&sb, MP, "alice", first);
    let answer = check(&sb, &token, &alice, first, "hmac_sha256").await;
    assert_eq!(answer, json!({ "errcode": 0, "errmsg": "ok" }));
    assert_eq!(sb.session_key(MP, &alice).as_deref(), Some(first));

    // A new wx.login replaces the key.
    login(&sb, MP, "alice", second);
    let answer = check(&sb, &token, &alice, first, "hmac_sha256").await;
    assert_eq!(answer["errcode"], SESSION_KEY_INVALID, "{answer}");
    assert_eq!(
        check(&sb, &token, &alice, second, "hmac_sha256").await["errcode"],
        0
    );

    // Keys are per app; the signature method must be WeChat's; OA tokens are refused.
    let answer = check(&sb, &token_b, &alice, second, "hmac_sha256").await;
    assert_eq!(answer["errcode"], SESSION_KEY_INVALID, "{answer}");
    let answer = check(&sb, &token, &alice, second, "md5").await;
    assert_eq!(answer["errcode"], 40097, "{answer}");
    let uri =
        format!("/wxa/checksession?access_token={token}&openid={alice}&sig_method=hmac_sha256");
    assert_eq!(call(&sb, "GET", &uri, None).await.1["errcode"], 40097);
    let oa_token = access_token(&sb, OA).await;
    let answer = check(&sb, &oa_token, &alice, second, "hmac_sha256").await;
    assert_eq!(answer["errcode"], 48001, "{answer}");

    assert_eq!(stats(&sb, MP).await["checkSessionCalls"], 6);
    assert_eq!(stats(&sb, MP_B).await["checkSessionCalls"], 1);
}

#[tokio::test]
async fn the_client_gets_numbers_and_checks_sessions_over_http() {
    let sb = Sandbox::new(&demo_apps());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = WechatClient::new(&sb.spawn(listener), Duration::from_secs(5));
    let token = access_token(&sb, MP).await;

    let mut req = crate::PhoneCodeRequest::new(MP, "bob");
    req.country_code = Some("1".into());
    req.phone_number = Some("2025550123".into());
    let code = sb.issue_phone_code(&req).unwrap();
    let info = client.phone_number(&token, &code).await.unwrap();
    assert_eq!(info.phone_number, "+1 2025550123");
    assert_eq!(info.pure_phone_number, "2025550123");
    assert_eq!(info.country_code, "1");
    assert_eq!(info.watermark.appid, MP);
    let again = client.phone_number(&token, &code).await.unwrap_err();
    assert_eq!(again.errcode(), Some(40029), "{again}");

    // The paid quota is spent: WeChat's errcode reaches the caller, the code stays unused.
    let code = sb
        .issue_phone_code(&crate::PhoneCodeRequest::new(MP, "bob"))
        .unwrap();
    let fault =
        json!({ "path": "/wxa/business/getuserphonenumber", "errcode": PHONE_QUOTA_EXHAUSTED });
    assert_eq!(post(&sb, "/faults", fault).await.0, 204);
    let spent = client.phone_number(&token, &code).await.unwrap_err();
    assert_eq!(spent.errcode(), Some(PHONE_QUOTA_EXHAUSTED), "{spent}");
    let info = client.phone_number(&token, &code).await.unwrap();
    assert_eq!(info.pure_phone_number, default_phone_number("bob"));
    assert_eq!(sb.phone_number_calls(MP).paid, 2);

    let bob = derive_id("openid", MP, "bob");
    login(&sb, MP, "bob", "Ym9iLXNlc3Npb24ta2V5LTE=");
    client
        .check_session(&token, &bob, "Ym9iLXNlc3Npb24ta2V5LTE=")
        .await
        .unwrap();
    login(&sb, MP, "bob", "Ym9iLXNlc3Npb24ta2V5LTI=");
    let stale = client
        .check_session(&token, &bob, "Ym9iLXNlc3Npb24ta2V5LTE=")
        .await
        .unwrap_err();
    assert_eq!(stale.errcode(), Some(SESSION_KEY_INVALID), "{stale}");
}

#[test]
fn the_wxbizdatacrypt_sample_app_replays_its_published_login() {
    let sample = demo_apps()
        .into_iter()
        .find(|a| a.app_id == SAMPLE_MINI_PROGRAM)
        .unwrap();
    assert!(!sample.open_platform);
    assert_eq!(
        sample.secret,
        format!("sandbox-secret-{SAMPLE_MINI_PROGRAM}")
    );
    let sb = Sandbox::new(&demo_apps());
    let mut req = CodeRequest::new(SAMPLE_MINI_PROGRAM, "band");
    req.openid = Some("oGZUI0egBJY1zhBYw2KhdUfwVJJE".into());
    req.session_key = Some("tiihtNczf5v6AKRyjwEUhQ==".into());
    let code = sb.issue_code(&req).unwrap();
    let login = sb.redeem_code(SAMPLE_MINI_PROGRAM, &code).unwrap();
    assert_eq!(login.openid, "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    assert_eq!(login.session_key, "tiihtNczf5v6AKRyjwEUhQ==");
    assert_eq!(login.unionid, None);
    assert_eq!(
        sb.session_key(SAMPLE_MINI_PROGRAM, "oGZUI0egBJY1zhBYw2KhdUfwVJJE")
            .as_deref(),
        Some("tiihtNczf5v6AKRyjwEUhQ==")
    );
}

#[test]
fn the_oldest_session_keys_are_forgotten_past_the_cap() {
    let sb = Sandbox::new(&demo_apps());
    // Logging in again replaces a key without taking another place.
    for key in ["a2V5LTE=", "a2V5LTI="] {
        sb.set_session_key(MP, "o-first", key);
    }
    for i in 1..crate::MAX_SESSION_KEYS {
        sb.set_session_key(MP, &format!("o-{i}"), "a2V5");
    }
    assert_eq!(sb.session_key(MP, "o-first").as_deref(), Some("a2V5LTI="));
    sb.set_session_key(MP_B, "o-last", "a2V5");
    assert_eq!(sb.session_key(MP, "o-first"), None);
    assert_eq!(sb.session_key(MP, "o-1").as_deref(), Some("a2V5"));
    assert_eq!(sb.session_key(MP_B, "o-last").as_deref(), Some("a2V5"));
}
