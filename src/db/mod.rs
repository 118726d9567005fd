//! The database layer, shared by SQLite (embedded default) and PostgreSQL (production).
//!
//! [`Db`] is an enum of the two pools; [`with_conn!`](crate::with_conn) expands one diesel query
//! for each connection type, so every query is written once. Read-then-write work runs in
//! [`transaction!`](crate::transaction), which retries on the races a unique constraint settles.

pub mod models;
pub mod schema;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::Connection as _;
use diesel::SqliteConnection;
use diesel::connection::SimpleConnection as _;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection, TransactionManager};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt as _;

/// The SQLite connection type (a sync diesel connection run on blocking threads).
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
/// The PostgreSQL connection type.
pub type PgConn = AsyncPgConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How many times a transaction that lost a race is run again.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 8;

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had from the pool.
    #[error("database pool: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query: {0}")]
    Query(#[from] DieselError),
    /// Migrations failed or the database could not be prepared.
    #[error("database setup: {0}")]
    Setup(String),
}

impl DbError {
    /// Whether running the whole transaction again may succeed: a lost race on a unique
    /// constraint, a serialization failure or deadlock, or a busy SQLite file.
    pub fn is_retryable(&self) -> bool {
        match self {
            DbError::Query(DieselError::DatabaseError(kind, info)) => match kind {
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure => {
                    true
                }
                _ => {
                    let m = info.message();
                    m.contains("deadlock") || m.contains("database is locked") || m.contains("busy")
                }
            },
            _ => false,
        }
    }

    /// Whether this is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Errors that may carry a retryable database error; used by [`transaction!`](crate::transaction).
pub trait Retryable {
    /// Whether running the transaction again may succeed.
    fn is_retryable(&self) -> bool;
}

impl Retryable for DbError {
    fn is_retryable(&self) -> bool {
        DbError::is_retryable(self)
    }
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
pub enum Db {
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

/// Runs `$body` (an async block's contents using `$c: &mut Conn`, evaluating to
/// `Result<T, E>`) in a transaction on `$db`, committing on `Ok` and rolling back on `Err`.
/// When the error is retryable (a lost race), the whole body runs again, up to
/// [`MAX_TRANSACTION_ATTEMPTS`] times. `E: From<DbError> + Retryable`.
#[macro_export]
macro_rules! transaction {
    ($db:expr, $c:ident => $body:block) => {{
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut tx = $db.begin().await?;
            let result = async {
                let $c: &mut $crate::db::Conn = tx.conn();
                $body
            }
            .await;
            match result {
                Ok(value) => match tx.commit().await {
                    Ok(()) => {
                        $crate::metrics::transaction("commit");
                        break Ok(value);
                    }
                    Err(e)
                        if e.is_retryable() && attempt < $crate::db::MAX_TRANSACTION_ATTEMPTS =>
                    {
                        $crate::metrics::transaction("retry");
                        $crate::db::backoff(attempt).await;
                        continue;
                    }
                    Err(e) => {
                        $crate::metrics::transaction("rollback");
                        break Err(e.into());
                    }
                },
                Err(e) => {
                    tx.rollback().await;
                    if $crate::db::Retryable::is_retryable(&e)
                        && attempt < $crate::db::MAX_TRANSACTION_ATTEMPTS
                    {
                        $crate::metrics::transaction("retry");
                        $crate::db::backoff(attempt).await;
                        continue;
                    }
                    $crate::metrics::transaction("rollback");
                    break Err(e);
                }
            }
        }
    }};
}

/// A short, growing, jittered pause before a transaction runs again.
pub async fn backoff(attempt: u32) {
    let mut b = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut b);
    let ms = u64::from(attempt) * 2 + u64::from(b[0] % 8);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// An open transaction holding its connection. Dropping it without commit leaves the connection
/// flagged as in-transaction, and the pool discards it.
pub struct Tx {
    conn: Conn,
    /// SQLite only: this process's write lock, held until commit or rollback.
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    /// The connection, for queries inside the transaction.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Commits.
    pub async fn commit(mut self) -> Result<(), DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => {
                <SqliteConn as AsyncConnection>::TransactionManager::commit_transaction(&mut **c)
                    .await?
            }
            Conn::Postgres(c) => {
                <PgConn as AsyncConnection>::TransactionManager::commit_transaction(&mut **c)
                    .await?
            }
        }
        Ok(())
    }

    /// Rolls back; a failure here only means the pool will discard the connection.
    pub async fn rollback(mut self) {
        let result = match &mut self.conn {
            Conn::Sqlite(c) => {
                <SqliteConn as AsyncConnection>::TransactionManager::rollback_transaction(&mut **c)
                    .await
            }
            Conn::Postgres(c) => {
                <PgConn as AsyncConnection>::TransactionManager::rollback_transaction(&mut **c)
                    .await
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "rollback failed; connection will be discarded");
        }
    }
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
            let mut config = ManagerConfig::<SqliteConn>::default();
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(|url| {
                let url = url.to_owned();
                async move {
                    let mut conn = SqliteConn::establish(&url).await?;
                    conn.batch_execute(
                        "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    )
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                }
                .boxed()
            });
            let manager = AsyncDieselConnectionManager::new_with_config(path, config);
            let pool = Pool::builder(manager)
                .max_size(pool_size)
                .build()
                .map_err(|e| DbError::Setup(e.to_string()))?;
            Ok(Db::Sqlite(pool, Arc::default()))
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
            let mut config = ManagerConfig::<PgConn>::default();
            config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::new_with_config(url, config);
            let pool = Pool::builder(manager)
                .max_size(pool_size)
                .build()
                .map_err(|e| DbError::Setup(e.to_string()))?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<Conn, DbError> {
        Ok(match self {
            Db::Sqlite(p, _) => {
                Conn::Sqlite(p.get().await.map_err(|e| DbError::Pool(e.to_string()))?)
            }
            Db::Postgres(p) => {
                Conn::Postgres(p.get().await.map_err(|e| DbError::Pool(e.to_string()))?)
            }
        })
    }

    /// Begins a transaction (`BEGIN IMMEDIATE` on SQLite, so read-then-write cannot deadlock).
    pub async fn begin(&self) -> Result<Tx, DbError> {
        let writer = match self {
            Db::Sqlite(_, lock) => Some(lock.clone().lock_owned().await),
            Db::Postgres(_) => None,
        };
        let mut conn = self.conn().await?;
        match &mut conn {
            Conn::Sqlite(c) => {
                c.spawn_blocking(|inner| {
                    diesel::connection::AnsiTransactionManager::begin_transaction_sql(
                        inner,
                        "BEGIN IMMEDIATE",
                    )
                })
                .await?
            }
            Conn::Postgres(c) => {
                <PgConn as AsyncConnection>::TransactionManager::begin_transaction(&mut **c).await?
            }
        }
        Ok(Tx {
            conn,
            _writer: writer,
        })
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
