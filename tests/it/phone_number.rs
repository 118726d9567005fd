//! Stories: the Mini Program phone button. A person shares their number at login or later; it
//! is stored in E.164, verified; WeChat is paid once per code however often it is sent; a code
//! is its person's alone; numbers merge users only when the operator says so.

use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_login_with_the_phone_button_stores_the_number_verified,
    a_phone_code_sent_twice_costs_one_wechat_call,
    a_phone_code_is_its_persons_alone_and_refusals_change_nothing,
    a_shared_number_merges_nobody_by_default,
    with_merging_on_a_verified_number_merges_the_two_users,
    a_number_never_merges_people_wechat_tells_apart,
    one_phone_exchange_per_request_and_the_login_limits_apply,
);

const ME: &str = "{ me { id phoneNumber phoneNumberVerifiedAt } }";

async fn a_login_with_the_phone_button_stores_the_number_verified(backend: Backend) {
    let app = TestApp::start(backend).await;
    let code = app.code(MP_A, "alice").await;
    let phone_code = app
        .phone_code(MP_A, "alice", json!({ "phoneNumber": "13800138000" }))
        .await;
    let body = app
        .login_mp_input(json!({ "appId": MP_A, "code": code, "phoneCode": phone_code }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let token = body["data"]["loginWithMiniProgram"]["accessToken"]
        .as_str()
        .unwrap();
    let me = app.gql_ok(Some(token), ME, json!({})).await;
    assert_eq!(me["me"]["phoneNumber"], "+8613800138000");
    assert!(me["me"]["phoneNumberVerifiedAt"].is_string(), "{me:#}");
    assert_eq!(app.phone_calls(MP_A).await, (1, 1));

    // Admins find the user by the number, written either way; anything else is refused.
    let find = "query($p: String!) { users(filter: {phoneNumber: $p}) { nodes { id } } }";
    for written in ["+8613800138000", "13800138000", "+86 138-0013-8000"] {
        let found = app
            .gql_ok(Some(ADMIN_KEY), find, json!({ "p": written }))
            .await;
        assert_eq!(
            found["users"]["nodes"][0]["id"], me["me"]["id"],
            "{written}"
        );
    }
    let body = app
        .gql(Some(ADMIN_KEY), find, json!({ "p": "call me" }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    // A number from abroad keeps its own country code.
    let bob = app.login_mp(MP_A, "bob").await;
    let token = bob["accessToken"].as_str().unwrap();
    let phone_code = app
        .phone_code(
            MP_A,
            "bob",
            json!({ "phoneNumber": "2025550123", "countryCode": "1" }),
        )
        .await;
    let body = app.link_phone(Some(token), MP_A, &phone_code).await;
    assert_eq!(
        body["data"]["linkPhoneNumber"]["phoneNumber"],
        "+12025550123"
    );
}

async fn a_phone_code_sent_twice_costs_one_wechat_call(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let token = alice["accessToken"].as_str().unwrap();
    let phone_code = app.phone_code(MP_A, "alice", json!({})).await;

    // A double tap: both requests at once.
    let (a, b) = tokio::join!(
        app.link_phone(Some(token), MP_A, &phone_code),
        app.link_phone(Some(token), MP_A, &phone_code)
    );
    for body in [&a, &b] {
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let number = a["data"]["linkPhoneNumber"]["phoneNumber"].clone();
    assert!(number.as_str().unwrap().starts_with("+861"), "{number}");
    assert_eq!(b["data"]["linkPhoneNumber"]["phoneNumber"], number);
    assert_eq!(app.phone_calls(MP_A).await, (1, 1), "one paid exchange");

    // A client retrying its login with a fresh wx.login code and the same phone code.
    let code = app.code(MP_A, "alice").await;
    let body = app
        .login_mp_input(json!({ "appId": MP_A, "code": code, "phoneCode": phone_code }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        body["data"]["loginWithMiniProgram"]["user"]["id"],
        alice["user"]["id"]
    );
    assert_eq!(app.phone_calls(MP_A).await, (1, 1), "still one");
}

async fn a_phone_code_is_its_persons_alone_and_refusals_change_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let alice_token = alice["accessToken"].as_str().unwrap().to_owned();
    let bob = app.login_mp(MP_A, "bob").await;
    let bob_token = bob["accessToken"].as_str().unwrap().to_owned();
    let phone_code = app.phone_code(MP_A, "alice", json!({})).await;
    let body = app.link_phone(Some(&alice_token), MP_A, &phone_code).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let before = app.written().await;

    // Bob got hold of alice's code: refused, without asking WeChat.
    let body = app.link_phone(Some(&bob_token), MP_A, &phone_code).await;
    assert_eq!(error_code(&body), "WECHAT_CODE_INVALID", "{body:#}");
    assert!(body["data"]["linkPhoneNumber"].is_null());
    // ... nor by logging in with it.
    let code = app.code(MP_A, "bob").await;
    let body = app
        .login_mp_input(json!({ "appId": MP_A, "code": code, "phoneCode": phone_code }))
        .await;
    assert_eq!(error_code(&body), "WECHAT_CODE_INVALID", "{body:#}");
    assert_eq!(app.phone_calls(MP_A).await, (1, 1));
    assert_eq!(app.written().await, before);

    // A code WeChat does not know.
    let body = app.link_phone(Some(&bob_token), MP_A, "no-such-code").await;
    assert_eq!(error_code(&body), "WECHAT_CODE_INVALID");
    assert_eq!(body["errors"][0]["extensions"]["wechatErrcode"], 40029);
    // The paid quota is used up: its own code; the code stays good for later.
    let bobs = app.phone_code(MP_A, "bob", json!({})).await;
    app.fault(json!({ "path": "/wxa/business/getuserphonenumber", "errcode": 1_400_001 }))
        .await;
    let body = app.link_phone(Some(&bob_token), MP_A, &bobs).await;
    assert_eq!(error_code(&body), "WECHAT_QUOTA_EXHAUSTED", "{body:#}");
    assert_eq!(app.written().await, before);
    let body = app.link_phone(Some(&bob_token), MP_A, &bobs).await;
    assert!(body.get("errors").is_none(), "{body:#}");

    // No token, an API key, an app the user has no identity in, bad input: nothing happens.
    let before = app.written().await;
    let calls = app.phone_calls(MP_A).await;
    let fresh = app.phone_code(MP_A, "bob", json!({})).await;
    let body = app.link_phone(None, MP_A, &fresh).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app.link_phone(Some(ADMIN_KEY), MP_A, &fresh).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app.link_phone(Some(&bob_token), MP_B, &fresh).await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    for (app_id, code) in [(OA, fresh.as_str()), (MP_A, ""), (MP_A, "has spaces")] {
        let body = app.link_phone(Some(&bob_token), app_id, code).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{app_id} {code:?}");
    }
    assert_eq!(app.written().await, before);
    assert_eq!(app.phone_calls(MP_A).await, calls);
}

/// Logs `user` into `app_id` and links the sandbox's default number of `phone_owner`.
async fn login_and_link(
    app: &TestApp,
    app_id: &str,
    user: &str,
    phone_owner: &str,
) -> serde_json::Value {
    let login = app.login_mp(app_id, user).await;
    let token = login["accessToken"].as_str().unwrap().to_owned();
    let phone_code = app.phone_code(app_id, phone_owner, json!({})).await;
    let body = app.link_phone(Some(&token), app_id, &phone_code).await;
    json!({ "login": login, "linked": body })
}

async fn a_shared_number_merges_nobody_by_default(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Dave in a bound Mini Program and in the unbound one: WeChat gives no unionid to tell.
    let first = login_and_link(&app, MP_A, "dave", "dave").await;
    let second = login_and_link(&app, MP_UNBOUND, "dave", "dave").await;
    let (a, b) = (
        &first["linked"]["data"]["linkPhoneNumber"],
        &second["linked"]["data"]["linkPhoneNumber"],
    );
    assert_eq!(a["phoneNumber"], b["phoneNumber"]);
    assert_ne!(
        a["id"], b["id"],
        "numbers get recycled: not merged by default"
    );
    let found = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($p: String!) { users(filter: {phoneNumber: $p}) { nodes { id } } }",
            json!({ "p": a["phoneNumber"] }),
        )
        .await;
    assert_eq!(
        found["users"]["nodes"].as_array().unwrap().len(),
        2,
        "candidates for an admin"
    );
    assert_eq!(app.count("merge_events").await, 0);
}

async fn with_merging_on_a_verified_number_merges_the_two_users(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.identity.merge_on_phone_number = true).await;
    let first = login_and_link(&app, MP_A, "dave", "dave").await;
    let dave = first["linked"]["data"]["linkPhoneNumber"]["id"].clone();
    let second = login_and_link(&app, MP_UNBOUND, "dave", "dave").await;
    let linked = &second["linked"]["data"]["linkPhoneNumber"];
    assert_eq!(linked["id"], dave, "{second:#}");
    let unbound_user = second["login"]["user"]["id"].clone();
    assert_ne!(unbound_user, dave);

    let events = app
        .gql_ok(
            Some(ADMIN_KEY),
            "{ mergeEvents(first: 10) { nodes { reason actor survivor { id } merged { id } } } }",
            json!({}),
        )
        .await;
    let events = events["mergeEvents"]["nodes"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["reason"], "PHONE_NUMBER");
    assert_eq!(events[0]["actor"], MP_UNBOUND);
    assert_eq!(events[0]["survivor"]["id"], dave);
    assert_eq!(events[0]["merged"]["id"], unbound_user);
    // The unbound Mini Program's token now shows dave, with both identities.
    let token = second["login"]["accessToken"].as_str().unwrap();
    let me = app
        .gql_ok(
            Some(token),
            "{ me { id miniProgramIdentities { appId } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["id"], dave);
    assert_eq!(
        me["me"]["miniProgramIdentities"].as_array().unwrap().len(),
        2
    );

    // The phone button at login merges the same way.
    let code = app.code(MP_UNBOUND, "erin").await;
    let erin = login_and_link(&app, MP_A, "erin", "erin").await;
    let phone_code = app.phone_code(MP_UNBOUND, "erin", json!({})).await;
    let body = app
        .login_mp_input(json!({ "appId": MP_UNBOUND, "code": code, "phoneCode": phone_code }))
        .await;
    assert_eq!(
        body["data"]["loginWithMiniProgram"]["user"]["id"],
        erin["linked"]["data"]["linkPhoneNumber"]["id"],
        "{body:#}"
    );
    assert_eq!(
        body["data"]["loginWithMiniProgram"]["newUser"], false,
        "the user the login made was merged away: not a new user"
    );
    assert_eq!(app.count("merge_events").await, 2);
}

async fn a_number_never_merges_people_wechat_tells_apart(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.identity.merge_on_phone_number = true).await;
    // Frank and grace have different unionids; the carrier gave frank's old number to grace.
    let number = json!({ "phoneNumber": "13900139000" });
    let frank = app.login_mp(MP_A, "frank").await;
    let code = app.phone_code(MP_A, "frank", number.clone()).await;
    let body = app
        .link_phone(frank["accessToken"].as_str(), MP_A, &code)
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let grace = app.login_mp(MP_B, "grace").await;
    let users = app.count("users").await;
    let code = app.phone_code(MP_B, "grace", number).await;
    let body = app
        .link_phone(grace["accessToken"].as_str(), MP_B, &code)
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body:#}");
    assert_eq!(app.count("merge_events").await, 0);
    assert_eq!(app.count("users").await, users);
    let me = app
        .gql_ok(grace["accessToken"].as_str(), ME, json!({}))
        .await;
    assert!(me["me"]["phoneNumber"].is_null(), "nothing changed: {me:#}");
}

async fn one_phone_exchange_per_request_and_the_login_limits_apply(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.rate_limits.login.per_ip.burst = 4;
        c.rate_limits.login.per_ip.per_second = 0.001;
    })
    .await;
    let alice = app.login_mp(MP_A, "alice").await;
    let token = alice["accessToken"].as_str().unwrap();
    let phone_code = app.phone_code(MP_A, "alice", json!({})).await;
    let twice = "mutation($i: LinkPhoneNumberInput!) {
        a: linkPhoneNumber(input: $i) { id } b: linkPhoneNumber(input: $i) { id } }";
    let input = json!({ "i": { "appId": MP_A, "phoneCode": phone_code } });
    let body = app.gql(Some(token), twice, input.clone()).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("phone exchange")
    );
    // A login with a phone code and a link in one request: two exchanges.
    let both = "mutation($l: LoginWithMiniProgramInput!, $i: LinkPhoneNumberInput!) {
        loginWithMiniProgram(input: $l) { newUser } linkPhoneNumber(input: $i) { id } }";
    let login = json!({ "appId": MP_A, "code": "c", "phoneCode": phone_code });
    let body = app
        .gql(Some(token), both, json!({ "l": login, "i": input["i"] }))
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("phone exchange"),
        "{body:#}"
    );
    assert_eq!(
        app.phone_calls(MP_A).await,
        (0, 0),
        "refused before anything ran"
    );

    // The login rate limit: one login spent, three links pass, the next is limited.
    for _ in 0..3 {
        let body = app.link_phone(Some(token), MP_A, &phone_code).await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let body = app.link_phone(Some(token), MP_A, &phone_code).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body:#}");
}
