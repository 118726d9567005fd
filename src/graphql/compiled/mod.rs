//! The compiled read path. The hot reads — `me`, `user`, `userByUnionid`, `users`,
//! `usersByIds` and `_entities` of `User` — look at what the query selects under them first: when
//! every field is one the compiled path knows ([`shape`]: `User`'s scalar fields, its four
//! identity lists with their scalar fields, `__typename`; for `users` the connection's own
//! fields), the read is one SQL statement whose result is the field's JSON
//! (`db::models::user_json`), and the field answers that text as it is ([`Compiled::Json`]:
//! async-graphql's `raw_value` passes it through without building a value per field). Anything
//! else runs the resolvers ([`Compiled::Resolved`]), unchanged. Both paths ask the same
//! `identity` handles, which make the same access decisions, and give the same bytes
//! (`tests/it/compiled_reads.rs` runs a corpus through both).
//!
//! Adding a field to `User` or an identity: the resolvers answer it at once (the compiled path
//! does not know it, so a query selecting it falls back — `wechat_identity_graphql_compiled_reads_total{path="resolvers"}`
//! counts it, and `a_field_outside_the_compiled_path_falls_back` shows it); to compile it, give
//! it a `UserField`/`IdentityField` with its column and kind in `user_json.rs` and a line in
//! the differential corpus.

pub mod connection;
mod order;
pub use order::{order_root, root_keys};
pub mod shape;

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{Context, ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use async_graphql_value::{Name, RAW_VALUE_TOKEN};

use std::collections::HashMap;
use std::sync::Arc;

use super::access;
use super::types::load_failed;
use crate::db::models::user_json::{UserJson, UserShape};
use crate::identity::IdentityError;
use crate::types::UserId;

/// A field's answer: JSON the database built, or the object for the resolvers.
pub enum Compiled<T> {
    Json(String),
    Resolved(T),
}

impl<T: OutputType> OutputType for Compiled<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        match self {
            Compiled::Json(_) => T::type_name(),
            Compiled::Resolved(inner) => inner.introspection_type_name(),
        }
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match self {
            Compiled::Json(json) => Ok(raw(json.clone())),
            Compiled::Resolved(inner) => {
                let mut value = inner.resolve(ctx, field).await?;
                order::in_selection_order(ctx, &inner.introspection_type_name(), &mut value);
                Ok(value)
            }
        }
    }
}

/// A value serialized as the JSON text it holds (async-graphql's `raw_value`).
fn raw(json: String) -> Value {
    let mut object = async_graphql_value::indexmap::IndexMap::with_capacity(1);
    object.insert(Name::new(RAW_VALUE_TOKEN), Value::String(json));
    Value::Object(object)
}

/// Per request: whether the compiled path is on (`graphql.compiled_reads`), and the users of
/// an `_entities` list, read once for all its `User` representations.
#[derive(Default)]
pub struct Reads {
    pub enabled: bool,
    /// By the response key of each `_entities` field (two share none: such a request runs the
    /// resolvers).
    entities: std::sync::Mutex<HashMap<String, Arc<EntityCell>>>,
}

type EntityCell = tokio::sync::OnceCell<Result<Arc<EntityUsers>, Arc<IdentityError>>>;

/// The users of an `_entities` list by the id each representation asked for.
type EntityUsers = HashMap<String, UserJson>;

impl Reads {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            entities: Default::default(),
        }
    }
}

/// Whether the compiled path is on for this request, and the current root field is the only
/// one with its response key (the engine merges the answers of fields that share one, which it
/// cannot do with text).
fn enabled(ctx: &Context<'_>) -> bool {
    ctx.data_opt::<Reads>().is_some_and(|r| r.enabled) && !shares_its_key(ctx)
}

fn shares_its_key(ctx: &Context<'_>) -> bool {
    use async_graphql::parser::types::Selection;
    let key = ctx.item.node.response_key().node.as_str();
    let fragments = &ctx.query_env.fragments;
    let mut seen = 0;
    let mut visited = std::collections::HashSet::new();
    let mut stack = vec![ctx.query_env.operation.node.selection_set.node.items.iter()];
    while let Some(items) = stack.last_mut() {
        let Some(selection) = items.next() else {
            stack.pop();
            continue;
        };
        match &selection.node {
            Selection::Field(field) => {
                if field.node.response_key().node == key {
                    seen += 1;
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if visited.insert(name)
                    && let Some(fragment) = fragments.get(name)
                {
                    stack.push(fragment.node.selection_set.node.items.iter());
                }
            }
            Selection::InlineFragment(inline) => {
                stack.push(inline.node.selection_set.node.items.iter());
            }
        }
    }
    seen > 1
}

/// The compiled shape of the `User` selection under the current field, if the path is on and
/// knows every field; counts the read on the path it takes.
pub fn user_shape(ctx: &Context<'_>) -> Option<UserShape> {
    let shape = uncounted_user_shape(ctx);
    count(ctx, shape.is_some());
    shape
}

/// [`user_shape`] for a field that may still fall back after reading (`nodes`), and counts the
/// path itself ([`count`]).
pub fn uncounted_user_shape(ctx: &Context<'_>) -> Option<UserShape> {
    enabled(ctx)
        .then(|| shape::user(&ctx.query_env.fragments, &ctx.item.node.selection_set.node))
        .flatten()
}

/// The compiled shape of the `users` connection's selection, as [`user_shape`].
pub fn page_shape(ctx: &Context<'_>) -> Option<connection::PageShape> {
    let shape = enabled(ctx)
        .then(|| {
            connection::PageShape::of(&ctx.query_env.fragments, &ctx.item.node.selection_set.node)
        })
        .flatten();
    count(ctx, shape.is_some());
    shape
}

/// Counts the read of the current root field on the path that answered it.
pub fn count(ctx: &Context<'_>, compiled: bool) {
    crate::metrics::compiled_read(ctx.item.node.name.node.as_str(), compiled);
}

/// The users of every `User` representation of the `_entities` list being resolved, read with
/// one statement the first time one of its entities asks (each entity's own resolver then
/// checks its id and the caller's scope, as on the resolvers' path). Representations whose id
/// is not a user id are left to their own resolver's error.
pub async fn entities(
    ctx: &Context<'_>,
    shape: &UserShape,
) -> async_graphql::Result<Arc<EntityUsers>> {
    let Some(reads) = ctx.data_opt::<Reads>() else {
        return Err("the compiled path is not set up for this request".into());
    };
    let key = ctx.item.node.response_key().node.as_str();
    let cell = {
        let mut by_field = reads.entities.lock().unwrap_or_else(|e| e.into_inner());
        by_field.entry(key.to_owned()).or_default().clone()
    };
    let users = cell
        .get_or_init(|| async {
            let ids = entity_ids(ctx);
            let related = access::access(ctx).related();
            let found = related.users_json(&ids, shape).await.map_err(Arc::new)?;
            let found: EntityUsers = found.into_iter().map(|u| (u.asked.clone(), u)).collect();
            Ok(Arc::new(found))
        })
        .await;
    users.clone().map_err(load_failed)
}

/// The ids of the `User` representations of the `_entities` field in `ctx`.
fn entity_ids(ctx: &Context<'_>) -> Vec<UserId> {
    let Ok((_, representations)) =
        ctx.param_value::<Vec<async_graphql::Any>>("representations", None)
    else {
        return Vec::new();
    };
    let mut ids: Vec<UserId> = representations
        .iter()
        .filter_map(|any| match &any.0 {
            Value::Object(fields) => {
                let typename = fields.get("__typename")?;
                match (typename, fields.get("id")?) {
                    (Value::String(t), Value::String(id)) if t == "User" => {
                        uuid::Uuid::parse_str(id).ok().map(|_| UserId::new(id))
                    }
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.dedup();
    ids
}
