//! The corpus: each entry a query, its variables, who asks, and which path instance B should
//! take (`compiled`). The rule for `compiled`: the selection is inside the compiled subset
//! (User's scalars, the four identity lists with their scalars, aliases, fragments,
//! `__typename`, variables, `@skip`/`@include`) and the caller is an admin or service key, or
//! a user token reading itself, on any of the fields (the same read checks run on both paths).
//! `nodes`/`node` compile only when every id is a user's (another id may be an identity's,
//! which the resolvers look up). An answer that is an error (UNAUTHENTICATED, FORBIDDEN,
//! BAD_USER_INPUT) is not checked for its path: the refusal may come before the path is
//! chosen or after. Entries of paging walks are in `super::walk`.

use serde_json::{Value, json};

use super::seed::Seed;

#[derive(Clone, Copy, Debug)]
pub enum Caller {
    Admin,
    Service,
    /// Alice's access token.
    Alice,
    /// Bob's token issued to his first user, before it was merged into his second.
    BobOld,
    Anonymous,
}

pub struct Entry {
    pub name: String,
    /// The root field the counter names (`field="…"`).
    pub field: &'static str,
    pub query: String,
    pub variables: Value,
    pub caller: Caller,
    pub compiled: bool,
}

impl Entry {
    /// As the admin, expecting the compiled path.
    pub fn new(name: &str, field: &'static str, query: &str, variables: Value) -> Self {
        Entry {
            name: name.to_owned(),
            field,
            query: query.to_owned(),
            variables,
            caller: Caller::Admin,
            compiled: true,
        }
    }

    /// The same query asked by `caller`, expecting the compiled path or not.
    pub fn by(&self, caller: Caller, compiled: bool) -> Self {
        Entry {
            name: format!("{} as {caller:?}", self.name),
            field: self.field,
            query: self.query.clone(),
            variables: self.variables.clone(),
            caller,
            compiled,
        }
    }

    pub fn resolvers(mut self) -> Self {
        self.compiled = false;
        self
    }
}

pub const USER: &str = "id unionid nickname avatarUrl phoneNumber phoneNumberVerifiedAt
    disabledAt disabledReason deletedAt createdAt updatedAt";
pub const MP: &str = "id appId openid unionid createdAt lastLoginAt";
/// Every field but `scope`, which the resolvers answer (an unknown stored scope is an error of
/// its own, which a statement cannot raise): a selection with it falls back.
pub const OA: &str = "id appId openid unionid subscribed subscribedAt nickname avatarUrl
    sex province city country createdAt lastLoginAt";
pub const APP: &str = "id appId openid unionid nickname avatarUrl createdAt lastLoginAt";

/// Every field of the compiled subset, with `__typename` at each level.
pub fn full() -> String {
    format!(
        "__typename {USER}
        miniProgramIdentities {{ __typename {MP} }}
        officialAccountIdentities {{ __typename {OA} }}
        websiteIdentities {{ __typename {APP} }}
        mobileAppIdentities {{ __typename {APP} }}"
    )
}

fn one(name: &str, id: &str) -> Entry {
    let q = format!("query($id: ID!) {{ user(id: $id) {{ {} }} }}", full());
    Entry::new(name, "user", &q, json!({ "id": id }))
}

pub fn unknown() -> String {
    "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d".to_owned()
}

/// `user`, `me`, `userByUnionid`, `node` and the shapes of a selection.
pub fn single(s: &Seed) -> Vec<Entry> {
    let alice = one("user: Alice, every field", &s.alice);
    let mut v = vec![
        alice.by(Caller::Service, true),
        alice.by(Caller::Alice, true),
        alice.by(Caller::Anonymous, false),
        one("user: Bob asked by Alice", &s.bob).by(Caller::Alice, false),
        alice,
        one("user: Bob's tombstone", &s.bob_old),
        one("user: Carol (admin merge survivor)", &s.carol),
        one("user: disabled Dave", &s.dave),
        one("user: erased Erin", &s.erin),
        one("user: Frank with a phone", &s.frank).by(Caller::Service, true),
        one("user: Grace (website, mobile app)", &s.grace),
        one("user: control characters", &s.control),
        one("user: Henry (not following)", &s.henry),
        one("user: unknown id", &unknown()),
        one("user: malformed id (refused)", "not-a-user-id").resolvers(),
    ];
    for (n, id) in s.odd.iter().enumerate() {
        v.push(one(&format!("user: odd nickname {n}"), id));
    }
    let me = Entry::new("me", "me", &format!("{{ me {{ {} }} }}", full()), json!({}));
    v.extend([
        me.by(Caller::Alice, true),
        me.by(Caller::BobOld, true),
        me.by(Caller::Anonymous, false),
        me.by(Caller::Admin, false),
    ]);
    let by_unionid = format!(
        "query($u: String!) {{ userByUnionid(unionid: $u) {{ {} }} }}",
        full()
    );
    let ubu =
        |name: &str, u: &str| Entry::new(name, "userByUnionid", &by_unionid, json!({ "u": u }));
    v.extend([
        ubu("userByUnionid: Alice", &s.alice_unionid),
        ubu("userByUnionid: Bob's (merged)", &s.bob_unionid).by(Caller::Service, true),
        ubu("userByUnionid: unknown", "o6_bmasdasdsad6_2sgVt7hMZOPfL"),
        ubu("userByUnionid: by Alice", &s.alice_unionid).by(Caller::Alice, false),
        Entry::new(
            "user: an Official Account identity's scope (falls back)",
            "user",
            "query($id: ID!) { user(id: $id) { id officialAccountIdentities { appId scope } } }",
            json!({ "id": s.alice }),
        )
        .resolvers(),
        ubu("userByUnionid: empty (refused)", "").resolvers(),
    ]);
    let ids = json!({ "a": s.alice, "b": s.bob, "g": s.grace });
    v.extend([
        Entry::new(
            "aliases, one field twice, repeated fields merged",
            "user",
            "query($a: ID!) {
                first: user(id: $a) { id name: nickname nick: nickname nickname nickname
                    miniProgramIdentities { appId } miniProgramIdentities { openid appId }
                    mp: miniProgramIdentities { id } } }",
            ids.clone(),
        ),
        // Two reads of `user`, each on its own key: the second compiles. (A root field asked
        // twice under one key runs the resolvers both times, and the engine merges the two
        // answers in the order they complete: not compared here.)
        Entry::new(
            "aliases: two reads of user",
            "user",
            "query($a: ID!, $b: ID!) { first: user(id: $a) { unionid }
                second: user(id: $b) { key: id id unionid } }",
            ids.clone(),
        ),
        Entry::new(
            "named, nested and inline fragments, on Node, __typename",
            "user",
            "query($a: ID!) { user(id: $a) { ...U ... on Node { __typename id }
                ... { nickname } ... on User { officialAccountIdentities { ...Oa } } } }
            fragment U on User { __typename id ...Ids }
            fragment Ids on User { miniProgramIdentities { ...Mp }
                websiteIdentities { ... on WebsiteIdentity { appId } } }
            fragment Mp on MiniProgramIdentity { __typename appId openid ... on Node { id } }
            fragment Oa on OfficialAccountIdentity { subscribed sex city }",
            ids.clone(),
        ),
        Entry::new(
            "variables with defaults",
            "user",
            &format!(
                "query($id: ID! = \"{}\", $phone: Boolean! = true, $skip: Boolean = false) {{
                    user(id: $id) {{ id phoneNumber @include(if: $phone)
                        unionid @skip(if: $skip) }} }}",
                s.frank
            ),
            json!({}),
        ),
        Entry::new(
            "@skip/@include literals on fields, fragments and lists",
            "user",
            "query($g: ID!) { user(id: $g) { id nickname @skip(if: true) unionid @include(if: false)
                ...F @include(if: true) ...F2 @skip(if: true) ... @skip(if: false) { createdAt }
                websiteIdentities @include(if: true) { appId openid @skip(if: true) }
                mobileAppIdentities @skip(if: true) { appId } } }
            fragment F on User { avatarUrl }
            fragment F2 on User { phoneNumber }",
            ids.clone(),
        ),
        Entry::new(
            "@skip/@include with variables, on a root field too",
            "user",
            "query($a: ID!, $b: ID!, $yes: Boolean!, $no: Boolean!) {
                a: user(id: $a) @include(if: $yes) { id nickname @skip(if: $yes)
                    ... on User @include(if: $no) { unionid }
                    miniProgramIdentities @include(if: $yes) { appId @skip(if: $no) } }
                b: user(id: $b) @skip(if: $yes) { id } }",
            json!({ "a": s.alice, "b": s.bob, "yes": true, "no": false }),
        ),
    ]);
    let node = format!(
        "query($id: ID!) {{ node(id: $id) {{ __typename id ... on User {{ {} }}
            ... on MiniProgramIdentity {{ appId openid }} }} }}",
        full()
    );
    let n = |name: &str, id: &str| Entry::new(name, "node", &node, json!({ "id": id }));
    v.extend([
        n("node: Alice", &s.alice),
        n("node: Alice, her token", &s.alice).by(Caller::Alice, true),
        n("node: Bob's tombstone", &s.bob_old).by(Caller::Service, true),
        // Not a user's id: the identity tables are asked too, on the resolvers.
        n("node: unknown", &unknown()).resolvers(),
        n("node: an identity (falls back)", &s.alice_mp).resolvers(),
        n("node: anonymous", &s.alice).by(Caller::Anonymous, false),
    ]);
    // Outside the subset: the resolvers, byte for byte the same.
    v.extend([
        Entry::new(
            "outside: mergedInto",
            "user",
            "query($id: ID!) { user(id: $id) { id mergedInto { id nickname mergedInto { id } } } }",
            json!({ "id": s.bob_old }),
        )
        .resolvers(),
        Entry::new(
            "outside: sessions",
            "user",
            "query($id: ID!) { user(id: $id) { id sessions(first: 5) { id current } } }",
            json!({ "id": s.alice }),
        )
        .resolvers(),
        Entry::new(
            "outside: an identity's user",
            "user",
            "query($id: ID!) { user(id: $id) { id miniProgramIdentities { appId user { id nickname } } } }",
            json!({ "id": s.carol }),
        )
        .resolvers(),
        Entry::new(
            "outside: sessions by a service key (FORBIDDEN)",
            "user",
            "query($id: ID!) { user(id: $id) { id sessions { id } } }",
            json!({ "id": s.alice }),
        )
        .by(Caller::Service, false),
    ]);
    v
}
