//! `[graphql]`: what the GraphQL endpoint shows and how much one request may ask of it —
//! introspection and GraphiQL (both switchable off in production), depth and complexity, the
//! execution time, and automatic persisted queries.

use serde::Deserialize;
use smart_default::SmartDefault;

use super::{ConfigError, invalid};

/// GraphQL endpoint settings (`[graphql]`).
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlConfig {
    /// Whether `__schema` and `__type` are answered (off: refused with `FORBIDDEN`; the SDL is
    /// still printed by `wechat-identity schema`, and `__typename` always works).
    #[default(true)]
    pub introspection: bool,
    /// Whether a browser's `GET /graphql` gets GraphiQL (served from the service itself).
    #[default(true)]
    pub graphiql: bool,
    /// How deeply a query's selections may nest.
    #[default(16)]
    pub max_depth: usize,
    /// A query's complexity at most (each field counts 1, a list field's page size multiplies
    /// what is under it).
    #[default(5000)]
    pub max_complexity: usize,
    /// How long one GraphQL request may execute, in milliseconds; past it the request is cut
    /// off with `TIMEOUT` (at most `limits.request_timeout_ms`, the HTTP request's whole time).
    #[default(10_000)]
    pub execution_timeout_ms: u64,
    /// Automatic persisted queries (Apollo's `extensions.persistedQuery`): a client may send a
    /// query's SHA-256 instead of its text once the text was sent with it. Off by default: our
    /// callers send small POST bodies, and the cache is per instance.
    pub persisted_queries: bool,
    /// The persisted-query cache's size in bytes of query text (oldest forgotten first).
    #[default(4 * 1024 * 1024)]
    pub persisted_queries_cache_bytes: usize,
}

impl GraphqlConfig {
    /// Checks the section; errors name the key. `request_timeout_ms` is `limits.request_timeout_ms`.
    pub fn validate(&self, request_timeout_ms: u64) -> Result<(), ConfigError> {
        if !(1..=256).contains(&self.max_depth) {
            return Err(invalid("graphql.max_depth", "must be 1..=256"));
        }
        if !(1..=10_000_000).contains(&self.max_complexity) {
            return Err(invalid("graphql.max_complexity", "must be 1..=10000000"));
        }
        if self.execution_timeout_ms == 0 || self.execution_timeout_ms > request_timeout_ms {
            return Err(invalid(
                "graphql.execution_timeout_ms",
                "must be positive and at most limits.request_timeout_ms",
            ));
        }
        if self.persisted_queries_cache_bytes > 1024 * 1024 * 1024 {
            return Err(invalid(
                "graphql.persisted_queries_cache_bytes",
                "must be at most 1 GiB",
            ));
        }
        Ok(())
    }
}
