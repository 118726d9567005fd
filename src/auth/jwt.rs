//! Access tokens: EdDSA (Ed25519, published in the JWKS) by default, or HS256 by config.
//!
//! The keys are a [`KeySet`]: the one that signs and every one that verifies (the JWKS). With
//! EdDSA they come from the `signing_keys` table, shared by every instance (`auth::keys`), and
//! are replaced in place when a rotation is seen ([`TokenIssuer::replace_keys`]); with HS256 the
//! set is the configured secret alone.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use crate::config::JwtConfig;
use crate::crypto;
use crate::types::AppKind;

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the service's public URL, or `jwt.issuer`.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id at issue time (resolves to the survivor if that user is merged later).
    pub sub: String,
    /// The login (session) this token belongs to: `me.sessions`' id, ended by `endSession`.
    pub sid: String,
    /// Issued at (seconds).
    pub iat: u64,
    /// Expires at (seconds).
    pub exp: u64,
    /// This token's own id.
    #[serde(default)]
    pub jti: String,
    /// The app the login came through (none for logins before apps were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// That app's kind: `mini_program`, `official_account`, `website` or `mobile_app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_kind: Option<String>,
}

/// Why a token was not accepted.
#[derive(Debug)]
pub enum VerifyError {
    /// Its `kid` names no key this instance holds: a rotation elsewhere may have added it.
    UnknownKey,
    /// Anything else (tampered, expired, another issuer's, `alg: none`, malformed).
    Invalid(AuthError),
}

impl From<VerifyError> for AuthError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::UnknownKey => AuthError::Unauthenticated("access token invalid"),
            VerifyError::Invalid(e) => e,
        }
    }
}

/// One Ed25519 key: its id, public JWK and both halves for jsonwebtoken.
pub struct Ed25519Key {
    /// Its id: the first 16 hex digits of the public key's SHA-256.
    pub kid: String,
    /// The public key, base64url (the JWK's `x`).
    pub x: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Ed25519Key {
    /// From a PKCS#8 document (DER); `None` unless it is an Ed25519 key.
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(der).ok()?;
        let public = pair.public_key().as_ref();
        let x = URL_SAFE_NO_PAD.encode(public);
        Some(Self {
            kid: crypto::sha256_hex(public)[..16].to_owned(),
            decoding: DecodingKey::from_ed_components(&x).ok()?,
            encoding: EncodingKey::from_ed_der(der),
            x,
        })
    }

    /// A new key, as PKCS#8 (DER).
    pub fn generate() -> Vec<u8> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("the system's random generator works")
            .as_ref()
            .to_vec()
    }
}

/// The keys in use: the one that signs, and every one that verifies.
pub struct KeySet {
    algorithm: Algorithm,
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: Arc<serde_json::Value>,
}

impl KeySet {
    /// Ed25519 keys, newest first: the first signs, all verify and are published.
    pub fn ed25519(keys: Vec<Ed25519Key>) -> Option<Self> {
        let jwks = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": k.x, "kid": k.kid, "alg": "EdDSA", "use": "sig"
                })
            })
            .collect::<Vec<_>>();
        let mut keys = keys.into_iter();
        let first = keys.next()?;
        let mut verifying: HashMap<_, _> = keys.map(|k| (k.kid, k.decoding)).collect();
        verifying.insert(first.kid.clone(), first.decoding);
        Some(Self {
            algorithm: Algorithm::EdDSA,
            signing_kid: first.kid,
            signing: first.encoding,
            verifying,
            jwks: Arc::new(serde_json::json!({ "keys": jwks })),
        })
    }

    /// The HS256 secret (at least 32 bytes): nothing is published.
    pub fn hs256(secret: &[u8]) -> Self {
        // A name for the key that gives nothing of it away.
        let kid = format!("hs256-{}", &crypto::sha256_hex(secret)[..16]);
        Self {
            algorithm: Algorithm::HS256,
            verifying: HashMap::from([(kid.clone(), DecodingKey::from_secret(secret))]),
            signing_kid: kid,
            signing: EncodingKey::from_secret(secret),
            jwks: Arc::new(serde_json::json!({ "keys": [] })),
        }
    }

    /// The key ids, the signing one first.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = vec![&self.signing_kid];
        let mut others: Vec<&str> = self
            .verifying
            .keys()
            .map(String::as_str)
            .filter(|k| *k != self.signing_kid)
            .collect();
        others.sort_unstable();
        kids.extend(others);
        kids
    }
}

/// Signs and verifies access tokens; publishes the JWKS.
pub struct TokenIssuer {
    keys: RwLock<Arc<KeySet>>,
    validation: Validation,
    /// With `jwt.issuer` unset: tokens issued before this process started may carry the old
    /// default issuer ([`LEGACY_ISSUER`]), from before the issuer was the public URL.
    legacy: Option<(Validation, u64)>,
    issuer: String,
    audience: String,
    /// Each configured app's kind, for the `app_kind` claim.
    app_kinds: HashMap<String, AppKind>,
    /// Access token lifetime (seconds).
    pub access_ttl_secs: u64,
    /// Refresh token lifetime (seconds).
    pub refresh_ttl_secs: u64,
    /// How long after its rotation a refresh token still refreshes (a client's retry), seconds.
    pub refresh_reuse_grace_secs: u64,
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds of clock difference allowed between us and whoever checks a token's times.
pub const LEEWAY_SECS: u64 = 30;

/// The issuer every token had before it was the public URL (the old default of `jwt.issuer`).
pub const LEGACY_ISSUER: &str = "wechat-identity";

impl TokenIssuer {
    /// An issuer of tokens with `iss` = `issuer`, signing and verifying with `keys`.
    pub fn new(
        config: &JwtConfig,
        issuer: String,
        app_kinds: HashMap<String, AppKind>,
        keys: KeySet,
    ) -> Self {
        let mut validation = Validation::new(keys.algorithm);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let legacy = config.issuer.is_none().then(|| {
            let mut legacy = validation.clone();
            legacy.set_issuer(&[LEGACY_ISSUER]);
            (legacy, unix_now())
        });
        Self {
            keys: RwLock::new(Arc::new(keys)),
            validation,
            legacy,
            issuer,
            audience: config.audience.clone(),
            app_kinds,
            access_ttl_secs: config.access_ttl_secs,
            refresh_ttl_secs: config.refresh_ttl_secs,
            refresh_reuse_grace_secs: config.refresh_reuse_grace_secs,
        }
    }

    /// The keys in use now.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.read().expect("key lock").clone()
    }

    /// Signs and verifies with `keys` from now on (a rotation seen, a key retired). A set of
    /// another algorithm is refused: the algorithm is the configuration's.
    pub fn replace_keys(&self, keys: KeySet) {
        if keys.algorithm == self.validation.algorithms[0] {
            *self.keys.write().expect("key lock") = Arc::new(keys);
        }
    }

    /// The `iss` of our tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs an access token for `user_id` in the login `login` (its `sid`), which came
    /// through `app_id`.
    pub fn issue(&self, user_id: &str, login: &str, app_id: Option<&str>) -> String {
        let now = unix_now();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            sid: login.to_owned(),
            iat: now,
            exp: now + self.access_ttl_secs,
            jti: uuid::Uuid::now_v7().to_string(),
            app_id: app_id.map(str::to_owned),
            app_kind: app_id
                .and_then(|a| self.app_kinds.get(a))
                .map(|k| k.as_str().to_owned()),
        };
        let keys = self.keys();
        let mut header = Header::new(keys.algorithm);
        header.kid = Some(keys.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &keys.signing)
            .expect("signing with a loaded key cannot fail")
    }

    /// Verifies the key id, signature, algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let invalid = || VerifyError::Invalid(AuthError::Unauthenticated("access token invalid"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let keys = self.keys();
        // The header's algorithm must be ours before any key is chosen: an HS256 token "signed"
        // with our public key, or `none`, never reaches a key.
        if header.alg != keys.algorithm {
            return Err(invalid());
        }
        let Some(kid) = header.kid else {
            return Err(invalid());
        };
        let Some(key) = keys.verifying.get(&kid) else {
            return Err(VerifyError::UnknownKey);
        };
        jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .or_else(|e| match (&self.legacy, e.kind()) {
                // A token from before the upgrade, its issuer the old default: good until it
                // expires; one issued since cannot have it.
                (Some((legacy, started)), jsonwebtoken::errors::ErrorKind::InvalidIssuer) => {
                    jsonwebtoken::decode::<AccessClaims>(token, key, legacy)
                        .ok()
                        .filter(|data| data.claims.iat < *started)
                        .ok_or(e)
                }
                _ => Err(e),
            })
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "access token rejected");
                VerifyError::Invalid(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        AuthError::Unauthenticated("access token expired")
                    }
                    _ => AuthError::Unauthenticated("access token invalid"),
                })
            })
    }

    /// The JSON Web Key Set with the public keys (empty with HS256).
    pub fn jwks(&self) -> Arc<serde_json::Value> {
        self.keys().jwks.clone()
    }
}

#[cfg(test)]
mod tests;
