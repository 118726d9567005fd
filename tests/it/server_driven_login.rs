//! Stories: the server-driven Official Account login, where WeChat redirects to our callback and
//! the frontend gets a one-time ticket, never a token, in its URL.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;

use crate::common::flows::*;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_browser_goes_round_trip_and_the_frontend_redeems_a_ticket,
    return_to_must_be_on_the_allow_list,
    denials_bad_states_and_used_codes_come_back_as_errors,
    a_ticket_expires,
    the_login_finishes_only_in_the_browser_that_started_it,
    a_code_challenge_binds_the_ticket_to_the_frontend,
);

async fn a_browser_goes_round_trip_and_the_frontend_redeems_a_ticket(backend: Backend) {
    let app = TestApp::start(backend).await;
    let back = round_trip(&app, "snsapi_userinfo", "alice", "allow").await;
    assert!(back.starts_with(&landing(&app)), "{back}");
    let ticket = param(&back, "ticket").expect("a ticket on returnTo");
    assert!(param(&back, "error").is_none());
    assert_eq!(
        app.count("sessions").await,
        0,
        "no session until the ticket is redeemed"
    );

    let body = redeem(&app, &ticket).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let login = &body["data"]["redeemLoginTicket"];
    assert_eq!(login["newUser"], true);
    assert_eq!(login["user"]["nickname"], "Alice");
    assert!(!back.contains(login["accessToken"].as_str().unwrap()));
    assert!(!back.contains(login["refreshToken"].as_str().unwrap()));
    let me = app.me(login["accessToken"].as_str().unwrap()).await;
    assert_eq!(
        me["data"]["me"]["officialAccountIdentities"][0]["appId"],
        OA
    );

    // Single use.
    let again = redeem(&app, &ticket).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
    assert_eq!(app.count("sessions").await, 1);

    // The same person later, with a Mini Program: one user.
    let mp = app.login_mp(MP_A, "alice").await;
    assert_eq!(mp["user"]["id"], login["user"]["id"]);
}

async fn return_to_must_be_on_the_allow_list(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.official_account_login.return_to = vec!["https://h5.example.com/app/".into()];
    })
    .await;
    let client = browser();
    for bad in [
        "https://evil.example.com/app/".to_owned(),
        "https://h5.example.com.evil.com/app/".to_owned(),
        "https://h5.example.com/application".to_owned(),
        "http://h5.example.com/app/".to_owned(),
        "//evil.example.com/app/".to_owned(),
        "https://user:pw@h5.example.com/app/".to_owned(),
        format!(
            "http://127.0.0.1.nip.io:{}/sandbox/login-demo",
            app.running.addr.port()
        ),
        format!("{}/sandbox/wechat/connect/oauth2/authorize", app.base),
        "https://h5.example.com/app/?ticket=forged".to_owned(),
        "https://h5.example.com/app/?error=ACCESS_DENIED".to_owned(),
        String::new(),
    ] {
        let res = get(&client, &start_url(&app, "snsapi_base", &bad)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(res.headers().get(LOCATION).is_none());
        assert!(res.text().await.unwrap().contains("returnTo"), "{bad}");
    }
    // A bad scope or app, too.
    let res = get(
        &client,
        &start_url(&app, "snsapi_everything", "https://h5.example.com/app/"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = get(
        &client,
        &format!(
            "{}/auth/official-account/{MP_A}/authorize?returnTo=https://h5.example.com/app/",
            app.base
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count("oauth_states").await, 0, "nothing issued");

    // The configured one (and anything under it) works; so does the sandbox's own page.
    for good in [
        "https://h5.example.com/app/",
        "https://h5.example.com/app/login?next=%2Fhome",
    ] {
        let res = get(&client, &start_url(&app, "snsapi_base", good)).await;
        assert!(location(&res).contains("/connect/oauth2/authorize?appid="));
    }
    let res = get(&client, &start_url(&app, "snsapi_base", &landing(&app))).await;
    assert_eq!(res.status(), StatusCode::FOUND);
}

async fn denials_bad_states_and_used_codes_come_back_as_errors(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = browser();
    // The person refuses: back to returnTo with an error, nothing stored.
    let back = round_trip(&app, "snsapi_userinfo", "bob", "deny").await;
    assert!(back.starts_with(&landing(&app)));
    assert_eq!(param(&back, "error").as_deref(), Some("ACCESS_DENIED"));
    assert!(param(&back, "ticket").is_none());
    let written = app.written().await.0;
    assert_eq!(
        written.len(),
        1,
        "only the refused login's state is spent: {written:?}"
    );
    assert!(written[0].starts_with("oauth_states:"));

    // A callback with a forged state: an error page, no redirect anywhere.
    let forged = format!(
        "{}/auth/official-account/{OA}/callback?code=0123456789abcdef0123456789abcdef&state={}",
        app.base,
        "ab".repeat(32)
    );
    let res = get(&client, &forged).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get(LOCATION).is_none());

    // A frontend-driven state is not accepted by the callback, and vice versa.
    let (_, frontend_state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    let code = app.oa_code("bob", "snsapi_base").await;
    let res = get(
        &client,
        &format!(
            "{}/auth/official-account/{OA}/callback?code={code}&state={frontend_state}",
            app.base
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (to_wechat, _) = start(&client, &start_url(&app, "snsapi_base", &landing(&app))).await;
    let server_state = param(&to_wechat, "state").unwrap();
    let body = app.login_oa_code(OA, &code, &server_state).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    // A code WeChat already took: back to returnTo with WECHAT_CODE_INVALID.
    let tickets_before = app.count("login_tickets").await;
    let (to_wechat, cookie) = start(&client, &start_url(&app, "snsapi_base", &landing(&app))).await;
    let to_callback = approve(&client, &to_wechat, "bob").await;
    let used = param(&to_callback, "code").unwrap();
    let state = param(&to_callback, "state").unwrap();
    let ok = location(&get_with(&client, &to_callback, &cookie).await);
    assert!(param(&ok, "ticket").is_some());
    assert_eq!(app.count("login_tickets").await, tickets_before + 1);
    let after_first = app.written().await;
    // ...replayed with another fresh state (and its cookie).
    let (to_wechat, fresh_cookie) =
        start(&client, &start_url(&app, "snsapi_base", &landing(&app))).await;
    let fresh_state = param(&to_wechat, "state").unwrap();
    assert_ne!(fresh_state, state);
    let replay = location(
        &get_with(
            &client,
            &format!(
                "{}/auth/official-account/{OA}/callback?code={used}&state={fresh_state}",
                app.base
            ),
            &fresh_cookie,
        )
        .await,
    );
    assert_eq!(
        param(&replay, "error").as_deref(),
        Some("WECHAT_CODE_INVALID")
    );
    assert_eq!(app.written().await, after_first);
    // A used state (a reloaded callback): an error page.
    let res = get_with(&client, &to_callback, &cookie).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get(LOCATION).is_none());
    assert_eq!(app.written().await, after_first);
}

async fn a_ticket_expires(backend: Backend) {
    let app = TestApp::start(backend).await;
    let back = round_trip(&app, "snsapi_base", "carol", "allow").await;
    let ticket = param(&back, "ticket").unwrap();
    app.exec("UPDATE login_tickets SET expires_at = created_at")
        .await;
    let body = redeem(&app, &ticket).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(app.count("sessions").await, 0);
    for bad in ["", "x", &"y".repeat(1000)] {
        let body = redeem(&app, bad).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }
}

async fn the_login_finishes_only_in_the_browser_that_started_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let scopes = (Some("snsapi_userinfo"), Some("snsapi_base"));
    finishes_only_where_it_started(&app, &OA_FLOW, scopes).await;
}

async fn a_code_challenge_binds_the_ticket_to_the_frontend(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = browser();
    let verifier = "a-verifier-the-frontend-keeps-in-sessionStorage-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    let bad = format!(
        "{}&codeChallenge=not-a-challenge",
        start_url(&app, "snsapi_base", &landing(&app))
    );
    assert_eq!(get(&client, &bad).await.status(), StatusCode::BAD_REQUEST);

    let url = format!(
        "{}&codeChallenge={challenge}",
        start_url(&app, "snsapi_base", &landing(&app))
    );
    let (to_wechat, cookie) = start(&client, &url).await;
    let to_callback = approve(&client, &to_wechat, "nina").await;
    let back = location(&get_with(&client, &to_callback, &cookie).await);
    let ticket = param(&back, "ticket").unwrap();
    for wrong in [
        None,
        Some("another-verifier-of-the-right-length-0123456789abcdef"),
    ] {
        let body = redeem_with(&app, &ticket, wrong).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{wrong:?}");
    }
    assert_eq!(app.count("sessions").await, 0);
    let body = redeem_with(&app, &ticket, Some(verifier)).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(app.count("sessions").await, 1);

    // The frontend-driven flow takes the same challenge.
    let data = app
        .gql_ok(
            None,
            "mutation($c: String) { startOfficialAccountLogin(input: {appId: \"wxsandboxofficial1\",
                redirectUri: \"https://h5.example.com/\", codeChallenge: $c}) { authorizeUrl } }",
            json!({ "c": challenge }),
        )
        .await;
    let state = param(
        data["startOfficialAccountLogin"]["authorizeUrl"]
            .as_str()
            .unwrap(),
        "state",
    )
    .unwrap();
    let login = "mutation($c: String!, $s: String!, $v: String) { loginWithOfficialAccount(input:
        {appId: \"wxsandboxofficial1\", code: $c, state: $s, codeVerifier: $v}) { user { id } } }";
    for wrong in [
        None,
        Some("another-verifier-of-the-right-length-0123456789abcdef"),
    ] {
        let code = app.oa_code("nina", "snsapi_base").await;
        let body = app
            .gql(None, login, json!({ "c": code, "s": state, "v": wrong }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{wrong:?}");
    }
    let code = app.oa_code("nina", "snsapi_base").await;
    let body = app
        .gql(None, login, json!({ "c": code, "s": state, "v": verifier }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    // A verifier for a login started without a challenge is a mistake, not ignored.
    let (_, plain_state) = app.authorize_url(OA, "SNSAPI_BASE").await;
    let code = app.oa_code("nina", "snsapi_base").await;
    let body = app
        .gql(
            None,
            login,
            json!({ "c": code, "s": plain_state, "v": verifier }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}
