//! Stories of an operator's dashboards and of rate limits shared between instances: `/metrics`
//! describes every family (`# HELP`, `# TYPE`), a login moves its histograms (by route and
//! status, by GraphQL operation, by login kind and outcome, WeChat's call by endpoint and
//! errcode) and no label holds a user id or openid; with `rate_limits.redis_url`, two instances
//! refuse an address at the same point as one alone does, and with Redis unreachable each falls
//! back to its own buckets without failing a request.

use serde_json::Value;
use wechat_identity::config::{Bucket, Config, Secret};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    every_family_is_described_and_a_login_moves_its_histograms,
    two_instances_on_one_redis_refuse_an_address_where_one_alone_does,
    with_redis_unreachable_each_instance_keeps_its_own_limits
);

async fn scrape(app: &TestApp) -> String {
    app.scrape_metrics().await
}

/// The value of the series `series` (name and labels, exactly as rendered), 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn every_family_is_described_and_a_login_moves_its_histograms(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.rate_limits.login.per_ip = Bucket {
            burst: 2,
            per_second: 0.001,
        };
    })
    .await;
    let login_count =
        "wechat_identity_login_duration_seconds_count{kind=\"mini_program\",outcome=\"ok\"}";
    let graphql_count = "wechat_identity_http_server_request_duration_seconds_count{method=\"POST\",route=\"/graphql\",status=\"200\"}";
    let anonymous_mutations = "wechat_identity_graphql_operation_duration_seconds_count{operation_name=\"anonymous\",operation_type=\"mutation\"}";
    let code_calls = "wechat_identity_wechat_calls_total{endpoint=\"jscode2session\",outcome=\"ok\",errcode=\"0\"}";
    let refusals = "wechat_identity_rate_limit_refusals_total{limit=\"rate_limits.login.per_ip\"}";
    let before = scrape(&app).await;
    let login = app.login_mp(MP_A, "metrics-alice").await;
    let user_id = login["user"]["id"].as_str().unwrap().to_owned();
    // The second login from this address empties its bucket; the third is refused.
    app.login_mp(MP_A, "metrics-bob").await;
    let refused = app.login_mp_code(MP_A, "0123456789abcdef").await;
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    let after = scrape(&app).await;

    // Counts only grow, and other tests in this process log in too: at least ours.
    assert!(value(&after, login_count) >= value(&before, login_count) + 2.0);
    assert!(value(&after, graphql_count) >= value(&before, graphql_count) + 3.0);
    assert!(value(&after, anonymous_mutations) >= value(&before, anonymous_mutations) + 3.0);
    assert!(value(&after, code_calls) >= value(&before, code_calls) + 2.0);
    assert!(value(&after, refusals) >= value(&before, refusals) + 1.0);
    // A histogram has its buckets, the last one +Inf, and a sum.
    for family in [
        "wechat_identity_login_duration_seconds",
        "wechat_identity_http_server_request_duration_seconds",
        "wechat_identity_wechat_call_duration_seconds",
    ] {
        assert!(
            after.contains(&format!("# TYPE {family} histogram")),
            "{family}"
        );
        assert!(
            after
                .lines()
                .any(|l| l.starts_with(&format!("{family}_bucket{{")) && l.contains("le=\"+Inf\"")),
            "{family}"
        );
        assert!(after.contains(&format!("{family}_sum{{")), "{family}");
    }
    // The gauges read from the database and the pool.
    for series in [
        "wechat_identity_db_pool_connections{state=\"max\"}",
        "wechat_identity_webhook_events_pending",
    ] {
        assert!(
            after.lines().any(|l| l.starts_with(series)),
            "{series}: {after}"
        );
    }
    assert!(after.contains("wechat_identity_jobs{kind=\""), "{after}");
    // Every family is described.
    let mut families = 0;
    for line in after.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                after.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
            families += 1;
        }
    }
    assert!(families >= 10, "{after}");
    // No label is a user id, an openid or a raw path.
    assert!(!after.contains(&user_id));
    assert!(!after.contains("metrics-alice"));
}

/// `2 × burst` login attempts from one address, alternating between `apps`: which were refused
/// (RATE_LIMITED) and which went on to WeChat (WECHAT_CODE_INVALID: the code is made up).
async fn refusals(apps: &[&TestApp], burst: usize) -> Vec<bool> {
    let mut refused = Vec::new();
    for i in 0..2 * burst {
        let body = apps[i % apps.len()]
            .login_mp_code(MP_A, &format!("made-up-code-{i:04}"))
            .await;
        match error_code(&body) {
            "RATE_LIMITED" => refused.push(true),
            "WECHAT_CODE_INVALID" => refused.push(false),
            other => panic!("attempt {i}: {other}: {body}"),
        }
    }
    refused
}

const BURST: usize = 4;

/// Rate limits with a login burst of [`BURST`] per address that does not refill during the
/// test, in the Redis at `redis_url` (None: in memory), under keys of their own.
fn limits(redis_url: Option<&str>, prefix: &str) -> impl FnOnce(&mut Config) + use<> {
    let (url, prefix) = (redis_url.map(str::to_owned), prefix.to_owned());
    move |c: &mut Config| {
        c.rate_limits.login.per_ip = Bucket {
            burst: BURST as u32,
            per_second: 0.001,
        };
        c.rate_limits.redis_url = url.map(Secret::new);
        c.rate_limits.redis_prefix = prefix;
    }
}

fn prefix() -> String {
    format!("wi-test:{}:", uuid::Uuid::new_v4().simple())
}

async fn second(first: &TestApp, backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let deployment = first.same_deployment();
    TestApp::start_with(backend, |c| {
        deployment(c);
        tweak(c);
    })
    .await
}

async fn details(app: &TestApp) -> Value {
    let res = app
        .http
        .get(format!("{}/healthz/details", app.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn two_instances_on_one_redis_refuse_an_address_where_one_alone_does(backend: Backend) {
    let redis = "redis://127.0.0.1:6379";
    // One instance alone: the burst, then refusals.
    let alone = TestApp::start_with(backend, limits(Some(redis), &prefix())).await;
    let one = refusals(&[&alone], BURST).await;
    assert_eq!(one, [vec![false; BURST], vec![true; BURST]].concat());
    assert_eq!(details(&alone).await["rateLimits"], "redis");
    drop(alone);
    // Two instances on one Redis: refused at the same point.
    let shared = prefix();
    let a = TestApp::start_with(backend, limits(Some(redis), &shared)).await;
    let b = second(&a, backend, limits(Some(redis), &shared)).await;
    assert_eq!(refusals(&[&a, &b], BURST).await, one);
    // The same two without Redis: each has a burst of its own, so twice as many pass.
    let c = TestApp::start_with(backend, limits(None, "")).await;
    let d = second(&c, backend, limits(None, "")).await;
    assert_eq!(refusals(&[&c, &d], BURST).await, vec![false; 2 * BURST]);
    assert_eq!(details(&c).await["rateLimits"], "local");
    // Unauthenticated or not an admin: no details.
    let res = a
        .http
        .get(format!("{}/healthz/details", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
}

async fn with_redis_unreachable_each_instance_keeps_its_own_limits(backend: Backend) {
    // A "Redis" that takes connections and never answers: each check would wait forever.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("redis://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    // Nothing listens on port 1: every connection is refused at once.
    for url in ["redis://127.0.0.1:1", silent_url.as_str()] {
        let app = TestApp::start_with(backend, limits(Some(url), &prefix())).await;
        assert_eq!(details(&app).await["rateLimits"], "redis-untried", "{url}");
        let started = std::time::Instant::now();
        // Logins still work (no INTERNAL, no 500), limited by the instance's own buckets.
        let seen = refusals(&[&app], BURST).await;
        assert_eq!(
            seen,
            [vec![false; BURST], vec![true; BURST]].concat(),
            "{url}"
        );
        // One check waits out rate_limits.redis_timeout_ms (100 ms); the next ones do not ask
        // Redis for 5 s.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{url}: an unreachable Redis held requests up: {:?}",
            started.elapsed()
        );
        assert_eq!(
            details(&app).await["rateLimits"],
            "redis-unreachable",
            "{url}"
        );
        let text = scrape(&app).await;
        assert!(text.contains("# TYPE wechat_identity_rate_limit_redis_errors_total counter"));
    }
    held.abort();
}
