//! Access tokens: EdDSA (Ed25519, published in the JWKS) by default, or HS256 by config.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use crate::config::{JwtAlgorithm, JwtConfig};
use crate::crypto;

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id at issue time (resolves to the survivor if that user is merged later).
    pub sub: String,
    /// The session (refresh-token family member) this token was issued with.
    pub sid: String,
    /// Issued at (seconds).
    pub iat: u64,
    /// Expires at (seconds).
    pub exp: u64,
}

/// Signs and verifies access tokens; publishes the JWKS.
pub struct TokenIssuer {
    algorithm: Algorithm,
    /// The signing key's id: every token carries it, and only tokens naming it are accepted.
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    jwks: serde_json::Value,
    issuer: String,
    audience: String,
    /// Access token lifetime (seconds).
    pub access_ttl_secs: u64,
    /// Refresh token lifetime (seconds).
    pub refresh_ttl_secs: u64,
    /// How long after its rotation a refresh token still refreshes (a client's retry), seconds.
    pub refresh_reuse_grace_secs: u64,
}

/// Key material could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[error("JWT key ({path}): {message}")]
pub struct KeyError {
    path: String,
    message: String,
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenIssuer {
    /// Builds the issuer from config: the Ed25519 key from `jwt.private_key_file`, or from
    /// `<data_dir>/jwt-ed25519.pem` (generated on first start); or the HS256 secret.
    pub fn from_config(config: &JwtConfig, data_dir: &Path) -> Result<Self, KeyError> {
        match config.algorithm {
            JwtAlgorithm::HS256 => {
                let secret = config.hs256_secret.as_ref().ok_or_else(|| KeyError {
                    path: "jwt.hs256_secret".into(),
                    message: "missing".into(),
                })?;
                let secret = secret.expose().as_bytes();
                // A name for the key that gives nothing of it away (the secret is ≥ 32 bytes).
                let kid = format!("hs256-{}", &crypto::sha256_hex(secret)[..16]);
                Ok(Self::build(
                    config,
                    Algorithm::HS256,
                    kid,
                    EncodingKey::from_secret(secret),
                    DecodingKey::from_secret(secret),
                    serde_json::json!({ "keys": [] }),
                ))
            }
            JwtAlgorithm::EdDSA => {
                let path = config
                    .private_key_file
                    .clone()
                    .unwrap_or_else(|| data_dir.join("jwt-ed25519.pem"));
                let err = |message: String| KeyError {
                    path: path.display().to_string(),
                    message,
                };
                let der = if path.exists() {
                    let pem = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
                    pem_to_der(&pem)
                        .ok_or_else(|| err("not a PEM \"PRIVATE KEY\" (PKCS#8)".into()))?
                } else if config.private_key_file.is_some() {
                    return Err(err("file does not exist".into()));
                } else {
                    let rng = aws_lc_rs::rand::SystemRandom::new();
                    let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                        .map_err(|_| err("key generation failed".into()))?;
                    let der = doc.as_ref().to_vec();
                    crate::fs::write_private(&path, &der_to_pem(&der))
                        .map_err(|e| err(e.to_string()))?;
                    tracing::info!(path = %path.display(), "generated a new Ed25519 JWT signing key");
                    der
                };
                let pair = Ed25519KeyPair::from_pkcs8(&der)
                    .map_err(|_| err("not an Ed25519 PKCS#8 key".into()))?;
                let public = pair.public_key().as_ref().to_vec();
                let x = URL_SAFE_NO_PAD.encode(&public);
                let kid = crypto::sha256_hex(&public)[..16].to_owned();
                let decoding =
                    DecodingKey::from_ed_components(&x).map_err(|e| err(e.to_string()))?;
                let jwks = serde_json::json!({ "keys": [{
                    "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"
                }]});
                Ok(Self::build(
                    config,
                    Algorithm::EdDSA,
                    kid,
                    EncodingKey::from_ed_der(&der),
                    decoding,
                    jwks,
                ))
            }
        }
    }

    fn build(
        config: &JwtConfig,
        algorithm: Algorithm,
        kid: String,
        encoding: EncodingKey,
        decoding: DecodingKey,
        jwks: serde_json::Value,
    ) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Self {
            algorithm,
            kid,
            encoding,
            decoding,
            validation,
            jwks,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl_secs: config.access_ttl_secs,
            refresh_ttl_secs: config.refresh_ttl_secs,
            refresh_reuse_grace_secs: config.refresh_reuse_grace_secs,
        }
    }

    /// Signs an access token for `user_id` in session `session_id`.
    pub fn issue(&self, user_id: &str, session_id: &str) -> String {
        let now = unix_now();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + self.access_ttl_secs,
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("signing with a loaded key cannot fail")
    }

    /// Verifies the key id, signature, algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let kid = jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|header| header.kid);
        if kid.as_deref() != Some(self.kid.as_str()) {
            tracing::debug!("access token without our key id rejected");
            return Err(AuthError::Unauthenticated("access token invalid"));
        }
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "access token rejected");
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        AuthError::Unauthenticated("access token expired")
                    }
                    _ => AuthError::Unauthenticated("access token invalid"),
                }
            })
    }

    /// The JSON Web Key Set with the public key (empty with HS256).
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)?
        .split("-----END PRIVATE KEY-----")
        .next()?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(dir: &Path) -> TokenIssuer {
        TokenIssuer::from_config(&JwtConfig::default(), dir).unwrap()
    }

    #[test]
    fn generated_key_is_kept_and_tokens_verify() {
        let dir = tempfile::tempdir().unwrap();
        let a = issuer(dir.path());
        let token = a.issue("user-1", "sess-1");
        // A second start loads the same key: old tokens still verify.
        let b = issuer(dir.path());
        assert_eq!(b.verify(&token).unwrap().sub, "user-1");
        assert_eq!(a.jwks(), b.jwks());
    }

    #[test]
    fn a_configured_key_file_is_used_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let path = dir.path().join("configured.pem");
        crate::fs::write_private(&path, &der_to_pem(doc.as_ref())).unwrap();
        let config = JwtConfig {
            private_key_file: Some(path.clone()),
            ..JwtConfig::default()
        };
        let a = TokenIssuer::from_config(&config, &dir.path().join("elsewhere")).unwrap();
        let public = Ed25519KeyPair::from_pkcs8(doc.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        assert_eq!(a.jwks()["keys"][0]["x"], URL_SAFE_NO_PAD.encode(&public));
        assert!(
            !dir.path().join("elsewhere").exists(),
            "no key generated when one is configured"
        );
        let missing = JwtConfig {
            private_key_file: Some(dir.path().join("nope.pem")),
            ..JwtConfig::default()
        };
        let err = TokenIssuer::from_config(&missing, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("nope.pem"), "{err}");
    }

    #[test]
    fn tampered_and_unsigned_tokens_fail() {
        let dir = tempfile::tempdir().unwrap();
        let a = issuer(dir.path());
        let token = a.issue("user-1", "sess-1");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({"iss":"wechat-identity","aud":"wechat-identity","sub":"admin","sid":"x","iat":1,"exp":9999999999u64})).unwrap(),
        );
        parts[1] = &forged_claims;
        assert!(a.verify(&parts.join(".")).is_err());
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{forged_claims}.");
        assert!(a.verify(&unsigned).is_err());
        let other = issuer(tempfile::tempdir().unwrap().path());
        assert!(
            other.verify(&token).is_err(),
            "a token signed by another key verifies"
        );
    }

    /// Re-signs `token`'s header and claims with the issuer's own key but a header of our
    /// choosing, so only the `kid` check can refuse it.
    fn resigned(a: &TokenIssuer, token: &str, kid: Option<&str>) -> String {
        let claims = a.verify(token).unwrap();
        let mut header = Header::new(a.algorithm);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, &a.encoding).unwrap()
    }

    #[test]
    fn tokens_must_name_our_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = issuer(dir.path());
        let token = a.issue("user-1", "sess-1");
        let good = resigned(&a, &token, Some(&a.kid.clone()));
        assert_eq!(a.verify(&good).unwrap().sub, "user-1");
        assert!(a.verify(&resigned(&a, &token, None)).is_err(), "no kid");
        assert!(
            a.verify(&resigned(&a, &token, Some("someone-elses-key")))
                .is_err(),
            "unknown kid"
        );
        let hs = TokenIssuer::from_config(
            &JwtConfig {
                algorithm: JwtAlgorithm::HS256,
                hs256_secret: Some(crate::config::Secret::new("x".repeat(40))),
                ..JwtConfig::default()
            },
            dir.path(),
        )
        .unwrap();
        let token = hs.issue("user-2", "sess-2");
        assert_eq!(hs.verify(&token).unwrap().sub, "user-2");
        assert!(hs.verify(&resigned(&hs, &token, None)).is_err());
        assert!(
            !hs.kid.contains(&"x".repeat(8)),
            "the kid gives nothing away"
        );
    }
}
