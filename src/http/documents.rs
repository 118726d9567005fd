//! Parsed documents kept per instance: a query text seen before is not parsed again (the
//! engine still validates it against the schema on every request, with the request's
//! variables). Bounded by `graphql.document_cache_bytes`, weighing each document at
//! [`WEIGHT_PER_TEXT_BYTE`] bytes per byte of its text (a parsed document — positions, names,
//! nested nodes — takes 100-160 times its text, measured on `{a a a …}`, with arguments and
//! with inline fragments), the oldest forgotten first; 0 keeps none. Only documents that parse
//! are kept. A hit costs a copy of the document (the engine takes it by value).

use async_graphql::parser::types::ExecutableDocument;

use super::bounded_cache::BoundedCache;
use crate::config::GraphqlConfig;

/// What a kept document weighs per byte of its query text.
pub const WEIGHT_PER_TEXT_BYTE: usize = 160;

/// The cache (None: `graphql.document_cache_bytes` is 0).
pub struct Documents(Option<BoundedCache<ExecutableDocument>>);

impl Documents {
    pub fn new(config: &GraphqlConfig) -> Self {
        Self(
            (config.document_cache_bytes > 0)
                .then(|| BoundedCache::new(config.document_cache_bytes)),
        )
    }

    /// Gives `request` its parsed document: the kept one for its text, or parses it and keeps
    /// it. A document that does not parse is left for the engine to refuse.
    pub fn attach(&self, request: &mut async_graphql::Request) {
        let Some(cache) = &self.0 else {
            return;
        };
        if let Some(doc) = cache.get(&request.query) {
            request.set_parsed_query(ExecutableDocument::clone(&doc));
            return;
        }
        let weight = request.query.len().saturating_mul(WEIGHT_PER_TEXT_BYTE);
        if let Ok(doc) = request.parsed_query() {
            let doc = doc.clone();
            cache.put(&request.query, doc, weight);
        }
    }
}
