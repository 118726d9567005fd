//! Who may see what: admins and services read users; a user sees only itself; tokens are checked.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    an_admin_reads_users_by_id_unionid_and_page,
    users_pages_are_stable_and_complete,
    a_user_token_sees_only_itself,
);

async fn an_admin_reads_users_by_id_unionid_and_page(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let id = alice["user"]["id"].as_str().unwrap();
    let unionid = alice["user"]["unionid"].as_str().unwrap();
    for key in [ADMIN_KEY, SERVICE_KEY] {
        let data = app
            .gql_ok(
                Some(key),
                "query($id: ID!, $u: String!) {
                    user(id: $id) { id unionid miniProgramIdentities { appId } }
                    userByUnionid(unionid: $u) { id }
                    users(first: 10) { edges { node { id } } }
                    wechatApps { appId kind name openPlatform } }",
                json!({ "id": id, "u": unionid }),
            )
            .await;
        assert_eq!(data["user"]["id"], id);
        assert_eq!(data["user"]["miniProgramIdentities"][0]["appId"], MP_A);
        assert_eq!(data["userByUnionid"]["id"], id);
        assert_eq!(data["users"]["edges"][0]["node"]["id"], id);
        let apps = data["wechatApps"].as_array().unwrap();
        assert_eq!(apps.len(), 7);
        assert!(
            apps.iter()
                .any(|a| a["appId"] == OA && a["kind"] == "OFFICIAL_ACCOUNT")
        );
        assert!(
            apps.iter()
                .any(|a| a["appId"] == MP_UNBOUND && a["openPlatform"] == false)
        );
        assert!(
            !data.to_string().contains("sandbox-secret"),
            "app secrets are never readable"
        );
    }
    let missing = app
        .gql_ok(Some(ADMIN_KEY), "{ user(id: \"00000000-0000-7000-8000-000000000000\") { id } userByUnionid(unionid: \"onosuchunionid\") { id } }", json!({}))
        .await;
    assert!(missing["user"].is_null() && missing["userByUnionid"].is_null());
    let bad = app
        .gql(
            Some(ADMIN_KEY),
            "{ user(id: \"not-a-uuid\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
}

async fn users_pages_are_stable_and_complete(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut created = Vec::new();
    for name in ["u1", "u2", "u3", "u4", "u5"] {
        created.push(
            app.login_mp(MP_A, name).await["user"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let data = app
            .gql_ok(
                Some(ADMIN_KEY),
                "query($after: String) { users(first: 2, after: $after) {
                    edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        pages += 1;
        for edge in data["users"]["edges"].as_array().unwrap() {
            seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        if data["users"]["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = data["users"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "creation order, no gaps, no repeats");
    for (first, expected) in [(0, "BAD_USER_INPUT"), (101, "BAD_USER_INPUT")] {
        let body = app
            .gql(
                Some(ADMIN_KEY),
                "query($f: Int) { users(first: $f) { edges { cursor } } }",
                json!({ "f": first }),
            )
            .await;
        assert_eq!(error_code(&body), expected);
    }
    let body = app
        .gql(
            Some(ADMIN_KEY),
            "{ users(after: \"garbage\") { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

async fn a_user_token_sees_only_itself(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let bob = app.login_mp(MP_A, "bob").await;
    let token = alice["accessToken"].as_str().unwrap();
    for query in [
        "{ users { edges { cursor } } }",
        "{ wechatApps { appId } }",
        "{ userByUnionid(unionid: \"x\") { id } }",
    ] {
        let body = app.gql(Some(token), query, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}");
        let body = app.gql(None, query, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{query}");
    }
    let other = app
        .gql(
            Some(token),
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": bob["user"]["id"] }),
        )
        .await;
    assert_eq!(error_code(&other), "FORBIDDEN");
    let own = app
        .gql_ok(
            Some(token),
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": alice["user"]["id"] }),
        )
        .await;
    assert_eq!(own["user"]["id"], alice["user"]["id"]);
    let body = app.gql(None, "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app.gql(Some(ADMIN_KEY), "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "an API key is not a user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_expired_unsigned_and_unknown_tokens_are_unauthenticated() {
    let app = TestApp::start_with(Backend::Sqlite, with_known_key).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let token = alice["accessToken"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    let mut forged = claims.clone();
    forged["sub"] = json!("00000000-0000-7000-8000-000000000000");
    let forged_b64 = URL_SAFE_NO_PAD.encode(forged.to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_b64, parts[2]);
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);

    // Expired: signed with the service's own key (the file it imported), exp in the past.
    let pem = std::fs::read(app.dir.path().join("jwt-ed25519.pem")).unwrap();
    let der = pem_body(&pem);
    let mut old = claims.clone();
    old["iat"] = json!(1_600_000_000u64);
    old["exp"] = json!(1_600_000_900u64);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(jwks_kid(&app).await);
    let expired =
        jsonwebtoken::encode(&header, &old, &jsonwebtoken::EncodingKey::from_ed_der(&der)).unwrap();
    // Sanity: the same key with a live exp is accepted, so the expiry is what fails.
    let mut fresh = claims.clone();
    fresh["exp"] = json!(claims["exp"].as_u64().unwrap());
    let resigned = jsonwebtoken::encode(
        &header,
        &fresh,
        &jsonwebtoken::EncodingKey::from_ed_der(&der),
    )
    .unwrap();
    assert!(app.me(&resigned).await.get("errors").is_none());

    for bad in [
        tampered.as_str(),
        unsigned.as_str(),
        expired.as_str(),
        "not-a-known-api-key-xxxxxxxxxxxx",
    ] {
        let body = app.me(bad).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{bad}");
        // A bad token is refused even on a login mutation, rather than silently ignored.
        let body = app
            .gql(Some(bad), "{ users { edges { cursor } } }", json!({}))
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }
    let body = app.me(&expired).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

fn pem_body(pem: &[u8]) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    let text = std::str::from_utf8(pem).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).unwrap()
}

async fn jwks_kid(app: &TestApp) -> String {
    app.jwks_kids().await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_service_verifies_our_jwt_with_the_jwks_alone() {
    let app = TestApp::start(Backend::Sqlite).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let token = alice["accessToken"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(app.jwks().await).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["wechat-identity"]);
    // The issuer is the public URL (here the test server's).
    validation.set_issuer(&[app.base.as_str()]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).unwrap();
    assert_eq!(data.claims["sub"], alice["user"]["id"]);

    // The set holds public keys only.
    let jwks_text = app.jwks().await.to_string();
    assert!(
        !jwks_text.contains("\"d\""),
        "the private key is never published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_is_selectable_and_publishes_no_key() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.jwt.algorithm = wechat_identity::config::JwtAlgorithm::HS256;
        c.jwt.hs256_secret = Some(wechat_identity::config::Secret::new(
            "an-hs256-secret-of-at-least-32-bytes!!",
        ));
    })
    .await;
    let alice = app.login_mp(MP_A, "alice").await;
    let token = alice["accessToken"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().alg,
        jsonwebtoken::Algorithm::HS256
    );
    assert_eq!(app.me(token).await["data"]["me"]["id"], alice["user"]["id"]);
    assert_eq!(app.jwks().await["keys"], json!([]));
}
