//! Stories: the signing keys are the deployment's, not an instance's. Two instances on one
//! database sign and accept each other's tokens, a rotation on one is honoured by the other,
//! and a logout on one is refused by the other within the window; keys retire once their
//! tokens have expired; a key file from before is imported; forged tokens are refused.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wechat_identity::auth::jwt::Ed25519Key;
use wechat_identity::auth::keys::der_to_pem;
use wechat_identity::config::{Config, JwtAlgorithm, Secret};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    two_instances_share_keys_rotations_and_logouts,
    a_replaced_key_retires_once_its_tokens_have_expired,
    rotation_is_for_admins_once_a_minute_and_not_for_hs256,
    a_key_file_from_before_keeps_its_tokens_working,
    forged_and_foreign_tokens_are_refused,
);

const ISSUER: &str = "https://id.example.test";
const ROTATE: &str = "mutation { rotateSigningKey { kid previousKeysRetireAt } }";

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn accepted(app: &TestApp, token: &str) -> bool {
    app.gql(Some(token), "{ me { id } }", json!({}))
        .await
        .get("errors")
        .is_none()
}

/// One deployment's settings: one issuer, quick key reads, a two-second revocation window; the
/// second instance on the first one's database and master key.
fn deployment(shared: Option<(String, String)>) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.jwt.issuer = Some(ISSUER.into());
        c.jwt.key_reload_secs = 1;
        c.jwt.revocation_check_secs = 2;
        if let Some((url, key)) = shared {
            c.database_url = Some(Secret::new(url));
            c.wechat.session_key_encryption_key = Some(Secret::new(key));
        }
    }
}

async fn second_instance(a: &TestApp, backend: Backend) -> TestApp {
    let key = std::fs::read_to_string(a.dir.path().join("session-key-encryption.key")).unwrap();
    TestApp::start_with(backend, deployment(Some((a.database_url.clone(), key)))).await
}

async fn two_instances_share_keys_rotations_and_logouts(backend: Backend) {
    let a = TestApp::start_with(backend, deployment(None)).await;
    let b = second_instance(&a, backend).await;
    let from_a = a.login_mp(MP_A, "alice").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let from_b = b.login_mp(MP_A, "bob").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = kid(&from_a);
    assert_eq!(kid(&from_b), first, "one key for the deployment");
    assert_eq!(claims(&from_b)["iss"], ISSUER);
    assert!(accepted(&b, &from_a).await && accepted(&a, &from_b).await);

    // A rotation on A: A signs with the new key at once, and B accepts those tokens at once.
    let rotated = a.gql_ok(Some(ADMIN_KEY), ROTATE, json!({})).await["rotateSigningKey"].clone();
    let second = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let new_from_a = a.login_mp(MP_B, "alice").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid(&new_from_a), second);
    assert!(
        accepted(&b, &new_from_a).await,
        "B reads the keys on an unknown kid"
    );
    // B signs with it within `jwt.key_reload_secs`.
    eventually(
        Duration::from_secs(15),
        "B signs with the new key",
        || async {
            let token = b.login_mp(MP_B, "bob").await["accessToken"]
                .as_str()
                .unwrap()
                .to_owned();
            kid(&token) == second
        },
    )
    .await;
    // The old key still verifies (its tokens have not expired), and both publish both.
    assert!(accepted(&a, &from_b).await && accepted(&b, &from_a).await);
    for app in [&a, &b] {
        let kids = app.jwks_kids().await;
        assert!(kids.contains(&first) && kids.contains(&second), "{kids:?}");
    }
    // A second rotation within the minute, on either instance: refused.
    let body = b.gql(Some(ADMIN_KEY), ROTATE, json!({})).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body:#}");
    assert!(
        body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // Alice logs out everywhere on A: B's introspection says so at once, and B refuses her
    // token within the window (two seconds here).
    let q = "mutation { logout(allSessions: true) }";
    a.gql_ok(Some(&from_a), q, json!({})).await;
    let res = b
        .http
        .post(format!("{}/oauth2/introspect", b.base))
        .bearer_auth(SERVICE_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        // A JWT needs no escaping in a form.
        .body(format!("token={from_a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "active": false })
    );
    // Each login's answer is kept on B for the window (two seconds here) from when B last
    // asked: both of hers end within it (and a little time for the calls themselves).
    let ended = std::time::Instant::now();
    eventually(
        Duration::from_secs(6),
        "B refuses both of Alice's ended logins",
        || async { !accepted(&b, &from_a).await && !accepted(&b, &new_from_a).await },
    )
    .await;
    eprintln!("B refused the ended logins after {:?}", ended.elapsed());
    assert!(accepted(&b, &from_b).await, "Bob's login goes on");
}

async fn a_replaced_key_retires_once_its_tokens_have_expired(backend: Backend) {
    let app = TestApp::start_driven(backend, |c| c.jwt.key_reload_secs = 1).await;
    let old = app.login_mp(MP_A, "carol").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = app.gql_ok(Some(ADMIN_KEY), ROTATE, json!({})).await["rotateSigningKey"].clone();
    // The old key retires when the longest token it signed has expired (15 minutes), and a
    // little after, for instances that had not seen the rotation yet.
    let retire: chrono::DateTime<chrono::Utc> = rotated["previousKeysRetireAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let lead = retire - chrono::Utc::now();
    assert!(lead > chrono::TimeDelta::minutes(15) && lead < chrono::TimeDelta::minutes(17));
    // Before then, the purge leaves it.
    app.run_jobs_after_waits().await;
    assert_eq!(app.jwks_kids().await.len(), 2);
    assert!(accepted(&app, &old).await);
    // Its time comes: the purge deletes it, it leaves the JWKS, and its tokens are refused.
    app.exec(&format!(
        "UPDATE signing_keys SET retire_after = '2000-01-01 00:00:00' WHERE kid = '{}'",
        kid(&old)
    ))
    .await;
    app.run_jobs_after_waits().await;
    // Retired: kept without its private key, so an old key file naming it is never imported.
    assert_eq!(app.count("signing_keys WHERE retired_at IS NULL").await, 1);
    assert_eq!(
        app.count("signing_keys WHERE retired_at IS NOT NULL AND private_key = ''")
            .await,
        1
    );
    eventually(
        Duration::from_secs(10),
        "the old key leaves the JWKS",
        || async { app.jwks_kids().await == [rotated["kid"].as_str().unwrap()] },
    )
    .await;
    assert!(!accepted(&app, &old).await);
}

async fn rotation_is_for_admins_once_a_minute_and_not_for_hs256(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.login_mp(MP_A, "dave").await;
    let token = user["accessToken"].as_str().unwrap();
    for (who, code) in [
        (None, "UNAUTHENTICATED"),
        (Some(token), "FORBIDDEN"),
        (Some(SERVICE_KEY), "FORBIDDEN"),
    ] {
        let body = app.gql(who, ROTATE, json!({})).await;
        assert_eq!(error_code(&body), code);
    }
    assert_eq!(app.count("signing_keys").await, 1, "nothing rotated");

    let hs = TestApp::start_with(backend, |c| {
        c.jwt.algorithm = JwtAlgorithm::HS256;
        c.jwt.hs256_secret = Some(Secret::new("s".repeat(40)));
    })
    .await;
    let body = hs.gql(Some(ADMIN_KEY), ROTATE, json!({})).await;
    assert_eq!(error_code(&body), "CONFLICT");
    let login = hs.login_mp(MP_A, "dave").await;
    let token = login["accessToken"].as_str().unwrap();
    assert!(jsonwebtoken::decode_header(token).unwrap().alg == Algorithm::HS256);
    assert!(accepted(&hs, token).await);
    assert!(
        hs.jwks_kids().await.is_empty(),
        "a shared secret is never published"
    );
    assert_eq!(hs.count("signing_keys").await, 0);
}

/// A PEM file with a new Ed25519 key, and the key.
fn key_file(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let der = Ed25519Key::generate();
    let path = dir.join(name);
    std::fs::write(&path, der_to_pem(&der)).unwrap();
    (path, der)
}

/// An access token signed with `der` under `kid`, claims as given.
fn sign(der: &[u8], alg_kid: (Algorithm, &str), claims: &Value) -> String {
    let mut header = Header::new(alg_kid.0);
    header.kid = Some(alg_kid.1.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der)).unwrap()
}

async fn a_key_file_from_before_keeps_its_tokens_working(backend: Backend) {
    // An instance that signed with its own file: on upgrade the file's key is imported and goes
    // on signing.
    let files = tempfile::tempdir().unwrap();
    let (path, der) = key_file(files.path(), "old.pem");
    let file_kid = Ed25519Key::from_pkcs8(&der).unwrap().kid;
    // The upgrade's settings: the issuer left to its default (now the public URL, which the
    // instances behind one address share; it used to be "wechat-identity").
    let upgraded = |c: &mut Config, file: std::path::PathBuf| {
        deployment(None)(c);
        c.jwt.issuer = None;
        c.public_url = Some(ISSUER.into());
        c.jwt.private_key_file = Some(file);
    };
    let with_file = |path: std::path::PathBuf| move |c: &mut Config| upgraded(c, path);
    let a = TestApp::start_with(backend, with_file(path)).await;
    let login = a.login_mp(MP_A, "erin").await;
    let token = login["accessToken"].as_str().unwrap();
    assert_eq!(kid(token), file_kid);
    assert_eq!(a.jwks_kids().await, [file_kid.as_str()]);

    // A second instance of that deployment had a file of its own: its key is imported too, to
    // verify what it signed before (until those tokens expire), while the deployment's key
    // signs. Its old tokens work on both instances.
    let (other_path, other_der) = key_file(files.path(), "other.pem");
    let other_kid = Ed25519Key::from_pkcs8(&other_der).unwrap().kid;
    let key = std::fs::read_to_string(a.dir.path().join("session-key-encryption.key")).unwrap();
    let shared = (a.database_url.clone(), key);
    let instance = |file: std::path::PathBuf| {
        let shared = shared.clone();
        move |c: &mut Config| {
            upgraded(c, file);
            deployment(Some(shared))(c);
            c.jwt.issuer = None;
        }
    };
    let b = TestApp::start_with(backend, instance(other_path.clone())).await;
    // A token that instance signed before the upgrade, as it signed them then: the old issuer,
    // no `jti`, no app; the `sid` of the login (its first session's id).
    let now = chrono::Utc::now().timestamp();
    let old_claims = json!({
        "iss": "wechat-identity", "aud": "wechat-identity", "sub": login["user"]["id"],
        "sid": claims(token)["sid"], "iat": now - 120, "exp": now + 600,
    });
    let signed_before = sign(&other_der, (Algorithm::EdDSA, &other_kid), &old_claims);
    assert!(accepted(&b, &signed_before).await && accepted(&a, &signed_before).await);
    let from_b = b.login_mp(MP_B, "erin").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid(&from_b), file_kid, "the deployment's key signs");
    assert_eq!(a.count("signing_keys").await, 2);
    // Started again with the same file: nothing new.
    let c = TestApp::start_with(backend, instance(other_path)).await;
    assert_eq!(a.count("signing_keys").await, 2);
    assert!(accepted(&c, &signed_before).await);
}

async fn forged_and_foreign_tokens_are_refused(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let (path, der) = key_file(files.path(), "ours.pem");
    let app = TestApp::start_with(backend, move |c| {
        deployment(None)(c);
        c.jwt.private_key_file = Some(path);
    })
    .await;
    let login = app.login_mp(MP_A, "frank").await;
    let token = login["accessToken"].as_str().unwrap();
    let ours = kid(token);
    let good = claims(token);
    // The control: our key, our claims, re-signed here, is accepted.
    assert!(accepted(&app, &sign(&der, (Algorithm::EdDSA, &ours), &good)).await);

    let mut wrong_issuer = good.clone();
    wrong_issuer["iss"] = "https://evil.example.com".into();
    let mut expired = good.clone();
    expired["exp"] = json!(good["iat"].as_u64().unwrap() - 3600);
    let mut tampered: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut admin = good.clone();
    admin["sub"] = "someone-else".into();
    tampered[1] = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(admin.to_string())
    };
    let stranger = Ed25519Key::generate();
    let none = {
        use base64::Engine as _;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({ "alg": "none", "kid": ours })),
            b64(&admin)
        )
    };
    let x = Ed25519Key::from_pkcs8(&der).unwrap().x;
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(ours.clone());
    let confused =
        jsonwebtoken::encode(&hs_header, &admin, &EncodingKey::from_secret(x.as_bytes())).unwrap();
    for (what, forged) in [
        (
            "another issuer",
            sign(&der, (Algorithm::EdDSA, &ours), &wrong_issuer),
        ),
        ("expired", sign(&der, (Algorithm::EdDSA, &ours), &expired)),
        ("tampered claims", tampered.join(".")),
        (
            "an unknown key",
            sign(&stranger, (Algorithm::EdDSA, "made-up-kid"), &good),
        ),
        (
            "a stranger's key under our kid",
            sign(&stranger, (Algorithm::EdDSA, &ours), &good),
        ),
        ("alg none", none),
        ("HS256 keyed with our public key", confused),
    ] {
        let body = app.gql(Some(&forged), "{ me { id } }", json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body:#}");
    }
}
