//! Stories of clients that hold the server's connections and memory with request heads: huge or
//! countless headers, headers that never end, and half-sent requests from several addresses
//! at once while someone else is trying to log in.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::common::tcp::{Service, connect_from, is_open, read_to_close, send};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    oversized_heads_get_431_and_big_bodies_and_answers_still_pass,
    half_sent_heads_from_five_addresses_leave_room_for_a_victim,
);

/// The GraphiQL bundle the service serves: a large answer.
const BUNDLE: &str = "/graphiql/graphiql-3.8.3.min.js";
const BUNDLE_LEN: usize = 3_513_580;

/// A request head with `count` headers of `size` bytes each, ended or not.
fn head(count: usize, size: usize, ended: bool) -> Vec<u8> {
    let mut text = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..count {
        text.push_str(&format!("x-pad-{i}: {}\r\n", "p".repeat(size)));
    }
    if ended {
        text.push_str("connection: close\r\n\r\n");
    }
    text.into_bytes()
}

async fn answer_to(app_base: &str, request: &[u8]) -> String {
    let mut stream = connect_from(app_base, "127.0.0.1", None).await;
    send(&mut stream, request).await;
    read_to_close(&mut stream, Duration::from_secs(10)).await
}

async fn oversized_heads_get_431_and_big_bodies_and_answers_still_pass(backend: Backend) {
    let app = TestApp::start(backend).await;
    // 50 headers of 8 KB (400 KB): refused once 16 KiB are read (limits.max_header_bytes).
    let answer = answer_to(&app.base, &head(50, 8000, true)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // 101 small headers: more than limits.max_headers.
    let answer = answer_to(&app.base, &head(101, 10, true)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // 60 headers of 200 bytes (12 KB) are within both.
    let answer = answer_to(&app.base, &head(60, 200, true)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // A body of almost limits.max_body_bytes still gets in...
    let padding = "x".repeat(63 * 1024);
    let body = app
        .gql_ok(None, &format!("{{ __typename }} # {padding}"), json!({}))
        .await;
    assert_eq!(body["__typename"], "Query", "{body:#}");
    // ...and a 3.5 MB answer still goes out whole.
    let res = app
        .http
        .get(format!("{}{BUNDLE}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().len(), BUNDLE_LEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_never_end_leave_the_service_rss_flat() {
    // The binary on its own, so its RSS is not every other test's.
    let service = Service::start("[limits]\nmax_connections_per_ip = 512\n").await;
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{}/healthz", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let before = service.rss();
    // 200 connections each sending 380 KB of headers that never end, and 200 more each
    // holding 15 KB of unfinished headers (within the limits), all held open.
    let mut huge = Vec::new();
    for i in 0..200 {
        let mut stream = connect_from(&service.base, "127.0.0.2", None).await;
        send(&mut stream, &head(1, 380_000 + i, false)).await;
        huge.push(stream);
    }
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..200 {
        let mut stream = connect_from(&service.base, "127.0.0.3", None).await;
        send(&mut stream, &head(15, 1000, false)).await;
        held.push(stream);
    }
    // Once the service has read (or refused) all they sent, its RSS has barely moved.
    eventually(
        Duration::from_secs(10),
        "the service read the headers",
        || async { service.unread_from("127.0.0.2") + service.unread_from("127.0.0.3") == 0 },
    )
    .await;
    let res = http
        .get(format!("{}/healthz", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "and it still answers");
    let grown = service.rss().saturating_sub(before);
    eprintln!(
        "RSS {} MB before, grown by {} MB",
        before >> 20,
        grown >> 20
    );
    // Without the cap each of the first 200 holds ~400 KB (hyper's default buffer): 80 MB.
    assert!(grown < 64 << 20, "RSS grew by {} MB", grown >> 20);
    // The huge heads were answered 431 once 16 KiB were in (limits.max_header_bytes).
    let mut refused = 0;
    for stream in &mut huge {
        if read_to_close(stream, Duration::from_secs(20))
            .await
            .starts_with("HTTP/1.1 431")
        {
            refused += 1;
        }
    }
    eprintln!("{refused} of 200 answered 431");
    // The 431 may be lost to the reset of a socket closed with unread bytes; most arrive.
    assert!(refused >= 100, "only {refused} of 200 answered 431");
    assert!(
        held.iter().all(is_open),
        "the unfinished heads are within the limits"
    );
}

async fn half_sent_heads_from_five_addresses_leave_room_for_a_victim(backend: Backend) {
    // The attack scaled down: 1,100 half-sent heads from 5 addresses against a cap of
    // 1,024 and 256 per address becomes 70 from 5 against 64 and 16 per address.
    let app = TestApp::start_with(backend, |c| {
        c.limits.max_connections = 64;
        c.limits.max_connections_per_ip = 16;
    })
    .await;
    let mut attack = Vec::new();
    for round in 0..14 {
        for attacker in 2..=6 {
            let mut stream = connect_from(&app.base, &format!("127.0.0.{attacker}"), None).await;
            send(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
            attack.push((round, stream));
        }
    }
    // The victim, from an address of its own, gets its answer at once. Target: 200 ms; asserted
    // with headroom for a loaded CI machine (1 s). Before the reserved share, the attack filled
    // the cap and the victim waited in the backlog until the attack's heads timed out
    // (limits.header_read_timeout_ms, 10 s).
    let victim = reqwest::Client::builder()
        .local_address("127.0.0.7".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let started = Instant::now();
    let res = victim
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), 200);
    eprintln!("the victim was answered in {took:?}");
    assert!(took < Duration::from_secs(1), "the victim waited {took:?}");
    let login: Value = victim
        .post(format!("{}/graphql", app.base))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["data"]["__typename"], "Query");
    // All the while the attack holds its connections: the addresses' first ones, up to the
    // share left to them (75% of 64, plus what addresses holding fewer than 8 take of the rest).
    let open = attack.iter().filter(|(_, s)| is_open(s)).count();
    assert!((48..64).contains(&open), "{open} attack connections open");
    let first_rounds_open = attack.iter().filter(|(r, s)| *r < 8 && is_open(s)).count();
    assert_eq!(first_rounds_open, 40, "each address's first 8 are admitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_cap_unfinished_heads_are_closed_sooner() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.limits.max_connections = 20;
        c.limits.max_connections_per_ip = 20;
        c.limits.reserved_connections_percent = 0;
        c.limits.header_read_timeout_ms = 30_000;
        c.limits.header_read_timeout_under_load_ms = 500;
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = connect_from(&app.base, "127.0.0.1", None).await;
        send(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        slow.push(stream);
    }
    // At the cap the header timeout is 500 ms instead of 30 s: the oldest unfinished heads
    // are closed until the server is no longer near its cap, and a newcomer waiting in the
    // backlog gets in. Bound: 10 s, a third of the 30 s it would otherwise wait.
    let started = Instant::now();
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    eprintln!("the newcomer got in after {:?}", started.elapsed());
    let closed = slow.iter().filter(|s| !is_open(s)).count();
    assert!((1..20).contains(&closed), "{closed} of 20 closed");
}
