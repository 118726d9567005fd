//! Story: a flood of anonymous authorize calls on two instances of one deployment at once
//! (GraphQL fields and the server-driven route, rate limits off) never makes an app hold more
//! OA states than `limits.max_live_states_per_app`, not for a moment; the newest states work and
//! the oldest are gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use wechat_identity::config::{Config, Secret};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(the_state_cap_holds_exactly_under_a_concurrent_flood_on_two_instances);

const CAP: u32 = 200;
const WORKERS: usize = 12;
const REQUESTS: usize = 20;

fn flood_config(c: &mut Config) {
    c.rate_limits.enabled = false;
    c.limits.max_live_states_per_app = CAP;
}

/// One worker's requests: five states per GraphQL request, or one per server-driven redirect.
async fn flood(app: Arc<TestApp>, worker: usize) -> usize {
    let fields: String = (0..5)
        .map(|i| format!("u{i}: startOfficialAccountLogin(input: {{appId: \"{OA}\", redirectUri: \"https://h5.example.com/\"}}) {{ expiresAt }} "))
        .collect();
    let query = format!("mutation {{ {fields} }}");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let route = format!(
        "{}/auth/official-account/{OA}/authorize?scope=snsapi_base&returnTo={}/sandbox/login-demo",
        app.base, app.base
    );
    let mut issued = 0;
    for _ in 0..REQUESTS {
        if worker % 3 == 0 {
            let res = no_redirects.get(&route).send().await.unwrap();
            assert_eq!(res.status(), 302);
            issued += 1;
        } else {
            app.gql_ok(None, &query, json!({})).await;
            issued += 5;
        }
    }
    issued
}

async fn the_state_cap_holds_exactly_under_a_concurrent_flood_on_two_instances(backend: Backend) {
    let a = TestApp::start_with(backend, flood_config).await;
    let url = a.database_url.clone();
    let key = std::fs::read_to_string(a.dir.path().join("session-key-encryption.key")).unwrap();
    let b = TestApp::start_with(backend, |c| {
        flood_config(c);
        c.database_url = Some(Secret::new(url));
        c.wechat.session_key_encryption_key = Some(Secret::new(key));
    })
    .await;
    let (_, before_flood) = a.authorize_url(OA, "SNSAPI_BASE").await;
    let (a, b) = (Arc::new(a), Arc::new(b));

    // Count the states all along, from the harness's own connection.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (a, done) = (a.clone(), done.clone());
        tokio::spawn(async move {
            let (mut samples, mut most) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                most = most.max(a.count("oauth_states").await);
                samples += 1;
            }
            (samples, most)
        })
    };
    let workers = (0..WORKERS).map(|w| {
        let app = if w % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(flood(app, w))
    });
    let mut issued = 1;
    for worker in futures_util::future::join_all(workers).await {
        issued += worker.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let (samples, most) = sampler.await.unwrap();
    assert!(samples >= 10, "only {samples} samples");
    assert!(
        most <= i64::from(CAP),
        "{most} states at once (cap {CAP}, {issued} issued)"
    );
    assert_eq!(a.count("oauth_states").await, i64::from(CAP));
    assert_eq!(
        a.count("oauth_states WHERE used_at IS NULL").await,
        i64::from(CAP)
    );
    assert_eq!(
        a.count(&format!("oauth_state_counters WHERE issued = {issued}"))
            .await,
        1,
        "every state counted"
    );

    // The newest state works; the one from before the flood was replaced.
    let (_, newest) = b.authorize_url(OA, "SNSAPI_BASE").await;
    let code = a.oa_code("alice", "snsapi_base").await;
    let body = a.login_oa_code(OA, &code, &newest).await;
    assert!(
        body.get("errors").is_none(),
        "the newest state works: {body:#}"
    );
    let code = a.oa_code("bob", "snsapi_base").await;
    let body = a.login_oa_code(OA, &code, &before_flood).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
}
