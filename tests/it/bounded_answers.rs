//! A small query must not buy a huge answer: `_service` and the introspection roots are counted
//! (aliases and fragments too), list fields weigh their page size, `_service` answers API keys
//! only, and whatever is left is capped by `graphql.max_response_bytes`, refused whole rather
//! than sent half. Every refusal is small and names its setting.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    thousands_of_aliased_service_fields_are_refused_with_a_small_answer,
    the_sdl_answers_api_keys_only_unless_configured_public,
    aliased_introspection_is_refused_and_graphiql_introspection_still_works,
    list_fields_weigh_their_page_size,
    an_answer_over_max_response_bytes_is_refused_whole,
);

/// The answer's status and body, raw.
async fn post(app: &TestApp, token: Option<&str>, accept: &str, body: Value) -> (u16, Vec<u8>) {
    let mut req = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("accept", accept)
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("graphql request");
    let status = res.status().as_u16();
    (status, res.bytes().await.expect("answer").to_vec())
}

/// A query's answer as JSON, asserting it is at most `max` bytes.
async fn small_answer(app: &TestApp, token: Option<&str>, query: &str, max: usize) -> Value {
    let (status, bytes) = post(app, token, "application/json", json!({ "query": query })).await;
    assert_eq!(status, 200);
    assert!(bytes.len() <= max, "{} bytes answered", bytes.len());
    serde_json::from_slice(&bytes).expect("JSON")
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

async fn thousands_of_aliased_service_fields_are_refused_with_a_small_answer(backend: Backend) {
    let app = TestApp::start(backend).await;
    // The attack: 2,500 aliases in a ~60 KB request (it answered 89 MB).
    let fields: String = (0..2500)
        .map(|i| format!("s{i:04}: _service {{ sdl }} "))
        .collect();
    let query = format!("{{ {fields} }}");
    assert!(query.len() > 55_000, "{}", query.len());
    for token in [None, Some(SERVICE_KEY), Some(ADMIN_KEY)] {
        let body = small_answer(&app, token, &query, 1024).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
        assert!(body.get("data").is_none_or(Value::is_null), "{body:#}");
        assert!(
            message(&body).contains("at most one `_service`"),
            "{body:#}"
        );
        assert!(message(&body).contains("has 2500"), "{body:#}");
    }
    // Hidden in fragments, the same.
    let query = "{ ...A ...B } fragment A on Query { a: _service { sdl } } \
                 fragment B on Query { b: _service { sdl } }";
    let body = small_answer(&app, Some(SERVICE_KEY), query, 1024).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
}

async fn the_sdl_answers_api_keys_only_unless_configured_public(backend: Backend) {
    let app = TestApp::start(backend).await;
    let query = "{ _service { sdl } }";
    let anonymous = small_answer(&app, None, query, 1024).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous:#}");
    assert!(
        message(&anonymous).contains("graphql.public_sdl"),
        "{anonymous:#}"
    );
    let bad_key = small_answer(&app, Some("not-a-key"), query, 1024).await;
    assert_eq!(error_code(&bad_key), "UNAUTHENTICATED", "{bad_key:#}");
    let token = app.login_mp(MP_A, "alice").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = small_answer(&app, Some(&token), query, 1024).await;
    assert_eq!(error_code(&user), "FORBIDDEN", "{user:#}");
    // Under the GraphQL response media type: refused before execution (400, no data).
    let (status, _) = post(
        &app,
        None,
        "application/graphql-response+json",
        json!({ "query": query }),
    )
    .await;
    assert_eq!(status, 400);
    for key in [SERVICE_KEY, ADMIN_KEY] {
        let data = app.gql_ok(Some(key), query, json!({})).await;
        assert_eq!(data["_service"]["sdl"], wechat_identity::graphql::sdl());
    }
    // `wechat-identity schema` prints it for anyone with the binary; and configured public, anyone
    // may read it.
    let public = TestApp::start_with(backend, |c| c.graphql.public_sdl = true).await;
    let data = public.gql_ok(None, query, json!({})).await;
    assert_eq!(data["_service"]["sdl"], wechat_identity::graphql::sdl());
}

/// GraphiQL's introspection query (graphql-js `getIntrospectionQuery()`).
const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name }
  mutationType { name } subscriptionType { name } types { ...FullType }
  directives { name description locations args { ...InputValue } } } }
fragment FullType on __Type { kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef }
    isDeprecated deprecationReason }
  inputFields { ...InputValue } interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";

async fn aliased_introspection_is_refused_and_graphiql_introspection_still_works(backend: Backend) {
    let app = TestApp::start(backend).await;
    // 400 aliases of a nested `__schema` (45 KB turned into 14.8 MB).
    let fields: String = (0..400)
        .map(|i| {
            format!("s{i}: __schema {{ types {{ name fields {{ name type {{ name }} }} }} }} ")
        })
        .collect();
    let body = small_answer(&app, None, &format!("{{ {fields} }}"), 1024).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body:#}");
    assert!(
        message(&body).contains("graphql.introspection_fields_per_request"),
        "{body:#}"
    );
    // `__type` counts too.
    let fields: String = (0..4)
        .map(|i| format!("t{i}: __type(name: \"User\") {{ name }} "))
        .collect();
    let body = small_answer(&app, None, &format!("{{ {fields} }}"), 1024).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    // Aliases inside one `__schema` (990 aliased `types` built a 20 MB answer).
    let fields: String = (0..990)
        .map(|i| format!("t{i}: types {{ name fields {{ name description }} }} "))
        .collect();
    let body = small_answer(&app, None, &format!("{{ __schema {{ {fields} }} }}"), 1024).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert!(message(&body).contains("aliases inside"), "{body:#}");

    // GraphiQL's own query, anonymous: answered, well within the answer cap.
    let (status, bytes) = post(
        &app,
        None,
        "application/json",
        json!({ "query": INTROSPECTION, "operationName": "IntrospectionQuery" }),
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(body.get("errors").is_none(), "{body:#}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "User"));
    assert!(bytes.len() < 4 * 1024 * 1024, "{} bytes", bytes.len());
}

async fn list_fields_weigh_their_page_size(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.login_mp(MP_A, "alice").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 60 fields per user: 10 users weigh about 600, 100 users about 6,000 (over 5,000).
    let fields: String = (0..20)
        .map(|i| format!("a{i}: id b{i}: unionid c{i}: createdAt "))
        .collect();
    let users = |n: usize| format!("{{ users(first: {n}) {{ nodes {{ {fields} }} }} }}");
    let data = app.gql_ok(Some(SERVICE_KEY), &users(10), json!({})).await;
    assert_eq!(data["users"]["nodes"][0]["a0"], alice.as_str());
    let refused = small_answer(&app, Some(SERVICE_KEY), &users(100), 1024).await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused:#}");
    assert!(
        message(&refused).contains("graphql.max_complexity"),
        "{refused:#}"
    );
    // `last` weighs like `first`.
    let last = format!("{{ users(last: 100) {{ nodes {{ {fields} }} }} }}");
    let refused = small_answer(&app, Some(SERVICE_KEY), &last, 1024).await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused:#}");
    // Lists of ids weigh their length: `nodes`, `usersByIds`, `_entities`.
    let ids = vec![alice.clone(); 100];
    for (query, variables) in [
        (
            format!("query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on User {{ {fields} }} }} }}"),
            json!({ "ids": ids }),
        ),
        (
            format!("query($ids: [ID!]!) {{ usersByIds(ids: $ids) {{ {fields} }} }}"),
            json!({ "ids": ids }),
        ),
        (
            format!(
                "query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on User {{ {fields} }} }} }}"
            ),
            json!({ "r": ids.iter().map(|id| json!({ "__typename": "User", "id": id })).collect::<Vec<_>>() }),
        ),
    ] {
        let (status, bytes) = post(
            &app,
            Some(SERVICE_KEY),
            "application/json",
            json!({ "query": query, "variables": variables }),
        )
        .await;
        assert_eq!(status, 200);
        assert!(bytes.len() <= 1024, "{} bytes", bytes.len());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body:#}");
        assert!(
            message(&body).contains("graphql.max_complexity"),
            "{body:#}"
        );
    }
    // Ten of the same are fine.
    let r: Vec<Value> = (0..10)
        .map(|_| json!({ "__typename": "User", "id": alice }))
        .collect();
    let q = format!(
        "query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on User {{ {fields} }} }} }}"
    );
    let data = app.gql_ok(Some(SERVICE_KEY), &q, json!({ "r": r })).await;
    assert_eq!(data["_entities"].as_array().map(Vec::len), Some(10));
}

async fn an_answer_over_max_response_bytes_is_refused_whole(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.graphql.max_response_bytes = 4096).await;
    // The SDL (about 30 KB) is a legal answer, over this cap.
    for (accept, expected_status) in [
        ("application/json", 200),
        ("application/graphql-response+json", 400),
    ] {
        let (status, bytes) = post(
            &app,
            Some(SERVICE_KEY),
            accept,
            json!({ "query": "{ _service { sdl } }" }),
        )
        .await;
        assert_eq!(status, expected_status, "{accept}");
        assert!(bytes.len() <= 1024, "{} bytes", bytes.len());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error_code(&body), "RESPONSE_TOO_LARGE", "{body:#}");
        assert!(body.get("data").is_none(), "{body:#}");
        assert!(
            message(&body).contains("graphql.max_response_bytes"),
            "{body:#}"
        );
        assert!(message(&body).contains("4096"), "{body:#}");
    }
    // An answer under the cap is sent as ever.
    let data = app
        .gql_ok(Some(SERVICE_KEY), "{ wechatApps { appId } }", json!({}))
        .await;
    assert!(data["wechatApps"].as_array().is_some_and(|a| !a.is_empty()));
}

/// The binary on its own (its RSS is its own): the attacks of the issue — 2,500 aliased
/// `_service`, 400 aliased `__schema` — sent anonymously, four at a time, several rounds,
/// answer small and leave the service's memory where it was (they used to take it to 800 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplification_attacks_leave_the_service_rss_flat() {
    let service = tcp::Service::start("").await;
    let http = reqwest::Client::new();
    let url = format!("{}/graphql", service.base);
    let services: String = (0..2500)
        .map(|i| format!("s{i:04}: _service {{ sdl }} "))
        .collect();
    let schemas: String = (0..400)
        .map(|i| {
            format!("s{i:03}: __schema {{ types {{ name fields {{ name type {{ name }} }} }} }} ")
        })
        .collect();
    let attacks = [format!("{{ {services} }}"), format!("{{ {schemas} }}")];
    // One of each first, so what the service allocates once (parsers, pools) is in `before`.
    for attack in &attacks {
        let res = http
            .post(&url)
            .json(&json!({ "query": attack }))
            .send()
            .await;
        assert_eq!(res.unwrap().status(), 200);
    }
    let before = service.rss();
    for _ in 0..5 {
        let round = attacks.iter().cycle().take(4).map(|attack| {
            let (http, url) = (http.clone(), url.clone());
            let body = json!({ "query": attack });
            async move {
                let res = http.post(&url).json(&body).send().await.unwrap();
                let bytes = res.bytes().await.unwrap();
                assert!(bytes.len() <= 1024, "{} bytes answered", bytes.len());
                let body: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
            }
        });
        futures_util::future::join_all(round).await;
    }
    let grown = service.rss().saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "RSS grew by {} MB under refused attacks",
        grown >> 20
    );
}
