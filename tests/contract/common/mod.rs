//! The contract suite's harness: a fresh database per test (a SQLite file in a temp dir, or a
//! PostgreSQL database of its own made from TEST_DATABASE_URL and dropped afterwards), an
//! [`Identity`] built directly on it (no HTTP, no sandbox: its WeChat client points at a closed
//! port and is never called), and readers of what is in the database.
//!
//! - [`seed`]: rows written straight through the model functions, and sightings run through
//!   `sighting::record` inside `transaction`;
//! - [`snapshot`]: every column of every table as text, to show that nothing changed.

pub mod seed;
pub mod snapshot;

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tempfile::TempDir;
use wechat_identity::auth::keys::KeyStore;
use wechat_identity::auth::{ApiKeys, TokenIssuer};
use wechat_identity::config::{ApiKeyConfig, ApiKeyRole, Config, Secret};
use wechat_identity::crypto::{SecretBox, Signer};
use wechat_identity::db::models::merge_event::MergeEventRow;
use wechat_identity::db::models::mini_program_identity::MiniProgramIdentityRow;
use wechat_identity::db::models::official_account_identity::OfficialAccountIdentityRow;
use wechat_identity::db::models::session::SessionRow;
use wechat_identity::db::models::user::UserRow;
use wechat_identity::db::schema::{
    merge_events, mini_program_identities, official_account_identities, sessions, users,
};
use wechat_identity::db::{Conn, Db};
use wechat_identity::identity::{Identity, Setup};
use wechat_identity::wechat::WechatClient;
use wechat_identity::with_conn;

/// The admin API key the [`Identity`] of every test knows, and the name merges record.
pub const ADMIN_KEY: &str = "contract-admin-key-0123456789abcdef";
pub const ADMIN_NAME: &str = "contract-admin";
/// A service (read-only) key.
pub const SERVICE_KEY: &str = "contract-service-key-0123456789abcdef";

/// App ids used by the suite (the identity layer does not check them against the config when
/// recording a sighting; they only key identities and name the actor of a merge).
pub const MP_A: &str = "wxcontractmini0001";
pub const MP_B: &str = "wxcontractmini0002";
pub const OA: &str = "wxcontractoffice01";

#[path = "../../support/backends.rs"]
mod backends;
pub use backends::{Backend, pg_admin, pg_admin_url};
#[path = "../../support/eventually.rs"]
mod waiting;
pub use waiting::eventually;
#[path = "../../support/steps.rs"]
pub mod steps;

/// One test's database and identity service.
pub struct Ctx {
    pub db: Db,
    /// The database's URL (a second pool, as another instance would open, may be pointed at it).
    pub url: String,
    pub identity: Identity,
    pub backend: Backend,
    /// The PostgreSQL database made for this test, dropped with it.
    pg: Option<String>,
    /// Declared last: the SQLite file and the JWT key live here.
    _dir: TempDir,
}

impl Ctx {
    /// A fresh, migrated database and an [`Identity`] on it.
    pub async fn new(backend: Backend) -> Self {
        Self::with_pool(backend, 4).await
    }

    /// Like [`Ctx::new`] with `pool_size` connections.
    pub async fn with_pool(backend: Backend, pool_size: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut pg = None;
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("x.db").display()),
            Backend::Postgres => {
                let name = format!("wi_test_{}", uuid::Uuid::new_v4().simple());
                pg_admin(format!("CREATE DATABASE {name}"));
                let mut url = reqwest::Url::parse(&pg_admin_url()).unwrap();
                url.set_path(&name);
                pg = Some(name);
                url.to_string()
            }
        };
        let db = Db::connect(&url, pool_size)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        let api_keys = vec![
            ApiKeyConfig {
                name: ADMIN_NAME.into(),
                role: ApiKeyRole::Admin,
                key: Secret::new(ADMIN_KEY),
            },
            ApiKeyConfig {
                name: "contract-service".into(),
                role: ApiKeyRole::Service,
                key: Secret::new(SERVICE_KEY),
            },
        ];
        let config = Config {
            data_dir: dir.path().to_owned(),
            database_url: Some(Secret::new(url.clone())),
            api_keys: api_keys.clone(),
            ..Config::default()
        };
        let key_store = KeyStore::new(SecretBox::new(&[6; 32]));
        let keys = key_store
            .start(&db, &config.jwt, dir.path(), 900)
            .await
            .expect("a JWT key");
        let tokens = TokenIssuer::new(&config.jwt, config.jwt_issuer(), Default::default(), keys);
        let identity = Identity::new(Setup {
            // Port 9 (discard) on loopback: nothing here calls WeChat.
            wechat: WechatClient::new("http://127.0.0.1:9", Duration::from_millis(200)),
            tokens,
            key_store: Some(key_store),
            sealer: SecretBox::new(&[7; 32]),
            token_sealer: SecretBox::new(&[8; 32]),
            wechat_clock: Default::default(),
            state_signer: Signer::new(&[9; 32]),
            api_keys: ApiKeys::from_config(&api_keys),
            db: db.clone(),
            config,
        });
        Ctx {
            db,
            url,
            identity,
            backend,
            pg,
            _dir: dir,
        }
    }

    /// A pooled connection (outside any transaction).
    pub async fn conn(&self) -> Conn {
        self.db.conn().await.expect("a connection")
    }

    /// How many rows `table` has.
    pub async fn count(&self, table: &str) -> i64 {
        use diesel::sql_types::BigInt;
        let q = diesel::select(diesel::dsl::sql::<BigInt>(&format!(
            "(SELECT COUNT(*) FROM {table})"
        )));
        let mut conn = self.conn().await;
        with_conn!(&mut conn, c => q.get_result::<i64>(c).await).unwrap()
    }

    /// Every user, in id (= creation) order.
    pub async fn users(&self) -> Vec<UserRow> {
        let q = users::table.order(users::id.asc());
        let mut conn = self.conn().await;
        with_conn!(&mut conn, c => q.load::<UserRow>(c).await).unwrap()
    }

    /// The user `id` (panics when absent).
    pub async fn user(&self, id: &wechat_identity::types::UserId) -> UserRow {
        let mut conn = self.conn().await;
        UserRow::find(&mut conn, id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("user {id} exists"))
    }

    /// Every Mini Program identity, by (app, openid).
    pub async fn mp_identities(&self) -> Vec<MiniProgramIdentityRow> {
        use mini_program_identities as t;
        let q = t::table.order((t::app_id.asc(), t::openid.asc()));
        let mut conn = self.conn().await;
        with_conn!(&mut conn, c => q.load::<MiniProgramIdentityRow>(c).await).unwrap()
    }

    /// Every Official Account identity, by (app, openid).
    pub async fn oa_identities(&self) -> Vec<OfficialAccountIdentityRow> {
        use official_account_identities as t;
        let q = t::table.order((t::app_id.asc(), t::openid.asc()));
        let mut conn = self.conn().await;
        with_conn!(&mut conn, c => q.load::<OfficialAccountIdentityRow>(c).await).unwrap()
    }

    /// Every session, in id (= creation) order.
    pub async fn sessions(&self) -> Vec<SessionRow> {
        let q = sessions::table.order(sessions::id.asc());
        let mut conn = self.conn().await;
        with_conn!(&mut conn, c => q.load::<SessionRow>(c).await).unwrap()
    }

    /// Every merge event, in id (= creation) order.
    pub async fn merge_events(&self) -> Vec<MergeEventRow> {
        let q = merge_events::table.order(merge_events::id.asc());
        let mut conn = self.conn().await;
        with_conn!(&mut conn, c => q.load::<MergeEventRow>(c).await).unwrap()
    }

    /// Runs SQL statements, in order, on one connection, past the model functions (to store
    /// what they never would); the rows each one changed.
    pub async fn sql(&self, statements: &[&str]) -> Result<Vec<usize>, diesel::result::Error> {
        let mut conn = self.conn().await;
        let mut changed = Vec::new();
        for statement in statements {
            changed
                .push(with_conn!(&mut conn, c => diesel::sql_query(*statement).execute(c).await)?);
        }
        Ok(changed)
    }

    /// Sets `column` of the row `id` of `table` to `text`, past the column's CHECK constraint
    /// (`{table}_{column}_check`): what a newer build that added a value, and that an older
    /// build then reads, would leave.
    pub async fn store_unchecked(&self, table: &str, column: &str, id: &str, text: &str) {
        let update = format!("UPDATE {table} SET {column} = '{text}' WHERE id = '{id}'");
        let (lift, restore) = match self.backend {
            Backend::Sqlite => (
                "PRAGMA ignore_check_constraints = ON".to_owned(),
                "PRAGMA ignore_check_constraints = OFF".to_owned(),
            ),
            // The test's own database: the constraint stays dropped.
            Backend::Postgres => (
                format!("ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_check"),
                "SELECT 1".to_owned(),
            ),
        };
        let changed = self.sql(&[&lift, &update, &restore]).await;
        assert_eq!(
            changed.expect("stored past the check")[1],
            1,
            "{table} {id} exists"
        );
    }

    /// The `Authorization` header value of the admin key.
    pub fn admin_auth(&self) -> Vec<u8> {
        format!("Bearer {ADMIN_KEY}").into_bytes()
    }
}

/// An error and its causes, outermost first: what a log of it shows.
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if let Some(name) = self.pg.take() {
            pg_admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
