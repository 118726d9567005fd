//! The schema as a client reads it: the committed `schema.graphql` is what the server exports,
//! and the introspection a client gets over HTTP describes everything, says who may call each
//! root field the same way, and types the codes it shows.

use serde_json::{Value, json};

use crate::common::*;

#[test]
fn committed_schema_matches_the_server() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the top level");
    let exported = wechat_identity::graphql::sdl();
    assert!(
        committed == exported,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql`"
    );
}

const INTROSPECTION: &str = "{ __schema { types {
    name kind description
    fields(includeDeprecated: true) {
        name description isDeprecated deprecationReason
        args { name description }
        type { name kind ofType { name kind ofType { name kind } } } }
    inputFields { name description }
    enumValues(includeDeprecated: true) { name description } } } }";

/// Types no description is asked of: GraphQL's own (`__Schema` …, the built-in scalars, which
/// the spec describes) and Federation's (`_Service`, `_Any`, `_Entity`, the `_service` and
/// `_entities` fields), which async-graphql writes.
fn exempt_type(name: &str) -> bool {
    name.starts_with("__")
        || ["String", "Int", "Float", "Boolean", "ID"].contains(&name)
        || ["_Service", "_Any", "_Entity"].contains(&name)
}

fn exempt_field(name: &str) -> bool {
    ["_service", "_entities"].contains(&name)
}

/// Who may call a root field, said the same way everywhere: the last line of its description.
const WHO: [&str; 5] = [
    "Anyone.",
    "Anyone; with ",
    "The user itself.",
    "Admin.",
    "Admin or service",
];

async fn types(app: &TestApp) -> Vec<Value> {
    let data = app.gql_ok(None, INTROSPECTION, json!({})).await;
    data["__schema"]["types"].as_array().unwrap().clone()
}

fn described(v: &Value) -> bool {
    v["description"]
        .as_str()
        .is_some_and(|d| !d.trim().is_empty())
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

#[tokio::test]
async fn introspection_describes_every_type_field_argument_and_value() {
    let app = TestApp::start(Backend::Sqlite).await;
    let mut missing = Vec::new();
    for ty in types(&app).await {
        let name = ty["name"].as_str().unwrap();
        if exempt_type(name) {
            continue;
        }
        if !described(&ty) {
            missing.push(name.to_owned());
        }
        for field in list(&ty, "fields") {
            let field_name = field["name"].as_str().unwrap();
            if exempt_field(field_name) {
                continue;
            }
            if !described(field) {
                missing.push(format!("{name}.{field_name}"));
            }
            for arg in list(field, "args") {
                if !described(arg) {
                    missing.push(format!("{name}.{field_name}({})", arg["name"]));
                }
            }
        }
        for (key, sep) in [("inputFields", "."), ("enumValues", "::")] {
            for item in list(&ty, key) {
                if !described(item) {
                    missing.push(format!("{name}{sep}{}", item["name"]));
                }
            }
        }
    }
    assert!(missing.is_empty(), "no description: {missing:#?}");
}

#[tokio::test]
async fn every_root_field_says_who_may_call_it_the_same_way() {
    let app = TestApp::start(Backend::Sqlite).await;
    let types = types(&app).await;
    let mut unclear = Vec::new();
    for root in ["Query", "Mutation"] {
        let ty = types.iter().find(|t| t["name"] == root).unwrap();
        for field in list(ty, "fields") {
            let name = field["name"].as_str().unwrap();
            if exempt_field(name) {
                continue;
            }
            let who = field["description"]
                .as_str()
                .and_then(|d| d.lines().last())
                .unwrap_or_default();
            if !WHO.iter().any(|w| who.starts_with(w)) || !who.ends_with('.') {
                unclear.push(format!("{root}.{name}: {who:?}"));
            }
        }
    }
    assert!(unclear.is_empty(), "who may call these? {unclear:#?}");
}

fn field<'a>(types: &'a [Value], ty: &str, name: &str) -> &'a Value {
    let ty = types
        .iter()
        .find(|t| t["name"] == ty)
        .unwrap_or_else(|| panic!("no type {ty}"));
    list(ty, "fields")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {ty}.{name}"))
}

/// The named type under any `!` and list wrappers.
fn named(field: &Value) -> &str {
    let mut t = &field["type"];
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    t["name"].as_str().unwrap()
}

fn values(types: &[Value], ty: &str) -> Vec<String> {
    let ty = types.iter().find(|t| t["name"] == ty).unwrap();
    list(ty, "enumValues")
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn codes_and_scopes_are_enums_and_what_wechat_dropped_is_deprecated() {
    let app = TestApp::start(Backend::Sqlite).await;
    let types = types(&app).await;

    // Every code a message can carry, those only a bulk job or a bug records included.
    assert_eq!(
        named(field(&types, "WeChatMessageError", "code")),
        "WeChatMessageErrorCode"
    );
    assert_eq!(
        named(field(&types, "WeChatMessageOutcomeCount", "code")),
        "WeChatMessageErrorCode"
    );
    let codes = values(&types, "WeChatMessageErrorCode");
    for code in [
        "NO_IDENTITY",
        "NOT_FOLLOWING",
        "NO_SUBSCRIBE_PERMISSION",
        "INVALID_MESSAGE_DATA",
        "TEMPLATE_NOT_REGISTERED",
        "TEMPLATE_INVALID",
        "UNREACHABLE",
        "WECHAT_RATE_LIMITED",
        "WECHAT_UNAVAILABLE",
        "WECHAT_REJECTED",
        "USER_BLOCKED",
        "DELIVERY_FAILED",
        "JOB_FAILED",
        "INTERNAL",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} in {codes:?}");
    }
    assert_eq!(codes.len(), 14, "{codes:?}");

    assert_eq!(
        named(field(&types, "OfficialAccountIdentity", "scope")),
        "OfficialAccountScope"
    );
    for name in ["sex", "province", "city", "country"] {
        let f = field(&types, "OfficialAccountIdentity", name);
        assert_eq!(f["isDeprecated"], true, "{name}");
        let why = f["deprecationReason"].as_str().unwrap();
        assert!(
            why.contains("2021-10-24") && why.contains("2021-12-27"),
            "{why}"
        );
    }
    let old = field(&types, "Query", "officialAccountAuthorizeUrl");
    assert_eq!(old["isDeprecated"], true);
    assert!(
        old["deprecationReason"]
            .as_str()
            .unwrap()
            .contains("startOfficialAccountLogin")
    );
    let scalar = types.iter().find(|t| t["name"] == "DateTime").unwrap();
    assert!(
        scalar["description"].as_str().unwrap().contains("RFC 3339"),
        "{scalar}"
    );
}
