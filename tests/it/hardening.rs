//! Stories of a service that cannot be turned against its users: no sandbox in production by
//! accident, a sandbox that survives bad input, tokens that must name our key, refresh retries
//! that do not log anyone out, and a data dir nobody else can read.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(concurrent_refreshes_with_one_token_keep_the_login);

/// The binary with a clean environment, its data in `dir`.
fn binary(dir: &std::path::Path) -> Command {
    let mut command = crate::common::tcp::binary();
    command
        .current_dir(dir)
        .env("WECHAT_IDENTITY_DATA_DIR", dir.join("data"))
        .env("RUST_LOG", "info");
    command
}

#[test]
fn without_apps_the_sandbox_never_starts_by_itself_outside_a_local_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let refusals = [
        vec![(
            "DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/never-reached",
        )],
        vec![("WECHAT_IDENTITY_LISTEN", "0.0.0.0:0")],
    ];
    for env in refusals {
        let out = binary(dir.path()).envs(env.clone()).output().unwrap();
        assert!(!out.status.success(), "{env:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("`apps`") && stderr.contains("sandbox = true"),
            "{env:?}: {stderr}"
        );
    }
    assert!(
        !dir.path().join("data").exists(),
        "a refused start creates nothing"
    );
}

#[test]
fn an_asked_for_sandbox_says_so_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nsandbox = true\n\n[[apps]]\nkind = \"mini_program\"\n\
         app_id = \"wxrealminiapp0001\"\nsecret = \"s\"\nname = \"Shop\"\n",
    )
    .unwrap();
    let mut child = binary(dir.path())
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.contains("get a login code") && Instant::now() < deadline {
        if let Ok(line) = got.recv_timeout(Duration::from_millis(200)) {
            log.push_str(&line);
            log.push('\n');
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited early ({status}): {log}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("sandbox mode (sandbox = true)"), "{log}");
    assert!(log.contains("wxrealminiapp0001"), "{log}");
    assert!(log.contains("log in as anyone"), "the warning: {log}");
    assert!(!log.contains("no WeChat apps configured"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_code_lifetime_is_refused_and_the_sandbox_keeps_working() {
    let app = TestApp::start(Backend::Sqlite).await;
    let res = app
        .http
        .post(format!("{}/sandbox/wechat/codes", app.base))
        .json(&json!({ "appId": MP_A, "user": "alice", "ttlSeconds": u64::MAX }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("ttlSeconds"),
        "{body}"
    );
    let res = app
        .http
        .post(format!("{}/sandbox/wechat/codes", app.base))
        .json(&json!({ "appId": MP_A, "user": "alice", "openid": "o".repeat(5000) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "overrides are bounded");
    let res = app
        .http
        .post(format!("{}/sandbox/wechat/clock", app.base))
        .json(&json!({ "advanceSeconds": 2_678_400u64 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // Codes and logins still work.
    app.login_mp(MP_A, "alice").await;
}

/// Signs `claims` with the service's own Ed25519 key (the file it imported, see
/// [`with_known_key`]) under a header of our choosing.
fn forge(app: &TestApp, claims: &Value, kid: Option<&str>) -> String {
    let pem = std::fs::read_to_string(app.dir.path().join("jwt-ed25519.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_our_key_id_is_refused_even_with_a_good_signature() {
    let app = TestApp::start_with(Backend::Sqlite, with_known_key).await;
    let login = app.login_mp(MP_A, "alice").await;
    let token = login["accessToken"].as_str().unwrap();
    let part = |i: usize| -> Value {
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(i).unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let (header, claims) = (part(0), part(1));
    let kid = header["kid"].as_str().expect("our tokens carry a kid");
    let good = forge(&app, &claims, Some(kid));
    assert_eq!(app.me(&good).await["data"]["me"]["id"], login["user"]["id"]);
    for kid in [None, Some("another-key")] {
        let body = app.me(&forge(&app, &claims, kid)).await;
        assert_eq!(
            error_code(&body),
            "UNAUTHENTICATED",
            "kid {kid:?}: {body:#}"
        );
    }
}

const REFRESH: &str =
    "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";

async fn concurrent_refreshes_with_one_token_keep_the_login(backend: Backend) {
    let app = TestApp::start(backend).await;
    let login = app.login_mp(MP_A, "alice").await;
    let token = login["refreshToken"].as_str().unwrap();
    // A client retrying: eight refreshes with one token at once.
    let tries = (0..8).map(|_| app.gql(None, REFRESH, json!({ "t": token })));
    let answers = futures_util::future::join_all(tries).await;
    for body in &answers {
        assert!(
            body.get("errors").is_none(),
            "a retry was refused: {body:#}"
        );
    }
    // Every answer is a working login: its access token reads `me`, its refresh token refreshes.
    for body in &answers {
        let access = body["data"]["refreshSession"]["accessToken"]
            .as_str()
            .unwrap();
        assert_eq!(
            app.me(access).await["data"]["me"]["id"],
            login["user"]["id"]
        );
        let next = body["data"]["refreshSession"]["refreshToken"]
            .as_str()
            .unwrap();
        let body = app.gql(None, REFRESH, json!({ "t": next })).await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut data = None;
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.data_dir = c.data_dir.join("data");
        c.database_url = None;
        data = Some(c.data_dir.clone());
    })
    .await;
    app.login_mp(MP_A, "alice").await;
    let data = data.unwrap();
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    for file in [
        "wechat-identity.db",
        "wechat-identity.db-wal",
        "session-key-encryption.key",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}
