//! Another team's subgraph joins `User` for real: `tests/federation/gateway.mjs` starts a small
//! "orders" subgraph, composes it with ours (read live through `_service` with the gateway's
//! key) in Apollo Gateway, and sends requests through the gateway as its clients would, each
//! with the client's own `Authorization`: a service key joins both subgraphs both ways; the
//! supergraph offers no admin or service field; an anonymous or user caller reaches nothing a
//! service key could.
//!
//! Needs Node.js and npm (`NODE` / `NPM` naming them, or on the PATH) when the tests are built;
//! without them the test is compiled as ignored, and `.ci/run` fails on that. The first run
//! installs the pinned packages (`npm ci` in `tests/federation`) if `node_modules` is missing.

use serde_json::{Value, json};

use crate::common::node::run_federation_script;
use crate::common::*;
use crate::federation::people;
use crate::merge::id;

mod a_gateway_joins_orders_to_our_users {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(test_node),
        ignore = "install node and npm to run the federation gateway test"
    )]
    async fn sqlite() {
        story(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(test_postgres),
        ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
    )]
    #[cfg_attr(
        all(test_postgres, not(test_node)),
        ignore = "install node and npm to run the federation gateway test"
    )]
    async fn postgres() {
        story(Backend::Postgres).await
    }
}

/// A request to send through the gateway: the caller's `Authorization` (if any), the query.
fn request(bearer: Option<&str>, query: &str) -> Value {
    json!({ "authorization": bearer.map(|b| format!("Bearer {b}")), "query": query })
}

/// Runs the gateway script against `app` (the gateway reads our SDL with `key`) and sends it
/// `requests`; returns the gateway's answers' bodies, in order.
async fn through_the_gateway(
    app: &TestApp,
    key: &str,
    buyers: &[String],
    requests: &[Value],
) -> Vec<Value> {
    let args = [app.base.clone(), key.to_owned()]
        .into_iter()
        .chain(buyers.iter().cloned())
        .collect();
    let input = serde_json::to_vec(requests).unwrap();
    let answers = run_federation_script("gateway.mjs", args, input).await;
    let answers = answers.as_array().expect("a list of answers");
    answers.iter().map(|a| a["body"].clone()).collect()
}

const JOIN: &str = "{ orders { id total buyer { id unionid miniProgramIdentities { appId openid } orders { id } } } }";
const SCHEMA: &str = "{ __schema { queryType { fields(includeDeprecated: true) { name } } mutationType { fields(includeDeprecated: true) { name } } types { name } } }";

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Whether the answer was refused for `field`, with no data for it.
fn refused(body: &Value, field: &str) -> bool {
    body["errors"].as_array().is_some_and(|e| !e.is_empty())
        && body["data"].get(field).is_none_or(Value::is_null)
}

async fn story(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = people(&app).await;
    let (alice, bob, carol_old) = (id(&p.alice), id(&p.bob), id(&p.carol_old));
    let alice_token = p.alice["accessToken"].as_str().unwrap();
    // The orders team knows Carol by the id she had before the merge.
    let buyers = [alice.clone(), bob.clone(), carol_old.clone()];
    let service = Some(SERVICE_KEY);
    let anonymous = None;
    let user = Some(alice_token);
    let requests = [
        request(service, JOIN),
        request(service, SCHEMA),
        request(anonymous, JOIN),
        request(anonymous, "{ users(first: 1) { totalCount } }"),
        request(user, "{ me { id orders { total } } }"),
        request(user, JOIN),
        request(
            user,
            "{ wechatAccessToken(appId: \"wxsandboxofficial1\") { accessToken } }",
        ),
        request(
            user,
            "mutation { mergeUsers(sourceId: \"a\", targetId: \"b\") { id } }",
        ),
    ];
    let answers = through_the_gateway(&app, SERVICE_KEY, &buyers, &requests).await;
    let [
        join,
        schema,
        anon_join,
        anon_users,
        me,
        user_join,
        user_token,
        user_merge,
    ] = <[Value; 8]>::try_from(answers).unwrap();

    // A service key, forwarded by the gateway, joins both subgraphs.
    let body = join;
    assert!(body["errors"].is_null(), "{body:#}");
    let orders = body["data"]["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 3, "{body:#}");

    // Order 1: Alice, with her unionid and Mini Program identity from us, her orders from them.
    assert_eq!(orders[0]["id"], "order-1");
    assert_eq!(orders[0]["total"], 100);
    let buyer = &orders[0]["buyer"];
    assert_eq!(buyer["id"], alice.as_str());
    assert!(
        buyer["unionid"].as_str().is_some_and(|u| u.len() == 28),
        "{body:#}"
    );
    assert_eq!(buyer["miniProgramIdentities"][0]["appId"], MP_A);
    assert!(buyer["miniProgramIdentities"][0]["openid"].is_string());
    assert_eq!(buyer["orders"][0]["id"], "order-1");
    assert_eq!(orders[1]["buyer"]["id"], bob.as_str());
    // Order 3: the gateway keeps the id the orders team holds (Carol's old one, a tombstone
    // without a unionid); our fields are the survivor's: her unionid and both Mini Program
    // identities, the one from before the merge included.
    let carol = &orders[2]["buyer"];
    assert_eq!(carol["id"], carol_old.as_str(), "{body:#}");
    assert!(
        carol["unionid"].as_str().is_some_and(|u| u.len() == 28),
        "{body:#}"
    );
    let mut apps: Vec<&str> = carol["miniProgramIdentities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["appId"].as_str().unwrap())
        .collect();
    apps.sort();
    assert_eq!(apps, [MP_A, MP_UNBOUND], "{body:#}");

    // The supergraph's API schema: our end-user roots and theirs, nothing for admins or
    // services, none of the types only those reach.
    let s = &schema["data"]["__schema"];
    assert_eq!(
        names(&s["queryType"]["fields"]),
        [
            "me",
            "officialAccountAuthorizeUrl",
            "orders",
            "wechatJsSdkConfig"
        ],
        "{schema:#}"
    );
    let mutations = names(&s["mutationType"]["fields"]);
    for admin in [
        "mergeUsers",
        "unlinkIdentity",
        "sendWeChatMessage",
        "sendWeChatMessages",
    ] {
        assert!(!mutations.iter().any(|m| m == admin), "{mutations:?}");
    }
    assert!(
        mutations.iter().any(|m| m == "loginWithMiniProgram"),
        "{mutations:?}"
    );
    let types = names(&s["types"]);
    for hidden in ["MergeEvent", "WeChatFollowerSync", "WeChatMessage", "Node"] {
        assert!(!types.iter().any(|t| t == hidden), "{types:?}");
    }
    assert!(
        !types.iter().any(|t| t.ends_with("AccessToken")),
        "{types:?}"
    );

    // No credentials: the gateway's clients get nothing of ours, joined or asked for.
    assert!(refused(&anon_users, "users"), "{anon_users:#}");
    let anon_orders = anon_join["data"]["orders"]
        .as_array()
        .expect("their orders");
    assert!(
        anon_orders.iter().all(|o| o["buyer"].is_null()),
        "{anon_join:#}"
    );
    assert!(!anon_join.to_string().contains(&alice_unionid(&body)));

    // A user token: itself, joined with the other team's orders ...
    assert_eq!(me["data"]["me"]["id"], alice.as_str(), "{me:#}");
    assert_eq!(me["data"]["me"]["orders"][0]["total"], 100, "{me:#}");
    // ... but nothing of other people through a join, and no admin or service field.
    let text = user_join.to_string();
    for other in [&orders[1]["buyer"]["unionid"], &carol["unionid"]] {
        assert!(!text.contains(other.as_str().unwrap()), "{user_join:#}");
    }
    assert!(refused(&user_token, "wechatAccessToken"), "{user_token:#}");
    assert!(refused(&user_merge, "mergeUsers"), "{user_merge:#}");
}

fn alice_unionid(join: &Value) -> String {
    join["data"]["orders"][0]["buyer"]["unionid"]
        .as_str()
        .unwrap()
        .to_owned()
}
