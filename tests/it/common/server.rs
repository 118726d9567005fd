//! Starting and stopping the service under test: a temp dir, a fresh database (a SQLite file in
//! the temp dir, or a PostgreSQL database of its own), the default test config.

use std::time::Duration;

use tempfile::TempDir;
use wechat_identity::app::{self, Running};
use wechat_identity::config::{Config, Secret};
use wechat_identity::db::{Conn, Db};

use super::{ADMIN_KEY, Backend, SERVICE_KEY, pg_admin, pg_admin_url};

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

    /// Like [`start_with`], stopping when `shutdown` resolves.
    pub async fn start_with_shutdown(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
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
        tweak(&mut config);
        config.finish().expect("valid test config");
        let running = app::start(config, shutdown).await.expect("service starts");
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
