//! The database layer, shared by SQLite (embedded default) and PostgreSQL (production).
//!
//! [`Db`] holds the pool of one of the two; [`with_conn!`](crate::with_conn) expands one diesel
//! query for each connection type, so every query is written once. Read-then-write work runs in
//! [`transaction`] (a closure; retried only on named races, see [`tx`]), and locks rows with
//! [`lock::for_update`]. Rows carry the identifier newtypes of [`crate::types`], and their
//! statuses are enums stored as text ([`text_enum!`](text_enum::text_enum)).

pub mod lock;
pub mod models;
pub mod queue;
pub mod schema;
pub mod text_enum;
pub mod tx;
pub mod wake;

pub use tx::{Race, Retryable, transaction};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::Connection as _;
use diesel::SqliteConnection;
use diesel::connection::SimpleConnection as _;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::result::Error as DieselError;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt as _;

/// The SQLite connection type (a sync diesel connection run on blocking threads).
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
/// The PostgreSQL connection type.
pub type PgConn = AsyncPgConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a request waits for a pooled connection before it is told the service is busy.
pub const DEFAULT_POOL_WAIT: Duration = Duration::from_secs(5);

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had from the pool within its wait (the service is overloaded or
    /// the database is down): a retryable UNAVAILABLE for the caller.
    #[error("database pool: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query: {0}")]
    Query(#[from] DieselError),
    /// Migrations failed or the database could not be prepared.
    #[error("database setup: {0}")]
    Setup(String),
    /// What the transaction read changed under it before it could lock it (said here): it runs
    /// again, like a serialization failure.
    #[error("raced: {0}")]
    Raced(&'static str),
}

/// The backend in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A connection pool to one of the two backends.
#[derive(Clone)]
pub struct Db {
    pools: Pools,
    /// How long [`Db::conn`] waits for a free connection.
    wait: Duration,
    /// Statements the pool's connections have sent (see [`Db::statements`]).
    statements: Arc<AtomicU64>,
    /// Wakes the job runner when a job is queued (see [`wake`]).
    wake: Arc<wake::Wake>,
}

/// A pool's state ([`Db::pool_status`]).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct PoolStatus {
    /// `database_pool_size`.
    pub max: usize,
    /// Connections open.
    pub open: usize,
    /// Connections lent out.
    pub in_use: usize,
    /// Callers waiting for one.
    pub waiting: usize,
}

/// Counts every statement a connection sends (diesel's instrumentation: one `StartQuery` per
/// statement sent to the database, `BEGIN`/`COMMIT` included).
struct CountStatements(Arc<AtomicU64>);

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Clone)]
enum Pools {
    /// SQLite pool, and the lock that queues this process's writers: SQLite has one writer at a
    /// time, and waiting on an async lock is fair and fast where SQLite's busy handler sleeps.
    Sqlite(Pool<SqliteConn>, Arc<tokio::sync::Mutex<()>>),
    /// PostgreSQL pool.
    Postgres(Pool<PgConn>),
}

/// A pooled connection to one of the two backends (moved rarely: boxing would cost a
/// pointer chase on every query).
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    /// SQLite connection.
    Sqlite(Object<SqliteConn>),
    /// PostgreSQL connection.
    Postgres(Object<PgConn>),
}

/// Runs `$body` with `$c` bound to the concrete connection (`&mut SqliteConn` or `&mut PgConn`)
/// behind `$conn: &mut Conn`; the body is compiled once per backend.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite(pooled) => {
                let $c: &mut $crate::db::SqliteConn = &mut *pooled;
                $body
            }
            $crate::db::Conn::Postgres(pooled) => {
                let $c: &mut $crate::db::PgConn = &mut *pooled;
                $body
            }
        }
    };
}

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`), applies migrations and returns a
    /// pool of `pool_size` connections.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.to_owned();
            if path.is_empty() || path.contains(":memory:") {
                return Err(DbError::Setup(
                    "sqlite needs a file path (a pooled :memory: database is one database per connection)".into(),
                ));
            }
            crate::fs::create_private_file(Path::new(&path))
                .map_err(|e| DbError::Setup(format!("cannot create {path}: {e}")))?;
            let migrate_path = path.clone();
            tokio::task::spawn_blocking(move || migrate_sqlite(&migrate_path))
                .await
                .map_err(|e| DbError::Setup(e.to_string()))??;
            let statements = Arc::new(AtomicU64::new(0));
            let counter = statements.clone();
            let mut config = ManagerConfig::<SqliteConn>::default();
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(move |url| {
                let url = url.to_owned();
                let counter = counter.clone();
                async move {
                    let mut conn = SqliteConn::establish(&url).await?;
                    conn.batch_execute(
                        "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    )
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    conn.set_instrumentation(CountStatements(counter));
                    Ok(conn)
                }
                .boxed()
            });
            let manager = AsyncDieselConnectionManager::new_with_config(path, config);
            let pool = Pool::builder(manager)
                .max_size(pool_size)
                .build()
                .map_err(|e| DbError::Setup(e.to_string()))?;
            Ok(Db::new(
                Pools::Sqlite(pool, Arc::default()),
                statements,
                None,
            ))
        } else {
            let mut conn = PgConn::establish(url)
                .await
                .map_err(|e| DbError::Setup(format!("cannot connect to PostgreSQL: {e}")))?;
            // Serialize concurrent start-ups of several instances on one database.
            conn.batch_execute("SELECT pg_advisory_lock(7283001)")
                .await?;
            let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
            let migrated = harness
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| DbError::Setup(format!("migrations: {e}")));
            let mut conn = harness.into_inner();
            conn.batch_execute("SELECT pg_advisory_unlock(7283001)")
                .await?;
            migrated?;
            let statements = Arc::new(AtomicU64::new(0));
            let counter = statements.clone();
            let mut config = ManagerConfig::<PgConn>::default();
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(move |url| {
                let url = url.to_owned();
                let counter = counter.clone();
                async move {
                    let mut conn = PgConn::establish(&url).await?;
                    conn.set_instrumentation(CountStatements(counter));
                    Ok(conn)
                }
                .boxed()
            });
            let manager = AsyncDieselConnectionManager::new_with_config(url, config);
            let pool = Pool::builder(manager)
                .max_size(pool_size)
                .build()
                .map_err(|e| DbError::Setup(e.to_string()))?;
            Ok(Db::new(Pools::Postgres(pool), statements, Some(url)))
        }
    }

    fn new(pools: Pools, statements: Arc<AtomicU64>, listen_url: Option<&str>) -> Self {
        Self {
            pools,
            wait: DEFAULT_POOL_WAIT,
            statements,
            wake: Arc::new(wake::Wake::new(listen_url)),
        }
    }

    /// How many SQL statements this pool's connections have sent to the database since it was
    /// opened (every statement, transactions' `BEGIN`/`COMMIT` included; counted by diesel's
    /// instrumentation as each is sent). Shared by every clone of this `Db`.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// The pool now: its cap, the connections open and in use, and the callers waiting.
    pub fn pool_status(&self) -> PoolStatus {
        let status = match &self.pools {
            Pools::Sqlite(pool, _) => pool.status(),
            Pools::Postgres(pool) => pool.status(),
        };
        PoolStatus {
            max: status.max_size,
            open: status.size,
            in_use: status.size.saturating_sub(status.available),
            waiting: status.waiting,
        }
    }

    /// The same pool, waiting at most `wait` for a free connection.
    pub fn with_pool_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite(..) => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// A connection from the pool, or [`DbError::Pool`] when none frees up within the wait.
    pub async fn conn(&self) -> Result<Conn, DbError> {
        let busy = || DbError::Pool(format!("no free connection within {:?}", self.wait));
        Ok(match &self.pools {
            Pools::Sqlite(p, _) => Conn::Sqlite(
                tokio::time::timeout(self.wait, p.get())
                    .await
                    .map_err(|_| busy())?
                    .map_err(|e| DbError::Pool(e.to_string()))?,
            ),
            Pools::Postgres(p) => Conn::Postgres(
                tokio::time::timeout(self.wait, p.get())
                    .await
                    .map_err(|_| busy())?
                    .map_err(|e| DbError::Pool(e.to_string()))?,
            ),
        })
    }

    /// SQLite: this process's writer lock (taken for the length of a transaction).
    fn writer(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        match &self.pools {
            Pools::Sqlite(_, lock) => Some(lock.clone()),
            Pools::Postgres(_) => None,
        }
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, c => c.batch_execute("SELECT 1").await)?;
        Ok(())
    }
}

fn migrate_sqlite(path: &str) -> Result<(), DbError> {
    let mut conn = SqliteConnection::establish(path)
        .map_err(|e| DbError::Setup(format!("cannot open SQLite database {path}: {e}")))?;
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
    )?;
    conn.run_pending_migrations(SQLITE_MIGRATIONS)
        .map_err(|e| DbError::Setup(format!("migrations: {e}")))?;
    Ok(())
}
