//! Stories of user events: a merge reaches another team's endpoint, signed the Standard
//! Webhooks way (checked here with the spec's own library and by hand); a change that rolls
//! back tells nobody; the feed reads the same events in a stable order, also across a purge;
//! endpoints are bounded and checked. (How deliveries fail, wait and retry: `event_delivery.rs`.)

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::receiver::{Received, Receiver};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_merge_reaches_an_endpoint_signed,
    a_login_that_is_refused_tells_nobody,
    the_feed_pages_in_order_for_service_keys,
    endpoints_are_bounded_and_checked,
    events_and_deliveries_are_purged_after_their_retention,
);

pub(crate) const REGISTER: &str = "mutation($i: RegisterEventEndpointInput!) {
    registerEventEndpoint(input: $i) { secret endpoint { id url events status enabled } } }";
const FEED: &str = "query($f: Int, $a: String) { userEvents(first: $f, after: $a) {
    edges { cursor node { id type userId at data } } pageInfo { hasNextPage endCursor } } }";
pub(crate) const DELIVERIES: &str = "query($e: ID!, $s: EventDeliveryStatus) {
    eventDeliveries(endpointId: $e, status: $s, first: 100) { edges { node {
      event { id type } status attempts responseStatus lastError nextAttemptAt deliveredAt } } } }";

/// An endpoint's deliveries in `status`, oldest event first (the nodes).
pub(crate) async fn deliveries(app: &TestApp, endpoint: &str, status: &str) -> Vec<Value> {
    let data = app
        .gql_ok(
            Some(ADMIN_KEY),
            DELIVERIES,
            json!({ "e": endpoint, "s": status }),
        )
        .await;
    data["eventDeliveries"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Registers `url` for every event type; returns (endpoint id, secret).
pub(crate) async fn register(app: &TestApp, url: &str) -> (String, String) {
    let all = [
        "USER_CREATED",
        "USER_UPDATED",
        "USER_MERGED",
        "USER_DISABLED",
        "USER_ENABLED",
        "USER_DELETED",
        "IDENTITY_LINKED",
        "IDENTITY_UNLINKED",
    ];
    let data = app
        .gql_ok(
            Some(ADMIN_KEY),
            REGISTER,
            json!({ "i": { "url": url, "events": all } }),
        )
        .await;
    let r = &data["registerEventEndpoint"];
    assert_eq!(r["endpoint"]["status"], "ACTIVE");
    let secret = r["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (r["endpoint"]["id"].as_str().unwrap().to_owned(), secret)
}

/// Every event of the feed, oldest first (as an admin reads it).
pub(crate) async fn feed(app: &TestApp) -> Vec<Value> {
    let data = app.gql_ok(Some(ADMIN_KEY), FEED, json!({ "f": 100 })).await;
    data["userEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Makes every pending delivery due and runs the jobs (the delivery job included).
pub(crate) async fn deliver(app: &TestApp) {
    app.exec(
        "UPDATE event_deliveries SET next_attempt_at = created_at WHERE status = 'pending'; \
         UPDATE event_endpoints SET paused_until = NULL",
    )
    .await;
    app.run_jobs_after_waits().await;
}

/// Checks the signature of `r` the way the receiving team would: with the Standard Webhooks
/// library, and by hand from the spec (HMAC-SHA256 of "id.timestamp.body", base64).
fn verify(secret: &str, r: &Received) {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("webhook-id", r.id.parse().unwrap());
    headers.insert("webhook-timestamp", r.timestamp.parse().unwrap());
    headers.insert("webhook-signature", r.signature.parse().unwrap());
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    wh.verify(r.body.as_bytes(), &headers)
        .unwrap_or_else(|e| panic!("the library refuses the signature: {e:?}"));
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let signed = format!("{}.{}.{}", r.id, r.timestamp, r.body);
    let mac = aws_lc_rs::hmac::sign(&key, signed.as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.as_ref())
    );
    assert_eq!(r.signature, expected);
    // A body changed on the way is refused.
    let tampered = format!("{} ", r.body);
    assert!(wh.verify(tampered.as_bytes(), &headers).is_err());
}

async fn a_merge_reaches_an_endpoint_signed(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let hooks = Receiver::start().await;
    let (_, secret) = register(&app, &hooks.url).await;
    // Bob: an OA page without a unionid, then the Mini Program (WeChat sends it), then the OA
    // again with his profile: the two users are one person.
    let b1 = app.login_oa("bob", "snsapi_base").await["user"]["id"].clone();
    let b2 = app.login_mp(MP_A, "bob").await["user"]["id"].clone();
    let merged = app.login_oa("bob", "snsapi_userinfo").await;
    assert_eq!(merged["user"]["id"], b2);
    deliver(&app).await;

    let got = hooks.received();
    for r in &got {
        verify(&secret, r);
    }
    let bodies: Vec<Value> = got.iter().map(Received::json).collect();
    let merge = bodies
        .iter()
        .find(|b| b["type"] == "user.merged")
        .unwrap_or_else(|| panic!("no user.merged among {bodies:#?}"));
    assert_eq!(merge["data"]["sourceId"], b1);
    assert_eq!(merge["data"]["survivorId"], b2);
    assert_eq!(merge["data"]["reason"], "LOGIN");
    assert!(merge["timestamp"].as_str().unwrap().ends_with('Z'));
    // Both users' creations, their identities, and the profile the OA brought.
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "user.created").count(), 2);
    assert_eq!(types.iter().filter(|t| **t == "identity.linked").count(), 2);
    assert!(types.contains(&"user.updated"), "{types:?}");
    // Per user, in order: B2's creation before the merge into it.
    let at = |t: &str, user: &Value| {
        bodies
            .iter()
            .position(|b| {
                b["type"] == t && (b["data"]["userId"] == *user || b["data"]["survivorId"] == *user)
            })
            .unwrap()
    };
    assert!(at("user.created", &b2) < at("user.merged", &b2));
    // ... and the source's own events before the merge that ends it.
    let source_events: Vec<usize> = (0..bodies.len())
        .filter(|i| bodies[*i]["data"]["userId"] == b1)
        .collect();
    assert_eq!(source_events.len(), 2, "B1's creation and identity");
    assert!(source_events.iter().all(|i| *i < at("user.merged", &b2)));
    // The feed has the same events under the same ids.
    let feed_ids: HashSet<String> = feed(&app)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let sent_ids: HashSet<String> = got.iter().map(|r| r.id.clone()).collect();
    assert_eq!(feed_ids, sent_ids);
}

async fn a_login_that_is_refused_tells_nobody(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let id = alice["user"]["id"].as_str().unwrap().to_owned();
    let q = "mutation($id: ID!) { disableUser(id: $id, reason: \"review\") { id disabledAt } }";
    app.gql_ok(Some(ADMIN_KEY), q, json!({ "id": id })).await;
    let before = feed(&app).await.len();
    let snapshot = app.written().await;
    // Her first login to another Mini Program: the sighting writes her new identity and its
    // event, then the login is refused, and the transaction takes both back.
    let code = app.code(MP_B, "alice").await;
    let refused = app.login_mp_code(MP_B, &code).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "USER_DISABLED");
    assert_eq!(feed(&app).await.len(), before);
    assert_eq!(app.written().await, snapshot, "nothing stored");
}

async fn the_feed_pages_in_order_for_service_keys(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    app.login_mp(MP_A, "alice").await;
    let page = app.gql_ok(Some(SERVICE_KEY), FEED, json!({ "f": 1 })).await;
    let first = &page["userEvents"]["edges"][0]["node"];
    assert_eq!(first["type"], "user.created");
    assert!(
        page["userEvents"]["pageInfo"]["hasNextPage"]
            .as_bool()
            .unwrap()
    );
    let cursor = page["userEvents"]["pageInfo"]["endCursor"].clone();
    app.login_mp(MP_A, "bob").await;
    let rest = app
        .gql_ok(Some(SERVICE_KEY), FEED, json!({ "f": 100, "a": cursor }))
        .await;
    let types: Vec<&str> = rest["userEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["identity.linked", "user.created", "identity.linked"]
    );
    let linked = &rest["userEvents"]["edges"][0]["node"]["data"];
    assert_eq!(linked["appId"], MP_A);
    assert_eq!(linked["kind"], "MINI_PROGRAM");
    assert_eq!(linked["userId"], first["userId"]);
    // Users' tokens and anonymous callers read no feed.
    let alice = app.login_mp(MP_A, "alice").await;
    let token = alice["accessToken"].as_str().unwrap();
    let denied = app.gql(Some(token), FEED, json!({})).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let denied = app.gql(None, FEED, json!({})).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

async fn endpoints_are_bounded_and_checked(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.events.allow_private_networks = Some(false)).await;
    let snapshot = app.written().await;
    let code = |body: &Value| body["errors"][0]["extensions"]["code"].clone();
    for url in [
        "http://127.0.0.1:9/hooks".to_owned(),
        "http://localhost:9/hooks".to_owned(),
        "http://10.1.2.3/hooks".to_owned(),
        "http://[::1]/hooks".to_owned(),
        "http://169.254.169.254/latest".to_owned(),
        "ftp://example.com/hooks".to_owned(),
        "https://user:pw@example.com/hooks".to_owned(),
        format!("https://example.com/{}", "a".repeat(2100)),
    ] {
        let input = json!({ "i": { "url": url, "events": ["USER_CREATED"] } });
        let res = app.gql(Some(ADMIN_KEY), REGISTER, input).await;
        assert_eq!(code(&res), "BAD_USER_INPUT", "{url}: {res}");
    }
    let none = json!({ "i": { "url": "https://example.com/", "events": [] } });
    assert_eq!(
        code(&app.gql(Some(ADMIN_KEY), REGISTER, none).await),
        "BAD_USER_INPUT"
    );
    let service = json!({ "i": { "url": "https://example.com/", "events": ["USER_CREATED"] } });
    assert_eq!(
        code(&app.gql(Some(SERVICE_KEY), REGISTER, service).await),
        "FORBIDDEN"
    );
    let unknown = "mutation { deleteEventEndpoint(id: \"nope\") }";
    assert_eq!(
        code(&app.gql(Some(ADMIN_KEY), unknown, json!({})).await),
        "NOT_FOUND"
    );
    let two = "mutation { a: deleteEventEndpoint(id: \"x\") b: deleteEventEndpoint(id: \"y\") }";
    assert_eq!(
        code(&app.gql(Some(ADMIN_KEY), two, json!({})).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(app.written().await, snapshot, "nothing stored");
    // Twenty at most (public literal addresses: nothing is resolved).
    for i in 0..20 {
        let input = json!({ "i": { "url": format!("https://8.8.{i}.8/hooks"), "events": ["USER_MERGED"] } });
        app.gql_ok(Some(ADMIN_KEY), REGISTER, input).await;
    }
    let more = json!({ "i": { "url": "https://8.8.8.9/hooks", "events": ["USER_MERGED"] } });
    assert_eq!(
        code(&app.gql(Some(ADMIN_KEY), REGISTER, more).await),
        "CONFLICT"
    );
    let listed = app
        .gql_ok(
            Some(ADMIN_KEY),
            "{ eventEndpoints { id events status createdBy } }",
            json!({}),
        )
        .await;
    let listed = listed["eventEndpoints"].as_array().unwrap();
    assert_eq!(listed.len(), 20);
    assert_eq!(listed[0]["events"], json!(["USER_MERGED"]));
    // Switched off, it is shown so.
    let q = "mutation($id: ID!) { updateEventEndpoint(id: $id, input: {enabled: false}) { status enabled } }";
    let off = app
        .gql_ok(Some(ADMIN_KEY), q, json!({ "id": listed[0]["id"] }))
        .await;
    assert_eq!(off["updateEventEndpoint"]["status"], "DISABLED");
}

async fn events_and_deliveries_are_purged_after_their_retention(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let hooks = Receiver::start().await;
    register(&app, &hooks.url).await;
    app.login_mp(MP_A, "alice").await;
    app.login_mp(MP_A, "bob").await;
    deliver(&app).await;
    let page = app.gql_ok(Some(ADMIN_KEY), FEED, json!({ "f": 100 })).await;
    assert_eq!(page["userEvents"]["edges"].as_array().unwrap().len(), 4);
    let cursor = page["userEvents"]["pageInfo"]["endCursor"].clone();
    // Everything is 31 days old (past `events.retention_days`) and purged.
    app.exec(
        "UPDATE user_events SET created_at = '2000-01-01 00:00:00'; \
         UPDATE event_deliveries SET created_at = '2000-01-01 00:00:00'",
    )
    .await;
    app.run_jobs_after_waits().await;
    assert_eq!(app.count("event_deliveries").await, 0);
    assert!(feed(&app).await.len() <= 1, "only the newest place is kept");
    // A poller's cursor from before the purge goes on with what comes after it.
    app.login_mp(MP_A, "carol").await;
    let next = app
        .gql_ok(Some(ADMIN_KEY), FEED, json!({ "f": 100, "a": cursor }))
        .await;
    let types: Vec<&str> = next["userEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["user.created", "identity.linked"]);
}
