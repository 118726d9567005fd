//! Stories of a hostile client: oversized bodies, half-sent headers, aliased logins, floods,
//! a growing state table, and a shutdown that a trickling client cannot hold up.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    an_oversized_body_is_refused_with_413_and_changes_nothing,
    aliased_logins_are_refused_before_any_wechat_call,
    a_burst_from_one_address_passes_a_flood_is_refused_and_recovers,
    the_state_table_stays_bounded_under_a_flood_and_expired_rows_go,
    forwarded_addresses_count_only_through_trusted_proxies,
    the_server_driven_callback_is_rate_limited_like_a_login,
);

async fn an_oversized_body_is_refused_with_413_and_changes_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = app.written().await;
    let code = app.code(MP_A, "alice").await;
    let padding = "x".repeat(70 * 1024);
    let query = format!(
        "mutation {{ loginWithMiniProgram(input: {{appId: \"{MP_A}\", code: \"{code}\"}}) {{ newUser }} }} # {padding}"
    );
    let res = app
        .http
        .post(format!("{}/graphql", app.base))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("limits.max_body_bytes"), "{message}");
    // A body without a length (chunked) is cut off at the limit all the same.
    let mut chunked = half_sent(
        &app.base,
        "POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )
    .await;
    let chunk = format!("400\r\n{}\r\n", "y".repeat(1024));
    for _ in 0..70 {
        if chunked.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server already answered and closed
        }
    }
    let answer = read_to_close(&mut chunked, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Multipart (file uploads) is not something this API takes.
    let res = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x--")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    // Other routes refuse a body declared too large, naming the limit too.
    let res = app
        .http
        .post(format!("{}/sandbox/wechat/codes", app.base))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"appId\": \"{MP_A}\", \"user\": \"{padding}\"}}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert!(res.text().await.unwrap().contains("limits.max_body_bytes"));
    assert_eq!(app.written().await, before);
    // The code was never spent: WeChat was not called.
    assert!(app.login_mp_code(MP_A, &code).await.get("errors").is_none());
}

async fn aliased_logins_are_refused_before_any_wechat_call(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = app.written().await;
    let a = app.code(MP_A, "alice").await;
    let b = app.code(MP_A, "bob").await;
    let query = format!(
        "mutation {{ a: loginWithMiniProgram(input: {{appId: \"{MP_A}\", code: \"{a}\"}}) {{ newUser }}
                     b: loginWithMiniProgram(input: {{appId: \"{MP_A}\", code: \"{b}\"}}) {{ newUser }} }}"
    );
    let body = app.gql(None, &query, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body.get("data").is_none_or(Value::is_null), "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("limits.logins_per_request"), "{message}");
    assert_eq!(app.written().await, before);
    // Nor when the aliases hide ten fragments deep.
    let open = "... on Mutation { ".repeat(10);
    let close = "} ".repeat(10);
    let query = format!(
        "mutation {{ {open} a: loginWithMiniProgram(input: {{appId: \"{MP_A}\", code: \"{a}\"}}) {{ newUser }}
                     b: loginWithMiniProgram(input: {{appId: \"{MP_A}\", code: \"{b}\"}}) {{ newUser }} {close} }}"
    );
    let body = app.gql(None, &query, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert_eq!(app.written().await, before);
    // Neither code reached WeChat: both still log in.
    assert!(app.login_mp_code(MP_A, &a).await.get("errors").is_none());
    assert!(app.login_mp_code(MP_A, &b).await.get("errors").is_none());

    // Six authorize URLs in one request store no state at all.
    let states = app.count("oauth_states").await;
    let fields: String = (0..6)
        .map(|i| format!("u{i}: officialAccountAuthorizeUrl(appId: \"{OA}\", redirectUri: \"https://h5.example.com/\") "))
        .collect();
    let body = app.gql(None, &format!("{{ {fields} }}"), json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("limits.states_per_request")
    );
    assert_eq!(app.count("oauth_states").await, states);
}

async fn login_many(
    app: &TestApp,
    users: std::ops::Range<usize>,
    concurrency: usize,
) -> Vec<Value> {
    let mut codes = Vec::new();
    for i in users {
        codes.push(app.code(MP_A, &format!("crowd-{i}")).await);
    }
    let mut out = Vec::new();
    for batch in codes.chunks(concurrency) {
        let logins = batch.iter().map(|code| app.login_mp_code(MP_A, code));
        out.extend(futures_util::future::join_all(logins).await);
    }
    out
}

async fn a_burst_from_one_address_passes_a_flood_is_refused_and_recovers(backend: Backend) {
    // The default limits: a carrier NAT's 100 logins in 10 s, 50 at once, all get in.
    let app = TestApp::start(backend).await;
    let burst = login_many(&app, 0..100, 50).await;
    for body in &burst {
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    // A flood right after: refused with RATE_LIMITED and a retry time, before WeChat is asked.
    let flood = login_many(&app, 100..400, 100).await;
    let refused: Vec<&Value> = flood.iter().filter(|b| b.get("errors").is_some()).collect();
    assert!(refused.len() > 150, "only {} of 300 refused", refused.len());
    for body in &refused {
        assert_eq!(error_code(body), "RATE_LIMITED", "{body:#}");
        let retry = body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("rate_limits.login.per_ip")
        );
    }
    // The address is let in again once it waits as told.
    let retry = refused[0]["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let again = login_many(&app, 400..401, 1).await;
    assert!(again[0].get("errors").is_none(), "{:#}", again[0]);

    // The server-driven flow's /authorize answers 429 with Retry-After once flooded.
    let url = format!(
        "{}/auth/official-account/{OA}/authorize?scope=snsapi_base&returnTo={}/sandbox/login-demo",
        app.base, app.base
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..300 {
        let res = no_redirects.get(&url).send().await.unwrap();
        if res.status() == 429 {
            let retry: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            statuses.push(429);
            break;
        }
        assert_eq!(res.status(), 302);
        statuses.push(302);
    }
    assert_eq!(statuses.last(), Some(&429), "never limited");
}

async fn the_state_table_stays_bounded_under_a_flood_and_expired_rows_go(backend: Backend) {
    let app = TestApp::start_driven(backend, |c| {
        c.rate_limits.enabled = false;
        c.limits.max_live_states_per_app = 40;
    })
    .await;
    let fields: String = (0..5)
        .map(|i| format!("u{i}: officialAccountAuthorizeUrl(appId: \"{OA}\", redirectUri: \"https://h5.example.com/\") "))
        .collect();
    let query = format!("{{ {fields} }}");
    for _ in 0..40 {
        app.gql_ok(None, &query, json!({})).await;
    }
    // 200 states asked for, 40 kept; the next one replaces the oldest.
    assert_eq!(app.count("oauth_states").await, 40);
    let (_, newest) = app.authorize_url(OA, "SNSAPI_BASE").await;
    assert_eq!(app.count("oauth_states").await, 40);
    let code = app.oa_code("alice", "snsapi_base").await;
    let body = app.login_oa_code(OA, &code, &newest).await;
    assert!(
        body.get("errors").is_none(),
        "the newest state works: {body:#}"
    );
    // Expired states are purged by the purge job, at its next period.
    app.run_jobs().await;
    assert!(app.count("oauth_states").await > 0);
    app.exec("UPDATE oauth_states SET expires_at = '2000-01-01 00:00:00'")
        .await;
    app.run_jobs_after_waits().await;
    assert_eq!(
        app.count("oauth_states").await,
        0,
        "expired states were not purged"
    );
}

/// `officialAccountAuthorizeUrl` as sent by `forwarded_for` through the proxy at 127.0.0.1.
async fn authorize_via(app: &TestApp, forwarded_for: &str) -> Value {
    let query = format!(
        "{{ officialAccountAuthorizeUrl(appId: \"{OA}\", redirectUri: \"https://h5.example.com/\") }}"
    );
    app.http
        .post(format!("{}/graphql", app.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn forwarded_addresses_count_only_through_trusted_proxies(backend: Backend) {
    let strict = |c: &mut wechat_identity::config::Config| {
        c.rate_limits.authorize.per_ip = wechat_identity::config::Bucket {
            burst: 3,
            per_second: 0.01,
        };
    };
    // Behind our proxy: each client address has a bucket of its own.
    let app = TestApp::start_with(backend, |c| {
        strict(c);
        c.limits.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    for _ in 0..3 {
        let body = authorize_via(&app, "203.0.113.1").await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let body = authorize_via(&app, "203.0.113.1").await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("rate_limits.authorize.per_ip")
    );
    let body = authorize_via(&app, "198.51.100.7, 203.0.113.2").await;
    assert!(body.get("errors").is_none(), "another client: {body:#}");
    // Straight from the internet the header is the caller's own claim: changing it evades
    // nothing.
    let app = TestApp::start_with(backend, strict).await;
    for i in 0..3 {
        let body = authorize_via(&app, &format!("203.0.113.{i}")).await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let body = authorize_via(&app, "203.0.113.99").await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
}

async fn the_server_driven_callback_is_rate_limited_like_a_login(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.rate_limits.login.per_ip = wechat_identity::config::Bucket {
            burst: 2,
            per_second: 0.01,
        };
    })
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects
        .get(format!(
            "{}/auth/official-account/{OA}/authorize?scope=snsapi_base&returnTo={}/sandbox/login-demo",
            app.base, app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let location = reqwest::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let state = location
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // Replaying one state with made-up codes: each try costs WeChat a call, until the limit.
    let callback = |i: usize| {
        no_redirects
            .get(format!(
                "{}/auth/official-account/{OA}/callback?code=bogus{i}&state={state}",
                app.base
            ))
            .header("cookie", &cookie)
            .send()
    };
    for i in 0..2 {
        let res = callback(i).await.unwrap();
        assert_eq!(res.status(), 302);
        let to = res.headers()["location"].to_str().unwrap();
        assert!(to.contains("error=WECHAT_CODE_INVALID"), "{to}");
    }
    let res = callback(2).await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let app = TestApp::start_with(Backend::Sqlite, |c| c.limits.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(half_sent(&app.base, "GET /healthz HTTP/1.1\r\nHost: x\r\n").await);
    }
    // The fourth from the same address is closed at once, without an answer.
    let mut fourth = half_sent(&app.base, "").await;
    assert_eq!(read_to_close(&mut fourth, Duration::from_secs(2)).await, "");
    drop(held);
    let url = format!("{}/healthz", app.base);
    let slots_back = || async {
        match app.http.get(&url).send().await {
            Ok(res) if res.status() == 200 => Ok(()),
            other => Err(other.map(|res| res.status())),
        }
    };
    // The service sees the closes a moment later.
    eventually(Duration::from_secs(10), "slots came back", slots_back).await;
}

/// A raw connection that sends part of a request and then nothing.
async fn half_sent(base: &str, text: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(text.as_bytes()).await.unwrap();
    stream
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut out))
        .await
        .expect("the server closed the connection in time")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_header_is_cut_off_and_the_service_keeps_answering() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.limits.header_read_timeout_ms = 1000;
        c.limits.max_connections = 40;
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..30 {
        slow.push(half_sent(&app.base, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await);
    }
    // Others (another address: this one holds more than its share near the cap) are served
    // meanwhile.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let res = other
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "others are served meanwhile");
    let started = Instant::now();
    for stream in &mut slow {
        read_to_close(stream, Duration::from_secs(5)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not closed before the timeout"
    );
    // A connection that sends nothing at all is closed too.
    let mut silent = half_sent(&app.base, "").await;
    read_to_close(&mut silent, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_trickling_its_body_is_cut_off_by_the_request_timeout() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.limits.request_timeout_ms = 1000;
        c.graphql.execution_timeout_ms = 1000;
    })
    .await;
    let mut stream = half_sent(
        &app.base,
        "POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"qu",
    )
    .await;
    let answer = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("limits.request_timeout_ms"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_and_closes_the_rest_within_its_deadline() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut app = TestApp::start_with_shutdown(
        Backend::Sqlite,
        |c| {
            c.limits.shutdown_grace_ms = 1500;
            c.limits.request_timeout_ms = 60_000;
        },
        async {
            let _ = stopped.await;
        },
    )
    .await;
    // A client trickling a body forever, and a login that WeChat answers slowly.
    let mut trickler = half_sent(
        &app.base,
        "POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
    )
    .await;
    app.fault(json!({ "path": "/sns/jscode2session", "delayMs": 700 }))
        .await;
    let code = app.code(MP_A, "alice").await;
    let login = {
        let http = app.http.clone();
        let url = format!("{}/graphql", app.base);
        let query = format!(
            "mutation {{ loginWithMiniProgram(input: {{appId: \"{MP_A}\", code: \"{code}\"}}) {{ user {{ id }} }} }}"
        );
        tokio::spawn(async move {
            http.post(url)
                .json(&json!({ "query": query }))
                .send()
                .await?
                .json::<Value>()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    let login = login
        .await
        .unwrap()
        .expect("the login in flight gets its answer");
    assert!(login.get("errors").is_none(), "{login:#}");
    tokio::time::timeout(Duration::from_secs(5), &mut app.running.handle)
        .await
        .expect("the server stopped within its deadline")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "the trickler got its grace"
    );
    read_to_close(&mut trickler, Duration::from_secs(1)).await;
}
