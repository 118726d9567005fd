//! The GraphQL API: schema, resolvers, types, loaders and access control.

/// A GraphQL enum mirroring an identity-layer enum variant for variant, with `From` both ways:
/// `graphql_mirror!(/// doc; pub enum Name mirrors path::Enum { A, B })`.
macro_rules! graphql_mirror {
    ($(#[doc = $doc:literal])* $vis:vis enum $name:ident mirrors $other:path { $($variant:ident),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name { $(#[doc = "See the README."] $variant),+ }

        impl From<$name> for $other {
            fn from(a: $name) -> $other {
                use $other as Other;
                match a { $($name::$variant => Other::$variant),+ }
            }
        }

        impl From<$other> for $name {
            fn from(a: $other) -> $name {
                use $other as Other;
                match a { $(Other::$variant => $name::$variant),+ }
            }
        }
    };
}
pub(crate) use graphql_mirror;

pub mod access;
pub mod app_login;
pub mod budget;
pub mod compiled;
pub mod error;
pub mod events;
pub mod federation;
pub mod js_sdk;
pub mod loaders;
pub mod login;
pub mod merge_event;
pub mod message_fields;
pub mod message_inputs;
pub mod message_jobs;
pub mod messages;
pub mod mini_program;
pub mod mutation;
pub mod node;
pub mod official_account;
pub mod paging;
pub mod people;
pub mod published;
pub mod query;
pub mod sessions;
pub mod types;
pub mod users;
mod walk;
pub mod weights;

use async_graphql::connection::Connection;
use async_graphql::{EmptySubscription, MergedObject, SDLExportOptions, Schema};
use chrono::{DateTime, Utc};

use crate::config::GraphqlConfig;

/// The `DateTime` scalar's description (async-graphql's own names its Rust type).
const DATE_TIME: &str = "A point in time, as an RFC 3339 string. Answers are in UTC \
    (`2024-05-01T08:30:00.123456+00:00`); an input may carry any offset \
    (`2024-05-01T16:30:00+08:00` is the same instant).";

/// The query root: the core (users, logins), lookups by key (federation entities included),
/// the Official Account server side, messages and JS-SDK configs. Named `Query` in the schema:
/// a federation subgraph's SDL has no `schema { … }` block, so its roots go by the default names
/// (and the parts merged into them by other names: `CoreQuery`, `CoreMutation`, never shown).
#[derive(MergedObject)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    query::Query,
    federation::FederationQuery,
    official_account::OfficialAccountQuery,
    message_fields::MessageQuery,
    js_sdk::JsSdkQuery,
    events::EventsQuery,
    people::PeopleQuery,
);

/// The mutation root (named `Mutation`, like the query root).
#[derive(MergedObject)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    mutation::Mutation,
    official_account::OfficialAccountMutation,
    message_fields::MessageMutation,
    mini_program::MiniProgramMutation,
    app_login::AppLoginMutation,
    sessions::SessionMutation,
    events::EventsMutation,
    people::PeopleMutation,
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
            federation::FederationQuery,
            official_account::OfficialAccountQuery,
            message_fields::MessageQuery,
            js_sdk::JsSdkQuery,
            events::EventsQuery,
            people::PeopleQuery,
        ),
        MutationRoot(
            mutation::Mutation,
            official_account::OfficialAccountMutation,
            message_fields::MessageMutation,
            mini_program::MiniProgramMutation,
            app_login::AppLoginMutation,
            sessions::SessionMutation,
            events::EventsMutation,
            people::PeopleMutation,
        ),
        EmptySubscription,
    )
    .enable_federation()
    .override_output_type_description::<DateTime<Utc>>(DATE_TIME)
    .override_output_type_description::<Connection<String, types::User, users::UserCount>>(
        "A page of users (`users`), with the cursors to go on.",
    )
    .override_output_type_description::<Connection<String, merge_event::MergeEvent>>(
        "A page of merge events (`mergeEvents`), with the cursor to go on.",
    )
    .override_output_type_description::<Connection<String, messages::WeChatMessage>>(
        "A page of messages (`wechatMessages`), with the cursor to go on.",
    )
    .override_output_type_description::<Connection<String, official_account::WeChatFollowerSync>>(
        "A page of follower syncs (`wechatFollowerSyncs`), with the cursor to go on.",
    )
    .override_output_type_description::<Connection<String, events::UserEvent>>(
        "A page of user events (`userEvents`), with the cursor to go on.",
    )
    .override_output_type_description::<Connection<String, events::EventDelivery>>(
        "A page of an endpoint's deliveries (`eventDeliveries`), with the cursor to go on.",
    )
    .override_output_type_description::<Connection<String, people::AuditEvent>>(
        "A page of the audit log (`auditEvents`), with the cursor to go on.",
    )
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
}

/// The schema with `[graphql]`'s limits. Its data holds nothing: each request brings its own
/// [`Access`](crate::identity::access::Access), client and loader, so a resolver reaches the
/// identity layer only through the handles its caller may have.
pub fn schema(limits: &GraphqlConfig) -> AppSchema {
    builder(limits).finish()
}

/// The schema's own Federation v2 SDL, every field unmarked (what async-graphql's `_service`
/// answers before [`published::Published::answer`] swaps it).
fn full_sdl() -> String {
    builder(&GraphqlConfig::default())
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

/// What a gateway is shown with `federation.expose` = `expose` (see [`published`]).
pub fn published(expose: &[String]) -> Result<published::Published, String> {
    published::Published::new(full_sdl(), expose)
}

/// The SDL the server exports (`wechat-identity schema`; equals the committed `schema.graphql`):
/// the Federation v2 subgraph schema as a gateway is shown it by default, the same text
/// `_service { sdl }` answers (admin and service fields `@inaccessible`).
pub fn sdl() -> String {
    published(&[])
        .expect("the schema's own SDL can be marked")
        .sdl()
        .to_owned()
}
