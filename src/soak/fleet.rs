//! The service instances of a soak: child processes of this binary running `serve` on loopback
//! ports, one PostgreSQL database and one WeChat (the soak's sandbox) between them. Each is
//! configured by a TOML file written into the soak's temp dir (what they share) and
//! environment variables (what is each one's own: address, data dir). Children are killed
//! when their handle is dropped (`kill_on_drop`), so an error or a panic in the soak never
//! leaves one running.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::config::{SANDBOX_ENCODING_AES_KEY, SANDBOX_WEBHOOK_TOKEN, sandbox_demo_apps};
use crate::types::AppKind;

/// The admin API key every instance knows.
pub(crate) const ADMIN_KEY: &str = "soak-admin-key-0123456789abcdef";

/// The `jwt.issuer` every instance shares: each has its own `public_url` (its own address), and
/// a token issued by one must verify on the others, as behind a load balancer.
const ISSUER: &str = "http://wechat-identity.soak.invalid";

/// How long an instance may take to answer `/readyz` after it was started.
const READY_WITHIN: Duration = Duration::from_secs(90);

/// What every instance is started with.
pub(crate) struct FleetSetup {
    /// The soak's temp dir (config file, data dirs, logs).
    pub dir: PathBuf,
    /// The database every instance uses.
    pub database_url: String,
    /// The sandbox's API base URL (`http://127.0.0.1:p/sandbox/wechat`).
    pub wechat: String,
    /// Where the server-driven OA login may send the browser back to.
    pub landing: String,
    /// `WECHAT_IDENTITY_RATE_LIMITS_REDIS_URL`, if given.
    pub redis_url: Option<String>,
    /// WeChat's per-call timeout the instances use (the soak's delay faults exceed it).
    pub wechat_timeout: Duration,
}

/// One instance slot: its address, and its process while it runs.
pub(crate) struct Instance {
    pub index: usize,
    pub port: u16,
    pub base: String,
    child: tokio::sync::Mutex<Option<Child>>,
    pid: AtomicU64,
    /// Set from the kill until it answers `/readyz` again.
    down: AtomicBool,
    /// Counts kills: a request that fails in a generation other than the one it started in
    /// was cut off by a kill.
    generation: AtomicU64,
    /// RSS in KiB: at the first ready (and after a restart), at the end.
    pub rss: Mutex<Vec<(String, u64)>>,
    /// HTTP requests sent to it.
    pub requests: AtomicU64,
}

impl Instance {
    /// Whether it is down (killed and not ready again).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed) as u32
    }

    /// This instance's RSS now, in KiB (0 when it is not running or /proc is not there).
    pub fn rss_kib(&self) -> u64 {
        rss_of(self.pid())
    }

    /// Records the RSS now under `label`.
    pub fn note_rss(&self, label: &str) {
        let kib = self.rss_kib();
        lock(&self.rss).push((label.to_owned(), kib));
    }
}

/// The instances.
pub(crate) struct Fleet {
    setup: FleetSetup,
    pub instances: Vec<Instance>,
    http: reqwest::Client,
}

impl Fleet {
    /// Writes the shared config and starts `n` instances at once (as a deployment does: their
    /// migrations and first signing key race on the one database); waits until each is ready.
    pub async fn start(setup: FleetSetup, n: usize) -> Result<Fleet, String> {
        std::fs::write(setup.dir.join("soak.toml"), config_toml(&setup))
            .map_err(|e| format!("writing the instances' config: {e}"))?;
        let mut instances = Vec::with_capacity(n);
        for index in 0..n {
            let port = free_port().await?;
            instances.push(Instance {
                index,
                port,
                base: format!("http://127.0.0.1:{port}"),
                child: tokio::sync::Mutex::new(None),
                pid: AtomicU64::new(0),
                down: AtomicBool::new(true),
                generation: AtomicU64::new(0),
                rss: Mutex::new(Vec::new()),
                requests: AtomicU64::new(0),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let fleet = Fleet {
            setup,
            instances,
            http,
        };
        for i in 0..n {
            fleet.spawn(i).await?;
        }
        for i in 0..n {
            fleet.wait_ready(i).await?;
            fleet.instances[i].note_rss("start");
        }
        Ok(fleet)
    }

    fn log_path(&self, index: usize) -> PathBuf {
        self.setup.dir.join(format!("instance-{index}.log"))
    }

    /// Starts instance `index` (again) on its port.
    async fn spawn(&self, index: usize) -> Result<(), String> {
        let instance = &self.instances[index];
        let data_dir = self.setup.dir.join(format!("data-{index}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(index))
            .map_err(|e| e.to_string())?;
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| format!("the soak's own binary: {e}"))?;
        let mut command = Command::new(exe);
        // Nothing of the caller's configuration leaks in: the file and these variables are all.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("WECHAT_IDENTITY_") {
                command.env_remove(&key);
            }
        }
        command
            .arg("--config")
            .arg(self.setup.dir.join("soak.toml"))
            .arg("serve")
            .env("DATABASE_URL", &self.setup.database_url)
            .env(
                "WECHAT_IDENTITY_LISTEN",
                format!("127.0.0.1:{}", instance.port),
            )
            .env("WECHAT_IDENTITY_PUBLIC_URL", &instance.base)
            .env("WECHAT_IDENTITY_DATA_DIR", &data_dir)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .kill_on_drop(true);
        if let Some(url) = &self.setup.redis_url {
            command.env("WECHAT_IDENTITY_RATE_LIMITS_REDIS_URL", url);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting instance {index}: {e}"))?;
        instance
            .pid
            .store(u64::from(child.id().unwrap_or(0)), Ordering::Relaxed);
        *instance.child.lock().await = Some(child);
        Ok(())
    }

    /// Polls `/readyz` until it answers 200 (at most [`READY_WITHIN`]); then the instance is up.
    async fn wait_ready(&self, index: usize) -> Result<(), String> {
        let instance = &self.instances[index];
        let started = Instant::now();
        loop {
            let ready = self
                .http
                .get(format!("{}/readyz", instance.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                instance.down.store(false, Ordering::Release);
                return Ok(());
            }
            if let Some(child) = instance.child.lock().await.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "instance {index} exited ({status}) before it was ready; its log: {}",
                    self.log_path(index).display()
                ));
            }
            if started.elapsed() > READY_WITHIN {
                return Err(format!(
                    "instance {index} was not ready within {READY_WITHIN:?}; its log: {}",
                    self.log_path(index).display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILLs instance `index` (no shutdown, no goodbye to the database or its jobs).
    pub async fn kill(&self, index: usize) -> Result<(), String> {
        let instance = &self.instances[index];
        instance.down.store(true, Ordering::Release);
        instance.generation.fetch_add(1, Ordering::AcqRel);
        instance.note_rss("at kill");
        let mut child = instance.child.lock().await;
        if let Some(child) = child.as_mut() {
            child.start_kill().map_err(|e| e.to_string())?;
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
        *child = None;
        instance.pid.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Starts instance `index` again on the same port and waits until it is ready.
    pub async fn restart(&self, index: usize) -> Result<(), String> {
        self.spawn(index).await?;
        self.wait_ready(index).await?;
        self.instances[index].note_rss("restart");
        Ok(())
    }

    /// Kills every instance (the end of the soak); their logs stay in the temp dir.
    pub async fn stop(&self) {
        for instance in &self.instances {
            if let Some(mut child) = instance.child.lock().await.take() {
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            }
        }
    }

    /// Lines of the instances' logs at WARN and ERROR, and panics (over all their runs).
    pub fn log_counts(&self, index: usize) -> (usize, usize, usize) {
        let text = std::fs::read_to_string(self.log_path(index)).unwrap_or_default();
        let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
        (count(" WARN "), count(" ERROR "), count("panicked"))
    }
}

/// A loopback port nothing listens on now.
async fn free_port() -> Result<u16, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// RSS of process `pid` in KiB (0 if unknown).
pub(crate) fn rss_of(pid: u32) -> u64 {
    if pid == 0 {
        return 0;
    }
    crate::bench::followers::rss_kib_of(&pid.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The configuration every instance shares: the sandbox's demo apps, pointed at the soak's
/// sandbox (sandbox mode stays off: an instance's own sandbox would be a WeChat of its own),
/// one master key, one admin key, one issuer, rate limits far above the soak's traffic from
/// 127.0.0.1 (on, so the limiter runs), and short recovery times (leases, retries, quota
/// pauses) so that a run of a few minutes sees a killed job resumed and a paused one go on.
fn config_toml(setup: &FleetSetup) -> String {
    let master = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        crate::crypto::random_bytes::<32>(),
    );
    let big = "{ burst = 1000000, per_second = 1000000.0 }";
    let limit = format!("{{ per_ip = {big}, per_app = {big} }}");
    let mut toml = format!(
        r#"sandbox = false
database_pool_size = 12

[wechat]
api_base_url = {wechat}
open_base_url = {wechat}
timeout_ms = {timeout}
follower_sync_concurrency = 4
quota_pause_secs = 5
session_key_encryption_key = {master}

[jwt]
issuer = {issuer}

[official_account_login]
return_to = [{landing}]

[jobs]
lease_secs = 10
poll_interval_ms = 500
retry_backoff_ms = 1000

[messages]
send_rate_per_sec = 100

[limits]
max_live_states_per_app = 100000

[rate_limits]
enabled = true
login = {limit}
authorize = {limit}
ticket = {limit}
refresh = {limit}

[[api_keys]]
name = "soak"
role = "admin"
key = {key}
"#,
        wechat = quoted(&setup.wechat),
        timeout = setup.wechat_timeout.as_millis(),
        master = quoted(&master),
        issuer = quoted(ISSUER),
        landing = quoted(&setup.landing),
        key = quoted(ADMIN_KEY),
    );
    for app in sandbox_demo_apps() {
        let kind = match app.kind {
            AppKind::MiniProgram => "mini_program",
            AppKind::OfficialAccount => "official_account",
            AppKind::Website => "website",
            AppKind::MobileApp => "mobile_app",
        };
        toml.push_str(&format!(
            "\n[[apps]]\nkind = {}\napp_id = {}\nsecret = {}\nname = {}\nopen_platform = {}\n",
            quoted(kind),
            quoted(app.app_id.as_str()),
            quoted(app.secret.expose()),
            quoted(&app.name),
            app.open_platform,
        ));
        if app.token.is_some() {
            toml.push_str(&format!("token = {}\n", quoted(SANDBOX_WEBHOOK_TOKEN)));
        }
        if app.encoding_aes_key.is_some() {
            toml.push_str(&format!(
                "encoding_aes_key = {}\n",
                quoted(SANDBOX_ENCODING_AES_KEY)
            ));
        }
    }
    toml
}
