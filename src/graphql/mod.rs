//! The GraphQL API: schema, resolvers, types, loaders and access control.

pub mod access;
pub mod budget;
pub mod error;
pub mod loaders;
pub mod merge_event;
pub mod mutation;
pub mod paging;
pub mod query;
pub mod types;

use async_graphql::{EmptySubscription, Schema};

use crate::identity::Identity;

/// The schema type.
pub type AppSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

fn builder() -> async_graphql::SchemaBuilder<query::Query, mutation::Mutation, EmptySubscription> {
    Schema::build(query::Query, mutation::Mutation, EmptySubscription)
        .limit_depth(16)
        .limit_complexity(5000)
}

/// The schema with the identity service in its data.
pub fn schema(identity: Identity) -> AppSchema {
    builder().data(identity).finish()
}

/// The SDL the server exports (`wechat-identity schema`; equals the committed `schema.graphql`).
pub fn sdl() -> String {
    builder().finish().sdl()
}
