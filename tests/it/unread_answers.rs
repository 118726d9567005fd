//! Stories of clients that ask for answers and never read them: what one address leaves
//! unread is bounded (`limits.max_unsent_response_bytes_per_ip`), past it that address is
//! refused with the setting named, and everyone else is served.

use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpStream;

use crate::common::tcp::{connect_from, read_head, read_to_close, send};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(answers_left_unread_are_bounded_per_address);

/// The GraphiQL bundle the service serves: a 3.5 MB answer, more than the kernel's socket
/// buffers take off the service's hands for a client that reads nothing.
const BUNDLE: &str = "/graphiql/graphiql-3.8.3.min.js";
const BUNDLE_LEN: usize = 3_513_580;

/// Asks for `path` on a connection from `from` that reads little; returns it unread past the
/// answer's head, and the head.
async fn ask(base: &str, from: &str, request: &str) -> (TcpStream, String) {
    let mut stream = connect_from(base, from, Some(4096)).await;
    send(&mut stream, request.as_bytes()).await;
    let head = read_head(&mut stream).await;
    (stream, head)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

fn post_graphql(query: &str) -> String {
    let body = serde_json::json!({ "query": query }).to_string();
    format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn answers_left_unread_are_bounded_per_address(backend: Backend) {
    // Room for two bundles unread and 16 bytes more.
    let budget = 2 * BUNDLE_LEN + 16;
    let app = TestApp::start_with(backend, |c| {
        c.limits.max_unsent_response_bytes_per_ip = budget;
    })
    .await;
    // 127.0.0.2 asks for the bundle on several connections and reads none of it.
    let mut unread = Vec::new();
    for _ in 0..2 {
        let (stream, head) = ask(&app.base, "127.0.0.2", &get(BUNDLE)).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        unread.push(stream);
    }
    // The third would take it past its budget: 503, naming the setting.
    let (mut third, head) = ask(&app.base, "127.0.0.2", &get(BUNDLE)).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length");
    let mut text = vec![0u8; length];
    tokio::io::AsyncReadExt::read_exact(&mut third, &mut text)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("limits.max_unsent_response_bytes_per_ip"),
        "{text}"
    );
    // So is a small GraphQL answer to that address, as a GraphQL error.
    let (mut graphql, head) = ask(&app.base, "127.0.0.2", &post_graphql("{ __typename }")).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let body = read_to_close(&mut graphql, Duration::from_secs(10)).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error_code(&body), "UNAVAILABLE", "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("limits.max_unsent_response_bytes_per_ip"),
        "{message}"
    );
    // Another address is served in full meanwhile.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let res = other
        .get(format!("{}{BUNDLE}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().len(), BUNDLE_LEN);
    // Once its connections close, the address has its budget back.
    drop(unread);
    let mut stream = eventually(Duration::from_secs(10), "the budget came back", || async {
        let (stream, head) = ask(&app.base, "127.0.0.2", &post_graphql("{ __typename }")).await;
        if head.starts_with("HTTP/1.1 200") {
            Ok(stream)
        } else {
            Err(head)
        }
    })
    .await;
    let body = read_to_close(&mut stream, Duration::from_secs(10)).await;
    assert!(body.contains("\"Query\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_gives_its_budget_back() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.limits.max_unsent_response_bytes_per_ip = BUNDLE_LEN;
        c.limits.request_timeout_ms = 1000;
        c.graphql.execution_timeout_ms = 1000;
    })
    .await;
    let (mut stalled, head) = ask(&app.base, "127.0.0.4", &get(BUNDLE)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // No progress for limits.request_timeout_ms: the write fails and the connection closes,
    // without the client doing anything.
    eventually(
        Duration::from_secs(10),
        "the stalled answer gave its budget back",
        || async {
            let (_, head) = ask(&app.base, "127.0.0.4", &get("/healthz")).await;
            assert!(
                head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 503"),
                "{head}"
            );
            if head.starts_with("HTTP/1.1 200") {
                Ok(())
            } else {
                Err(head)
            }
        },
    )
    .await;
    let sent = read_to_close(&mut stalled, Duration::from_secs(10)).await;
    assert!(sent.len() < BUNDLE_LEN, "the stalled answer was cut off");
}
