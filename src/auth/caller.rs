//! Who is calling: a user (access JWT), a back-end (API key with a role), or nobody.

use std::collections::HashMap;

use super::AuthError;
use crate::config::{ApiKeyConfig, ApiKeyRole};
use crate::crypto;
use crate::types::UserId;

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read users and identities.
    Service,
}

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No credentials.
    Anonymous,
    /// A user holding an access token; `user_id` is the token's subject (resolve merges!).
    User {
        /// The token's subject.
        user_id: UserId,
        /// The session it was issued in.
        session_id: String,
    },
    /// A back-end holding an API key.
    ApiKey {
        /// The key's configured name.
        name: String,
        /// Its role.
        role: Role,
    },
}

/// The configured API keys, held as SHA-256 hashes.
#[derive(Default)]
pub struct ApiKeys {
    by_hash: HashMap<String, (String, Role)>,
}

impl ApiKeys {
    /// From config.
    pub fn from_config(keys: &[ApiKeyConfig]) -> Self {
        let by_hash = keys
            .iter()
            .map(|k| {
                let role = match k.role {
                    ApiKeyRole::Admin => Role::Admin,
                    ApiKeyRole::Service => Role::Service,
                };
                (
                    crypto::sha256_hex(k.key.expose().as_bytes()),
                    (k.name.clone(), role),
                )
            })
            .collect();
        Self { by_hash }
    }

    fn find(&self, key: &str) -> Option<&(String, Role)> {
        // Hashing first makes the map lookup's timing independent of the real keys.
        self.by_hash.get(&crypto::sha256_hex(key.as_bytes()))
    }
}

/// What an `Authorization` header holds, before an access token's signature and login are
/// checked (`Identity::access` does that).
#[derive(Debug)]
pub enum Credential<'a> {
    /// An access JWT (three dot-separated parts), unchecked.
    AccessToken(&'a str),
    /// A known API key.
    ApiKey(Caller),
}

/// Reads an `Authorization` header value: `Bearer <access JWT | API key>`. An API key is
/// looked up; an access token is handed back unchecked.
pub fn credential<'a>(value: &'a str, keys: &ApiKeys) -> Result<Credential<'a>, AuthError> {
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(AuthError::Unauthenticated(
                "Authorization must be `Bearer <token>`",
            ));
        }
    };
    if token.is_empty() || token.len() > 4096 {
        return Err(AuthError::Unauthenticated(
            "bearer token missing or too long",
        ));
    }
    if token.matches('.').count() == 2 {
        return Ok(Credential::AccessToken(token));
    }
    match keys.find(token) {
        Some((name, role)) => Ok(Credential::ApiKey(Caller::ApiKey {
            name: name.clone(),
            role: *role,
        })),
        None => Err(AuthError::Unauthenticated("unknown API key")),
    }
}
