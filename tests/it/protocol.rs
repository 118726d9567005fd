//! GraphQL over HTTP as a client sees it: media types negotiated by `Accept`, status codes per
//! the spec, GET for queries only, and each `[graphql]` limit — a refusal that names its
//! setting, and the switch off and on. (CI also runs the graphql-http package's audit against
//! the binary: `.ci/run`.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    media_types_and_status_codes_follow_graphql_over_http,
    get_runs_queries_and_refuses_mutations_with_405,
    depth_complexity_and_introspection_limits_name_their_setting,
    a_request_past_the_execution_timeout_is_stopped_and_writes_nothing,
    persisted_queries_are_off_by_default_and_bounded_when_on,
);

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// What a client sees of one answer.
struct Answer {
    status: StatusCode,
    content_type: String,
    allow: Option<String>,
    body: Value,
}

async fn answer(res: reqwest::Response) -> Answer {
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let content_type = header("content-type").unwrap_or_default();
    let allow = header("allow");
    let status = res.status();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    Answer {
        status,
        content_type,
        allow,
        body,
    }
}

/// POSTs `body` (raw text) as JSON with `accept` (None: no Accept header) and `token`.
async fn post_raw(app: &TestApp, accept: Option<&str>, token: Option<&str>, body: &str) -> Answer {
    let mut req = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    answer(req.send().await.unwrap()).await
}

async fn post(app: &TestApp, accept: Option<&str>, token: Option<&str>, body: Value) -> Answer {
    post_raw(app, accept, token, &body.to_string()).await
}

async fn get(app: &TestApp, accept: &str, params: &[(&str, &str)]) -> Answer {
    let res = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", accept)
        .query(params)
        .send()
        .await
        .unwrap();
    answer(res).await
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap()
}

async fn media_types_and_status_codes_follow_graphql_over_http(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = app.written().await;
    let typename = json!({ "query": "{ __typename }" });

    // Each media type is answered in itself; `*/*`, `application/*` or no Accept get JSON.
    for (accept, expected) in [
        (Some(GRAPHQL_RESPONSE), GRAPHQL_RESPONSE),
        (Some("application/json"), "application/json"),
        (Some("*/*"), "application/json"),
        (Some("application/*"), "application/json"),
        (None, "application/json"),
        (
            Some("application/graphql-response+json;q=0.5, application/json"),
            "application/json",
        ),
        (
            Some("text/html, application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL_RESPONSE,
        ),
    ] {
        let a = post(&app, accept, None, typename.clone()).await;
        assert_eq!(a.status, 200, "{accept:?}");
        assert!(
            a.content_type.starts_with(expected) && a.content_type.contains("utf-8"),
            "{accept:?}: {}",
            a.content_type
        );
        assert_eq!(a.body, json!({ "data": { "__typename": "Query" } }));
    }

    // Nothing we can answer in: 406, with a JSON error.
    for accept in [
        "text/plain",
        "application/xml, text/*",
        "application/json;charset=latin1",
    ] {
        let a = post(&app, Some(accept), None, typename.clone()).await;
        assert_eq!(a.status, 406, "{accept}");
        assert!(a.content_type.starts_with("application/json"), "{accept}");
        assert_eq!(error_code(&a.body), "BAD_USER_INPUT");
        assert!(message(&a.body).contains("application/graphql-response+json"));
    }

    // Refused before execution (parse, validation, variable coercion): 400 without a `data`
    // entry in graphql-response+json, 200 in application/json; a code either way.
    let refused = [
        json!({ "query": "{ me { id " }),
        json!({ "query": "{ noSuchField }" }),
        json!({ "query": "query($id: ID!) { user(id: $id) { id } }", "variables": { "id": null } }),
        json!({ "query": "query($id: ID!) { user(id: $id) { id } }", "variables": { "id": [1] } }),
    ];
    for body in refused {
        let a = post(&app, Some(GRAPHQL_RESPONSE), Some(ADMIN_KEY), body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {:#}", a.body);
        assert!(a.content_type.starts_with(GRAPHQL_RESPONSE));
        assert!(a.body.get("data").is_none(), "{:#}", a.body);
        assert_eq!(error_code(&a.body), "BAD_USER_INPUT");
        let a = post(
            &app,
            Some("application/json"),
            Some(ADMIN_KEY),
            body.clone(),
        )
        .await;
        assert_eq!(a.status, 200, "{body}");
        assert!(a.content_type.starts_with("application/json"));
        assert!(a.body.get("data").is_none(), "{:#}", a.body);
        assert_eq!(error_code(&a.body), "BAD_USER_INPUT");
    }

    // A field error is an executed request: 200 with `data` in both.
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let a = post(
            &app,
            Some(accept),
            None,
            json!({ "query": "{ me { id } }" }),
        )
        .await;
        assert_eq!(a.status, 200, "{accept}");
        assert!(a.body.get("data").is_some(), "{:#}", a.body);
        assert_eq!(error_code(&a.body), "UNAUTHENTICATED");
    }
    // And data from the database, in either type.
    let alice = app.login_mp(MP_A, "alice").await;
    let id = alice["user"]["id"].as_str().unwrap();
    let a = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        Some(ADMIN_KEY),
        json!({ "query": "query($id: ID!) { user(id: $id) { id } }", "variables": { "id": id } }),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["data"]["user"]["id"], id);
    let before_refusals = app.written().await;
    assert_ne!(before_refusals, before, "the login was written");

    // Not a GraphQL request at all: 4xx in either type, with the type's content-type.
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        for (body, status) in [
            ("{ \"not JSON", 400),
            ("", 400),
            ("[1, 2]", 400),
            ("{\"qeury\": \"{ __typename }\"}", 400),
            ("{\"query\": 1}", 400),
            ("{\"query\": \"{ __typename }\", \"variables\": \"x\"}", 400),
        ] {
            let a = post_raw(&app, Some(accept), None, body).await;
            assert_eq!(a.status, status, "{accept} {body}");
            assert!(a.content_type.starts_with(accept), "{accept} {body}");
            assert!(a.body.get("data").is_none());
            assert_eq!(error_code(&a.body), "BAD_USER_INPUT");
        }
        let res = app
            .http
            .post(format!("{}/graphql", app.base))
            .header("accept", accept)
            .body("{\"query\": \"{ __typename }\"}")
            .send()
            .await
            .unwrap();
        let a = answer(res).await;
        assert_eq!(a.status, 415, "no content-type");
        assert!(a.content_type.starts_with(accept));
    }
    // `null` is as good as leaving a parameter out.
    let a = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        None,
        json!({ "query": "{ __typename }", "variables": null, "operationName": null, "extensions": null }),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        app.written().await,
        before_refusals,
        "refusals change nothing"
    );
}

async fn get_runs_queries_and_refuses_mutations_with_405(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = get(&app, GRAPHQL_RESPONSE, &[("query", "{ __typename }")]).await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with(GRAPHQL_RESPONSE));
    assert_eq!(a.body["data"]["__typename"], "Query");
    let a = get(
        &app,
        "application/json",
        &[
            (
                "query",
                "query Q($n: String!) { __type(name: $n) { name } }",
            ),
            ("variables", "{\"n\": \"User\"}"),
        ],
    )
    .await;
    assert_eq!(a.body["data"]["__type"]["name"], "User");

    // A login link: refused with 405 and `Allow: POST`, before WeChat is called.
    let before = app.written().await;
    let code = app.code(MP_A, "alice").await;
    let login = format!(
        "mutation Login {{ loginWithMiniProgram(input: {{appId: \"{MP_A}\", code: \"{code}\"}}) {{ newUser }} }}"
    );
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let a = get(&app, accept, &[("query", &login)]).await;
        assert_eq!(a.status, 405, "{accept}");
        assert_eq!(a.allow.as_deref(), Some("POST"));
        assert!(a.content_type.starts_with(accept));
        assert_eq!(error_code(&a.body), "BAD_USER_INPUT");
        assert!(message(&a.body).contains("POST"));
    }
    // The operation chosen by operationName decides: the query runs, the mutation does not.
    let both = format!("query Q {{ __typename }} {login}");
    let a = get(
        &app,
        GRAPHQL_RESPONSE,
        &[("query", &both), ("operationName", "Q")],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["data"]["__typename"], "Query");
    let a = get(
        &app,
        GRAPHQL_RESPONSE,
        &[("query", &both), ("operationName", "Login")],
    )
    .await;
    assert_eq!(a.status, 405);
    assert_eq!(app.written().await, before, "nothing written");
    // The code was never spent: the same login over POST works.
    assert!(app.login_mp_code(MP_A, &code).await.get("errors").is_none());

    // No query: 400 (a browser asking for HTML gets GraphiQL instead).
    let a = get(&app, "application/json", &[]).await;
    assert_eq!(a.status, 400);
    assert!(message(&a.body).contains("query"), "{:#}", a.body);
    let a = get(
        &app,
        "application/json",
        &[("query", "{ x"), ("variables", "[1]")],
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(message(&a.body).contains("variables"), "{:#}", a.body);
}

/// Runs `query` as the admin; returns the whole answer.
async fn admin(app: &TestApp, query: &str) -> Answer {
    post(
        app,
        Some(GRAPHQL_RESPONSE),
        Some(ADMIN_KEY),
        json!({ "query": query }),
    )
    .await
}

async fn depth_complexity_and_introspection_limits_name_their_setting(backend: Backend) {
    // Depth 6, complexity 6; depth 2, complexity 8.
    let deep = "{ user(id: \"00000000-0000-0000-0000-000000000000\") { miniProgramIdentities { user { officialAccountIdentities { user { id } } } } } }";
    let wide = "{ wechatApps { appId kind name } a: wechatApps { appId kind name } }";
    let introspect = "{ __schema { queryType { name } } }";
    let fragment_introspect =
        "query { ...F } fragment F on Query { __type(name: \"User\") { name } }";

    // The defaults: all of it runs (depth 16, complexity 5000, introspection on).
    let app = TestApp::start(backend).await;
    for query in [deep, wide, introspect, fragment_introspect] {
        let a = admin(&app, query).await;
        assert_eq!(a.status, 200, "{query}: {:#}", a.body);
        assert!(a.body.get("errors").is_none(), "{query}: {:#}", a.body);
    }
    let page = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    drop(app);

    // Tightened, and introspection and GraphiQL off.
    let app = TestApp::start_with(backend, |c| {
        c.graphql.max_depth = 5;
        c.graphql.max_complexity = 7;
        c.graphql.introspection = false;
        c.graphql.graphiql = false;
    })
    .await;
    let before = app.written().await;
    for (query, setting, limit) in [
        (deep, "graphql.max_depth", "5"),
        (wide, "graphql.max_complexity", "7"),
        (introspect, "graphql.introspection", ""),
        (fragment_introspect, "graphql.introspection", ""),
    ] {
        let a = admin(&app, query).await;
        assert_eq!(a.status, 400, "{query}: {:#}", a.body);
        assert!(a.body.get("data").is_none());
        let text = message(&a.body);
        assert!(text.contains(setting) && text.contains(limit), "{text}");
        let code = if setting == "graphql.introspection" {
            "FORBIDDEN"
        } else {
            "BAD_USER_INPUT"
        };
        assert_eq!(error_code(&a.body), code, "{query}");
    }
    // Just under the limits, and `__typename`, still run.
    let a = admin(&app, "{ __typename wechatApps { appId kind name } }").await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    assert_eq!(a.body["data"]["__typename"], "Query");
    assert_eq!(app.written().await, before);

    // No GraphiQL: a browser gets the JSON answer to a GET without a query, and no assets.
    let res = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(a.status, 400);
    assert!(a.content_type.starts_with("application/json"));
    let res = app
        .http
        .get(format!(
            "{}/graphiql/react-18.3.1.production.min.js",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn a_request_past_the_execution_timeout_is_stopped_and_writes_nothing(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.graphql.execution_timeout_ms = 300).await;
    let before = app.written().await;
    // WeChat takes 2 s to answer the code exchange (the client waits up to 5 s).
    app.fault(json!({ "path": "/sns/jscode2session", "delayMs": 2000, "count": 2 }))
        .await;
    for (accept, status) in [(GRAPHQL_RESPONSE, 503), ("application/json", 200)] {
        let code = app.code(MP_A, "alice").await;
        let started = std::time::Instant::now();
        let a = post(
            &app,
            Some(accept),
            None,
            json!({ "query": format!(
                "mutation {{ loginWithMiniProgram(input: {{appId: \"{MP_A}\", code: \"{code}\"}}) {{ newUser }} }}"
            ) }),
        )
        .await;
        assert!(started.elapsed().as_millis() < 1500, "cut off at 300 ms");
        assert_eq!(a.status, status, "{accept}: {:#}", a.body);
        assert_eq!(error_code(&a.body), "TIMEOUT");
        assert!(message(&a.body).contains("graphql.execution_timeout_ms"));
        assert!(message(&a.body).contains("300 ms"));
        assert!(a.body.get("data").is_none());
    }
    assert_eq!(app.written().await, before, "nothing written");
    // A fast request is not affected.
    assert!(app.login_mp(MP_A, "bob").await["user"]["id"].is_string());
}

/// A persisted-query request: the hash of `query`, with the text or without it.
fn persisted(query: &str, with_text: bool) -> Value {
    let hash = wechat_identity::crypto::sha256_hex(query.as_bytes());
    let mut body =
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    if with_text {
        body["query"] = json!(query);
    }
    body
}

async fn persisted_queries_are_off_by_default_and_bounded_when_on(backend: Backend) {
    let q1 = "query One { __typename }";
    let q2 = "query Two { wechatApps { appId } }";
    // Off by default: a hash is refused with the code Apollo's clients look for.
    let app = TestApp::start(backend).await;
    let a = post(&app, Some(GRAPHQL_RESPONSE), None, persisted(q1, true)).await;
    assert_eq!(a.status, 400);
    assert_eq!(error_code(&a.body), "PERSISTED_QUERY_NOT_SUPPORTED");
    assert!(message(&a.body).contains("graphql.persisted_queries"));
    drop(app);

    // On, with room for about one of the two texts.
    let app = TestApp::start_with(backend, |c| {
        c.graphql.persisted_queries = true;
        c.graphql.persisted_queries_cache_bytes = 40;
    })
    .await;
    let a = post(&app, Some(GRAPHQL_RESPONSE), None, persisted(q1, false)).await;
    assert_eq!(a.status, 400);
    assert_eq!(error_code(&a.body), "PERSISTED_QUERY_NOT_FOUND");
    // The text with its hash runs and is remembered: the hash alone works from then on.
    let a = post(&app, Some(GRAPHQL_RESPONSE), None, persisted(q1, true)).await;
    assert_eq!(a.body["data"]["__typename"], "Query");
    let a = post(&app, Some(GRAPHQL_RESPONSE), None, persisted(q1, false)).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    assert_eq!(a.body["data"]["__typename"], "Query");
    // ... also over GET.
    let hash = persisted(q1, false)["extensions"].to_string();
    let a = get(&app, GRAPHQL_RESPONSE, &[("extensions", &hash)]).await;
    assert_eq!(a.body["data"]["__typename"], "Query");
    // A hash that is not the text's is refused.
    let mut wrong = persisted(q1, true);
    wrong["query"] = json!(q2);
    let a = post(&app, Some(GRAPHQL_RESPONSE), None, wrong).await;
    assert_eq!(error_code(&a.body), "BAD_USER_INPUT");
    // The second text pushes the first out of the 40 bytes.
    let a = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        Some(ADMIN_KEY),
        persisted(q2, true),
    )
    .await;
    assert!(
        a.body["data"]["wechatApps"][0]["appId"].is_string(),
        "{:#}",
        a.body
    );
    let a = post(&app, Some(GRAPHQL_RESPONSE), None, persisted(q1, false)).await;
    assert_eq!(error_code(&a.body), "PERSISTED_QUERY_NOT_FOUND");
    let a = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        Some(ADMIN_KEY),
        persisted(q2, false),
    )
    .await;
    assert!(a.body["data"]["wechatApps"].is_array(), "{:#}", a.body);

    // Every check runs on each use: a remembered mutation is still refused over GET.
    let logout = "mutation { logout(refreshToken: \"x\") }";
    post(
        &app,
        Some("application/json"),
        None,
        persisted(logout, true),
    )
    .await;
    let hash = persisted(logout, false)["extensions"].to_string();
    let a = get(&app, GRAPHQL_RESPONSE, &[("extensions", &hash)]).await;
    assert_eq!(a.status, 405, "{:#}", a.body);
}
