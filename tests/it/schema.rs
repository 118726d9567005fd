//! The committed `schema.graphql` is what the server exports.

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
