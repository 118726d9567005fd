//! The test harness: a real service on a loopback port, with the sandbox (fake WeChat) in-process,
//! on a fresh SQLite file or a fresh PostgreSQL database per test.

use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use wechat_identity::app::{self, Running};
use wechat_identity::config::{Config, Secret};

pub const MP_A: &str = "wxsandboxminiapp01";
pub const MP_B: &str = "wxsandboxminiapp02";
pub const OA: &str = "wxsandboxofficial1";
pub const MP_UNBOUND: &str = "wxsandboxunbound01";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
pub const SERVICE_KEY: &str = "test-service-key-0123456789abcdef";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite` and `postgres` test functions for a story `async fn name(Backend)`.
/// The PostgreSQL one is ignored unless TEST_DATABASE_URL was set when the tests were built.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(test_postgres), ignore = "set TEST_DATABASE_URL to run on PostgreSQL")]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )+};
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub running: Running,
    pub dir: TempDir,
    pg: Option<(String, String)>,
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL must be set for PostgreSQL tests")
}

/// Runs one statement on the PostgreSQL server of TEST_DATABASE_URL, on its own thread and runtime
/// (usable from Drop).
pub fn pg_admin(sql: String) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use diesel_async::{AsyncConnection, SimpleAsyncConnection};
            let mut conn = diesel_async::AsyncPgConnection::establish(&pg_admin_url())
                .await
                .expect("connect to TEST_DATABASE_URL");
            conn.batch_execute(&sql).await.expect(&sql);
        });
    })
    .join()
    .expect("admin statement thread");
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
                pg = Some((name, url.to_string()));
                url.to_string()
            }
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            database_url: Some(Secret::new(database_url)),
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
        let base = format!("http://{}", running.addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApp {
            base,
            http,
            running,
            dir,
            pg,
        }
    }

    /// Runs a GraphQL operation, returns the whole JSON response.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("graphql request");
        assert_eq!(res.status(), 200);
        res.json().await.expect("graphql JSON")
    }

    /// Like [`gql`], asserting there are no errors, returning `data`.
    pub async fn gql_ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// A sandbox login code; `extra` may override openid/unionid/sessionKey/scope/ttlSeconds.
    pub async fn code_with(&self, app_id: &str, user: &str, extra: Value) -> String {
        let mut body = json!({ "appId": app_id, "user": user });
        if let Value::Object(extra) = extra {
            body.as_object_mut().unwrap().extend(extra);
        }
        let res = self
            .http
            .post(format!("{}/sandbox/wechat/codes", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        let v: Value = res.json().await.unwrap();
        v["code"].as_str().unwrap().to_owned()
    }

    pub async fn code(&self, app_id: &str, user: &str) -> String {
        self.code_with(app_id, user, json!({})).await
    }

    /// Injects a fault into the sandbox's next WeChat API call(s).
    pub async fn fault(&self, fault: Value) {
        let res = self
            .http
            .post(format!("{}/sandbox/wechat/faults", self.base))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }

    /// `loginWithMiniProgram` with a whole input object; returns the whole response.
    pub async fn login_mp_input(&self, input: Value) -> Value {
        self.gql(
            None,
            "mutation($input: LoginWithMiniProgramInput!) { loginWithMiniProgram(input: $input) {
                accessToken tokenType expiresIn refreshToken newUser
                user { id unionid nickname avatarUrl } } }",
            json!({ "input": input }),
        )
        .await
    }

    /// `loginWithMiniProgram` with `code`; returns the whole response.
    pub async fn login_mp_code(&self, app_id: &str, code: &str) -> Value {
        self.login_mp_input(json!({ "appId": app_id, "code": code }))
            .await
    }

    /// Logs `user` into Mini Program `app_id`; returns the AuthPayload.
    pub async fn login_mp(&self, app_id: &str, user: &str) -> Value {
        let code = self.code(app_id, user).await;
        let body = self.login_mp_code(app_id, &code).await;
        assert!(body.get("errors").is_none(), "login failed: {body:#}");
        body["data"]["loginWithMiniProgram"].clone()
    }

    /// `officialAccountAuthorizeUrl` for `app_id`; returns the URL and the state in it.
    pub async fn authorize_url(&self, app_id: &str, scope: &str) -> (String, String) {
        let data = self
            .gql_ok(
                None,
                "query($a: String!, $r: String!, $s: OfficialAccountScope!) {
                    officialAccountAuthorizeUrl(appId: $a, redirectUri: $r, scope: $s) }",
                json!({ "a": app_id, "r": "https://h5.example.com/oa/landing", "s": scope }),
            )
            .await;
        let url = data["officialAccountAuthorizeUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        let parsed = reqwest::Url::parse(&url).unwrap();
        let state = parsed
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("a state in the authorize URL");
        (url, state)
    }

    /// `loginWithOfficialAccount`; returns the whole response.
    pub async fn login_oa_code(&self, app_id: &str, code: &str, state: &str) -> Value {
        self.gql(
            None,
            "mutation($input: LoginWithOfficialAccountInput!) { loginWithOfficialAccount(input: $input) {
                accessToken refreshToken newUser user { id unionid nickname avatarUrl } } }",
            json!({ "input": { "appId": app_id, "code": code, "state": state } }),
        )
        .await
    }

    /// An OA web-authorization code for `user` with `scope` (`snsapi_base`/`snsapi_userinfo`).
    pub async fn oa_code(&self, user: &str, scope: &str) -> String {
        self.code_with(OA, user, json!({ "scope": scope })).await
    }

    /// Logs `user` into the sandbox Official Account the frontend-driven way (state from
    /// `officialAccountAuthorizeUrl`, code with `scope`); returns the AuthPayload.
    pub async fn login_oa(&self, user: &str, scope: &str) -> Value {
        let gql_scope = if scope == "snsapi_userinfo" {
            "SNSAPI_USERINFO"
        } else {
            "SNSAPI_BASE"
        };
        let (_, state) = self.authorize_url(OA, gql_scope).await;
        let code = self.oa_code(user, scope).await;
        let body = self.login_oa_code(OA, &code, &state).await;
        assert!(body.get("errors").is_none(), "OA login failed: {body:#}");
        body["data"]["loginWithOfficialAccount"].clone()
    }

    /// Runs one SQL statement on the service's database (to stand in for the passage of time).
    pub async fn exec(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = self.running.app.identity.db.conn().await.unwrap();
        wechat_identity::with_conn!(&mut conn, c => c.batch_execute(sql).await).unwrap();
    }

    /// `me` with a token; returns the whole response.
    pub async fn me(&self, token: &str) -> Value {
        self.gql(
            Some(token),
            "{ me { id unionid nickname avatarUrl phoneNumber mergedInto { id }
                miniProgramIdentities { id appId openid unionid user { id } }
                officialAccountIdentities { id appId openid unionid scope nickname avatarUrl
                    sex province city country user { id } } } }",
            json!({}),
        )
        .await
    }

    /// Rows in a table, read straight from the database (to check that nothing was written).
    pub async fn count(&self, table: &str) -> i64 {
        use diesel::sql_types::BigInt;
        use diesel_async::RunQueryDsl;
        let q = diesel::select(diesel::dsl::sql::<BigInt>(&format!(
            "(SELECT COUNT(*) FROM {table})"
        )));
        let mut conn = self.running.app.identity.db.conn().await.unwrap();
        wechat_identity::with_conn!(&mut conn, c => q.get_result::<i64>(c).await).unwrap()
    }

    /// Everything the service has written that a failed request must not touch: every column
    /// of users, identities, sessions, merge events and login tickets, and which authorization
    /// states were used (issuing a state is not a change of anyone's data). Compare two of
    /// these to see that nothing changed, not even a timestamp.
    pub async fn written(&self) -> Written {
        let c = |col: &str| format!("COALESCE(CAST({col} AS TEXT), '-')");
        let row = |cols: &[&str]| {
            cols.iter()
                .map(|col| c(col))
                .collect::<Vec<_>>()
                .join(" || '|' || ")
        };
        let tables: [(&str, String, &str); 7] = [
            (
                "users",
                row(&[
                    "id",
                    "unionid",
                    "nickname",
                    "avatar_url",
                    "phone_number",
                    "merged_into",
                    "created_at",
                    "updated_at",
                ]),
                "",
            ),
            (
                "mini_program_identities",
                row(&[
                    "id",
                    "user_id",
                    "app_id",
                    "openid",
                    "unionid",
                    "session_key",
                    "created_at",
                    "last_login_at",
                ]),
                "",
            ),
            (
                "official_account_identities",
                row(&[
                    "id",
                    "user_id",
                    "app_id",
                    "openid",
                    "unionid",
                    "scope",
                    "subscribed",
                    "subscribed_at",
                    "nickname",
                    "avatar_url",
                    "sex",
                    "province",
                    "city",
                    "country",
                    "created_at",
                    "last_login_at",
                ]),
                "",
            ),
            (
                "sessions",
                row(&[
                    "id",
                    "user_id",
                    "family",
                    "token_hash",
                    "expires_at",
                    "revoked_at",
                    "replaced_by",
                    "created_at",
                ]),
                "",
            ),
            (
                "merge_events",
                row(&[
                    "id",
                    "survivor_id",
                    "merged_id",
                    "reason",
                    "actor",
                    "identity_id",
                    "created_at",
                ]),
                "",
            ),
            (
                "login_tickets",
                row(&["token_hash", "user_id", "new_user", "expires_at", "used_at"]),
                "",
            ),
            (
                "oauth_states",
                row(&["id", "used_at"]),
                " WHERE used_at IS NOT NULL",
            ),
        ];
        let mut rows = Vec::new();
        for (table, expr, filter) in tables {
            rows.extend(
                self.texts(&format!(
                    "SELECT '{table}:' || {expr} AS v FROM {table}{filter}"
                ))
                .await,
            );
        }
        rows.sort();
        Written(rows)
    }

    /// The text column `v` of every row of `sql`.
    async fn texts(&self, sql: &str) -> Vec<String> {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let mut conn = self.running.app.identity.db.conn().await.unwrap();
        let rows: Vec<Row> =
            wechat_identity::with_conn!(&mut conn, c => diesel::sql_query(sql).load(c).await)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|r| r.v).collect()
    }
}

/// What the service has written, row by row (see [`TestApp::written`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written(pub Vec<String>);

impl Written {
    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.running.handle.abort();
        if let Some((name, _)) = self.pg.take() {
            pg_admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body:#}"))
}
