//! The EdDSA signing keys in the database (`signing_keys`), shared by every instance: the
//! private halves sealed with a key derived from the master key, as session keys are.
//!
//! - [`KeyStore::start`]: on every start, a key file from before keys were shared
//!   (`jwt.private_key_file`, or `<data_dir>/jwt-ed25519.pem`) is imported unless the table has
//!   it, so nobody's tokens break on upgrade: it signs if the table was empty, else it only
//!   verifies until the tokens it signed have expired. An empty table without a file gets a new
//!   key. Two instances starting at once take turns (the table lock).
//! - [`KeyStore::rotate`]: a new key signs from now on; the others get `retire_after`, after
//!   which the purge job retires them ([`KeyStore::retire_expired`]: the row stays, its private
//!   key erased, so an old key file naming it is never imported again). At most one a minute
//!   after the last rotation.
//! - [`KeyStore::load`]: the keys as a [`KeySet`], for the periodic reload and for a token
//!   naming a key this instance has not seen.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, NaiveDateTime};

use super::jwt::{Ed25519Key, KeySet};
use crate::config::JwtConfig;
use crate::crypto::SecretBox;
use crate::db::models::now;
use crate::db::models::signing_key::SigningKeyRow;
use crate::db::{Conn, Db, DbError, Race, Retryable, transaction};

/// The least time between two rotations.
pub const MIN_ROTATION_INTERVAL_SECS: i64 = 60;

/// Why keys could not be loaded, imported or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read or is not an Ed25519 PKCS#8 PEM.
    #[error("JWT key ({path}): {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A stored key could not be opened (another master key?) or parsed.
    #[error("signing key {0} in the database cannot be opened with this master key")]
    Sealed(String),
    /// The last rotation was less than a minute ago.
    #[error("the signing key was rotated less than a minute ago")]
    TooSoon {
        /// Seconds until a rotation is allowed again.
        retry_after_secs: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Retryable for KeyError {
    fn race(&self) -> Option<Race> {
        match self {
            KeyError::Db(e) => e.race(),
            _ => None,
        }
    }
}

/// What a rotation did.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The new signing key's id.
    pub kid: String,
    /// When the keys it replaced stop verifying (and leave the JWKS).
    pub previous_retire_after: NaiveDateTime,
}

/// The signing keys' table, and the box that seals their private halves.
pub struct KeyStore {
    sealer: SecretBox,
}

impl KeyStore {
    /// A store sealing with `sealer`.
    pub fn new(sealer: SecretBox) -> Self {
        Self { sealer }
    }

    /// Imports a key file from before keys were shared, or makes the first key, and loads the
    /// keys (see the module docs). `retire_secs`: how long an imported key that does not sign
    /// keeps verifying.
    pub async fn start(
        &self,
        db: &Db,
        config: &JwtConfig,
        data_dir: &Path,
        retire_secs: i64,
    ) -> Result<KeySet, KeyError> {
        let file = legacy_key_file(config, data_dir)?;
        transaction(db, async |conn: &mut Conn| -> Result<_, KeyError> {
            SigningKeyRow::lock_table(conn).await?;
            let stored = SigningKeyRow::all(conn).await?;
            let at = now();
            match &file {
                Some((path, der)) => {
                    let key = parse(der, path)?;
                    // Never again once stored: a key retired since stays retired.
                    if !SigningKeyRow::known(conn, &key.kid).await? {
                        let retire = (!stored.is_empty()).then(|| at + secs(retire_secs));
                        SigningKeyRow::insert(conn, &self.row(&key, der, at, retire)).await?;
                        tracing::info!(kid = %key.kid, path = %path.display(), signs = retire.is_none(), "imported the JWT signing key file into the database");
                    }
                }
                None if stored.is_empty() => {
                    let der = Ed25519Key::generate();
                    let key = Ed25519Key::from_pkcs8(&der).expect("a generated key parses");
                    SigningKeyRow::insert(conn, &self.row(&key, &der, at, None)).await?;
                    tracing::info!(kid = %key.kid, "generated the first JWT signing key");
                }
                None => {}
            }
            Ok(())
        })
        .await?;
        self.load(db).await
    }

    /// Every stored key, the newest signing.
    pub async fn load(&self, db: &Db) -> Result<KeySet, KeyError> {
        let rows = SigningKeyRow::all(&mut db.conn().await?).await?;
        let keys = rows
            .iter()
            .map(|row| {
                let der = self
                    .sealer
                    .open(&row.private_key, row.kid.as_bytes())
                    .map_err(|_| KeyError::Sealed(row.kid.clone()))?;
                Ed25519Key::from_pkcs8(&der).ok_or_else(|| KeyError::Sealed(row.kid.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Every start stores a key before loading, and the purge never retires the signing key.
        KeySet::ed25519(keys).ok_or_else(|| KeyError::Sealed("(none stored)".into()))
    }

    /// A new key signs from now on; the keys before it verify until `retire_secs` from now.
    pub async fn rotate(&self, db: &Db, retire_secs: i64) -> Result<Rotation, KeyError> {
        let der = Ed25519Key::generate();
        let key = Ed25519Key::from_pkcs8(&der).expect("a generated key parses");
        transaction(db, async |conn: &mut Conn| -> Result<_, KeyError> {
            SigningKeyRow::lock_table(conn).await?;
            let at = now();
            // The signing key came from a rotation if the keys it replaced are still there (they
            // stay for the life of their tokens, far longer than the minute); a key alone is
            // the first one, and may be replaced at once.
            let keys = SigningKeyRow::all(conn).await?;
            if let [signing, _, ..] = keys.as_slice() {
                let next = signing.created_at + Duration::seconds(MIN_ROTATION_INTERVAL_SECS);
                if next > at {
                    let wait = (next - at).num_seconds().max(1);
                    return Err(KeyError::TooSoon {
                        retry_after_secs: u64::try_from(wait).unwrap_or(1),
                    });
                }
            }
            SigningKeyRow::insert(conn, &self.row(&key, &der, at, None)).await?;
            let previous_retire_after = at + secs(retire_secs);
            SigningKeyRow::retire_others(conn, &key.kid, previous_retire_after).await?;
            Ok(Rotation {
                kid: key.kid.clone(),
                previous_retire_after,
            })
        })
        .await
    }

    /// Retires the keys whose last tokens have expired (their private keys erased); returns
    /// how many.
    pub async fn retire_expired(db: &Db) -> Result<usize, DbError> {
        let mut conn = db.conn().await?;
        SigningKeyRow::retire_expired(&mut conn, now()).await
    }

    fn row(
        &self,
        key: &Ed25519Key,
        der: &[u8],
        at: NaiveDateTime,
        retire_after: Option<NaiveDateTime>,
    ) -> SigningKeyRow {
        SigningKeyRow {
            kid: key.kid.clone(),
            algorithm: "EdDSA".into(),
            public_key: key.x.clone(),
            private_key: self.sealer.seal(der, key.kid.as_bytes()),
            created_at: at,
            retire_after,
            retired_at: None,
        }
    }
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// The key file of an instance from before keys were shared: `jwt.private_key_file` (which
/// must exist), or the data dir's generated one if it is there.
fn legacy_key_file(
    config: &JwtConfig,
    data_dir: &Path,
) -> Result<Option<(std::path::PathBuf, Vec<u8>)>, KeyError> {
    let path = config
        .private_key_file
        .clone()
        .unwrap_or_else(|| data_dir.join("jwt-ed25519.pem"));
    let err = |message: String| KeyError::File {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() {
        return match config.private_key_file {
            Some(_) => Err(err("file does not exist".into())),
            None => Ok(None),
        };
    }
    let pem = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
    let der = pem_to_der(&pem).ok_or_else(|| err("not a PEM \"PRIVATE KEY\" (PKCS#8)".into()))?;
    Ok(Some((path, der)))
}

fn parse(der: &[u8], path: &Path) -> Result<Ed25519Key, KeyError> {
    Ed25519Key::from_pkcs8(der).ok_or_else(|| KeyError::File {
        path: path.display().to_string(),
        message: "not an Ed25519 PKCS#8 key".into(),
    })
}

/// A PKCS#8 DER document as PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn der_to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)?
        .split("-----END PRIVATE KEY-----")
        .next()?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}
