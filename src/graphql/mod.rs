//! The GraphQL API: schema, resolvers, types, loaders and access control.

pub mod access;
pub mod budget;
pub mod error;
pub mod loaders;
pub mod merge_event;
pub mod message_fields;
pub mod message_inputs;
pub mod messages;
pub mod mutation;
pub mod node;
pub mod official_account;
pub mod paging;
pub mod query;
pub mod types;
pub mod users;

use async_graphql::{EmptySubscription, MergedObject, Schema};

use crate::config::GraphqlConfig;
use crate::identity::Identity;

/// The query root: the core (users, logins), the Official Account server side and messages.
#[derive(MergedObject)]
pub struct QueryRoot(
    query::Query,
    official_account::OfficialAccountQuery,
    message_fields::MessageQuery,
);

/// The mutation root.
#[derive(MergedObject)]
pub struct MutationRoot(
    mutation::Mutation,
    official_account::OfficialAccountMutation,
    message_fields::MessageMutation,
);

/// The schema type.
pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema with `[graphql]`'s depth and complexity limits (introspection, time and persisted
/// queries are the HTTP layer's: the SDL export must not depend on them).
fn builder(
    limits: &GraphqlConfig,
) -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot(
            query::Query,
            official_account::OfficialAccountQuery,
            message_fields::MessageQuery,
        ),
        MutationRoot(
            mutation::Mutation,
            official_account::OfficialAccountMutation,
            message_fields::MessageMutation,
        ),
        EmptySubscription,
    )
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
}

/// The schema with the identity service in its data.
pub fn schema(identity: Identity) -> AppSchema {
    builder(&identity.config().graphql).data(identity).finish()
}

/// The SDL the server exports (`wechat-identity schema`; equals the committed `schema.graphql`).
pub fn sdl() -> String {
    builder(&GraphqlConfig::default()).finish().sdl()
}
