//! Starting and stopping the service under test: a temp dir, a fresh database (a SQLite file in
//! the temp dir, or a PostgreSQL database of its own), the default test config; and, for a
//! service started with [`TestApp::start_driven`], running its jobs when the test says so.

use std::time::Duration;

use tempfile::TempDir;
use wechat_identity::app::{self, JobRunner, Running};
use wechat_identity::config::{Config, Secret};
use wechat_identity::db::{Conn, Db};

use super::{ADMIN_KEY, Backend, SERVICE_KEY, eventually, pg_admin, pg_admin_url};

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub running: Running,
    /// The harness's own handle on the service's database (not the service's pool), for
    /// reading and changing it directly. Declared before `dir`: closed before the file goes.
    pub(super) db: Db,
    pub dir: TempDir,
    /// The database this test made (a second instance may be pointed at it).
    pub database_url: String,
    /// The PostgreSQL database made for this test, dropped with it.
    pg: Option<String>,
    /// Who runs its jobs.
    jobs: JobRunner,
}

/// A `tweak` that gives the service a signing key the test knows: an Ed25519 PEM in the data
/// dir, which the service imports at start as a key file from before keys were shared (it
/// then signs with it), so a test can forge tokens with the service's own key.
pub fn with_known_key(config: &mut Config) {
    let path = config.data_dir.join("jwt-ed25519.pem");
    let der = wechat_identity::auth::jwt::Ed25519Key::generate();
    std::fs::write(&path, wechat_identity::auth::keys::der_to_pem(&der)).unwrap();
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the default test config (sandbox mode, demo apps, admin and service keys),
    /// changed by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_shutdown(backend, tweak, std::future::pending()).await
    }

    /// Like [`start_with`], with no job runner: the test runs the jobs ([`TestApp::run_jobs`]),
    /// so that what it waits for is done, to the end, when it reads the result. A webhook push
    /// is answered at once (nothing processes it before the test runs the jobs).
    pub async fn start_driven(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::launch(backend, tweak, std::future::pending(), JobRunner::Caller).await
    }

    /// Like [`start_with`], stopping when `shutdown` resolves.
    pub async fn start_with_shutdown(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self::launch(backend, tweak, shutdown, JobRunner::Background).await
    }

    /// Starts with `tweak`, stopping when `shutdown` resolves, its jobs run by `jobs` (see
    /// [`TestApp::start_driven`] for [`JobRunner::Caller`]).
    pub async fn launch(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        jobs: JobRunner,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut pg = None;
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
            Backend::Postgres => {
                let name = format!("wi_test_{}", uuid::Uuid::new_v4().simple());
                pg_admin(format!("CREATE DATABASE {name}"));
                let mut url = reqwest::Url::parse(&pg_admin_url()).unwrap();
                url.set_path(&name);
                pg = Some(name);
                url.to_string()
            }
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            database_url: Some(Secret::new(database_url.clone())),
            database_pool_size: 8,
            sandbox: Some(true),
            ..Config::default()
        };
        config
            .apply_env(|key| match key {
                "WECHAT_IDENTITY_ADMIN_KEY" => Some(ADMIN_KEY.to_owned()),
                _ => None,
            })
            .unwrap();
        config.api_keys.push(wechat_identity::config::ApiKeyConfig {
            name: "reporting".into(),
            role: wechat_identity::config::ApiKeyRole::Service,
            key: Secret::new(SERVICE_KEY),
        });
        if jobs == JobRunner::Caller {
            config.limits.webhook_answer_wait_ms = 0;
        }
        tweak(&mut config);
        config.finish().expect("valid test config");
        let running = app::start_with(config, shutdown, jobs)
            .await
            .expect("service starts");
        // After the service: it has migrated the database already (migrating again is a no-op).
        // A test's `tweak` may point the service elsewhere; the harness keeps to the database
        // it made.
        let db = Db::connect(&database_url, 2)
            .await
            .unwrap_or_else(|e| panic!("the harness's database handle: {e}"));
        let base = format!("http://{}", running.addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApp {
            base,
            http,
            running,
            db,
            dir,
            database_url,
            pg,
            jobs,
        }
    }

    /// Runs, here in the test, every job of the service that is due, each to its end, until
    /// none is: first the sandbox's delivery pushes in flight arrive (their events are jobs),
    /// and jobs that runs queue run too. Returns how many runs there were. The jobs are the
    /// service's own, on its database and sandbox.
    ///
    /// # Panics
    /// Unless the service was started with [`TestApp::start_driven`] (its own runner would
    /// race this one).
    pub async fn run_jobs(&self) -> usize {
        assert_eq!(
            self.jobs,
            JobRunner::Caller,
            "run_jobs needs TestApp::start_driven: this service runs its jobs itself"
        );
        let mut runs = 0;
        loop {
            if let Some(sandbox) = &self.running.app.sandbox {
                let within = Duration::from_secs(10);
                eventually(within, "the sandbox's pushes arrived", || async {
                    sandbox.pushes_pending() == 0
                })
                .await;
            }
            let ran = self.running.app.jobs.run_pending().await;
            match ran.unwrap_or_else(|e| panic!("running the due jobs: {e}")) {
                0 => return runs,
                n => runs += n,
            }
        }
    }

    /// As if time had passed: jobs waiting to run later (paused by WeChat's quota, backing off
    /// after a failure, the purge waiting for its next period) are due now; then
    /// [`TestApp::run_jobs`].
    pub async fn run_jobs_after_waits(&self) -> usize {
        self.exec("UPDATE jobs SET run_at = created_at WHERE status = 'queued'")
            .await;
        self.run_jobs().await
    }

    /// How another instance of this one's deployment is configured: the same database and key
    /// for secrets at rest, the demo apps, and WeChat played by this instance's sandbox (it has
    /// none of its own). Pass it to [`TestApp::start_with`] (then change what the test needs).
    pub fn same_deployment(&self) -> impl FnOnce(&mut Config) + use<> {
        let url = self.database_url.clone();
        let key = std::fs::read_to_string(self.dir.path().join("session-key-encryption.key"))
            .unwrap_or_else(|e| panic!("the first instance's key for secrets at rest: {e}"));
        let sandbox_url = format!("{}/sandbox/wechat", self.base);
        move |c: &mut Config| {
            c.wechat.session_key_encryption_key = Some(Secret::new(key));
            c.sandbox = Some(false);
            c.apps = wechat_identity::config::sandbox_demo_apps();
            c.database_url = Some(Secret::new(url));
            c.wechat.api_base_url = sandbox_url;
        }
    }

    /// A connection to the service's database, from the harness's own pool; use it with
    /// `wechat_identity::with_conn!`.
    pub async fn db_conn(&self) -> Conn {
        self.db
            .conn()
            .await
            .unwrap_or_else(|e| panic!("a connection to the test database: {e}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.running.handle.abort();
        if let Some(name) = self.pg.take() {
            pg_admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
