//! The soak's HTTP side: every call to an instance goes through [`Client`], which counts it,
//! bounds it (a client timeout, the run's request cap) and sorts its failure into what the
//! report tells apart: the instance was down (killed), WeChat failed (the injected faults), the
//! service failed (an HTTP 5xx, or a GraphQL error that would be one on a route: INTERNAL,
//! UNAVAILABLE, TIMEOUT), or the service refused for another reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use super::fleet::{Fleet, Instance};

/// How long any one HTTP call may take before the soak gives up on it (a service that takes
/// longer is failing: its own GraphQL limit is 10 s).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Error codes WeChat's failures map to: the answers the injected faults legitimately produce.
const WECHAT_CODES: [&str; 2] = ["WECHAT_UNAVAILABLE", "WECHAT_RATE_LIMITED"];
/// Codes that are the service failing (each an HTTP 5xx on a route).
const SERVER_CODES: [&str; 3] = ["INTERNAL", "UNAVAILABLE", "TIMEOUT"];

/// Why a step failed.
#[derive(Clone, Debug)]
pub(crate) enum Fail {
    /// The instance was killed (before or during the call).
    Down,
    /// WeChat failed (a code of [`WECHAT_CODES`]).
    Wechat(String),
    /// The service failed: an HTTP 5xx, a code of [`SERVER_CODES`], a transport error or a
    /// timeout on a live instance.
    Server(String),
    /// Another refusal (its code).
    Other(String),
}

/// How one kind of operation went.
#[derive(Default)]
pub(crate) struct OpStats {
    /// Latencies of the successful ones, in microseconds.
    pub latencies: Vec<u64>,
    pub wechat: u64,
    pub down: u64,
    pub server: u64,
    /// Refusals the operation expects now and then (see `ops`), by code.
    pub refused: BTreeMap<String, u64>,
    /// Other failures, by code.
    pub other: BTreeMap<String, u64>,
    /// The service failures, by what they were.
    pub server_kinds: BTreeMap<String, u64>,
    /// The WeChat failures, by code.
    pub wechat_kinds: BTreeMap<String, u64>,
}

/// The soak's client of the instances.
pub(crate) struct Client {
    pub fleet: Arc<Fleet>,
    http: reqwest::Client,
    next: AtomicU64,
    /// HTTP calls made (instances and the sandbox's pages).
    pub requests: AtomicU64,
    pub max_requests: u64,
    /// HTTP answers of 500 and more, and those a WeChat failure explains (an OA callback that
    /// answers 502/503 because the code exchange failed).
    pub http_5xx: AtomicU64,
    pub http_5xx_wechat: AtomicU64,
    pub stats: Mutex<BTreeMap<&'static str, OpStats>>,
}

impl Client {
    pub fn new(fleet: Arc<Fleet>, max_requests: u64) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            // Below the instances' idle keep-alive limit (limits.header_read_timeout_ms, 10 s),
            // as a load balancer's must be: else a request can go out on a connection the
            // instance is closing at that moment ("error sending request"; seen in a soak).
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            fleet,
            http,
            next: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            max_requests,
            http_5xx: AtomicU64::new(0),
            http_5xx_wechat: AtomicU64::new(0),
            stats: Mutex::new(BTreeMap::new()),
        })
    }

    /// The next instance, round-robin over all of them (a killed one included: its calls count
    /// as "instance down").
    pub fn pick(&self) -> &Instance {
        let n = self.fleet.instances.len() as u64;
        &self.fleet.instances[(self.next.fetch_add(1, Ordering::Relaxed) % n) as usize]
    }

    /// Whether the request cap is reached.
    pub fn capped(&self) -> bool {
        self.requests.load(Ordering::Relaxed) >= self.max_requests
    }

    /// Records how an operation went.
    pub fn record(&self, op: &'static str, took: Duration, result: &Result<(), Fail>) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let s = stats.entry(op).or_default();
        match result {
            Ok(()) => s.latencies.push(took.as_micros() as u64),
            Err(Fail::Down) => s.down += 1,
            Err(Fail::Wechat(code)) => {
                s.wechat += 1;
                *s.wechat_kinds.entry(code.clone()).or_default() += 1;
            }
            Err(Fail::Server(what)) => {
                s.server += 1;
                *s.server_kinds.entry(what.clone()).or_default() += 1;
            }
            Err(Fail::Other(code)) => *s.other.entry(code.clone()).or_default() += 1,
        }
    }

    /// Records an expected refusal of `op` (not a failure).
    pub fn record_refused(&self, op: &'static str, code: &str) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let s = stats.entry(op).or_default();
        *s.refused.entry(code.to_owned()).or_default() += 1;
    }

    /// A transport failure on `instance`: down if it was killed since `generation`.
    fn transport(&self, instance: &Instance, generation: u64, e: reqwest::Error) -> Fail {
        if instance.is_down() || instance.generation() != generation {
            Fail::Down
        } else if e.is_timeout() {
            Fail::Server(format!("client timeout ({}s)", CALL_TIMEOUT.as_secs()))
        } else {
            Fail::Server(format!("transport: {}", e.without_url()))
        }
    }

    /// A GraphQL call on `instance` as `bearer`; `data.{field}` (non-null) or why not.
    pub async fn gql(
        &self,
        instance: &Instance,
        bearer: Option<&str>,
        query: &str,
        variables: Value,
        field: &str,
    ) -> Result<Value, Fail> {
        let generation = instance.generation();
        if instance.is_down() {
            self.requests.fetch_add(1, Ordering::Relaxed);
            return Err(Fail::Down);
        }
        let mut request = self
            .http
            .post(format!("{}/graphql", instance.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        instance.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .send()
            .await
            .map_err(|e| self.transport(instance, generation, e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport(instance, generation, e))?;
        if status.is_server_error() {
            self.http_5xx.fetch_add(1, Ordering::Relaxed);
            return Err(Fail::Server(format!("HTTP {}", status.as_u16())));
        }
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|_| Fail::Server(format!("HTTP {} with no JSON", status.as_u16())))?;
        if let Some(error) = answer["errors"].get(0) {
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or("NO_CODE")
                .to_owned();
            return Err(classify(code));
        }
        match &answer["data"][field] {
            Value::Null => Err(Fail::Other(format!("{field} null"))),
            v => Ok(v.clone()),
        }
    }

    /// A GET of `url` on `instance` (or on the sandbox when `instance` is None) with `cookie`;
    /// the redirect's `Location` and the cookie it set (`name=value`).
    pub async fn get_redirect(
        &self,
        instance: Option<&Instance>,
        url: &str,
        cookie: Option<&str>,
    ) -> Result<(String, Option<String>), Fail> {
        let generation = instance.map(Instance::generation);
        if instance.is_some_and(Instance::is_down) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            return Err(Fail::Down);
        }
        let mut request = self.http.get(url);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = instance {
            i.requests.fetch_add(1, Ordering::Relaxed);
        }
        let response = request.send().await.map_err(|e| match instance {
            Some(i) => self.transport(i, generation.unwrap_or(0), e),
            None => Fail::Server(format!("sandbox: {}", e.without_url())),
        })?;
        let status = response.status();
        if status.is_server_error() {
            self.http_5xx.fetch_add(1, Ordering::Relaxed);
            // The OA callback answers a failed code exchange with WeChat's status (502, 503)
            // when it cannot send the browser back: that is the injected fault's answer.
            if matches!(status.as_u16(), 502 | 503) && url.contains("/callback?") {
                self.http_5xx_wechat.fetch_add(1, Ordering::Relaxed);
                return Err(Fail::Wechat(format!("HTTP {}", status.as_u16())));
            }
            return Err(Fail::Server(format!("HTTP {}", status.as_u16())));
        }
        if status.as_u16() != 302 {
            return Err(Fail::Other(format!(
                "HTTP {} (no redirect)",
                status.as_u16()
            )));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Fail::Other("a redirect without Location".into()))?
            .to_owned();
        let set = response
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        Ok((location, set))
    }

    /// POSTs a webhook push to `instance`; its status and body.
    pub async fn push(
        &self,
        instance: &Instance,
        path_and_query: &str,
        body: String,
    ) -> Result<String, Fail> {
        let generation = instance.generation();
        if instance.is_down() {
            self.requests.fetch_add(1, Ordering::Relaxed);
            return Err(Fail::Down);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        instance.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .post(format!("{}{path_and_query}", instance.base))
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(instance, generation, e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| self.transport(instance, generation, e))?;
        if status.is_server_error() {
            self.http_5xx.fetch_add(1, Ordering::Relaxed);
            return Err(Fail::Server(format!("HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            return Err(Fail::Other(format!("HTTP {}", status.as_u16())));
        }
        Ok(text)
    }

    /// POSTs JSON to one of the sandbox's control endpoints (not counted as a request to the
    /// service, but against the cap).
    pub async fn sandbox_post(&self, url: &str, body: Value) -> Result<Value, Fail> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Fail::Server(format!("sandbox: {}", e.without_url())))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(Fail::Other(format!("sandbox HTTP {status}: {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The failure an error code means.
fn classify(code: String) -> Fail {
    if WECHAT_CODES.contains(&code.as_str()) {
        Fail::Wechat(code)
    } else if SERVER_CODES.contains(&code.as_str()) {
        Fail::Server(code)
    } else {
        Fail::Other(code)
    }
}

/// Runs an operation and records it under `op`; refusals in `expected` are recorded as such.
pub(crate) async fn timed<F>(client: &Client, op: &'static str, expected: &[&str], f: F)
where
    F: std::future::Future<Output = Result<(), Fail>>,
{
    let start = Instant::now();
    let result = f.await;
    if let Err(Fail::Other(code)) = &result
        && expected.contains(&code.as_str())
    {
        client.record_refused(op, code);
        return;
    }
    client.record(op, start.elapsed(), &result);
}
