//! Stories of another team's middleware: it finds our keys from the issuer URL, asks whether a
//! token is live (RFC 7662 introspection with its service key), and a client revokes its
//! refresh token (RFC 7009). Each endpoint's bounds: who may call, body size, rate.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    without_a_public_url_tokens_keep_the_old_issuer,
    middleware_finds_the_keys_from_the_issuer_url,
    introspection_tells_live_tokens_from_everything_else,
    introspection_is_for_api_keys_and_bounded,
    a_client_revokes_its_refresh_token,
);

const GATEWAY_KEY: &str = "q1+w2/e3=r4%t5y6u7i8o9p0a1s2d3f4g5h6";

/// A POST of a form body to `path`, with `bearer` if given; status and JSON body (Null if none).
async fn post_form(
    app: &TestApp,
    path: &str,
    bearer: Option<&str>,
    body: String,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let authorization = bearer.map(|key| format!("Bearer {key}"));
    post_form_as(app, path, authorization, body).await
}

/// `Authorization: Basic` for `name` and `secret`, as OAuth clients send `client_secret_basic`.
fn basic(name: &str, secret: &str) -> String {
    use base64::Engine as _;
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{secret}"));
    format!("Basic {pair}")
}

/// [`post_form`] with the whole `Authorization` value, if any.
async fn post_form_as(
    app: &TestApp,
    path: &str,
    authorization: Option<String>,
    body: String,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(authorization) = authorization {
        req = req.header("authorization", authorization);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn form(token: &str) -> String {
    format!("token={}", urlencode(token))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let (status, _, body) =
        post_form(app, "/oauth2/introspect", Some(SERVICE_KEY), form(token)).await;
    assert_eq!(status, 200, "{body:#}");
    body
}

async fn get_json(app: &TestApp, url: &str) -> (reqwest::header::HeaderMap, Value) {
    let res = app.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let headers = res.headers().clone();
    (headers, res.json().await.unwrap())
}

/// A deployment that never set `public_url` (nor `jwt.issuer`) keeps the issuer its tokens always
/// had: its listen address would differ between instances behind one balancer.
async fn without_a_public_url_tokens_keep_the_old_issuer(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.sandbox = Some(false);
        c.apps = wechat_identity::config::sandbox_demo_apps();
    })
    .await;
    let (_, config) = get_json(
        &app,
        &format!("{}/.well-known/openid-configuration", app.base),
    )
    .await;
    assert_eq!(config["issuer"], "wechat-identity");
}

async fn middleware_finds_the_keys_from_the_issuer_url(backend: Backend) {
    let app = TestApp::start(backend).await;
    // The issuer is the public URL (here the test server's), as every token says.
    let (_, config) = get_json(
        &app,
        &format!("{}/.well-known/openid-configuration", app.base),
    )
    .await;
    assert_eq!(config["issuer"], app.base.as_str());
    assert_eq!(
        config["introspection_endpoint"],
        format!("{}/oauth2/introspect", app.base)
    );
    assert_eq!(
        config["revocation_endpoint"],
        format!("{}/oauth2/revoke", app.base)
    );
    assert_eq!(
        config["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic"])
    );
    // Only what exists: no authorization or token endpoint, no ID tokens.
    for absent in [
        "authorization_endpoint",
        "token_endpoint",
        "token_endpoint_auth_methods_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(config.get(absent).is_none(), "{absent}");
    }
    // From there to the key that verifies a token, as JWT middleware goes.
    let (headers, jwks) = get_json(&app, config["jwks_uri"].as_str().unwrap()).await;
    assert_eq!(headers["cache-control"], "public, max-age=60");
    let login = app.login_mp(MP_A, "alice").await;
    let token = login["accessToken"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("the token's key is published");
    let key = jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[config["issuer"].as_str().unwrap()]);
    validation.set_audience(&["wechat-identity"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], login["user"]["id"]);
    assert_eq!(claims["app_id"], MP_A);
    assert_eq!(claims["app_kind"], "mini_program");
    for claim in ["sid", "jti", "iat", "exp"] {
        assert!(!claims[claim].is_null(), "{claim} in {claims:#}");
    }
}

async fn introspection_tells_live_tokens_from_everything_else(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.jwt.refresh_reuse_grace_secs = 0).await;
    let login = app.login_mp(MP_A, "alice").await;
    let access = login["accessToken"].as_str().unwrap();
    let refresh = login["refreshToken"].as_str().unwrap();
    // Seen live by this instance, which keeps that answer for the window (5 s) unless it ends
    // the login itself.
    let me = app.gql(Some(access), "{ me { id } }", json!({})).await;
    assert!(me.get("errors").is_none(), "{me:#}");

    let live = introspect(&app, access).await;
    assert_eq!(live["active"], true, "{live:#}");
    assert_eq!(live["token_type"], "Bearer");
    assert_eq!(live["token_use"], "access");
    assert_eq!(live["aud"], "wechat-identity");
    assert!(live["jti"].is_string());
    assert_eq!(live["sub"], login["user"]["id"]);
    assert_eq!(live["iss"], app.base.as_str());
    assert_eq!(live["client_id"], MP_A);
    assert_eq!(live["app_kind"], "mini_program");
    assert!(live["exp"].as_u64().unwrap() > live["iat"].as_u64().unwrap());
    let sid = live["sid"].clone();

    let live = introspect(&app, refresh).await;
    assert_eq!(live["active"], true, "{live:#}");
    assert_eq!(live["token_use"], "refresh");
    assert!(
        live.get("token_type").is_none(),
        "a refresh token is no bearer token"
    );
    assert_eq!(live["sub"], login["user"]["id"]);
    assert_eq!(live["sid"], sid, "the same login");

    // Everything else is just inactive, with nothing more said.
    let forged = {
        let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    for token in ["", "made-up", "a.b.c", forged.as_str(), &"x".repeat(5000)] {
        assert_eq!(
            introspect(&app, token).await,
            json!({ "active": false }),
            "{token}"
        );
    }

    // A refresh rotates: the old refresh token is inactive, the new one and the access
    // tokens of the login live.
    let q =
        "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";
    let next = app.gql_ok(None, q, json!({ "t": refresh })).await["refreshSession"].clone();
    assert_eq!(introspect(&app, refresh).await["active"], false);
    assert_eq!(
        introspect(&app, next["refreshToken"].as_str().unwrap()).await["active"],
        true
    );
    assert_eq!(introspect(&app, access).await["active"], true);

    // After logout: inactive at once, access and refresh alike.
    let q = "mutation($t: String!) { logout(refreshToken: $t) }";
    app.gql_ok(None, q, json!({ "t": next["refreshToken"] }))
        .await;
    for token in [
        access,
        next["accessToken"].as_str().unwrap(),
        next["refreshToken"].as_str().unwrap(),
    ] {
        assert_eq!(introspect(&app, token).await, json!({ "active": false }));
    }
}

async fn introspection_is_for_api_keys_and_bounded(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        // A key as `openssl rand -base64` makes them: `+`, `/` and `=` in it.
        c.api_keys.push(wechat_identity::config::ApiKeyConfig {
            name: "gateway".into(),
            role: wechat_identity::config::ApiKeyRole::Service,
            key: wechat_identity::config::Secret::new(GATEWAY_KEY),
        });
        c.rate_limits.introspect.per_app = Some(wechat_identity::config::Bucket {
            burst: 3,
            per_second: 0.001,
        });
    })
    .await;
    let login = app.login_mp(MP_A, "bob").await;
    let access = login["accessToken"].as_str().unwrap().to_owned();
    // Nobody, a user's own token, a made-up key: 401, told how to authenticate.
    for bearer in [None, Some(access.as_str()), Some("not-a-key")] {
        let (status, headers, body) =
            post_form(&app, "/oauth2/introspect", bearer, form(&access)).await;
        assert_eq!(status, 401, "{bearer:?}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(body["error"], "invalid_client");
    }
    // The service key as OAuth clients send a secret (`client_secret_basic`; one of its three),
    // and an admin key.
    let service = Some(basic("reporting", SERVICE_KEY));
    let (status, _, body) = post_form_as(&app, "/oauth2/introspect", service, form(&access)).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    // A key with `+`, `/`, `=` and `%`: as RFC 6749 has clients send it (form-encoded first),
    // and as many send it (raw); a wrong one is still refused.
    for secret in [
        urlencode(GATEWAY_KEY),
        GATEWAY_KEY.to_owned(),
        "q1+w2".to_owned(),
    ] {
        let gateway = Some(basic("gateway", &secret));
        let (status, _, _) = post_form_as(&app, "/oauth2/introspect", gateway, form(&access)).await;
        let expected = if secret == "q1+w2" { 401 } else { 200 };
        assert_eq!(status, expected, "{secret}");
    }
    let (status, _, body) =
        post_form(&app, "/oauth2/introspect", Some(ADMIN_KEY), form(&access)).await;
    assert_eq!((status, body["active"].clone()), (200, json!(true)));
    // No token, not a form, a body over 8 KiB.
    let (status, _, body) =
        post_form(&app, "/oauth2/introspect", Some(ADMIN_KEY), "x=1".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let res = app
        .http
        .post(format!("{}/oauth2/introspect", app.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "token": access }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let big = format!("token={}&pad={}", access, "x".repeat(9 * 1024));
    let (status, _, _) = post_form(&app, "/oauth2/introspect", Some(ADMIN_KEY), big).await;
    assert_eq!(status, 413);
    // Per key: the service key's other two, then 429 with Retry-After; the admin key has its
    // own.
    for _ in 0..2 {
        introspect(&app, &access).await;
    }
    let (status, headers, body) =
        post_form(&app, "/oauth2/introspect", Some(SERVICE_KEY), form(&access)).await;
    assert_eq!(status, 429, "{body:#}");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let (status, _, _) =
        post_form(&app, "/oauth2/introspect", Some(ADMIN_KEY), form(&access)).await;
    assert_eq!(status, 200, "another key's bucket");
}

async fn a_client_revokes_its_refresh_token(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.rate_limits.revoke.per_ip = wechat_identity::config::Bucket {
            burst: 4,
            per_second: 0.001,
        };
    })
    .await;
    let login = app.login_mp(MP_A, "carol").await;
    let other = app.login_mp(MP_B, "carol").await;
    let access = login["accessToken"].as_str().unwrap();
    let refresh = login["refreshToken"].as_str().unwrap();

    // An access token is a type this endpoint does not revoke; nothing changes.
    let (status, _, body) = post_form(&app, "/oauth2/revoke", None, form(access)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_token_type"))
    );
    let (status, _, body) = post_form(&app, "/oauth2/revoke", None, "nothing=here".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(introspect(&app, access).await["active"], true);

    // The refresh token: 200, and the login is over, access token included.
    let (status, headers, _) = post_form(&app, "/oauth2/revoke", None, form(refresh)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(introspect(&app, refresh).await["active"], false);
    assert_eq!(introspect(&app, access).await["active"], false);
    assert_eq!(
        error_code(&app.gql(Some(access), "{ me { id } }", json!({})).await),
        "UNAUTHENTICATED"
    );
    // The person's other login goes on.
    assert_eq!(
        introspect(&app, other["accessToken"].as_str().unwrap()).await["active"],
        true
    );
    // Again, or a token never issued: 200 all the same (RFC 7009 tells nothing).
    for token in [refresh, "never-issued"] {
        let (status, _, _) = post_form(&app, "/oauth2/revoke", None, form(token)).await;
        assert_eq!(status, 200);
    }
    // Four counted from this address (the burst; the body without a token never got that far),
    // then 429.
    let (status, headers, _) = post_form(&app, "/oauth2/revoke", None, form("x")).await;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
}
