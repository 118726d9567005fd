//! What a federation gateway sees of this subgraph: the SDL `_service { sdl }` answers (and
//! `wechat-identity schema` prints) marks `@inaccessible` every root field an end user may not
//! call, and every type only those fields reach, so a supergraph's API schema offers its clients
//! only [`PUBLIC_ROOT_FIELDS`] (and what `federation.expose` adds) and `User`'s fields for joins.
//!
//! A gateway holds an API key to read the SDL, but it forwards its own callers' `Authorization`
//! to us (see the README): the marks keep the admin and service fields out of the supergraph, and
//! every entity fetch is checked against the caller like any read. Direct callers of this
//! service still see the whole schema; `@inaccessible` only shapes the supergraph.

use std::collections::{BTreeSet, HashMap};

use async_graphql::parser::types::{
    BaseType, Type, TypeDefinition, TypeKind, TypeSystemDefinition,
};

/// Root fields anyone may call (a login, a user's own token): the supergraph's API schema has
/// these. A new end-user field goes here; an admin or service field does not.
pub const PUBLIC_ROOT_FIELDS: &[&str] = &[
    "me",
    "officialAccountAuthorizeUrl",
    "startOfficialAccountLogin",
    "loginWithMiniProgram",
    "startWebsiteLogin",
    "loginWithWebsite",
    "loginWithMobileApp",
    "linkPhoneNumber",
    "decryptMiniProgramData",
    "updateMyProfile",
    "loginWithOfficialAccount",
    "redeemLoginTicket",
    "refreshSession",
    "logout",
    "endSession",
    "recordWeChatSubscribeConsent",
    "wechatJsSdkConfig",
];

/// The registry's SDL, and the one this service publishes in its place.
#[derive(Debug)]
pub struct Published {
    full: String,
    published: String,
}

impl Published {
    /// Marks `full` (the schema's own federation SDL) for a gateway: root fields outside
    /// [`PUBLIC_ROOT_FIELDS`] and `expose` (`federation.expose`) are `@inaccessible`, and so is
    /// every type they alone reach. An `expose` name that is not a root field is an error.
    pub fn new(full: String, expose: &[String]) -> Result<Self, String> {
        let published = mark(&full, expose)?;
        Ok(Self { full, published })
    }

    /// The published SDL.
    pub fn sdl(&self) -> &str {
        &self.published
    }

    /// Puts the published SDL where `response` carries the full one (the answer of `_service {
    /// sdl }`, under whatever alias).
    pub fn answer(&self, response: &mut async_graphql::Response) {
        swap(&mut response.data, &self.full, &self.published);
    }
}

fn swap(value: &mut async_graphql::Value, from: &str, to: &str) {
    use async_graphql::Value;
    match value {
        Value::String(s) if s.len() == from.len() && s == from => *s = to.to_owned(),
        Value::Object(map) => map.values_mut().for_each(|v| swap(v, from, to)),
        Value::List(list) => list.iter_mut().for_each(|v| swap(v, from, to)),
        _ => {}
    }
}

/// A change to one line of the SDL.
enum Edit {
    /// Append the directive at the end (a field's last line, a scalar).
    End,
    /// Put it before the ` {` that ends a type's first line.
    BeforeBrace,
    /// Put it after the type's name (a union: `union X @inaccessible = A | B`).
    AfterName(String),
}

fn mark(sdl: &str, expose: &[String]) -> Result<String, String> {
    let doc = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
    let types: HashMap<&str, &TypeDefinition> = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some((t.node.name.node.as_str(), &t.node)),
            _ => None,
        })
        .collect();
    let roots = ["Query", "Mutation"];
    let root_fields: BTreeSet<&str> = roots
        .iter()
        .filter_map(|r| types.get(r))
        .flat_map(|t| fields(t))
        .map(|f| f.name.node.as_str())
        .collect();
    if let Some(unknown) = expose.iter().find(|n| !root_fields.contains(n.as_str())) {
        return Err(format!(
            "federation.expose: `{unknown}` is not a root field of the schema"
        ));
    }
    let public = |name: &str| {
        PUBLIC_ROOT_FIELDS.contains(&name)
            || expose.iter().any(|e| e == name)
            || name.starts_with('_')
    };
    let lines: Vec<&str> = sdl.lines().collect();
    let mut edits: HashMap<usize, Edit> = HashMap::new();
    let mut reached: BTreeSet<&str> = roots.iter().copied().collect();
    let mut todo: Vec<&str> = Vec::new();
    for root in roots.iter().filter_map(|r| types.get(r)) {
        let defs = fields(root);
        for (i, field) in defs.iter().enumerate() {
            if public(field.name.node.as_str()) {
                todo.push(named(&field.ty.node));
                todo.extend(field.arguments.iter().map(|a| named(&a.node.ty.node)));
                continue;
            }
            // The field ends on the line before the next field (its description or its name)
            // or before the type's closing brace.
            let end = match defs.get(i + 1) {
                Some(next) => {
                    next.description
                        .as_ref()
                        .map_or(next.name.pos, |d| d.pos)
                        .line
                        - 1
                }
                None => closing_brace(&lines, field.name.pos.line)? - 1,
            };
            edits.insert(end - 1, Edit::End);
        }
    }
    while let Some(name) = todo.pop() {
        if !reached.insert(name) {
            continue;
        }
        let Some(def) = types.get(name) else { continue };
        for field in fields(def) {
            todo.push(named(&field.ty.node));
            todo.extend(field.arguments.iter().map(|a| named(&a.node.ty.node)));
        }
        match &def.kind {
            TypeKind::Union(u) => todo.extend(u.members.iter().map(|m| m.node.as_str())),
            TypeKind::InputObject(i) => {
                todo.extend(i.fields.iter().map(|f| named(&f.node.ty.node)));
            }
            // Whoever reaches an interface may ask for any type implementing it.
            TypeKind::Interface(_) => todo.extend(types.values().filter_map(|t| match &t.kind {
                TypeKind::Object(o) if o.implements.iter().any(|i| i.node == name) => {
                    Some(t.name.node.as_str())
                }
                _ => None,
            })),
            _ => {}
        }
    }
    for (name, def) in &types {
        if reached.contains(name) || name.starts_with('_') || name.starts_with("link__") {
            continue;
        }
        let line = def.name.pos.line - 1;
        let edit = match def.kind {
            TypeKind::Scalar => Edit::End,
            TypeKind::Union(_) => Edit::AfterName(name.to_string()),
            _ => Edit::BeforeBrace,
        };
        edits.insert(line, edit);
    }
    let mut out = String::with_capacity(sdl.len() + edits.len() * 16);
    for (i, line) in lines.iter().enumerate() {
        match edits.get(&i) {
            None => out.push_str(line),
            Some(Edit::End) => out.push_str(&format!("{} @inaccessible", line.trim_end())),
            Some(Edit::BeforeBrace) => match line.trim_end().strip_suffix(" {") {
                Some(head) => out.push_str(&format!("{head} @inaccessible {{")),
                None => {
                    return Err(format!(
                        "line {}: a type's first line ends without `{{`",
                        i + 1
                    ));
                }
            },
            Some(Edit::AfterName(name)) => {
                let at = line.find(name.as_str()).map(|p| p + name.len());
                let Some(at) = at else {
                    return Err(format!("line {}: no `{name}`", i + 1));
                };
                out.push_str(&format!("{} @inaccessible{}", &line[..at], &line[at..]));
            }
        }
        out.push('\n');
    }
    if !sdl.ends_with('\n') {
        out.pop();
    }
    Ok(out)
}

/// The fields of an object or interface type (none for other kinds).
fn fields(def: &TypeDefinition) -> Vec<&async_graphql::parser::types::FieldDefinition> {
    match &def.kind {
        TypeKind::Object(o) => o.fields.iter().map(|f| &f.node).collect(),
        TypeKind::Interface(i) => i.fields.iter().map(|f| &f.node).collect(),
        _ => Vec::new(),
    }
}

/// The named type under any list and non-null wrappers.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

/// The (1-based) line of the `}` that closes the type whose field starts on `from`.
fn closing_brace(lines: &[&str], from: usize) -> Result<usize, String> {
    lines
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.trim_end() == "}")
        .map(|(i, _)| i + 1)
        .ok_or_else(|| format!("no `}}` after line {from}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> String {
        super::super::full_sdl()
    }

    #[test]
    fn every_public_field_is_a_root_field() {
        let sdl = full();
        let doc = async_graphql::parser::parse_schema(&sdl).unwrap();
        let roots: Vec<String> = doc
            .definitions
            .iter()
            .filter_map(|d| match d {
                TypeSystemDefinition::Type(t)
                    if ["Query", "Mutation"].contains(&t.node.name.node.as_str()) =>
                {
                    Some(
                        fields(&t.node)
                            .iter()
                            .map(|f| f.name.node.to_string())
                            .collect::<Vec<_>>(),
                    )
                }
                _ => None,
            })
            .flatten()
            .collect();
        for name in PUBLIC_ROOT_FIELDS {
            assert!(
                roots.iter().any(|r| r == name),
                "`{name}` is not a root field"
            );
        }
    }

    #[test]
    fn admin_fields_and_their_types_are_marked_and_public_ones_are_not() {
        let published = Published::new(full(), &[]).unwrap();
        let sdl = published.sdl();
        let doc = async_graphql::parser::parse_schema(sdl).expect("the marked SDL parses");
        let inaccessible = |def: &TypeDefinition| {
            def.directives
                .iter()
                .any(|d| d.node.name.node == "inaccessible")
        };
        let mut marked_fields = Vec::new();
        let mut marked_types = Vec::new();
        for d in &doc.definitions {
            let TypeSystemDefinition::Type(t) = d else {
                continue;
            };
            if inaccessible(&t.node) {
                marked_types.push(t.node.name.node.to_string());
            }
            for f in fields(&t.node) {
                if f.directives
                    .iter()
                    .any(|d| d.node.name.node == "inaccessible")
                {
                    marked_fields.push(format!("{}.{}", t.node.name.node, f.name.node));
                }
            }
        }
        for admin in [
            "Query.users",
            "Query.wechatAccessToken",
            "Query.node",
            "Mutation.mergeUsers",
        ] {
            assert!(
                marked_fields.iter().any(|f| f == admin),
                "{admin}: {marked_fields:?}"
            );
        }
        assert!(marked_fields.iter().all(|f| {
            let (ty, name) = f.split_once('.').unwrap();
            ["Query", "Mutation"].contains(&ty) && !PUBLIC_ROOT_FIELDS.contains(&name)
        }));
        assert!(
            marked_types
                .iter()
                .any(|t| t == "WechatAccessToken" || t == "WeChatAccessToken")
        );
        for public in ["User", "AuthPayload", "MiniProgramIdentity"] {
            assert!(
                !marked_types.iter().any(|t| t == public),
                "{public}: {marked_types:?}"
            );
        }
    }

    #[test]
    fn expose_publishes_a_field_and_refuses_an_unknown_name() {
        let exposed = Published::new(full(), &["users".to_owned()]).unwrap();
        let users = exposed
            .sdl()
            .lines()
            .find(|l| l.starts_with("\t): UserConnection"))
            .unwrap();
        assert!(!users.contains("@inaccessible"), "{users}");
        assert!(
            Published::new(full(), &["nope".to_owned()])
                .unwrap_err()
                .contains("`nope`")
        );
    }

    #[test]
    fn the_answer_of_service_is_swapped_under_any_alias() {
        let published = Published::new(full(), &[]).unwrap();
        let mut response = async_graphql::Response::new(
            async_graphql::Value::from_json(
                serde_json::json!({ "s": { "x": full() }, "other": "text" }),
            )
            .unwrap(),
        );
        published.answer(&mut response);
        let json = response.data.into_json().unwrap();
        assert_eq!(json["s"]["x"], published.sdl());
        assert_eq!(json["other"], "text");
    }
}
