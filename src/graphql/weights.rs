//! What the schema's built-in root fields weigh, checked on the parsed document before anything
//! runs (async-graphql counts each of them as one field, whatever it returns, and its complexity
//! of a built-in field cannot be changed):
//!
//! - `_service` answers the whole SDL (about 36 KB): at most once per request, and only to admin
//!   and service API keys unless `graphql.public_sdl`;
//! - `__schema` and `__type` answer large parts of the schema: at most
//!   `graphql.introspection_fields_per_request` of them;
//! - `_entities` answers one entity per representation: it weighs the representations times the
//!   fields selected under it, held against `graphql.max_complexity`.
//!
//! The fields our resolvers define weigh their page size through their `complexity` attribute
//! (`users(first)`, `nodes(ids)`, …), which the engine's complexity check adds up.

use async_graphql::parser::types::{ExecutableDocument, Field, SelectionSet};
use async_graphql::{Positioned, ServerResult, Variables};
use async_graphql_value::{ConstValue, Value};

use super::error::{ApiError, refuse, refuse_with};
use super::walk::{Counter, Uncountable, Walk};
use crate::identity::access::Access;

/// Root fields that introspect the schema (`__typename` is not one: it is always answered).
pub const INTROSPECTION_FIELDS: &[&str] = &["__schema", "__type"];
/// What the built-in fields may weigh (from `[graphql]`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Weighing {
    /// `graphql.introspection_fields_per_request`.
    pub introspection_fields: usize,
    /// `graphql.max_complexity` (what `_entities` weighs is held against it).
    pub max_complexity: usize,
}
/// The root field that answers the SDL.
const SERVICE: &[&str] = &["_service"];
/// The root field that resolves federation representations.
const ENTITIES: &[&str] = &["_entities"];
/// Fields may nest this deep under `_entities` (the engine refuses past `graphql.max_depth`,
/// at most 256, after this check).
const MAX_TREE_DEPTH: usize = 256;

/// Checks one operation's selection `set`: `_service` once at most, the introspection fields
/// within their budget, `_entities` within the complexity. A document too deep or too large to
/// count is left to the budget's own refusal (it walks the same selections).
pub(super) fn check<'d>(
    budget: &Weighing,
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    variables: &Variables,
) -> ServerResult<()> {
    let mut services = Counter::new(doc, SERVICE);
    if let Ok(found @ 2..) = services.count(set, 0) {
        return Err(refuse(
            format!(
                "at most one `_service` per request (it answers the same SDL every time); this \
                 request has {found} (aliases and fragments count)"
            ),
            services.first,
        ));
    }
    // Aliases inside an introspection root repeat whole lists of the schema (a thousand aliased
    // `types` in one `__schema` built a 20 MB answer); GraphiQL's and Apollo's queries use none.
    let mut inside = Tree::new(doc);
    let mut walk = |field: &'d Positioned<Field>| -> Result<usize, Uncountable> {
        inside.size(&field.node.selection_set.node, 0)?;
        Ok(1)
    };
    let mut introspection = Counter::weighed(doc, INTROSPECTION_FIELDS, &mut walk);
    let found = introspection.count(set, 0);
    let first = introspection.first;
    if inside.aliased > 0 {
        return Err(refuse(
            "aliases inside `__schema`/`__type` are not answered (each would repeat part of the \
             schema; see graphql.introspection_fields_per_request): select each field once"
                .into(),
            first,
        ));
    }
    if let Ok(found) = found
        && found > budget.introspection_fields
    {
        let max = budget.introspection_fields;
        return Err(refuse(
            format!(
                "at most {max} `__schema`/`__type` field{} per request \
                 (graphql.introspection_fields_per_request); this request has {found} (aliases and \
                 fragments count)",
                if max == 1 { "" } else { "s" },
            ),
            first,
        ));
    }
    let mut tree = Tree::new(doc);
    let mut weigh = |field: &'d Positioned<Field>| -> Result<usize, Uncountable> {
        let under = tree.size(&field.node.selection_set.node, 0)?;
        Ok(representations(field, variables).saturating_mul(under.saturating_add(1)))
    };
    let mut entities = Counter::weighed(doc, ENTITIES, &mut weigh);
    let weight = entities.count(set, 0);
    let first = entities.first;
    match weight {
        Ok(weight) if weight > budget.max_complexity => Err(refuse(
            format!(
                "`_entities` weighs {weight} (representations times the fields selected under \
                 it), over graphql.max_complexity ({}): send fewer representations at a time",
                budget.max_complexity
            ),
            first,
        )),
        Ok(_) => Ok(()),
        Err(_) if first.is_some() => Err(refuse(
            "the selection under `_entities` is too deep or too large to weigh".into(),
            first,
        )),
        Err(_) => Ok(()),
    }
}

/// `_service` (the SDL) answers admin and service API keys only, unless `public_sdl`
/// (`graphql.public_sdl`): anyone else gets UNAUTHENTICATED (no or bad credentials) or
/// FORBIDDEN (a user token) before anything runs.
pub(super) fn check_sdl_access(
    doc: &ExecutableDocument,
    public_sdl: bool,
    access: &Access,
) -> ServerResult<()> {
    if public_sdl {
        return Ok(());
    }
    for (_, operation) in doc.operations.iter() {
        let mut services = Counter::new(doc, SERVICE);
        // Uncountable documents are refused by the budget.
        if !services
            .count(&operation.node.selection_set.node, 0)
            .is_ok_and(|n| n > 0)
        {
            continue;
        }
        if let Err(e) = access.reader() {
            let code = ApiError::from(e).code();
            return Err(refuse_with(
                code,
                "`_service` (the SDL) needs an admin or service API key \
                 (`Authorization: Bearer <key>`; graphql.public_sdl is off)"
                    .into(),
                services.first,
            ));
        }
    }
    Ok(())
}

/// How many representations `_entities` was given (a literal list or a variable's).
fn representations(field: &Positioned<Field>, variables: &Variables) -> usize {
    match field.node.get_argument("representations").map(|v| &v.node) {
        Some(Value::List(items)) => items.len(),
        Some(Value::Variable(name)) => match variables.get(name) {
            Some(ConstValue::List(items)) => items.len(),
            _ => 1,
        },
        _ => 1,
    }
}

/// Counts the fields of a selection set, all the way down (each field 1, as the engine's
/// complexity counts them), and the aliased ones among them.
struct Tree<'d> {
    walk: Walk<'d>,
    /// Aliased fields seen (each named fragment walked once).
    aliased: usize,
}

impl<'d> Tree<'d> {
    fn new(doc: &'d ExecutableDocument) -> Self {
        Self {
            walk: Walk::new(doc, MAX_TREE_DEPTH),
            aliased: 0,
        }
    }

    fn size(&mut self, set: &'d SelectionSet, depth: usize) -> Result<usize, Uncountable> {
        tree_size(&mut self.walk, set, depth, &mut self.aliased)
    }
}

fn tree_size<'d>(
    walk: &mut Walk<'d>,
    set: &'d SelectionSet,
    depth: usize,
    aliased: &mut usize,
) -> Result<usize, Uncountable> {
    walk.sum(set, depth, &mut |walk, field, depth| {
        *aliased += usize::from(field.node.alias.is_some());
        let under = tree_size(
            walk,
            &field.node.selection_set.node,
            depth + 1,
            &mut *aliased,
        )?;
        Ok(1usize.saturating_add(under))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Weighing = Weighing {
        introspection_fields: 3,
        max_complexity: 5000,
    };

    fn run(q: &str, variables: Variables) -> ServerResult<()> {
        let doc = async_graphql::parser::parse_query(q).unwrap();
        let (_, operation) = doc.operations.iter().next().unwrap();
        check(
            &BUDGET,
            &doc,
            &operation.node.selection_set.node,
            &variables,
        )
    }

    fn message(q: &str) -> String {
        run(q, Variables::default()).unwrap_err().message
    }

    #[test]
    fn one_service_field_and_a_few_introspection_fields_pass() {
        assert!(run("{ _service { sdl } }", Variables::default()).is_ok());
        let three = "{ a: __schema { queryType { name } } b: __type(name: \"User\") { name } \
                     c: __schema { types { name } } }";
        assert!(run(three, Variables::default()).is_ok());
    }

    #[test]
    fn aliased_service_and_introspection_fields_are_refused() {
        let m = message("{ a: _service { sdl } ...F } fragment F on Query { b: _service { sdl } }");
        assert!(m.contains("at most one `_service`"), "{m}");
        assert!(m.contains("has 2"), "{m}");
        let four: String = (0..4)
            .map(|i| format!("s{i}: __schema {{ types {{ name }} }} "))
            .collect();
        let m = message(&format!("{{ {four} }}"));
        assert!(
            m.contains("graphql.introspection_fields_per_request"),
            "{m}"
        );
    }

    #[test]
    fn entities_weigh_representations_times_fields() {
        // 100 representations × (1 + 3 fields under it) = 400: fine.
        let reps: Vec<String> = (0..100)
            .map(|i| format!("{{__typename: \"User\", id: \"{i}\"}}"))
            .collect();
        let q = |fields: &str| {
            format!(
                "{{ _entities(representations: [{}]) {{ ... on User {{ {fields} }} }} }}",
                reps.join(", ")
            )
        };
        assert!(run(&q("id unionid nickname"), Variables::default()).is_ok());
        // 100 × 60 fields: over 5000.
        let many: String = (0..20)
            .map(|i| format!("a{i}: id b{i}: unionid c{i}: nickname "))
            .collect();
        let m = message(&q(&many));
        assert!(m.contains("graphql.max_complexity"), "{m}");
        // Given in a variable: the same.
        let list: Vec<serde_json::Value> = (0..100)
            .map(|i| serde_json::json!({"__typename": "User", "id": i.to_string()}))
            .collect();
        let variables = Variables::from_json(serde_json::json!({ "r": list }));
        let q = format!(
            "query($r: [_Any!]!) {{ _entities(representations: $r) {{ ...U }} }} \
             fragment U on User {{ {many} }}"
        );
        let m = run(&q, variables).unwrap_err().message;
        assert!(m.contains("graphql.max_complexity"), "{m}");
    }
}
