//! The benchmarks, each a subcommand of the binary (`wechat-identity bench…`), and what they
//! share: a fresh database per backend, the service started in this process with the sandbox,
//! GraphQL calls over HTTP and the phase that times them.
//!
//! - [`login`]: `bench`, the login mutations;
//! - [`followers`]: `bench-followers`, follower syncs;
//! - [`follow`]: `bench-follow`, a follow event pushed to the webhook until its user exists;
//! - [`messages`]: `bench-messages`, sends and bulk sends;
//! - [`reads`]: `bench-reads`, the hot reads against PostGraphile and PostgreSQL alone.

pub mod events;
pub mod follow;
pub mod followers;
pub mod login;
pub mod messages;
pub mod reads;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, Secret};
use crate::metrics;
use crate::wechat::official_account::OauthScope;
use crate::wechat::sandbox::CodeRequest;

const MP_LOGIN: &str = "mutation($input: LoginWithMiniProgramInput!) { loginWithMiniProgram(input: $input) { accessToken refreshToken newUser user { id } } }";
pub(crate) const APP: &str = "wxsandboxminiapp01";
/// The sandbox's demo Official Account.
pub(crate) const OA: &str = "wxsandboxofficial1";
/// The admin API key the benches that call admin fields give the service.
pub(crate) const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";

/// The database a one-database bench runs on, and its pool.
#[derive(Debug, clap::Args)]
pub struct OneDatabase {
    /// `sqlite` (a temp file) or a PostgreSQL server URL (a fresh database is created on it).
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// Database pool size.
    #[arg(long, default_value_t = 16)]
    pub pool_size: usize,
}

/// Gives the service the bench's admin key ([`ADMIN_KEY`]).
pub(crate) fn add_admin_key(config: &mut Config) {
    config.api_keys.push(crate::config::ApiKeyConfig {
        name: "bench".into(),
        role: crate::config::ApiKeyRole::Admin,
        key: Secret::new(ADMIN_KEY),
    });
}

/// Sends `request` and reads its answer as JSON.
pub(crate) async fn send_json(
    request: reqwest::RequestBuilder,
) -> Result<serde_json::Value, String> {
    request
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// A prepared login request: the GraphQL body and the field that holds the payload.
pub(crate) struct Login {
    body: serde_json::Value,
    field: &'static str,
    /// A user's access token sent as `Authorization: Bearer …` (none for a login).
    bearer: Option<String>,
    /// What `data.{field}` must hold as a string for the call to count as answered.
    expect: &'static str,
}

impl Login {
    /// A prepared call of `query` (a mutation or query without variables) as the user holding
    /// `access_token`; answered when `data.{field}.{expect}` is a string.
    pub(crate) fn as_user(
        query: &str,
        field: &'static str,
        expect: &'static str,
        access_token: String,
    ) -> Self {
        Self {
            body: serde_json::json!({ "query": query }),
            field,
            bearer: Some(access_token),
            expect,
        }
    }
}

/// A Mini Program login with this code.
pub(crate) fn mp_login(code: String) -> Login {
    Login {
        body: serde_json::json!({ "query": MP_LOGIN, "variables": { "input": { "appId": APP, "code": code } } }),
        field: "loginWithMiniProgram",
        bearer: None,
        expect: "accessToken",
    }
}

/// Stops a benchmark's service and drops its database and temp dir.
pub(crate) async fn stop_service(
    running: crate::app::Running,
    stop: tokio::sync::oneshot::Sender<()>,
    server: &str,
    database: Option<String>,
    dir: &std::path::Path,
) -> Result<(), String> {
    let _ = stop.send(());
    let _ = running.handle.await;
    drop(running.app);
    if let Some(name) = database {
        pg_exec(
            server,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Logins run by concurrent clients, with their latencies and what they cost.
pub(crate) struct Phase {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
    wechat_calls: u64,
    transactions: u64,
}

impl Phase {
    pub(crate) async fn run(
        client: &reqwest::Client,
        endpoint: &str,
        logins: Vec<Login>,
        concurrency: usize,
    ) -> Phase {
        let calls_before = metrics::total("wechat_identity_wechat_calls_total", "");
        let tx_before = metrics::total("wechat_identity_db_transactions_total", "");
        let codes = Arc::new(logins);
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (client, endpoint, codes, next) = (
                client.clone(),
                endpoint.to_owned(),
                codes.clone(),
                next.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(login) = codes.get(i) else { break };
                    let t = Instant::now();
                    let mut request = client.post(&endpoint).json(&login.body);
                    if let Some(token) = &login.bearer {
                        request = request.bearer_auth(token);
                    }
                    let ok = match request.send().await {
                        Ok(r) => r.json::<serde_json::Value>().await.is_ok_and(|v| {
                            v.get("errors").is_none()
                                && v["data"][login.field][login.expect].is_string()
                        }),
                        Err(_) => false,
                    };
                    latencies.push(t.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::with_capacity(codes.len());
        let mut errors = 0;
        for w in workers {
            if let Ok((l, e)) = w.await {
                latencies.extend(l);
                errors += e;
            }
        }
        let elapsed = start.elapsed();
        latencies.sort();
        Phase {
            latencies,
            errors,
            elapsed,
            wechat_calls: metrics::total("wechat_identity_wechat_calls_total", "") - calls_before,
            transactions: metrics::total("wechat_identity_db_transactions_total", "") - tx_before,
        }
    }

    pub(crate) fn print(&self, backend: &str, name: &str) {
        let n = self.latencies.len().max(1);
        let pct = |p: f64| {
            let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
            self.latencies
                .get(i)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{backend:8} {name:17} {:6} calls {:5} errors in {:6.2}s: {:8.0} calls/s  p50 {:6.2} ms  p99 {:6.2} ms  per call: {:.2} WeChat calls, {:.2} DB transactions",
            self.latencies.len(),
            self.errors,
            self.elapsed.as_secs_f64(),
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            self.wechat_calls as f64 / n as f64,
            self.transactions as f64 / n as f64,
        );
    }
}

/// Starts the service in sandbox mode on `database_url` for a benchmark (one address sending
/// thousands of requests: no rate limits), as `tweak` adjusts it; returns it and its stop switch.
pub(crate) async fn start_service(
    dir: &std::path::Path,
    database_url: String,
    pool_size: usize,
    tweak: impl FnOnce(&mut Config),
) -> Result<(crate::app::Running, tokio::sync::oneshot::Sender<()>), String> {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        data_dir: dir.to_owned(),
        database_url: Some(Secret::new(database_url)),
        database_pool_size: pool_size,
        sandbox: Some(true),
        ..Config::default()
    };
    config.rate_limits.enabled = false;
    tweak(&mut config);
    config.finish().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = crate::app::start(config, async {
        let _ = stopped.await;
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok((running, stop))
}

/// How the figures name the backend of `database` (`sqlite` or a PostgreSQL URL).
pub(crate) fn backend_name(database: &str) -> &'static str {
    if database == "sqlite" {
        "sqlite"
    } else {
        "postgres"
    }
}

/// A fresh database for a benchmark: a SQLite file in `dir` (`database` = `sqlite`) or a new
/// database on the PostgreSQL server `database`; its URL, and the PostgreSQL database's name
/// to drop afterwards.
pub(crate) async fn fresh_database(
    dir: &std::path::Path,
    database: &str,
) -> Result<(String, Option<String>), String> {
    if database == "sqlite" {
        return Ok((format!("sqlite://{}", dir.join("bench.db").display()), None));
    }
    let name = format!("wi_bench_{}", uuid::Uuid::new_v4().simple());
    pg_exec(database, &format!("CREATE DATABASE {name}")).await?;
    let mut url = reqwest::Url::parse(database).map_err(|e| e.to_string())?;
    url.set_path(&name);
    Ok((url.to_string(), Some(name)))
}

/// A new directory under the system's temp dir for a benchmark's data dir (its SQLite file and
/// keys), made as the service makes its own: readable by this user only (0700), so the start-up
/// check of the data dir (`fs::open_to_others`) has nothing to warn about.
pub(crate) fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "wechat-identity-bench-{}",
        uuid::Uuid::new_v4().simple()
    ));
    crate::fs::create_private_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

pub(crate) async fn pg_exec(url: &str, sql: &str) -> Result<(), String> {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    let mut conn = crate::db::PgConn::establish(url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    conn.batch_execute(sql).await.map_err(|e| e.to_string())
}

/// Posts a GraphQL request (with `key` as the bearer, if any) and returns its `data`, or its
/// errors as the error.
pub(crate) async fn gql(
    client: &reqwest::Client,
    endpoint: &str,
    key: Option<&str>,
    query: &str,
    variables: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let mut request = client
        .post(endpoint)
        .json(&serde_json::json!({ "query": query, "variables": variables }));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let v = send_json(request).await?;
    match v.get("errors") {
        Some(e) => Err(e.to_string()),
        None => Ok(v["data"].clone()),
    }
}
