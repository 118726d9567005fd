//! Another team's subgraph joins `User` for real: `tests/federation/gateway.mjs` starts a small
//! "orders" subgraph, composes it with ours (read live through `_service`) in Apollo Gateway,
//! forwards a service key to us and runs one query through the gateway that joins both.
//!
//! Needs Node.js and npm (`NODE` / `NPM` naming them, or on the PATH) when the tests are built;
//! without them the test is compiled as ignored, and `.ci/run` fails on that. The first run
//! installs the pinned packages (`npm ci` in `tests/federation`) if `node_modules` is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

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

fn tool(var: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| name.to_owned())
}

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/federation")
}

/// `npm ci` once if the packages are missing (two tests of this binary may get here at once).
fn install_packages() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if project().join("node_modules/@apollo/gateway").is_dir() {
        return;
    }
    let status = Command::new(tool("NPM", "npm"))
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(project())
        .status()
        .expect("npm runs");
    assert!(status.success(), "npm ci in tests/federation failed");
}

/// Runs the gateway script against `app` with `key`; returns its JSON answer.
async fn through_the_gateway(app: &TestApp, key: &str, buyers: &[String]) -> Value {
    let base = app.base.clone();
    let key = key.to_owned();
    let buyers = buyers.to_vec();
    let output = tokio::task::spawn_blocking(move || {
        install_packages();
        Command::new(tool("NODE", "node"))
            .arg("gateway.mjs")
            .arg(&base)
            .arg(&key)
            .args(&buyers)
            .current_dir(project())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the gateway script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let answer = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

async fn story(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = people(&app).await;
    let (alice, bob, carol_old) = (id(&p.alice), id(&p.bob), id(&p.carol_old));
    // The orders team knows Carol by the id she had before the merge.
    let buyers = [alice.clone(), bob.clone(), carol_old.clone()];
    let body = through_the_gateway(&app, SERVICE_KEY, &buyers).await;
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

    // From our side to theirs: a user and the orders the other subgraph adds to it.
    assert_eq!(body["data"]["user"]["id"], alice.as_str());
    assert_eq!(body["data"]["user"]["orders"][0]["total"], 100);
}
