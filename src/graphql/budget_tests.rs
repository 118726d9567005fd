//! The budget's unit tests (`super` is `graphql::budget`).

use super::*;

fn doc(q: &str) -> ExecutableDocument {
    async_graphql::parser::parse_query(q).unwrap()
}

use super::TEST_BUDGET as BUDGET;

fn check(budget: &Budget, doc: &ExecutableDocument) -> ServerResult<()> {
    budget.check(doc, &Variables::default())
}

#[test]
fn a_login_counts_as_a_phone_exchange_only_with_a_phone_code() {
    // Logins are allowed two here, so only the phone budget can refuse.
    let two = Budget {
        logins: 2,
        ..BUDGET
    };
    let plain = "loginWithMiniProgram(input: {appId: \"x\", code: \"y\"}) { newUser }";
    let phone =
        "loginWithMiniProgram(input: {appId: \"x\", code: \"y\", phoneCode: \"p\"}) { newUser }";
    let null =
        "loginWithMiniProgram(input: {appId: \"x\", code: \"y\", phoneCode: null}) { newUser }";
    assert!(check(&two, &doc(&format!("mutation {{ a: {plain} b: {phone} }}"))).is_ok());
    assert!(check(&two, &doc(&format!("mutation {{ a: {null} b: {phone} }}"))).is_ok());
    let err = check(&two, &doc(&format!("mutation {{ a: {phone} b: {phone} }}"))).unwrap_err();
    assert!(err.message.contains("phone exchange"), "{}", err.message);
    let link = "linkPhoneNumber(input: {appId: \"x\", phoneCode: \"p\"}) { id }";
    assert!(check(&two, &doc(&format!("mutation {{ {plain} {link} }}"))).is_ok());
    assert!(check(&two, &doc(&format!("mutation {{ {phone} {link} }}"))).is_err());
    // Through variables: the input, or the phone code alone.
    let vars = |v: serde_json::Value| Variables::from_json(v);
    let d = doc("mutation($i: LoginWithMiniProgramInput!, $p: String) { \
                 a: loginWithMiniProgram(input: $i) { newUser } \
                 b: loginWithMiniProgram(input: {appId: \"x\", code: \"y\", phoneCode: $p}) { newUser } }");
    let with = serde_json::json!({ "appId": "x", "code": "y", "phoneCode": "p" });
    let without = serde_json::json!({ "appId": "x", "code": "y" });
    // A phone code from the variable's default counts too.
    let d2 = doc("mutation($p: String = \"p\") { \
                  a: loginWithMiniProgram(input: {appId: \"x\", code: \"y\", phoneCode: $p}) { newUser } \
                  b: linkPhoneNumber(input: {appId: \"x\", phoneCode: \"q\"}) { id } }");
    assert!(
        two.check(&d2, &Variables::default()).is_err(),
        "the default counts"
    );
    for (input, p, refused) in [
        (&with, serde_json::json!("p"), true),
        (&with, serde_json::Value::Null, false),
        (&without, serde_json::json!("p"), false),
    ] {
        let v = vars(serde_json::json!({ "i": input, "p": p }));
        assert_eq!(two.check(&d, &v).is_err(), refused, "{input} {p}");
    }
}

#[test]
fn introspection_off_refuses_schema_and_type_even_in_fragments() {
    let off = Budget {
        introspection: false,
        ..BUDGET
    };
    for q in [
        "{ __schema { queryType { name } } }",
        "query { ...F } fragment F on Query { __type(name: \"User\") { name } }",
        "{ ... on Query { t: __type(name: \"User\") { name } } }",
    ] {
        let err = check(&off, &doc(q)).unwrap_err();
        assert!(
            err.message.contains("graphql.introspection"),
            "{q}: {err:?}"
        );
        assert!(check(&BUDGET, &doc(q)).is_ok(), "{q}");
    }
    assert!(check(&off, &doc("{ __typename }")).is_ok());
}

#[test]
fn aliases_and_fragments_all_count() {
    let d = doc(
        "mutation { a: loginWithMiniProgram(input: {appId: \"x\", code: \"y\"}) { newUser } \
                 ...F ... on Mutation { c: refreshSession(refreshToken: \"t\") { newUser } } } \
                 fragment F on Mutation { b: loginWithOfficialAccount(input: {appId: \"x\", code: \"y\", state: \"s\"}) { newUser } }",
    );
    let counts = costly_fields(&d).unwrap();
    assert_eq!(counts["loginWithMiniProgram"], 1);
    assert_eq!(counts["loginWithOfficialAccount"], 1);
    assert_eq!(counts["refreshSession"], 1);
    let err = check(&BUDGET, &d).unwrap_err();
    assert!(
        err.message.contains("limits.logins_per_request"),
        "{}",
        err.message
    );
    assert!(err.message.contains("has 3"), "{}", err.message);
}

#[test]
fn deep_nesting_is_refused_not_half_counted() {
    let login = "loginWithMiniProgram(input: {appId: \"x\", code: \"y\"}) { newUser }";
    // Ten levels of inline fragments, two logins inside: counted, and over budget.
    let open = "... on Mutation { ".repeat(10);
    let close = "} ".repeat(10);
    let d = doc(&format!(
        "mutation {{ {open} a: {login} b: {login} {close} }}"
    ));
    assert_eq!(costly_fields(&d).unwrap()["loginWithMiniProgram"], 2);
    assert!(check(&BUDGET, &d).is_err());
    // Named fragments ten deep, the same.
    let mut q =
        format!("mutation {{ ...F0 }} fragment F10 on Mutation {{ a: {login} b: {login} }}");
    for i in 0..10 {
        q.push_str(&format!(" fragment F{i} on Mutation {{ ...F{} }}", i + 1));
    }
    let d = doc(&q);
    assert_eq!(costly_fields(&d).unwrap()["loginWithMiniProgram"], 2);
    assert!(check(&BUDGET, &d).is_err());
    // Past the nesting bound: refused outright.
    let open = "... on Mutation { ".repeat(MAX_NESTING + 1);
    let close = "} ".repeat(MAX_NESTING + 1);
    let d = doc(&format!("mutation {{ {open} {login} {close} }}"));
    let err = check(&BUDGET, &d).unwrap_err();
    assert!(err.message.contains("nest more than"), "{}", err.message);
}

#[test]
fn cyclic_and_repeated_spreads_cost_little() {
    let d = doc(
        "query { ...A } fragment A on Query { officialAccountAuthorizeUrl(appId: \"a\", redirectUri: \"b\") ...A }",
    );
    assert_eq!(costly_fields(&d).unwrap()["officialAccountAuthorizeUrl"], 1);
    // Ten spreads of fragments that each spread the next ten times: 10^6 paths, each
    // fragment walked once, and the product counted.
    let spreads = |next: &str| format!("...{next} ").repeat(10);
    let d = doc(&format!(
        "query {{ {} }} fragment B on Query {{ {} }} fragment C on Query {{ {} }} \
         fragment D on Query {{ officialAccountAuthorizeUrl(appId: \"a\", redirectUri: \"b\") }}",
        spreads("B"),
        spreads("C"),
        spreads("D")
    ));
    let names = ["officialAccountAuthorizeUrl"];
    let (_, operation) = d.operations.iter().next().unwrap();
    let mut counter = Counter::new(&d, &names);
    assert_eq!(
        counter.count(&operation.node.selection_set.node, 0),
        Ok(1000)
    );
    assert!(counter.visits() <= 31, "{} visits", counter.visits());
    assert!(check(&BUDGET, &d).is_err());
}
