//! `[graphql]`: what the GraphQL endpoint shows and how much one request may ask of it —
//! introspection and GraphiQL (both switchable off in production), who may read the SDL, depth,
//! complexity and introspection fields, the answer's size, the execution time, and automatic
//! persisted queries.

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
    /// A query's complexity at most (each field counts 1, a list field's page size — `first`,
    /// `ids`, `representations` — multiplies what is under it).
    #[default(5000)]
    pub max_complexity: usize,
    /// `__schema` and `__type` root fields one request may select (aliases and fragments
    /// count); GraphiQL's and Apollo's introspection query use one `__schema`.
    #[default(3)]
    pub introspection_fields_per_request: usize,
    /// Whether anyone may read the SDL through `_service { sdl }`; off, only admin and service
    /// API keys may (a federation gateway holds one). `wechat-identity schema` prints it regardless.
    pub public_sdl: bool,
    /// An answer's size at most, in bytes of JSON; a larger answer is replaced by a
    /// `RESPONSE_TOO_LARGE` error naming this setting (never sent half).
    #[default(4 * 1024 * 1024)]
    pub max_response_bytes: usize,
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
    /// Whether the hot reads (`me`, `user`, `userByUnionid`, `users`, `usersByIds`, `_entities`
    /// of `User`) whose selections the compiled path covers are answered by one SQL statement
    /// that builds their JSON (off: every read runs the field resolvers; the answers are the
    /// same, byte for byte).
    #[default(true)]
    pub compiled_reads: bool,
    /// Parsed documents kept per instance, in bytes: each weighs 160 bytes per byte of its
    /// query text (oldest forgotten first; 0: none kept, every request parses its query).
    #[default(32 * 1024 * 1024)]
    pub document_cache_bytes: usize,
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
        if !(1..=100).contains(&self.introspection_fields_per_request) {
            return Err(invalid(
                "graphql.introspection_fields_per_request",
                "must be 1..=100",
            ));
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.max_response_bytes) {
            return Err(invalid(
                "graphql.max_response_bytes",
                "must be 1 KiB..=1 GiB",
            ));
        }
        if self.execution_timeout_ms == 0 || self.execution_timeout_ms > request_timeout_ms {
            return Err(invalid(
                "graphql.execution_timeout_ms",
                "must be positive and at most limits.request_timeout_ms",
            ));
        }
        if self.document_cache_bytes > 1024 * 1024 * 1024 {
            return Err(invalid(
                "graphql.document_cache_bytes",
                "at most 1 GiB of query text",
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
