//! Our own sessions: JWT access tokens (+ JWKS) and the signing keys every instance shares,
//! rotating refresh tokens and whether a login is still live, API keys, and the caller's role.

pub mod caller;
pub mod jwt;
pub mod keys;
pub mod revocation;
pub mod sessions;

pub use caller::{ApiKeys, Caller, Role};
pub use jwt::{AccessClaims, TokenIssuer};
pub use sessions::IssuedTokens;

/// Why a caller could not be authenticated or authorized.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or bad ones (tampered, expired, unknown, revoked, `alg: none`, a login
    /// that has ended).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Valid credentials without the permission needed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The credentials could not be checked now (the database did not answer): try again.
    #[error("{0}")]
    Unavailable(&'static str),
}
