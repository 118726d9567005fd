//! Transactions: [`transaction`] runs a closure in one, commits on `Ok`, rolls back on `Err`,
//! and runs the whole closure again when the error is a lost race that a second run settles:
//! - a violation of one of the unique constraints named in [`RACE_CONSTRAINTS`] (two first
//!   sightings of one openid or unionid: the second run finds the winner's row);
//! - a serialization failure or deadlock (PostgreSQL);
//! - a busy database file (SQLite).
//!
//! Nothing else is retried: any other unique violation is a bug or bad input, and is returned.

use std::future::Future;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection, TransactionManager};

use super::{Conn, Db, DbError, PgConn, SqliteConn};

/// How many times a transaction that lost a race is run.
pub const MAX_ATTEMPTS: u32 = 8;

/// The unique constraints whose violation means a concurrent transaction inserted the same key
/// first: (PostgreSQL constraint or index name, the columns SQLite names in its message).
pub const RACE_CONSTRAINTS: &[(&str, &str)] = &[
    ("users_live_unionid", "users.unionid"),
    (
        "mini_program_identities_app_id_openid_key",
        "mini_program_identities.app_id, mini_program_identities.openid",
    ),
    (
        "official_account_identities_app_id_openid_key",
        "official_account_identities.app_id, official_account_identities.openid",
    ),
    (
        "website_identities_app_id_openid_key",
        "website_identities.app_id, website_identities.openid",
    ),
    (
        "mobile_app_identities_app_id_openid_key",
        "mobile_app_identities.app_id, mobile_app_identities.openid",
    ),
    ("jobs_key_key", "jobs.key"),
];

/// Why a failed transaction may succeed when run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Race {
    /// A concurrent transaction took the key of this named unique constraint first.
    Constraint(&'static str),
    /// PostgreSQL gave up on a serialization conflict or a deadlock.
    Serialization,
    /// SQLite's file was locked by another process longer than its busy timeout.
    Busy,
}

impl DbError {
    /// The race this error lost, if it is one that running the transaction again settles.
    pub fn race(&self) -> Option<Race> {
        if let DbError::Raced(_) = self {
            return Some(Race::Serialization);
        }
        let DbError::Query(DieselError::DatabaseError(kind, info)) = self else {
            return None;
        };
        match kind {
            DatabaseErrorKind::SerializationFailure => Some(Race::Serialization),
            DatabaseErrorKind::UniqueViolation => {
                let message = info.message();
                RACE_CONSTRAINTS
                    .iter()
                    .find(|(name, columns)| {
                        info.constraint_name() == Some(*name)
                            || message.strip_prefix("UNIQUE constraint failed: ") == Some(*columns)
                    })
                    .map(|(name, _)| Race::Constraint(name))
            }
            // 40P01 (diesel has no kind for it), and SQLITE_BUSY.
            _ if info.message().starts_with("deadlock detected") => Some(Race::Serialization),
            _ if info.message() == "database is locked" => Some(Race::Busy),
            _ => None,
        }
    }
}

/// Errors that may carry a database error that lost a race (see [`DbError::race`]).
pub trait Retryable {
    /// The race, if running the transaction again may succeed.
    fn race(&self) -> Option<Race>;
}

impl Retryable for DbError {
    fn race(&self) -> Option<Race> {
        DbError::race(self)
    }
}

/// The body of a transaction: an async closure over the connection, called once per attempt.
/// (Spelled out so that the future it returns can be required to be `Send`.)
pub trait TxBody<'c, R>:
    AsyncFnMut(&'c mut Conn) -> R + FnMut(&'c mut Conn) -> <Self as TxBody<'c, R>>::Fut
{
    /// The future of one attempt.
    type Fut: Future<Output = R> + Send;
}

impl<'c, F, Fut, R> TxBody<'c, R> for F
where
    F: AsyncFnMut(&'c mut Conn) -> R + FnMut(&'c mut Conn) -> Fut,
    Fut: Future<Output = R> + Send,
{
    type Fut = Fut;
}

/// Runs `body` in a transaction on `db` (see the module docs for what is retried):
///
/// ```text
/// let user = transaction(&db, async |conn| {
///     let user = UserRow::find(conn, &id).await?;
///     Ok::<_, DbError>(user)
/// }).await?;
/// ```
pub async fn transaction<T, E, F>(db: &Db, mut body: F) -> Result<T, E>
where
    F: for<'c> TxBody<'c, Result<T, E>> + Send,
    E: From<DbError> + Retryable,
{
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let mut tx = db.begin().await?;
        let result = body(tx.conn()).await;
        let race = match result {
            Ok(value) => match tx.commit().await {
                Ok(()) => {
                    crate::metrics::transaction("commit");
                    return Ok(value);
                }
                Err(e) => match e.race() {
                    Some(race) if attempt < MAX_ATTEMPTS => race,
                    _ => {
                        crate::metrics::transaction("rollback");
                        return Err(e.into());
                    }
                },
            },
            Err(e) => {
                tx.rollback().await;
                match e.race() {
                    Some(race) if attempt < MAX_ATTEMPTS => race,
                    _ => {
                        crate::metrics::transaction("rollback");
                        return Err(e);
                    }
                }
            }
        };
        tracing::debug!(?race, attempt, "transaction lost a race; running it again");
        crate::metrics::transaction("retry");
        backoff(attempt).await;
    }
}

/// A short, growing, jittered pause before a transaction runs again.
async fn backoff(attempt: u32) {
    let mut b = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut b);
    let ms = u64::from(attempt) * 2 + u64::from(b[0] % 8);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// An open transaction holding its connection. Dropped before its commit or rollback finished
/// (the request was cut off, the task aborted), it takes the connection out of the pool and
/// closes it, so the database rolls back at once and releases the transaction's locks (SQLite's
/// write lock, PostgreSQL's row locks). Back in the pool, the connection would hold them until
/// its next checkout noticed the open transaction, and every writer would wait until then.
struct Tx {
    /// `None` once the transaction has ended (committed or rolled back).
    conn: Option<Conn>,
    /// SQLite only: this process's write lock, held until commit or rollback.
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        tracing::debug!("transaction dropped while open; closing its connection");
        // Out of the pool and dropped: the connection closes (a SQLite statement still running
        // on a blocking thread closes it when it returns), which rolls the transaction back.
        match conn {
            Conn::Sqlite(c) => drop(Object::take(c)),
            Conn::Postgres(c) => drop(Object::take(c)),
        }
    }
}

impl Db {
    /// Begins a transaction (`BEGIN IMMEDIATE` on SQLite, so read-then-write cannot deadlock).
    async fn begin(&self) -> Result<Tx, DbError> {
        let writer = match self.writer() {
            Some(lock) => Some(lock.lock_owned().await),
            None => None,
        };
        // The transaction owns the connection before `BEGIN` is sent: cut off during `BEGIN`,
        // it closes the connection too.
        let mut tx = Tx {
            conn: Some(self.conn().await?),
            _writer: writer,
        };
        let begun = match tx.conn() {
            Conn::Sqlite(c) => {
                c.spawn_blocking(|inner| {
                    diesel::connection::AnsiTransactionManager::begin_transaction_sql(
                        inner,
                        "BEGIN IMMEDIATE",
                    )
                })
                .await
            }
            Conn::Postgres(c) => {
                <PgConn as AsyncConnection>::TransactionManager::begin_transaction(&mut **c).await
            }
        };
        if let Err(e) = begun {
            // Nothing began: the connection goes back to the pool.
            drop(tx.conn.take());
            return Err(e.into());
        }
        Ok(tx)
    }
}

impl Tx {
    /// The transaction's connection.
    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("an open transaction holds its connection")
    }

    async fn commit(mut self) -> Result<(), DbError> {
        match self.conn() {
            Conn::Sqlite(c) => {
                <SqliteConn as AsyncConnection>::TransactionManager::commit_transaction(&mut **c)
                    .await?
            }
            Conn::Postgres(c) => {
                <PgConn as AsyncConnection>::TransactionManager::commit_transaction(&mut **c)
                    .await?
            }
        }
        // Ended: back to the pool.
        drop(self.conn.take());
        Ok(())
    }

    /// Rolls back; if that fails, the connection is closed (which rolls back too).
    async fn rollback(mut self) {
        let result = match self.conn() {
            Conn::Sqlite(c) => {
                <SqliteConn as AsyncConnection>::TransactionManager::rollback_transaction(&mut **c)
                    .await
            }
            Conn::Postgres(c) => {
                <PgConn as AsyncConnection>::TransactionManager::rollback_transaction(&mut **c)
                    .await
            }
        };
        match result {
            Ok(()) => drop(self.conn.take()),
            Err(e) => tracing::warn!(error = %e, "rollback failed; closing the connection"),
        }
    }
}
