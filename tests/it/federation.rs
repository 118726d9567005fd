//! Federation v2 and lookups by key: `_service { sdl }`, `_entities` (users, both identity
//! kinds; merged ids answer the survivor; the read check of every read), `usersByIds`,
//! `wechatIdentity(appId, openid)`, their limits, and another team's subgraph joining `User` through
//! a real Apollo Gateway (see `federation_gateway.rs`).

use serde_json::{Value, json};

use crate::common::*;
use crate::merge::id;
use crate::on_both_backends;

on_both_backends!(
    the_subgraph_serves_its_sdl_with_the_federation_directives,
    entities_answer_users_and_identities_in_the_order_asked,
    entities_are_read_like_every_read,
    bad_representations_are_refused_clearly,
    users_by_ids_answers_survivors_and_nulls_in_order,
    identity_by_key_answers_either_kind,
);

pub const ENTITIES: &str = "query($r: [_Any!]!) { _entities(representations: $r) {
    __typename
    ... on User { id unionid mergedInto { id } miniProgramIdentities { appId openid } }
    ... on MiniProgramIdentity { appId openid user { id } }
    ... on OfficialAccountIdentity { appId openid subscribed user { id } } } }";

/// A user representation.
pub fn user_ref(id: &str) -> Value {
    json!({ "__typename": "User", "id": id })
}

/// The people of these stories: Alice (Mini Program A and the OA: one user), Bob (Mini
/// Program A), and Carol, whose unbound Mini Program user (the tombstone) was merged by an admin
/// into her Mini Program A user (the survivor).
pub struct People {
    pub alice: Value,
    pub bob: Value,
    pub carol_old: Value,
    pub carol: String,
}

pub async fn people(app: &TestApp) -> People {
    app.login_mp(MP_A, "alice").await;
    let alice = app.login_oa("alice", "snsapi_userinfo").await;
    let bob = app.login_mp(MP_A, "bob").await;
    let carol_old = app.login_mp(MP_UNBOUND, "carol").await;
    let carol = id(&app.login_mp(MP_A, "carol").await);
    app.gql_ok(
        Some(ADMIN_KEY),
        "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { id } }",
        json!({ "s": id(&carol_old), "t": carol }),
    )
    .await;
    People {
        alice,
        bob,
        carol_old,
        carol,
    }
}

fn token(login: &Value) -> &str {
    login["accessToken"].as_str().unwrap()
}

/// The user's identities of both kinds, as the admin reads them.
async fn identities(app: &TestApp, user: &str) -> Value {
    app.gql_ok(
        Some(ADMIN_KEY),
        "query($id: ID!) { user(id: $id) { miniProgramIdentities { appId openid }
            officialAccountIdentities { appId openid } } }",
        json!({ "id": user }),
    )
    .await["user"]
        .clone()
}

async fn the_subgraph_serves_its_sdl_with_the_federation_directives(backend: Backend) {
    let app = TestApp::start(backend).await;
    // A gateway asks with its API key (anyone else is refused unless graphql.public_sdl:
    // bounded_answers.rs).
    let data = app
        .gql_ok(Some(SERVICE_KEY), "{ _service { sdl } }", json!({}))
        .await;
    let sdl = data["_service"]["sdl"].as_str().unwrap();
    assert_eq!(
        sdl,
        wechat_identity::graphql::sdl(),
        "`_service` answers the export"
    );
    for expected in [
        "extend schema @link(\n\turl: \"https://specs.apollo.dev/federation/v2.5\"",
        "type User implements Node @key(fields: \"id\")",
        "type MiniProgramIdentity implements Node & WeChatIdentity @key(fields: \"appId openid\")",
        "type OfficialAccountIdentity implements Node & WeChatIdentity @key(fields: \"appId openid\")",
        "type Query {",
        "\tusersByIds(\n",
        "\t\tids: [ID!]!\n\t): [User] @inaccessible\n",
    ] {
        assert!(sdl.contains(expected), "no `{expected}` in the SDL:\n{sdl}");
    }
}

async fn entities_answer_users_and_identities_in_the_order_asked(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = people(&app).await;
    let alice = id(&p.alice);
    let ids = identities(&app, &alice).await;
    let mp = &ids["miniProgramIdentities"][0];
    let oa = &ids["officialAccountIdentities"][0];
    let unknown = uuid::Uuid::new_v4().to_string();
    let reps = json!([
        user_ref(&alice),
        { "__typename": "MiniProgramIdentity", "appId": mp["appId"], "openid": mp["openid"] },
        user_ref(&unknown),
        user_ref(&id(&p.carol_old)),
        { "__typename": "OfficialAccountIdentity", "appId": oa["appId"], "openid": oa["openid"] },
        { "__typename": "MiniProgramIdentity", "appId": MP_A, "openid": "no-such-openid" },
        user_ref(&id(&p.bob)),
    ]);
    // Service keys read every user, like the admin.
    for key in [SERVICE_KEY, ADMIN_KEY] {
        let data = app.gql_ok(Some(key), ENTITIES, json!({ "r": reps })).await;
        let e = &data["_entities"];
        assert_eq!(e.as_array().unwrap().len(), 7, "{e:#}");
        assert_eq!(e[0]["__typename"], "User");
        assert_eq!(e[0]["id"], alice.as_str());
        assert_eq!(e[0]["miniProgramIdentities"][0]["appId"], MP_A);
        assert_eq!(e[1]["__typename"], "MiniProgramIdentity");
        assert_eq!(e[1]["openid"], mp["openid"]);
        assert_eq!(e[1]["user"]["id"], alice.as_str());
        assert!(e[2].is_null(), "an unknown id is null: {e:#}");
        // Carol's old id answers the live survivor (not the tombstone), with both identities.
        assert_eq!(e[3]["id"], p.carol.as_str());
        assert!(e[3]["mergedInto"].is_null());
        assert_eq!(e[3]["miniProgramIdentities"].as_array().unwrap().len(), 2);
        assert_eq!(e[4]["__typename"], "OfficialAccountIdentity");
        assert_eq!(e[4]["appId"], OA);
        assert_eq!(e[4]["user"]["id"], alice.as_str());
        assert!(e[5].is_null(), "an unknown identity is null: {e:#}");
        assert_eq!(e[6]["id"], id(&p.bob).as_str());
    }
}

async fn entities_are_read_like_every_read(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = people(&app).await;
    let alice = id(&p.alice);
    let bob = id(&p.bob);
    let one = |id: &str| json!({ "r": [user_ref(id)] });

    // Nobody: UNAUTHENTICATED, nothing shown.
    let body = app.gql(None, ENTITIES, one(&alice)).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body:#}");
    assert!(body["data"].is_null(), "{body:#}");
    // A bad token likewise.
    let body = app.gql(Some("not-a-token"), ENTITIES, one(&alice)).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body:#}");

    // Alice reads herself, not Bob, and learns nothing of ids that do not exist.
    let data = app
        .gql_ok(Some(token(&p.alice)), ENTITIES, one(&alice))
        .await;
    assert_eq!(data["_entities"][0]["id"], alice.as_str());
    let body = app
        .gql(
            Some(token(&p.alice)),
            ENTITIES,
            json!({ "r": [user_ref(&alice), user_ref(&bob)] }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body:#}");
    assert!(body["data"].is_null(), "Bob's data is not shown: {body:#}");
    let unknown = uuid::Uuid::new_v4().to_string();
    let body = app
        .gql(Some(token(&p.alice)), ENTITIES, one(&unknown))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body:#}");
    // Nor Bob's identity.
    let bobs = identities(&app, &bob).await["miniProgramIdentities"][0].clone();
    let rep =
        json!({ "__typename": "MiniProgramIdentity", "appId": MP_A, "openid": bobs["openid"] });
    let body = app
        .gql(Some(token(&p.alice)), ENTITIES, json!({ "r": [rep] }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body:#}");
    // Carol's token from before the merge reads her old id as the survivor.
    let data = app
        .gql_ok(Some(token(&p.carol_old)), ENTITIES, one(&id(&p.carol_old)))
        .await;
    assert_eq!(data["_entities"][0]["id"], p.carol.as_str());
}

async fn bad_representations_are_refused_clearly(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = people(&app).await;
    let alice = id(&p.alice);
    let refused = |body: &Value| {
        assert_eq!(error_code(body), "BAD_USER_INPUT", "{body:#}");
        assert!(body["data"].is_null(), "nothing shown: {body:#}");
        body["errors"][0]["message"].as_str().unwrap().to_owned()
    };
    let ask = |reps: Value| app.gql(Some(ADMIN_KEY), ENTITIES, json!({ "r": reps }));

    // A type this subgraph does not have, or a key missing: not found, whatever else was asked.
    for rep in [
        json!({ "__typename": "Order", "id": alice }),
        json!({ "__typename": "User", "openid": "x" }),
        json!({ "__typename": "MiniProgramIdentity", "appId": MP_A }),
    ] {
        let message = refused(&ask(json!([user_ref(&alice), rep])).await);
        assert!(message.contains("Entity not found"), "{message}");
    }
    // An id that is no user id, an openid past any WeChat openid.
    let message = refused(&ask(json!([user_ref("alice")])).await);
    assert!(message.contains("id is not a user id"), "{message}");
    let long = "o".repeat(65);
    let message = refused(
        &ask(json!([{ "__typename": "OfficialAccountIdentity", "appId": OA, "openid": long }]))
            .await,
    );
    assert!(
        message.contains("openid must be 1-64 characters"),
        "{message}"
    );

    // The limit: 100 representations per request, in a variable or written out.
    let hundred: Vec<Value> = (0..100).map(|_| user_ref(&alice)).collect();
    let data = app
        .gql_ok(Some(ADMIN_KEY), ENTITIES, json!({ "r": hundred }))
        .await;
    assert_eq!(data["_entities"].as_array().unwrap().len(), 100);
    let too_many: Vec<Value> = (0..101).map(|_| user_ref(&alice)).collect();
    let message = refused(&ask(json!(too_many)).await);
    assert!(
        message.contains("_entities takes at most 100 representations")
            && message.contains("this one has 101"),
        "{message}"
    );
    let literal = format!(
        "{{ _entities(representations: [{}]) {{ ... on User {{ id }} }} }}",
        vec![format!("{{__typename: \"User\", id: \"{alice}\"}}"); 101].join(", ")
    );
    let message = refused(&app.gql(Some(ADMIN_KEY), &literal, json!({})).await);
    assert!(message.contains("at most 100"), "{message}");
}

const USERS_BY_IDS: &str = "query($ids: [ID!]!) { usersByIds(ids: $ids) { id unionid } }";

async fn users_by_ids_answers_survivors_and_nulls_in_order(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = people(&app).await;
    let (alice, bob) = (id(&p.alice), id(&p.bob));
    let unknown = uuid::Uuid::new_v4().to_string();
    let ids = json!([bob, unknown, id(&p.carol_old), alice, bob]);
    let data = app
        .gql_ok(Some(SERVICE_KEY), USERS_BY_IDS, json!({ "ids": ids }))
        .await;
    let users = data["usersByIds"].as_array().unwrap();
    let got: Vec<&Value> = users.iter().map(|u| &u["id"]).collect();
    assert_eq!(
        got,
        [
            &json!(bob),
            &Value::Null,
            &json!(p.carol),
            &json!(alice),
            &json!(bob)
        ]
    );
    assert!(users[1].is_null());

    // 100 ids are fine, 101 are refused naming the limit; a bad id is named by its place.
    let hundred = vec![alice.clone(); 100];
    let data = app
        .gql_ok(Some(ADMIN_KEY), USERS_BY_IDS, json!({ "ids": hundred }))
        .await;
    assert_eq!(data["usersByIds"].as_array().unwrap().len(), 100);
    let body = app
        .gql(
            Some(ADMIN_KEY),
            USERS_BY_IDS,
            json!({ "ids": vec![alice.clone(); 101] }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("usersByIds takes at most 100 ids"),
        "{message}"
    );
    let body = app
        .gql(
            Some(ADMIN_KEY),
            USERS_BY_IDS,
            json!({ "ids": [alice, "nope"] }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ids[1] is not a user id"),
        "{body:#}"
    );

    // A user token: itself only.
    let data = app
        .gql_ok(
            Some(token(&p.alice)),
            USERS_BY_IDS,
            json!({ "ids": [alice] }),
        )
        .await;
    assert_eq!(data["usersByIds"][0]["id"], alice.as_str());
    let body = app
        .gql(
            Some(token(&p.alice)),
            USERS_BY_IDS,
            json!({ "ids": [alice, bob] }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body:#}");
    let body = app.gql(None, USERS_BY_IDS, json!({ "ids": [alice] })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body:#}");
}

const IDENTITY: &str = "query($a: String!, $o: String!) { wechatIdentity(appId: $a, openid: $o) {
    __typename id appId openid unionid user { id }
    ... on OfficialAccountIdentity { subscribed } } }";

async fn identity_by_key_answers_either_kind(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = people(&app).await;
    let alice = id(&p.alice);
    let ids = identities(&app, &alice).await;
    let mp_openid = ids["miniProgramIdentities"][0]["openid"].clone();
    let oa_openid = ids["officialAccountIdentities"][0]["openid"].clone();

    let data = app
        .gql_ok(
            Some(SERVICE_KEY),
            IDENTITY,
            json!({ "a": MP_A, "o": mp_openid }),
        )
        .await;
    let found = &data["wechatIdentity"];
    assert_eq!(found["__typename"], "MiniProgramIdentity");
    assert_eq!(found["openid"], mp_openid);
    assert_eq!(found["user"]["id"], alice.as_str());
    assert!(found["unionid"].is_string());
    let data = app
        .gql_ok(
            Some(token(&p.alice)),
            IDENTITY,
            json!({ "a": OA, "o": oa_openid }),
        )
        .await;
    assert_eq!(
        data["wechatIdentity"]["__typename"],
        "OfficialAccountIdentity"
    );
    assert_eq!(data["wechatIdentity"]["subscribed"], false);
    assert_eq!(data["wechatIdentity"]["user"]["id"], alice.as_str());

    // Alice's Mini Program openid is nobody's in the OA or the other Mini Program.
    for app_id in [OA, MP_B] {
        let data = app
            .gql_ok(
                Some(ADMIN_KEY),
                IDENTITY,
                json!({ "a": app_id, "o": mp_openid }),
            )
            .await;
        assert!(data["wechatIdentity"].is_null(), "{data:#}");
    }
    // An app this service does not have, an empty openid: refused, naming the argument.
    for (a, o, says) in [
        ("wxnosuchapp", "x", "not an app of this service"),
        (MP_A, "", "openid must be 1-64 characters"),
    ] {
        let body = app
            .gql(Some(ADMIN_KEY), IDENTITY, json!({ "a": a, "o": o }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(says),
            "{body:#}"
        );
    }
    // Bob may not look Alice up.
    let body = app
        .gql(
            Some(token(&p.bob)),
            IDENTITY,
            json!({ "a": MP_A, "o": mp_openid }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body:#}");
    assert!(body["data"]["wechatIdentity"].is_null(), "{body:#}");
}
