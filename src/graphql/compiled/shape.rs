//! What a query selects, as the compiled path's shapes: a selection set under a `User` (or a
//! `users` connection) becomes a [`UserShape`] when every field in it is one the compiled path
//! answers, in the order the resolvers would answer them; anything else — a field it does not
//! know, arguments, a directive left after `@skip`/`@include` (the engine has already applied
//! those), a response key given twice, a fragment on a type it cannot place, an object with
//! nothing selected — makes it `None`, and the field runs its resolvers.

use std::collections::HashMap;

use async_graphql::Positioned;
use async_graphql::parser::types::{Field, FragmentDefinition, Selection, SelectionSet};
use async_graphql_value::Name;

use crate::db::models::user_json::{IdentityField, IdentityPart, UserField, UserPart, UserShape};
use crate::types::AppKind;

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The fields of `set` on an object of type `typename` (implementing `interfaces`), fragments
/// spread in document order; None if a fragment's type is not one of `known`, or a response
/// key repeats, or a field has arguments or directives, or nothing is selected.
pub(super) fn fields<'a>(
    fragments: &'a Fragments,
    set: &'a SelectionSet,
    typename: &str,
    interfaces: &[&str],
) -> Option<Vec<(&'a str, &'a Field)>> {
    let mut out: Vec<(&str, &Field)> = Vec::new();
    collect(fragments, set, typename, interfaces, &mut out)?;
    let mut keys: Vec<&str> = out.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    let repeats = keys.windows(2).any(|w| w[0] == w[1]);
    (!out.is_empty() && !repeats).then_some(out)
}

fn collect<'a>(
    fragments: &'a Fragments,
    set: &'a SelectionSet,
    typename: &str,
    interfaces: &[&str],
    out: &mut Vec<(&'a str, &'a Field)>,
) -> Option<()> {
    for selection in &set.items {
        let (condition, inner) = match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                if !field.arguments.is_empty() || !field.directives.is_empty() {
                    return None;
                }
                out.push((field.response_key().node.as_str(), field));
                continue;
            }
            Selection::FragmentSpread(spread) => {
                if !spread.node.directives.is_empty() {
                    return None;
                }
                let fragment = &fragments.get(&spread.node.fragment_name.node)?.node;
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
            None => collect(fragments, inner, typename, interfaces, out)?,
            Some(c) if c == typename || interfaces.contains(&c) => {
                collect(fragments, inner, typename, interfaces, out)?
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
    let mut shape = Vec::new();
    for (key, field) in fields(fragments, set, "User", &["Node"])? {
        let name = field.name.node.as_str();
        let part = match name {
            "__typename" => UserPart::Typename,
            "miniProgramIdentities" => identities(fragments, field, AppKind::MiniProgram)?,
            "officialAccountIdentities" => identities(fragments, field, AppKind::OfficialAccount)?,
            "websiteIdentities" => identities(fragments, field, AppKind::Website)?,
            "mobileAppIdentities" => identities(fragments, field, AppKind::MobileApp)?,
            _ => UserPart::Field(scalar(field, UserField::of(name)?)?),
        };
        shape.push((key.to_owned(), part));
    }
    Some(UserShape(shape))
}

/// A scalar field: no selection under it.
fn scalar<T>(field: &Field, known: T) -> Option<T> {
    field.selection_set.node.items.is_empty().then_some(known)
}

fn identities(fragments: &Fragments, field: &Field, kind: AppKind) -> Option<UserPart> {
    let typename = match kind {
        AppKind::MiniProgram => "MiniProgramIdentity",
        AppKind::OfficialAccount => "OfficialAccountIdentity",
        AppKind::Website => "WebsiteIdentity",
        AppKind::MobileApp => "MobileAppIdentity",
    };
    let set = &field.selection_set.node;
    let mut shape = Vec::new();
    for (key, field) in fields(fragments, set, typename, &["Node", "WeChatIdentity"])? {
        let name = field.name.node.as_str();
        let part = match name {
            "__typename" => IdentityPart::Typename,
            _ => IdentityPart::Field(scalar(field, IdentityField::of(kind, name)?)?),
        };
        shape.push((key.to_owned(), part));
    }
    Some(UserPart::Identities(kind, shape))
}
