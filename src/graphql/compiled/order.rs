//! The resolvers' answers in the order the query asked for them (the GraphQL spec's
//! "Serialized Map Ordering"). async-graphql inserts each field of an object as its future
//! completes (async-graphql#612), so a field that waited on the database — an identity list,
//! `totalCount` — came after those that did not, in whichever order the waits ended. The
//! compiled path writes the selection's order; under the hot reads the resolvers' answer is
//! put in that order here, so both paths give the same bytes, every time.

use async_graphql::parser::types::{Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, Value};
use async_graphql_value::{Name, RAW_VALUE_TOKEN};

/// Puts `value` (of GraphQL type `ty`, as the selection set of `ctx` answered it) and every
/// object under it in the selection's order. Objects of an abstract type are left as they are.
pub fn in_selection_order(ctx: &ContextSelectionSet<'_>, ty: &str, value: &mut Value) {
    let order = Order {
        registry: &ctx.schema_env.registry,
        fragments: &ctx.query_env.fragments,
    };
    order.value(&[&ctx.item.node], base(ty), value);
}

struct Order<'a> {
    registry: &'a Registry,
    fragments: &'a std::collections::HashMap<
        Name,
        async_graphql::Positioned<async_graphql::parser::types::FragmentDefinition>,
    >,
}

/// A type's name without list and non-null marks.
fn base(ty: &str) -> &str {
    ty.trim_matches(|c: char| c == '[' || c == ']' || c == '!')
}

impl<'a> Order<'a> {
    fn value(&self, sets: &[&'a SelectionSet], ty: &str, value: &mut Value) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.value(sets, ty, item);
                }
            }
            Value::Object(map) if !map.contains_key(RAW_VALUE_TOKEN) => {
                let Some(meta) = self.registry.types.get(ty) else {
                    return;
                };
                if meta.is_abstract() {
                    return;
                }
                let mut fields: Vec<(&'a str, &'a str, Vec<&'a SelectionSet>)> = Vec::new();
                for set in sets {
                    self.collect(set, ty, &mut fields);
                }
                let mut old = std::mem::take(map);
                for (key, name, inner) in fields {
                    let Some((key, mut child)) = old.shift_remove_entry(key) else {
                        continue;
                    };
                    if let Some(field) = meta.field_by_name(name) {
                        self.value(&inner, base(&field.ty), &mut child);
                    }
                    map.insert(key, child);
                }
                map.extend(old);
            }
            _ => {}
        }
    }

    /// The fields of `set` on an object of type `ty` in document order, each response key
    /// once with the selection sets under all its occurrences (CollectFields).
    fn collect(
        &self,
        set: &'a SelectionSet,
        ty: &str,
        out: &mut Vec<(&'a str, &'a str, Vec<&'a SelectionSet>)>,
    ) {
        for selection in &set.items {
            let (condition, inner) = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let key = field.response_key().node.as_str();
                    let inner = &field.selection_set.node;
                    match out.iter_mut().find(|(k, _, _)| *k == key) {
                        Some((_, _, sets)) => sets.push(inner),
                        None => out.push((key, field.name.node.as_str(), vec![inner])),
                    }
                    continue;
                }
                Selection::FragmentSpread(spread) => {
                    let Some(fragment) = self.fragments.get(&spread.node.fragment_name.node) else {
                        continue;
                    };
                    let fragment = &fragment.node;
                    (
                        Some(fragment.type_condition.node.on.node.as_str()),
                        &fragment.selection_set.node,
                    )
                }
                Selection::InlineFragment(inline) => (
                    inline
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str()),
                    &inline.node.selection_set.node,
                ),
            };
            let applies = condition.is_none_or(|c| {
                c == ty
                    || self
                        .registry
                        .implements
                        .get(ty)
                        .is_some_and(|interfaces| interfaces.contains(c))
            });
            if applies {
                self.collect(inner, ty, out);
            }
        }
    }
}

/// The response keys of the operation's root fields in the order it selects them (its
/// fragments spread, `@skip`/`@include` applied with `variables`); empty if the operation is
/// not in the document or selects fewer than two.
pub fn root_keys(
    doc: &async_graphql::parser::types::ExecutableDocument,
    operation: Option<&str>,
    variables: &async_graphql::Variables,
) -> Vec<String> {
    use async_graphql::parser::types::DocumentOperations;
    let op = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => &op.node,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => &op.node,
            None => return Vec::new(),
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => &op.node,
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    if op.selection_set.node.items.len() < 2 {
        return Vec::new();
    }
    let included =
        |directives: &[async_graphql::Positioned<async_graphql::parser::types::Directive>]| {
            directives.iter().all(|d| {
                let keep_if = match d.node.name.node.as_str() {
                    "skip" => false,
                    "include" => true,
                    _ => return true,
                };
                let value = match d.node.get_argument("if").map(|v| &v.node) {
                    Some(async_graphql_value::Value::Boolean(b)) => *b,
                    Some(async_graphql_value::Value::Variable(name)) => {
                        match variables.get(name).cloned().or_else(|| {
                            op.variable_definitions
                                .iter()
                                .find(|v| v.node.name.node == *name)
                                .and_then(|v| v.node.default_value().cloned())
                        }) {
                            Some(async_graphql_value::ConstValue::Boolean(b)) => b,
                            _ => false,
                        }
                    }
                    _ => false,
                };
                value == keep_if
            })
        };
    let mut keys: Vec<String> = Vec::new();
    let mut stack = vec![op.selection_set.node.items.iter()];
    while let Some(items) = stack.last_mut() {
        let Some(selection) = items.next() else {
            stack.pop();
            continue;
        };
        if !included(selection.node.directives()) {
            continue;
        }
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                if !keys.iter().any(|k| k == key) {
                    keys.push(key.to_owned());
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    stack.push(fragment.node.selection_set.node.items.iter());
                }
            }
            Selection::InlineFragment(inline) => {
                stack.push(inline.node.selection_set.node.items.iter());
            }
        }
    }
    keys
}

/// Puts the root fields of `data` in the order of `keys` ([`root_keys`]).
pub fn order_root(data: &mut Value, keys: &[String]) {
    let Value::Object(map) = data else {
        return;
    };
    if keys.len() < 2 {
        return;
    }
    let mut old = std::mem::take(map);
    for key in keys {
        if let Some((key, value)) = old.shift_remove_entry(key.as_str()) {
            map.insert(key, value);
        }
    }
    map.extend(old);
}
