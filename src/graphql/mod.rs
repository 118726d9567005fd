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

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
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
