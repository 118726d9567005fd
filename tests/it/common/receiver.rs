//! An event endpoint on loopback, as another team would run one: it keeps what it is sent
//! (headers and body) and answers 204, or 503 while it is "down".

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};

/// One POST the endpoint received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// The body, as sent.
    pub body: String,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// How the endpoint answers.
#[derive(Clone, Debug, Default)]
pub enum Answer {
    /// 204, and keeps what it got.
    #[default]
    Ok,
    /// 503.
    Down,
    /// 307 to this URL.
    Redirect(String),
    /// 204 after this many milliseconds, keeping nothing.
    Slow(u64),
    /// 503 for bodies containing this text, else 204.
    RefuseContaining(String),
}

#[derive(Default)]
struct Inner {
    answer: Answer,
    got: Vec<Received>,
    refused: usize,
}

/// The endpoint (see the module docs).
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens (`http://127.0.0.1:port/hooks`).
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = inner.clone();
        let route = axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let answer = state.lock().unwrap().answer.clone();
                match answer {
                    Answer::Ok => {}
                    Answer::RefuseContaining(text)
                        if body.windows(text.len()).any(|w| w == text.as_bytes()) =>
                    {
                        state.lock().unwrap().refused += 1;
                        return (StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new());
                    }
                    Answer::RefuseContaining(_) => {}
                    Answer::Down => {
                        state.lock().unwrap().refused += 1;
                        return (StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new());
                    }
                    Answer::Redirect(to) => {
                        let mut headers = HeaderMap::new();
                        headers.insert("location", to.parse().unwrap());
                        return (StatusCode::TEMPORARY_REDIRECT, headers);
                    }
                    // Too late to count: the sender has given up by then.
                    Answer::Slow(ms) => {
                        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                        return (StatusCode::NO_CONTENT, HeaderMap::new());
                    }
                }
                let mut inner = state.lock().unwrap();
                inner.got.push(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                });
                (StatusCode::NO_CONTENT, HeaderMap::new())
            }
        });
        let router = axum::Router::new().route("/hooks", route);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver { url, inner }
    }

    /// Answers 503 (`true`) or 204 from now on.
    pub fn set_down(&self, down: bool) {
        self.set_answer(if down { Answer::Down } else { Answer::Ok });
    }

    /// Answers so from now on.
    pub fn set_answer(&self, answer: Answer) {
        self.inner.lock().unwrap().answer = answer;
    }

    /// What it received and kept, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().got.clone()
    }

    /// How many POSTs it refused while down.
    pub fn refused(&self) -> usize {
        self.inner.lock().unwrap().refused
    }
}
