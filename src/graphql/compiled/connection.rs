//! The `users` connection on the compiled path: what a query selects of it ([`PageShape`]) and
//! its JSON around the users' JSON the database built, with the cursors, `pageInfo` and
//! `totalCount` the resolvers would give.

use std::collections::HashMap;

use async_graphql::Positioned;
use async_graphql::parser::types::{FragmentDefinition, SelectionSet};
use async_graphql_value::Name;

use super::shape::{Key, fields, user_of};
use crate::db::models::user_json::UserShape;

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// What a query selects of a `UserConnection`.
pub struct PageShape {
    parts: Vec<(String, Part)>,
    /// The users' shape under `edges { node }` (or `nodes` when only it is selected).
    pub user: UserShape,
    /// The users' shape under `nodes` when it differs from [`PageShape::user`]: the statement
    /// builds both.
    pub nodes: Option<UserShape>,
    /// Whether `totalCount` is selected.
    pub counts: bool,
}

enum Part {
    Typename,
    TotalCount,
    Nodes,
    Edges(Vec<(String, EdgePart)>),
    PageInfo(Vec<(String, InfoPart)>),
}

enum EdgePart {
    Typename,
    Node,
    Cursor,
}

enum InfoPart {
    Typename,
    HasPreviousPage,
    HasNextPage,
    StartCursor,
    EndCursor,
}

impl PageShape {
    /// The shape of a selection set on `UserConnection`; None if anything in it is outside
    /// the compiled path (or `edges { node }` and `nodes` select users differently).
    pub fn of(fragments: &Fragments, set: &SelectionSet) -> Option<Self> {
        let mut edge_user: Option<UserShape> = None;
        let mut nodes_user: Option<UserShape> = None;
        let mut parts = Vec::new();
        let mut counts = false;
        for Key { key, field, sets } in fields(fragments, &[set], "UserConnection", &[])? {
            let part = match field.name.node.as_str() {
                "__typename" => Part::Typename,
                "totalCount" => {
                    counts = true;
                    Part::TotalCount
                }
                "nodes" => {
                    one_shape(&mut nodes_user, user_of(fragments, &sets)?)?;
                    Part::Nodes
                }
                "edges" => {
                    let mut edge = Vec::new();
                    for Key { key, field, sets } in fields(fragments, &sets, "UserEdge", &[])? {
                        let part = match field.name.node.as_str() {
                            "__typename" => EdgePart::Typename,
                            "cursor" => EdgePart::Cursor,
                            "node" => {
                                one_shape(&mut edge_user, user_of(fragments, &sets)?)?;
                                EdgePart::Node
                            }
                            _ => return None,
                        };
                        edge.push((key.to_owned(), part));
                    }
                    Part::Edges(edge)
                }
                "pageInfo" => {
                    let mut info = Vec::new();
                    for Key { key, field, .. } in fields(fragments, &sets, "PageInfo", &[])? {
                        let part = match field.name.node.as_str() {
                            "__typename" => InfoPart::Typename,
                            "hasPreviousPage" => InfoPart::HasPreviousPage,
                            "hasNextPage" => InfoPart::HasNextPage,
                            "startCursor" => InfoPart::StartCursor,
                            "endCursor" => InfoPart::EndCursor,
                            _ => return None,
                        };
                        info.push((key.to_owned(), part));
                    }
                    Part::PageInfo(info)
                }
                _ => return None,
            };
            parts.push((key.to_owned(), part));
        }
        let (user, nodes) = match (edge_user, nodes_user) {
            (Some(edge), Some(nodes)) if edge != nodes => (edge, Some(nodes)),
            (Some(user), _) | (None, Some(user)) => (user, None),
            // A page that selects no user at all still lists them (for its cursors).
            (None, None) => (UserShape(Vec::new()), None),
        };
        Some(Self {
            parts,
            user,
            nodes,
            counts,
        })
    }

    /// The connection's JSON: `users` are the page's (cursor, JSON under `edges`, JSON under
    /// `nodes`) in order.
    pub fn render(
        &self,
        users: &[(String, String, String)],
        has_previous: bool,
        has_next: bool,
        total: Option<i64>,
    ) -> String {
        let mut out =
            String::with_capacity(64 + users.iter().map(|u| u.1.len() + 64).sum::<usize>());
        out.push('{');
        for (i, (key, part)) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_key(&mut out, key);
            match part {
                Part::Typename => out.push_str("\"UserConnection\""),
                Part::TotalCount => out.push_str(&total.unwrap_or_default().to_string()),
                Part::Nodes => list(&mut out, users, |out, (_, _, json)| out.push_str(json)),
                Part::Edges(edge) => list(&mut out, users, |out, (cursor, json, _)| {
                    out.push('{');
                    for (j, (key, part)) in edge.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        push_key(out, key);
                        match part {
                            EdgePart::Typename => out.push_str("\"UserEdge\""),
                            EdgePart::Node => out.push_str(json),
                            EdgePart::Cursor => push_string(out, cursor),
                        }
                    }
                    out.push('}');
                }),
                Part::PageInfo(info) => {
                    out.push('{');
                    for (j, (key, part)) in info.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        push_key(&mut out, key);
                        let cursor = match part {
                            InfoPart::Typename => {
                                out.push_str("\"PageInfo\"");
                                continue;
                            }
                            InfoPart::HasPreviousPage => {
                                out.push_str(if has_previous { "true" } else { "false" });
                                continue;
                            }
                            InfoPart::HasNextPage => {
                                out.push_str(if has_next { "true" } else { "false" });
                                continue;
                            }
                            InfoPart::StartCursor => users.first(),
                            InfoPart::EndCursor => users.last(),
                        };
                        match cursor {
                            Some((cursor, _, _)) => push_string(&mut out, cursor),
                            None => out.push_str("null"),
                        }
                    }
                    out.push('}');
                }
            }
        }
        out.push('}');
        out
    }
}

/// Keeps `found` as the users' shape under `edges { node }` (or `nodes`); None if another
/// alias already selected them differently (the statement builds one shape for each).
fn one_shape(seen: &mut Option<UserShape>, found: UserShape) -> Option<()> {
    match seen {
        Some(shape) if *shape != found => None,
        Some(_) => Some(()),
        None => {
            *seen = Some(found);
            Some(())
        }
    }
}

fn list(
    out: &mut String,
    users: &[(String, String, String)],
    each: impl Fn(&mut String, &(String, String, String)),
) {
    out.push('[');
    for (i, user) in users.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, user);
    }
    out.push(']');
}

/// `"key":` (a GraphQL name needs no escaping).
fn push_key(out: &mut String, key: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

fn push_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}
