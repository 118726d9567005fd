//! Another team composes its subgraph with ours: our SDL, as a gateway reads it
//! (`_service { sdl }`), and a messaging team's subgraph that uses everyday names (`Message`,
//! `MessageStatus`, `App`, `Identity`, `Query.messages`, `Query.apps`, `Query.identity`,
//! `Mutation.sendMessage` …; `tests/federation/compose.mjs`) compose in Apollo's composition
//! library without an error: everything of ours that is WeChat's has a WeChat name.
//!
//! Needs Node.js and npm, like the gateway test (`tests/it/federation_gateway.rs`): without
//! them it is compiled as ignored, and `.ci/run` fails on that.

use serde_json::json;

use crate::common::node::run_federation_script;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_node),
    ignore = "install node and npm to run the federation composition test"
)]
async fn our_subgraph_composes_with_one_that_uses_everyday_names() {
    let app = TestApp::start(Backend::Sqlite).await;
    let data = app
        .gql_ok(Some(SERVICE_KEY), "{ _service { sdl } }", json!({}))
        .await;
    let sdl = data["_service"]["sdl"].as_str().expect("the SDL");
    let file = app.dir.path().join("identity.graphql");
    std::fs::write(&file, sdl).unwrap();

    let composed =
        run_federation_script("compose.mjs", vec![file.display().to_string()], Vec::new()).await;
    let errors = composed["errors"].as_array().expect("errors listed");
    assert!(errors.is_empty(), "composition failed: {errors:#?}");
}
