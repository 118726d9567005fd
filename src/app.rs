//! The application: builds every part from the configuration and starts the server, the job
//! runner (leased through the database: the purge of expired states and tickets, and the jobs
//! to come) and this process's own chore (forgetting idle rate-limit buckets).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::auth::jwt::KeySet;
use crate::auth::keys::KeyStore;
use crate::auth::{ApiKeys, TokenIssuer};
use crate::config::{Config, ConfigError, JwtAlgorithm};
use crate::crypto::{self, SecretBox, Signer};
use crate::db::{Db, DbError};
use crate::graphql::published::Published;
use crate::http::{self, HttpState};
use crate::identity::{Identity, Setup};
use crate::jobs::{BulkMessages, EventDelivery, FollowerSync, PurgeExpired, Runner, WebhookEvents};
use crate::wechat::sandbox::{self, Sandbox};
use crate::wechat::{WechatClient, WechatClock};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Key material could not be loaded or created.
    #[error("{0}")]
    Keys(String),
    /// Sandbox mode's demo data could not be stored.
    #[error("sandbox setup: {0}")]
    Sandbox(String),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Every part of a running service.
#[derive(Clone)]
pub struct App {
    /// The identity service (config, db, WeChat client, token issuer).
    pub identity: Identity,
    /// The in-process sandbox, in sandbox mode.
    pub sandbox: Option<Sandbox>,
    /// The job runner (started by [`start`]), with this app's jobs registered.
    pub jobs: Runner,
    /// The SDL gateways are shown (`federation.expose`).
    pub published: Arc<Published>,
}

impl App {
    /// Builds the service. `config.wechat.api_base_url` must already point where the client
    /// should go (the in-process sandbox in sandbox mode).
    pub async fn build(config: Config) -> Result<Self, StartError> {
        crate::fs::create_private_dir(&config.data_dir).map_err(|e| {
            StartError::Keys(format!(
                "cannot create the data dir {}: {e}",
                config.data_dir.display()
            ))
        })?;
        if crate::fs::open_to_others(&config.data_dir) {
            tracing::warn!(
                dir = %config.data_dir.display(),
                "the data dir holds keys and personal data but other users may read it; `chmod 700` it"
            );
        }
        let db = Db::connect(&config.database_url(), config.database_pool_size)
            .await?
            .with_pool_wait(Duration::from_millis(config.limits.pool_wait_ms));
        let master = load_master_key(&config)?;
        let (tokens, key_store) = token_issuer(&config, &db, &master).await?;
        let sealer = SecretBox::new(&master);
        let token_sealer = SecretBox::new(&crypto::derive_key(&master, "wechat-access-token"));
        let state_signer = Signer::new(&crypto::derive_key(&master, "oauth-state"));
        let wechat = WechatClient::new(
            &config.wechat.api_base_url,
            Duration::from_millis(config.wechat.timeout_ms),
        )
        .observed_by(crate::metrics::wechat_call);
        crate::metrics::install();
        let sandbox = config.sandbox_enabled().then(|| Sandbox::new(&config.apps));
        let wechat_clock = sandbox
            .as_ref()
            .map(WechatClock::of_sandbox)
            .unwrap_or_default();
        let api_keys = ApiKeys::from_config(&config.api_keys);
        let purge_every = Duration::from_secs(config.limits.purge_interval_secs);
        let delivery_every = Duration::from_millis(config.events.poll_ms);
        let jobs = Runner::new(db.clone(), &config.jobs)
            .shutdown_grace(Duration::from_millis(config.limits.shutdown_grace_ms));
        let identity = Identity::new(Setup {
            config,
            db,
            wechat,
            tokens,
            key_store,
            sealer,
            token_sealer,
            wechat_clock,
            state_signer,
            api_keys,
        });
        let published = crate::graphql::published(&identity.config().federation.expose)
            .map(Arc::new)
            .map_err(|e| crate::config::invalid("federation.expose", e))?;
        let jobs = jobs
            .periodic(PurgeExpired::new(identity.system()), purge_every)
            .periodic(EventDelivery::new(identity.system()), delivery_every)
            .register(FollowerSync::new(identity.system()))
            .register(WebhookEvents::new(identity.system()))
            .register(BulkMessages::new(identity.system()));
        if sandbox.is_some() {
            identity
                .system()
                .register_sandbox_templates()
                .await
                .map_err(|e| StartError::Sandbox(e.to_string()))?;
        }
        Ok(Self {
            identity,
            sandbox,
            jobs,
            published,
        })
    }

    /// The HTTP router for this app.
    pub fn router(&self) -> axum::Router {
        let state = HttpState {
            schema: crate::graphql::schema(&self.identity.config().graphql),
            identity: self.identity.clone(),
            trusted_proxies: Arc::new(self.identity.config().limits.trusted_proxy_nets()),
            persisted: http::PersistedQueries::new(&self.identity.config().graphql).map(Arc::new),
            documents: Arc::new(http::Documents::new(&self.identity.config().graphql)),
            published: self.published.clone(),
        };
        http::router(state, self.sandbox.as_ref())
    }
}

/// A service listening on a port.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The app.
    pub app: App,
    /// Resolves when the server and the job runner have stopped (aborting it stops both).
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Who runs the queued jobs of a [`start`]ed service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobRunner {
    /// The job runner, in the background until shutdown (the service).
    Background,
    /// Nobody unless the caller does, with [`Runner::run_pending`] on [`App::jobs`] (the tests:
    /// a test runs the jobs it waits for, at once and to their end).
    Caller,
}

/// Binds `config.listen`, points the WeChat client at the in-process sandbox in sandbox mode,
/// builds the app and serves it until `shutdown` resolves, with the job runner.
pub async fn start(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    start_with(config, shutdown, JobRunner::Background).await
}

/// [`start`], with the queued jobs run by `jobs`.
pub async fn start_with(
    mut config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    jobs: JobRunner,
) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let unfit = config.startup_warnings(addr);
    for warning in &unfit {
        tracing::warn!(strict = config.strict, "START-UP CHECK: {warning}");
    }
    if config.strict && !unfit.is_empty() {
        return Err(StartError::Config(crate::config::invalid(
            "strict",
            format!("refusing to start (strict = true): {}", unfit.join("; ")),
        )));
    }
    if config.public_url.is_none() {
        if config.jwt.issuer.is_none() && !config.sandbox_enabled() {
            // No address for the world: the listen address is no issuer (instances behind one
            // balancer differ in it). Tokens keep the issuer they always had.
            config.jwt.issuer = Some(crate::auth::jwt::LEGACY_ISSUER.into());
            tracing::warn!(
                "public_url is not set: access tokens keep the issuer \"wechat-identity\", and \
                 /.well-known/openid-configuration names this instance's own address; set \
                 public_url (or jwt.issuer) to the URL other services reach"
            );
        }
        config.public_url = Some(format!("http://{host}"));
    }
    if config.sandbox_enabled() {
        config.wechat.api_base_url = format!("http://{host}{}", sandbox::MOUNT);
        config.wechat.open_base_url = format!("http://{host}{}", sandbox::MOUNT);
        // The sandbox's own demo page may receive server-driven OA logins (that page only: the
        // sandbox's WeChat page redirects anywhere, as WeChat's does within its domains).
        let own = format!("{}/sandbox/login-demo", config.public_url());
        if !config.official_account_login.return_to.contains(&own) {
            config.official_account_login.return_to.push(own);
        }
        // Its pages may call the JS-SDK of the Official Accounts the sandbox plays WeChat for.
        add_own_js_sdk_domain(&mut config);
    }
    let app = App::build(config).await?;
    if let Some(sandbox) = &app.sandbox {
        sandbox.set_push_target(&format!("http://{host}"));
    }
    let router = app.router();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let limits = app.identity.config().limits.clone();
    // Forgets idle rate-limit buckets; reads the signing keys again, so that a key rotated on
    // another instance signs here too.
    let system = app.identity.system();
    let period = Duration::from_secs(limits.purge_interval_secs);
    tokio::spawn(every(period, stopped.clone(), move || {
        system.forget_idle_limits();
        std::future::ready(())
    }));
    let system = app.identity.system();
    let period = Duration::from_secs(app.identity.config().jwt.key_reload_secs);
    tokio::spawn(every(period, stopped.clone(), move || {
        let system = system.clone();
        async move {
            if let Err(e) = system.reload_signing_keys().await {
                tracing::warn!(error = %e, "reading the signing keys failed");
            }
        }
    }));
    let runner = (jobs == JobRunner::Background).then(|| app.jobs.clone().run(stopped.clone()));
    let handle = tokio::spawn(async move {
        let mut stopped = stopped;
        let serve = http::serve(listener, router, &limits, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let runner = async move {
            if let Some(runner) = runner {
                runner.await;
            }
        };
        // Both stop on the signal (serve returns only then); the runner lets running jobs
        // finish within the same grace as requests.
        let (served, ()) = tokio::join!(serve, runner);
        served
    });
    Ok(Running { addr, app, handle })
}

/// The access-token issuer: HS256 with the configured secret, or EdDSA with the keys in the
/// database (a key file from before is imported; the first key made), and the key store.
async fn token_issuer(
    config: &Config,
    db: &Db,
    master: &[u8; 32],
) -> Result<(TokenIssuer, Option<KeyStore>), StartError> {
    let jwt = &config.jwt;
    let app_kinds = config
        .apps
        .iter()
        .map(|a| (a.app_id.as_str().to_owned(), a.kind))
        .collect();
    let (keys, store) = match (jwt.algorithm, &jwt.hs256_secret) {
        (JwtAlgorithm::HS256, Some(secret)) => (KeySet::hs256(secret.expose().as_bytes()), None),
        (JwtAlgorithm::HS256, None) => {
            return Err(crate::config::invalid("jwt.hs256_secret", "missing").into());
        }
        (JwtAlgorithm::EdDSA, _) => {
            let store = KeyStore::new(SecretBox::new(&crypto::derive_key(
                master,
                "jwt-signing-key",
            )));
            let retire = crate::identity::sessions::keys::retire_secs(jwt);
            let keys = store
                .start(db, jwt, &config.data_dir, retire)
                .await
                .map_err(|e| StartError::Keys(e.to_string()))?;
            (keys, Some(store))
        }
    };
    let issuer = TokenIssuer::new(jwt, config.jwt_issuer(), app_kinds, keys);
    Ok((issuer, store))
}

/// Adds the service's own host (`public_url`'s) to every Official Account's JS-safe domains.
fn add_own_js_sdk_domain(config: &mut Config) {
    let public_url = config.public_url();
    let Some(host) = reqwest::Url::parse(&public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return;
    };
    for app in &mut config.apps {
        if app.kind == crate::types::AppKind::OfficialAccount && !app.js_sdk_domains.contains(&host)
        {
            app.js_sdk_domains.push(host.clone());
        }
    }
}

/// Runs `work` every `period` (the first time one period after start) until `stopped`: this
/// process's own chores, beside the jobs every instance shares.
async fn every<F: Future<Output = ()> + Send>(
    period: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    mut work: impl FnMut() -> F + Send,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        let due = tokio::select! {
            _ = ticks.tick() => true,
            _ = stopped.wait_for(|stop| *stop) => false,
        };
        if !due {
            return;
        }
        work().await;
    }
}

/// The master key: `wechat.session_key_encryption_key`, or a key file in the data dir
/// (generated on first start). It seals session keys and, derived, signs OA states.
fn load_master_key(config: &Config) -> Result<[u8; 32], StartError> {
    if let Some(key) = &config.wechat.session_key_encryption_key {
        return crypto::key_from_base64(key.expose()).map_err(|e| {
            StartError::Keys(format!(
                "invalid config key `wechat.session_key_encryption_key`: {e}"
            ))
        });
    }
    let path = config.data_dir.join("session-key-encryption.key");
    load_or_create_key(&path)
}

fn load_or_create_key(path: &Path) -> Result<[u8; 32], StartError> {
    let err = |m: String| StartError::Keys(format!("{}: {m}", path.display()));
    if !path.exists() {
        let key = STANDARD.encode(crypto::random_bytes::<32>());
        crate::fs::write_private(path, &key).map_err(|e| err(e.to_string()))?;
        tracing::info!(path = %path.display(), "generated a new session_key encryption key");
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    crypto::key_from_base64(&text).map_err(|e| err(e.to_string()))
}
