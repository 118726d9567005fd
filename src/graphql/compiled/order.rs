//! The resolvers' answers in the order the query asked for them (the GraphQL spec's
//! "Serialized Map Ordering"). async-graphql inserts each field of an object as its future
//! completes (async-graphql#612), so a field that waited on the database — an identity list,
//! `totalCount` — came after those that did not, in whichever order the waits ended. The
//! compiled path writes the selection's order; under the hot reads the resolvers' answer is
//! put in that order here, and so are the root fields of every operation, so both paths give
//! the same bytes, every time. Each walk spreads a named fragment once per selection (as
//! CollectFields does), so a document cannot make it loop or grow exponentially, and each map
//! is rebuilt in one pass.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, FragmentDefinition, OperationDefinition,
    Selection, SelectionSet,
};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{ContextSelectionSet, Positioned, Value, Variables};
use async_graphql_value::indexmap::IndexMap;
use async_graphql_value::{ConstValue, Name, RAW_VALUE_TOKEN};

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

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
    fragments: &'a Fragments,
}

/// A type's name without list and non-null marks.
fn base(ty: &str) -> &str {
    ty.trim_matches(|c: char| c == '[' || c == ']' || c == '!')
}

/// One response key of a selection: the field's name and the selection sets under every
/// occurrence of the key.
struct Key<'a> {
    key: &'a str,
    name: &'a str,
    sets: Vec<&'a SelectionSet>,
}

/// Rebuilds `map` with the entries named by `keys` first, in that order, then the rest as they
/// were, in one pass; `each` sees every entry `keys` named, with its index in `keys`.
fn reorder<'k>(
    map: &mut IndexMap<Name, ConstValue>,
    keys: impl Iterator<Item = &'k str>,
    mut each: impl FnMut(usize, &mut ConstValue),
) {
    let at: Vec<Option<usize>> = keys.map(|k| map.get_index_of(k)).collect();
    let mut slots: Vec<Option<(Name, ConstValue)>> =
        std::mem::take(map).into_iter().map(Some).collect();
    for (i, index) in at.into_iter().enumerate() {
        if let Some((key, mut value)) = index.and_then(|index| slots[index].take()) {
            each(i, &mut value);
            map.insert(key, value);
        }
    }
    map.extend(slots.into_iter().flatten());
}

impl<'a> Order<'a> {
    /// `value` and what is under it; the selection is collected once for all the objects of a
    /// list.
    fn value(&self, sets: &[&'a SelectionSet], ty: &str, value: &mut Value) {
        let mut fields: Option<Option<(&MetaType, Vec<Key<'a>>)>> = None;
        self.value_with(sets, ty, value, &mut fields);
    }

    fn value_with(
        &self,
        sets: &[&'a SelectionSet],
        ty: &str,
        value: &mut Value,
        fields: &mut Option<Option<(&'a MetaType, Vec<Key<'a>>)>>,
    ) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.value_with(sets, ty, item, fields);
                }
            }
            Value::Object(map) if !map.contains_key(RAW_VALUE_TOKEN) => {
                let Some((meta, fields)) = fields.get_or_insert_with(|| self.fields(sets, ty))
                else {
                    return;
                };
                reorder(map, fields.iter().map(|f| f.key), |i, child| {
                    let field = &fields[i];
                    if let Some(meta_field) = meta.field_by_name(field.name) {
                        self.value(&field.sets, base(&meta_field.ty), child);
                    }
                });
            }
            _ => {}
        }
    }

    /// The fields `sets` select on an object of type `ty`; None for a type that is abstract
    /// (or unknown), whose objects are left as they are.
    fn fields(&self, sets: &[&'a SelectionSet], ty: &str) -> Option<(&'a MetaType, Vec<Key<'a>>)> {
        let meta = self.registry.types.get(ty)?;
        if meta.is_abstract() {
            return None;
        }
        let mut fields: Vec<Key<'a>> = Vec::new();
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        let mut visited: HashSet<&'a Name> = HashSet::new();
        for set in sets {
            self.collect(set, ty, &mut fields, &mut index, &mut visited);
        }
        Some((meta, fields))
    }

    /// The fields of `set` on an object of type `ty` in document order, each response key
    /// once with the selection sets under all its occurrences, each named fragment once
    /// (CollectFields).
    fn collect(
        &self,
        set: &'a SelectionSet,
        ty: &str,
        out: &mut Vec<Key<'a>>,
        index: &mut HashMap<&'a str, usize>,
        visited: &mut HashSet<&'a Name>,
    ) {
        for selection in &set.items {
            let (condition, inner) = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let key = field.response_key().node.as_str();
                    let inner = &field.selection_set.node;
                    match index.get(key) {
                        Some(&i) => out[i].sets.push(inner),
                        None => {
                            index.insert(key, out.len());
                            out.push(Key {
                                key,
                                name: field.name.node.as_str(),
                                sets: vec![inner],
                            });
                        }
                    }
                    continue;
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if !visited.insert(name) {
                        continue;
                    }
                    let Some(fragment) = self.fragments.get(name) else {
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
                self.collect(inner, ty, out, index, visited);
            }
        }
    }
}

/// The operation `operation` names in `doc` (the only one when it names none).
fn operation<'d>(
    doc: &'d ExecutableDocument,
    operation: Option<&str>,
) -> Option<&'d OperationDefinition> {
    match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        _ => None,
    }
}

/// Whether `@skip`/`@include` among `directives` keep a selection, with `variables` (and the
/// operation's defaults).
fn included(
    op: &OperationDefinition,
    variables: &Variables,
    directives: &[Positioned<Directive>],
) -> bool {
    directives.iter().all(|d| {
        let keep_if = match d.node.name.node.as_str() {
            "skip" => false,
            "include" => true,
            _ => return true,
        };
        let value = match d.node.get_argument("if").map(|v| &v.node) {
            Some(async_graphql_value::Value::Boolean(b)) => *b,
            Some(async_graphql_value::Value::Variable(name)) => {
                let given = variables.get(name).cloned().or_else(|| {
                    op.variable_definitions
                        .iter()
                        .find(|v| v.node.name.node == *name)
                        .and_then(|v| v.node.default_value().cloned())
                });
                matches!(given, Some(ConstValue::Boolean(true)))
            }
            _ => false,
        };
        value == keep_if
    })
}

/// The response keys of the operation's root fields in the order it selects them (its
/// fragments spread once each, `@skip`/`@include` applied with `variables`); empty if the
/// operation is not in the document or selects fewer than two. Runs before validation, so it
/// takes any document: each fragment is walked once, however often it is spread or cycles.
pub fn root_keys(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Vec<String> {
    let Some(op) = operation(doc, operation_name) else {
        return Vec::new();
    };
    if op.selection_set.node.items.len() < 2 {
        return Vec::new();
    }
    let mut keys: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut visited: HashSet<&Name> = HashSet::new();
    let mut stack = vec![op.selection_set.node.items.iter()];
    while let Some(items) = stack.last_mut() {
        let Some(selection) = items.next() else {
            stack.pop();
            continue;
        };
        if !included(op, variables, selection.node.directives()) {
            continue;
        }
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                if seen.insert(key) {
                    keys.push(key.to_owned());
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if visited.insert(name)
                    && let Some(fragment) = doc.fragments.get(name)
                {
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
    if let (Value::Object(map), true) = (data, keys.len() > 1) {
        reorder(map, keys.iter().map(String::as_str), |_, _| {});
    }
}

#[cfg(test)]
mod tests {
    use super::root_keys;

    fn keys(query: &str) -> Vec<String> {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        root_keys(&doc, None, &Default::default())
    }

    #[test]
    fn root_keys_follow_the_document_and_skip_what_is_skipped() {
        assert_eq!(
            keys(
                "{ b: me { id } ...F a: me { id } c: me @skip(if: true) { id } } fragment F on Query { d: me { id } b: me { id } }"
            ),
            ["b", "d", "a"]
        );
    }

    #[test]
    fn a_cycle_or_a_fan_of_fragments_is_walked_once() {
        // Refused later by validation; here it must end at once.
        assert_eq!(
            keys(
                "{ a: __typename ...A } fragment A on Query { b: __typename ...A ...B } fragment B on Query { ...A ...B c: __typename }"
            ),
            ["a", "b", "c"]
        );
        let mut fan = String::from("{ x: __typename ...F0 } ");
        for i in 0..40 {
            fan.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }} ",
                i + 1,
                i + 1
            ));
        }
        fan.push_str("fragment F40 on Query { y: __typename }");
        assert_eq!(keys(&fan), ["x", "y"]);
    }
}
