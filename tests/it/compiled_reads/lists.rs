//! The corpus's list fields: `users` with every filter and order, `usersByIds`, `nodes` and
//! `_entities` (the rule for `compiled` is in `corpus.rs`).

use serde_json::{Value, json};

use super::corpus::{Caller, Entry, full, unknown};
use super::seed::{MOBILE, Seed, WEBSITE};
use crate::common::*;

/// A page of `users` with everything a connection has.
pub const USERS: &str = "query($first: Int, $after: String, $last: Int, $before: String,
        $filter: UserFilter, $order: UserOrderBy! = ID_ASC) {
    users(first: $first, after: $after, last: $last, before: $before, filter: $filter,
          orderBy: $order) {
        __typename totalCount
        pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
        edges { __typename cursor node { __typename id unionid nickname createdAt
            miniProgramIdentities { appId openid } officialAccountIdentities { appId subscribed } } }
        nodes { id nickname deletedAt disabledReason }
    } }";

fn users(name: &str, variables: Value) -> Entry {
    Entry::new(&format!("users: {name}"), "users", USERS, variables)
}

fn filtered(name: &str, filter: Value) -> Entry {
    users(name, json!({ "first": 100, "filter": filter }))
}

pub fn lists(s: &Seed) -> Vec<Entry> {
    let everything = users("first page, every field", json!({}));
    // The users under two aliases of `node` (or `nodes`), selected differently: the resolvers.
    let aliased = |name: &str, query: &str| Entry::new(name, "users", query, json!({})).resolvers();
    let mut v = vec![
        aliased(
            "users: two aliases of node, selected differently",
            "{ users(first: 5) { edges { a: node { id } b: node { nickname } } } }",
        ),
        aliased(
            "users: two aliases of nodes, selected differently",
            "{ users(first: 5) { x: nodes { id } y: nodes { phoneNumber } } }",
        ),
        Entry::new(
            "users: two aliases of nodes, selected alike",
            "users",
            "{ users(first: 5) { x: nodes { id } y: nodes { id } } }",
            json!({}),
        ),
        everything.by(Caller::Service, true),
        everything.by(Caller::Alice, false),
        everything.by(Caller::Anonymous, false),
        Entry::new(
            "users: every User field, edges and nodes",
            "users",
            &format!(
                "{{ users(first: 30, filter: {{includeMerged: true, includeDeleted: true}}) {{
                    totalCount edges {{ cursor node {{ {f} }} }} nodes {{ {f} }} }} }}",
                f = full()
            ),
            json!({}),
        ),
        everything,
    ];
    for (name, filter) in [
        ("includeMerged", json!({ "includeMerged": true })),
        ("includeDeleted", json!({ "includeDeleted": true })),
        ("hasUnionid true", json!({ "hasUnionid": true })),
        ("hasUnionid false", json!({ "hasUnionid": false })),
        ("unionid", json!({ "unionid": s.bob_unionid })),
        (
            "unionid with includeMerged",
            json!({ "unionid": s.bob_unionid, "includeMerged": true }),
        ),
        ("openid", json!({ "openid": s.alice_mp_openid })),
        ("appId (a Mini Program)", json!({ "appId": MP_B })),
        ("appId (a website)", json!({ "appId": WEBSITE })),
        (
            "appId (the OA) and subscribed",
            json!({ "appId": OA, "subscribed": true }),
        ),
        (
            "appId (the OA), not subscribed",
            json!({ "appId": OA, "subscribed": false }),
        ),
        (
            "nicknameContains (unicode)",
            json!({ "nicknameContains": "张伟" }),
        ),
        (
            "nicknameContains (quote)",
            json!({ "nicknameContains": "\"THE" }),
        ),
        (
            "nicknameContains (% and _)",
            json!({ "nicknameContains": "%_" }),
        ),
        (
            "phoneNumber (bare)",
            json!({ "phoneNumber": "13800138000" }),
        ),
        (
            "createdAfter",
            json!({ "createdAfter": s.grace_created_at }),
        ),
        (
            "createdBefore",
            json!({ "createdBefore": s.grace_created_at }),
        ),
        ("hasMiniProgram true", json!({ "hasMiniProgram": true })),
        ("hasMiniProgram false", json!({ "hasMiniProgram": false })),
        (
            "hasOfficialAccount true",
            json!({ "hasOfficialAccount": true }),
        ),
        (
            "hasOfficialAccount false",
            json!({ "hasOfficialAccount": false }),
        ),
        ("hasWebsite true", json!({ "hasWebsite": true })),
        ("hasMobileApp false", json!({ "hasMobileApp": false })),
        ("subscribed true", json!({ "subscribed": true })),
        ("subscribed false", json!({ "subscribed": false })),
        (
            "combined: app, OA, merged",
            json!({ "appId": MP_A, "hasOfficialAccount": true, "includeMerged": true }),
        ),
        (
            "combined: unionid, subscribed, time range",
            json!({ "hasUnionid": true, "subscribed": true, "createdAfter": "2000-01-01T00:00:00Z",
                "createdBefore": "2100-01-01T00:00:00Z", "hasMobileApp": false }),
        ),
        (
            "combined: mobile app, deleted, merged",
            json!({ "appId": MOBILE, "hasWebsite": true, "includeDeleted": true, "includeMerged": true }),
        ),
        (
            "empty: unknown unionid",
            json!({ "unionid": "no-such-unionid" }),
        ),
    ] {
        v.push(filtered(name, filter));
    }
    for order in ["ID_ASC", "ID_DESC", "CREATED_AT_ASC", "CREATED_AT_DESC"] {
        v.push(users(
            &format!("first 5 by {order}"),
            json!({ "first": 5, "order": order }),
        ));
        v.push(users(
            &format!("last 3 by {order}"),
            json!({ "last": 3, "order": order }),
        ));
    }
    v.extend([
        filtered("includeDeleted by a service key (FORBIDDEN)", json!({ "includeDeleted": true }))
            .by(Caller::Service, false),
        users("first 0 (refused)", json!({ "first": 0 })).resolvers(),
        users("first 101 (refused)", json!({ "first": 101 })).resolvers(),
        users("first and last (refused)", json!({ "first": 2, "last": 2 })).resolvers(),
        users("a bad cursor (refused)", json!({ "first": 2, "after": "bm90LWEtY3Vyc29y" }))
            .resolvers(),
        filtered("a bad phone number (refused)", json!({ "phoneNumber": "call me" })).resolvers(),
        Entry::new(
            "users: pageInfo and totalCount only, defaults",
            "users",
            "{ users { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
            json!({}),
        ),
        Entry::new(
            "outside: users' mergedInto",
            "users",
            "{ users(first: 50, filter: {includeMerged: true}) { nodes { id mergedInto { id } } } }",
            json!({}),
        )
        .resolvers(),
    ]);

    let by_ids = format!(
        "query($ids: [ID!]!) {{ usersByIds(ids: $ids) {{ {} }} }}",
        full()
    );
    let many =
        json!({ "ids": [s.alice, s.bob_old, unknown(), s.alice, s.erin, s.carol_old, s.dave] });
    let by_ids = Entry::new(
        "usersByIds: merged, unknown, repeated",
        "usersByIds",
        &by_ids,
        many,
    );
    let own = json!({ "ids": [s.alice] });
    v.extend([
        by_ids.by(Caller::Service, true),
        by_ids.by(Caller::Alice, false),
        by_ids.by(Caller::Anonymous, false),
        Entry {
            name: "usersByIds: own id as Alice".into(),
            variables: own,
            ..by_ids.by(Caller::Alice, true)
        },
        Entry {
            name: "usersByIds: none".into(),
            variables: json!({ "ids": [] }),
            ..by_ids.by(Caller::Admin, true)
        },
        by_ids,
    ]);

    let nodes = format!(
        "query($ids: [ID!]!) {{ nodes(ids: $ids) {{ __typename id ... on User {{ {} }} }} }}",
        full()
    );
    let users_only = json!({ "ids": [s.alice, s.bob_old, s.alice, s.grace] });
    // An id that is no user's may be an identity's: the resolvers look in every table.
    let with_unknown = json!({ "ids": [s.alice, unknown()] });
    let mixed = json!({ "ids": [s.alice, s.alice_mp, unknown()] });
    v.extend([
        Entry::new("nodes: users", "nodes", &nodes, users_only.clone()),
        Entry::new("nodes: users", "nodes", &nodes, users_only).by(Caller::Service, true),
        Entry::new(
            "nodes: a user and an unknown id",
            "nodes",
            &nodes,
            with_unknown,
        )
        .resolvers(),
        Entry::new(
            "nodes: with an identity (falls back)",
            "nodes",
            &nodes,
            mixed,
        )
        .resolvers(),
        Entry::new(
            "nodes: own id",
            "nodes",
            &nodes,
            json!({ "ids": [s.alice] }),
        )
        .by(Caller::Alice, true),
    ]);

    let entities = format!(
        "query($r: [_Any!]!) {{ _entities(representations: $r) {{ __typename
            ... on User {{ {} }} ... on MiniProgramIdentity {{ appId openid }} }} }}",
        full()
    );
    let rep = |id: &str| json!({ "__typename": "User", "id": id });
    let reps = json!({ "r": [rep(&s.alice), rep(&s.bob_old), rep(&unknown()), rep(&s.alice), rep(&s.frank)] });
    let identity =
        json!({ "__typename": "MiniProgramIdentity", "appId": MP_A, "openid": s.alice_mp_openid });
    let with_identity = json!({ "r": [rep(&s.carol), identity, rep(&s.carol_old)] });
    let e = Entry::new(
        "_entities: users, merged, unknown",
        "_entities",
        &entities,
        reps,
    );
    v.extend([
        e.by(Caller::Service, true),
        e.by(Caller::Anonymous, false),
        // Two lists in one request: each its own users and selection.
        Entry::new(
            "_entities: two aliased lists",
            "_entities",
            "query($a: [_Any!]!, $b: [_Any!]!) {
                a: _entities(representations: $a) { ... on User { id } }
                b: _entities(representations: $b) { ... on User { nickname unionid } } }",
            json!({ "a": [rep(&s.alice)], "b": [rep(&s.grace), rep(&s.alice)] }),
        ),
        // The users of a list that also holds an identity are compiled; the identity is the
        // resolvers' (its entity resolver is not a hot read and counts nothing).
        Entry::new(
            "_entities: users and an identity",
            "_entities",
            &entities,
            with_identity,
        ),
        Entry::new(
            "_entities: own",
            "_entities",
            &entities,
            json!({ "r": [rep(&s.alice)] }),
        )
        .by(Caller::Alice, true),
        e,
    ]);
    v
}
