//! Our own sessions: JWT access tokens (+ JWKS), rotating refresh tokens, API keys, and the
//! caller's role.

pub mod caller;
pub mod jwt;
pub mod sessions;

pub use caller::{ApiKeys, Caller, Role};
pub use jwt::{AccessClaims, TokenIssuer};
pub use sessions::IssuedTokens;

/// Why a caller could not be authenticated or authorized.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or bad ones (tampered, expired, unknown, revoked, `alg: none`).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Valid credentials without the permission needed.
    #[error("{0}")]
    Forbidden(&'static str),
}
