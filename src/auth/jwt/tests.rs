//! What a forged, altered or foreign token gets: refused, each for its own reason.

use super::*;

fn ed_key() -> Ed25519Key {
    Ed25519Key::from_pkcs8(&Ed25519Key::generate()).unwrap()
}

fn issuer_with(keys: KeySet, iss: &str) -> TokenIssuer {
    TokenIssuer::new(
        &JwtConfig::default(),
        iss.to_owned(),
        HashMap::from([("wxapp".to_owned(), AppKind::MiniProgram)]),
        keys,
    )
}

fn issuer() -> TokenIssuer {
    issuer_with(
        KeySet::ed25519(vec![ed_key()]).unwrap(),
        "https://id.example.com",
    )
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Signs `claims` under `header` with the issuer's own signing key, so only the checks on the
/// header and claims can refuse it.
fn resigned(a: &TokenIssuer, header: Header, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&header, claims, &a.keys().signing).unwrap()
}

fn claims_of(a: &TokenIssuer, token: &str) -> serde_json::Value {
    serde_json::to_value(a.verify(token).unwrap()).unwrap()
}

fn refused(a: &TokenIssuer, token: &str) -> bool {
    matches!(a.verify(token), Err(VerifyError::Invalid(_)))
}

#[test]
fn a_token_names_its_issuer_login_app_and_key() {
    let a = issuer();
    let token = a.issue("user-1", "login-1", Some("wxapp"));
    let claims = a.verify(&token).unwrap();
    assert_eq!(claims.iss, "https://id.example.com");
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_str()),
        ("user-1", "login-1")
    );
    assert_eq!(claims.app_id.as_deref(), Some("wxapp"));
    assert_eq!(claims.app_kind.as_deref(), Some("mini_program"));
    assert_eq!(claims.exp - claims.iat, a.access_ttl_secs);
    assert!(!claims.jti.is_empty());
    assert_ne!(
        claims.jti,
        a.verify(&a.issue("user-1", "login-1", None)).unwrap().jti,
        "every token has its own id"
    );
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(a.keys().kids()[0]));
    assert_eq!(a.jwks()["keys"][0]["kid"], a.keys().kids()[0]);
}

#[test]
fn tampered_unsigned_and_foreign_tokens_are_refused() {
    let a = issuer();
    let token = a.issue("user-1", "login-1", None);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = claims_of(&a, &token);
    claims["sub"] = "admin".into();
    parts[1] = b64(&claims);
    assert!(refused(&a, &parts.join(".")), "altered claims");

    let none = b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": a.keys().kids()[0]}));
    assert!(refused(&a, &format!("{none}.{}.", parts[1])), "alg: none");

    let other = issuer();
    assert!(
        matches!(other.verify(&token), Err(VerifyError::UnknownKey)),
        "another key's token is unknown to us"
    );
    assert!(refused(&a, "not.a.jwt"), "garbage");
}

#[test]
fn an_hmac_token_keyed_with_our_public_key_is_refused() {
    // The classic confusion: the attacker signs HS256 with the published public key as the
    // secret, hoping the verifier takes the key for an HMAC secret.
    let a = issuer();
    let token = a.issue("user-1", "login-1", None);
    let mut claims = claims_of(&a, &token);
    claims["sub"] = "admin".into();
    let x = a.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(a.keys().kids()[0].to_owned());
    for secret in [x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(&x).unwrap()] {
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        assert!(refused(&a, &forged));
    }
    // And the other way round: an HS256 service refuses an EdDSA token.
    let hs = issuer_with(KeySet::hs256(&[7; 40]), "https://id.example.com");
    assert!(refused(&hs, &token));
}

#[test]
fn another_issuer_audience_or_a_past_expiry_is_refused() {
    let a = issuer();
    let token = a.issue("user-1", "login-1", None);
    let claims = claims_of(&a, &token);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert!(a.verify(&resigned(&a, header.clone(), &claims)).is_ok());
    for (field, value) in [
        ("iss", serde_json::json!("https://evil.example.com")),
        // The old default issuer, on a token issued since this process started.
        ("iss", serde_json::json!(LEGACY_ISSUER)),
        ("aud", serde_json::json!("someone-else")),
        ("exp", serde_json::json!(unix_now() - 3600)),
    ] {
        let mut changed = claims.clone();
        changed[field] = value;
        assert!(
            refused(&a, &resigned(&a, header.clone(), &changed)),
            "{field} changed"
        );
    }
    let mut no_kid = header;
    no_kid.kid = None;
    assert!(refused(&a, &resigned(&a, no_kid, &claims)), "no kid");
}

#[test]
fn after_a_rotation_the_new_key_signs_and_both_verify() {
    let (old, new) = (ed_key(), ed_key());
    let (old_kid, new_kid) = (old.kid.clone(), new.kid.clone());
    let a = issuer_with(KeySet::ed25519(vec![old]).unwrap(), "iss");
    let before = a.issue("u", "s", None);
    let old_again = Ed25519Key {
        kid: old_kid.clone(),
        x: a.jwks()["keys"][0]["x"].as_str().unwrap().to_owned(),
        encoding: a.keys().signing.clone(),
        decoding: a.keys().verifying[&old_kid].clone(),
    };
    a.replace_keys(KeySet::ed25519(vec![new, old_again]).unwrap());
    let after = a.issue("u", "s", None);
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    assert!(a.verify(&before).is_ok() && a.verify(&after).is_ok());
    assert_eq!(a.keys().kids(), [new_kid.as_str(), old_kid.as_str()]);
    assert_eq!(a.jwks()["keys"].as_array().unwrap().len(), 2);
    // An HS256 set never replaces EdDSA keys (the algorithm is the configuration's).
    a.replace_keys(KeySet::hs256(&[1; 40]));
    assert!(a.verify(&after).is_ok());
}

#[test]
fn hs256_signs_and_its_kid_gives_nothing_away() {
    let secret = "x".repeat(40);
    let hs = issuer_with(KeySet::hs256(secret.as_bytes()), "iss");
    let token = hs.issue("user-2", "s", None);
    assert_eq!(hs.verify(&token).unwrap().sub, "user-2");
    assert!(!hs.keys().kids()[0].contains("xxxxxxxx"));
    assert_eq!(hs.jwks()["keys"], serde_json::json!([]));
}

#[test]
fn a_token_from_before_the_upgrade_keeps_its_old_issuer_until_it_expires() {
    let a = issuer();
    let token = a.issue("user-1", "login-1", None);
    let mut old = claims_of(&a, &token);
    old["iss"] = LEGACY_ISSUER.into();
    old["iat"] = (unix_now() - 120).into();
    old.as_object_mut().unwrap().remove("jti");
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let before = resigned(&a, header.clone(), &old);
    assert_eq!(a.verify(&before).unwrap().sub, "user-1");
    // Not when the issuer is configured: it was then as it is now.
    let configured = TokenIssuer::new(
        &JwtConfig {
            issuer: Some("https://id.example.com".into()),
            ..JwtConfig::default()
        },
        "https://id.example.com".into(),
        HashMap::new(),
        KeySet::ed25519(vec![ed_key()]).unwrap(),
    );
    let token = configured.issue("user-1", "login-1", None);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let old = resigned(&configured, header, &old);
    assert!(refused(&configured, &old));
}
