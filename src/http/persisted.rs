//! Automatic persisted queries (Apollo's protocol, `extensions.persistedQuery`): a client sends
//! a query's SHA-256 alone; when this instance does not know it, the client sends the text with
//! the hash once, and the hash alone works from then on. The text is kept, not a parsed
//! document, so every check (GET mutations, the budget, introspection, depth) runs on each use.
//!
//! Bounded by `graphql.persisted_queries_cache_bytes` of query text (the oldest forgotten
//! first); per instance, so behind a load balancer a client may be asked for the text once per
//! instance.

use super::bounded_cache::BoundedCache;

use serde::Deserialize;

use crate::config::GraphqlConfig;
use crate::crypto::sha256_hex;
use crate::graphql::error::ErrorCode;

/// The cache of query texts by SHA-256 (None in [`super::HttpState`] when the feature is off).
pub struct PersistedQueries {
    cache: BoundedCache<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedQuery {
    version: i64,
    sha256_hash: String,
}

impl PersistedQueries {
    /// The cache `config` asks for, or None when persisted queries are off.
    pub fn new(config: &GraphqlConfig) -> Option<Self> {
        config.persisted_queries.then(|| Self {
            cache: BoundedCache::new(config.persisted_queries_cache_bytes),
        })
    }

    /// Applies the request's `extensions.persistedQuery` (if any) to `query`: fills it from the
    /// cache, or checks its hash and remembers it. A refusal is the code and message the client
    /// sees (a well-formed request that GraphQL refuses).
    pub fn apply(
        this: Option<&Self>,
        extension: Option<&serde_json::Value>,
        query: &mut Option<String>,
    ) -> Result<(), (ErrorCode, &'static str)> {
        let Some(extension) = extension else {
            return Ok(());
        };
        let Some(this) = this else {
            return Err((
                ErrorCode::PersistedQueryNotSupported,
                "persisted queries are turned off on this server (graphql.persisted_queries): \
                 send the query's text without extensions.persistedQuery",
            ));
        };
        let bad = |why: &'static str| (ErrorCode::BadUserInput, why);
        let pq = PersistedQuery::deserialize(extension)
            .map_err(|_| bad("extensions.persistedQuery must be {version: 1, sha256Hash}"))?;
        if pq.version != 1 {
            return Err(bad(
                "only version 1 of extensions.persistedQuery is supported",
            ));
        }
        let hash = pq.sha256_hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                "extensions.persistedQuery.sha256Hash must be 64 hex digits",
            ));
        }
        match query {
            Some(text) => {
                if sha256_hex(text.as_bytes()) != hash {
                    return Err(bad(
                        "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query",
                    ));
                }
                this.cache.put(&hash, text.clone(), text.len());
                Ok(())
            }
            None => match this.cache.get(&hash) {
                Some(text) => {
                    *query = Some(text.to_string());
                    Ok(())
                }
                None => Err((
                    ErrorCode::PersistedQueryNotFound,
                    "PersistedQueryNotFound: this server does not know the query's hash; send the \
                     query's text with it",
                )),
            },
        }
    }
}
