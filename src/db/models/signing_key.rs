//! `signing_keys`: the access-token signing keys every instance shares (private keys sealed).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::signing_keys;
use crate::db::{Conn, DbError};
use crate::with_conn;

/// A row of `signing_keys`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    /// The key id (`kid` in a token's header and in the JWKS).
    pub kid: String,
    /// `EdDSA` (the only one stored; HS256 secrets stay in the configuration).
    pub algorithm: String,
    /// The public key as the JWK shows it (base64url).
    pub public_key: String,
    /// The PKCS#8 private key, sealed (empty once retired).
    pub private_key: String,
    /// When it was added: the newest key signs.
    pub created_at: NaiveDateTime,
    /// When the last token it signed has expired (set when a newer key replaced it).
    pub retire_after: Option<NaiveDateTime>,
    /// When the purge retired it: it verifies nothing from then on.
    pub retired_at: Option<NaiveDateTime>,
}

impl SigningKeyRow {
    /// Every key, the one that signs first: the newest of those not retiring (a key imported
    /// only to verify what it signed before has a retirement time from the start), then the
    /// others, newest first.
    pub async fn all(conn: &mut Conn) -> Result<Vec<Self>, DbError> {
        let q = signing_keys::table
            .filter(signing_keys::retired_at.is_null())
            .order((
                signing_keys::retire_after.is_null().desc(),
                signing_keys::created_at.desc(),
                signing_keys::kid.desc(),
            ));
        Ok(with_conn!(conn, c => q.load(c).await)?)
    }

    /// Keeps other writers of the table out until the transaction ends (PostgreSQL: a table
    /// lock that readers pass; SQLite's `BEGIN IMMEDIATE` already holds the one write lock), so
    /// that "is there a key yet?" and "was the last rotation a minute ago?" stay true until the
    /// write.
    pub async fn lock_table(conn: &mut Conn) -> Result<(), DbError> {
        if let Conn::Postgres(c) = conn {
            diesel::sql_query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut **c)
                .await?;
        }
        Ok(())
    }

    /// Inserts a key.
    pub async fn insert(conn: &mut Conn, row: &SigningKeyRow) -> Result<(), DbError> {
        super::insert(conn, signing_keys::table, row).await
    }

    /// Gives every key but `kid` that has none a retirement time (a rotation).
    pub async fn retire_others(
        conn: &mut Conn,
        kid: &str,
        retire_after: NaiveDateTime,
    ) -> Result<usize, DbError> {
        let q = diesel::update(
            signing_keys::table
                .filter(signing_keys::kid.ne(kid))
                .filter(signing_keys::retire_after.is_null()),
        )
        .set(signing_keys::retire_after.eq(retire_after));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Whether a key with this id was ever stored (retired ones included).
    pub async fn known(conn: &mut Conn, kid: &str) -> Result<bool, DbError> {
        let q = diesel::select(diesel::dsl::exists(
            signing_keys::table.filter(signing_keys::kid.eq(kid)),
        ));
        Ok(with_conn!(conn, c => q.get_result::<bool>(c).await)?)
    }

    /// Retires the keys whose last tokens have expired by `at`: marked, private key erased.
    pub async fn retire_expired(conn: &mut Conn, at: NaiveDateTime) -> Result<usize, DbError> {
        let q = diesel::update(
            signing_keys::table
                .filter(signing_keys::retire_after.lt(at))
                .filter(signing_keys::retired_at.is_null()),
        )
        .set((
            signing_keys::retired_at.eq(at),
            signing_keys::private_key.eq(""),
        ));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }
}
