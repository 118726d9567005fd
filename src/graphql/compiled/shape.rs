//! What a query selects, as the compiled path's shapes: a selection set under a `User` (or a
//! `users` connection) becomes a [`UserShape`] when every field in it is one the compiled path
//! answers, in the order the resolvers would answer them; anything else — a field it does not
//! know, arguments, a directive left after `@skip`/`@include` (the engine has already applied
//! those), a response key naming two fields, a fragment on a type it cannot place, an object
//! with nothing selected — makes it `None`, and the field runs its resolvers. Fields that share
//! a response key are merged, their selections with them, as the engine merges them.

use std::collections::HashMap;

use async_graphql::Positioned;
use async_graphql::parser::types::{Field, FragmentDefinition, Selection, SelectionSet};
use async_graphql_value::Name;

use crate::db::models::user_json::{IdentityField, IdentityPart, UserField, UserPart, UserShape};
use crate::types::AppKind;

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// One response key of a selection: its field (the first occurrence) and the selection sets
/// under every occurrence (fields that share a key are merged, as the engine merges them).
pub(super) struct Key<'a> {
    pub key: &'a str,
    pub field: &'a Field,
    pub sets: Vec<&'a SelectionSet>,
}

/// The fields of `sets` on an object of type `typename` (implementing `interfaces`), fragments
/// spread, in document order, each response key once; None if a fragment's type is not one it
/// can place, a key names two different fields, a field has arguments or directives, or
/// nothing is selected.
pub(super) fn fields<'a>(
    fragments: &'a Fragments,
    sets: &[&'a SelectionSet],
    typename: &str,
    interfaces: &[&str],
) -> Option<Vec<Key<'a>>> {
    let mut out: Vec<Key<'a>> = Vec::new();
    let mut visited: Vec<&Name> = Vec::new();
    for set in sets {
        collect(fragments, set, typename, interfaces, &mut out, &mut visited)?;
    }
    (!out.is_empty()).then_some(out)
}

/// CollectFields: each named fragment spread once per selection (so a document cannot make
/// the walk exponential).
fn collect<'a>(
    fragments: &'a Fragments,
    set: &'a SelectionSet,
    typename: &str,
    interfaces: &[&str],
    out: &mut Vec<Key<'a>>,
    visited: &mut Vec<&'a Name>,
) -> Option<()> {
    for selection in &set.items {
        let (condition, inner) = match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                if !field.arguments.is_empty() || !field.directives.is_empty() {
                    return None;
                }
                let key = field.response_key().node.as_str();
                let sets = &field.selection_set.node;
                match out.iter_mut().find(|k| k.key == key) {
                    Some(seen) if seen.field.name.node == field.name.node => seen.sets.push(sets),
                    Some(_) => return None,
                    None => out.push(Key {
                        key,
                        field,
                        sets: vec![sets],
                    }),
                }
                continue;
            }
            Selection::FragmentSpread(spread) => {
                if !spread.node.directives.is_empty() {
                    return None;
                }
                let name = &spread.node.fragment_name.node;
                if visited.contains(&name) {
                    continue;
                }
                visited.push(name);
                let fragment = &fragments.get(name)?.node;
                (
                    Some(fragment.type_condition.node.on.node.as_str()),
                    &fragment.selection_set.node,
                )
            }
            Selection::InlineFragment(inline) => {
                if !inline.node.directives.is_empty() {
                    return None;
                }
                let condition = inline.node.type_condition.as_ref();
                (
                    condition.map(|c| c.node.on.node.as_str()),
                    &inline.node.selection_set.node,
                )
            }
        };
        match condition {
            None => collect(fragments, inner, typename, interfaces, out, visited)?,
            Some(c) if c == typename || interfaces.contains(&c) => {
                collect(fragments, inner, typename, interfaces, out, visited)?
            }
            // Another object type (the engine skips it): `_entities` mixes them.
            Some(c) if OTHER_OBJECTS.contains(&c) => {}
            Some(_) => return None,
        }
    }
    Some(())
}

/// Object types a fragment under a `User` or an identity may name and that never apply there.
const OTHER_OBJECTS: &[&str] = &[
    "User",
    "MiniProgramIdentity",
    "OfficialAccountIdentity",
    "WebsiteIdentity",
    "MobileAppIdentity",
];

/// The compiled shape of a selection set on `User`.
pub fn user(fragments: &Fragments, set: &SelectionSet) -> Option<UserShape> {
    user_of(fragments, &[set])
}

/// The compiled shape of the merged selection sets `sets` on `User`.
pub(super) fn user_of(fragments: &Fragments, sets: &[&SelectionSet]) -> Option<UserShape> {
    let mut shape = Vec::new();
    for Key { key, field, sets } in fields(fragments, sets, "User", &["Node"])? {
        let name = field.name.node.as_str();
        let kind = match name {
            "miniProgramIdentities" => Some(AppKind::MiniProgram),
            "officialAccountIdentities" => Some(AppKind::OfficialAccount),
            "websiteIdentities" => Some(AppKind::Website),
            "mobileAppIdentities" => Some(AppKind::MobileApp),
            _ => None,
        };
        let part = match (name, kind) {
            ("__typename", _) => UserPart::Typename,
            (_, Some(kind)) => identities(fragments, &sets, kind)?,
            _ => UserPart::Field(scalar(&sets, UserField::of(name)?)?),
        };
        shape.push((key.to_owned(), part));
    }
    Some(UserShape(shape))
}

/// A scalar field: no selection under it.
fn scalar<T>(sets: &[&SelectionSet], known: T) -> Option<T> {
    sets.iter().all(|s| s.items.is_empty()).then_some(known)
}

fn identities(fragments: &Fragments, sets: &[&SelectionSet], kind: AppKind) -> Option<UserPart> {
    let typename = match kind {
        AppKind::MiniProgram => "MiniProgramIdentity",
        AppKind::OfficialAccount => "OfficialAccountIdentity",
        AppKind::Website => "WebsiteIdentity",
        AppKind::MobileApp => "MobileAppIdentity",
    };
    let mut shape = Vec::new();
    for Key { key, field, sets } in fields(fragments, sets, typename, &["Node", "WeChatIdentity"])?
    {
        let name = field.name.node.as_str();
        let part = match name {
            "__typename" => IdentityPart::Typename,
            _ => IdentityPart::Field(scalar(&sets, IdentityField::of(kind, name)?)?),
        };
        shape.push((key.to_owned(), part));
    }
    Some(UserPart::Identities(kind, shape))
}
