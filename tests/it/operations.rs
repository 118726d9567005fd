//! Stories of an operator running the binary: its log is JSON lines, one access line per
//! request with the request id it was given (or made) and the caller's trace id, every line a
//! request causes carries them (a job's enqueue too), and no code, token, key or secret is ever
//! in it; the start-up checks warn about a configuration unfit for production, or refuse it
//! with `strict = true`.

use serde_json::{Value, json};

use crate::common::tcp::{Service, binary};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    the_log_is_json_lines_with_request_ids_and_no_secrets,
    a_configuration_unfit_for_production_is_warned_about_or_refused
);

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// The binary on `app`'s database and data dir (its keys), in sandbox mode, logging.
async fn binary_beside(app: &TestApp, config: &str) -> Service {
    let data_dir = app.dir.path().display().to_string();
    Service::start_logged(
        config,
        &[
            ("DATABASE_URL", app.database_url.as_str()),
            ("WECHAT_IDENTITY_DATA_DIR", data_dir.as_str()),
            ("WECHAT_IDENTITY_ADMIN_KEY", ADMIN_KEY),
        ],
    )
    .await
}

/// Posts a GraphQL operation with `headers`; the response's `x-request-id` and body.
async fn post(
    base: &str,
    headers: &[(&str, &str)],
    query: &str,
    variables: Value,
) -> (String, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (id, response.json().await.unwrap())
}

/// The log, once one of its lines holds every one of `parts` (within 10 s).
async fn logged(service: &Service, what: &str, parts: &[&str]) -> String {
    let mut log = String::new();
    eventually(std::time::Duration::from_secs(10), what, || {
        log = service.log();
        let done = log.lines().any(|l| parts.iter().all(|p| l.contains(p)));
        async move { done }
    })
    .await;
    log
}

/// The lines that ran inside the request with `id` (their span list names it).
fn lines_of<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["request_id"] == id))
        })
        .collect()
}

async fn the_log_is_json_lines_with_request_ids_and_no_secrets(backend: Backend) {
    let app = TestApp::start(backend).await;
    let service = binary_beside(&app, "sandbox = true\n").await;
    let base = service.base.clone();
    let http = reqwest::Client::new();
    let code: Value = http
        .post(format!("{base}/sandbox/wechat/codes"))
        .json(&json!({ "appId": MP_A, "user": "alice" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = code["code"].as_str().unwrap().to_owned();
    let login = "mutation Login($code: String!) { loginWithMiniProgram(input: {appId: \"wxsandboxminiapp01\", code: $code}) { accessToken refreshToken } }";
    let traceparent = format!("00-{TRACE_ID}-b7ad6b7169203331-01");
    let (id, body) = post(
        &base,
        &[
            ("x-request-id", "it-login-1"),
            ("traceparent", &traceparent),
        ],
        login,
        json!({ "code": code }),
    )
    .await;
    assert_eq!(id, "it-login-1", "a given request id comes back");
    let access = body["data"]["loginWithMiniProgram"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let refresh = body["data"]["loginWithMiniProgram"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, refreshed) = post(
        &base,
        &[],
        "mutation($t: String!) { refreshSession(refreshToken: $t) { refreshToken } }",
        json!({ "t": refresh }),
    )
    .await;
    let new_refresh = refreshed["data"]["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{refreshed}"))
        .to_owned();
    let bearer = format!("Bearer {access}");
    let (made_id, me) = post(
        &base,
        &[
            ("authorization", &bearer),
            ("x-request-id", "not a plain id!"),
        ],
        "query Me { me { id } }",
        json!({}),
    )
    .await;
    assert!(me["data"]["me"]["id"].is_string(), "{me}");
    assert!(
        made_id.len() == 32 && made_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "an id that is not plain is replaced by a new one: {made_id}"
    );
    let bad_code = "0123456789abcdef0123456789abcdef";
    let (_, refused) = post(
        &base,
        &[("x-request-id", "it-bad-code")],
        login,
        json!({ "code": bad_code }),
    )
    .await;
    assert_eq!(error_code(&refused), "WECHAT_CODE_INVALID");
    let admin = format!("Bearer {ADMIN_KEY}");
    let (_, sync) = post(
        &base,
        &[("authorization", &admin), ("x-request-id", "it-sync")],
        "mutation Sync { syncOfficialAccountFollowers(appId: \"wxsandboxofficial1\") { id } }",
        json!({}),
    )
    .await;
    assert!(sync["errors"].is_null(), "{sync}");

    // A client that gives up (WeChat is slow) leaves an access line too, status 499. The fault is
    // for the code exchange only: the follower sync queued above may still be calling WeChat.
    let fault = json!({ "path": "/sns/jscode2session", "delayMs": 3000, "count": 1 });
    let res = http
        .post(format!("{base}/sandbox/wechat/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let code2: Value = http
        .post(format!("{base}/sandbox/wechat/codes"))
        .json(&json!({ "appId": MP_A, "user": "bob" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gave_up = http
        .post(format!("{base}/graphql"))
        .header("x-request-id", "it-gave-up")
        .timeout(std::time::Duration::from_millis(500))
        .json(&json!({ "query": login, "variables": { "code": code2["code"] } }))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client timed out");
    logged(
        &service,
        "the abandoned request's access line",
        &["\"it-gave-up\"", "\"status\":499"],
    )
    .await;
    let log = logged(
        &service,
        "the last request's access line",
        &["\"it-sync\"", "\"wechat_identity::access\""],
    )
    .await;
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for line in &lines {
        assert!(
            line["timestamp"].is_string()
                && line["level"].is_string()
                && line["target"].is_string(),
            "{line}"
        );
    }
    let access_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "wechat_identity::access")
        .collect();
    let login_line = access_lines
        .iter()
        .find(|l| l["request_id"] == "it-login-1")
        .unwrap_or_else(|| panic!("no access line for it-login-1 in {log}"));
    assert_eq!(login_line["method"], "POST");
    assert_eq!(login_line["route"], "/graphql");
    assert_eq!(login_line["status"], 200);
    assert_eq!(login_line["operation"], "Login");
    assert_eq!(login_line["operation_type"], "mutation");
    assert_eq!(login_line["trace_id"], TRACE_ID);
    assert_eq!(login_line["client"], "127.0.0.1");
    assert!(login_line["duration_ms"].as_f64().unwrap() > 0.0);
    let me_line = access_lines
        .iter()
        .find(|l| l["request_id"] == made_id.as_str())
        .unwrap_or_else(|| panic!("the made-up id {made_id} is the access line's"));
    assert_eq!(me_line["operation"], "Me");
    assert_eq!(me_line["operation_type"], "query");
    // One access line per request: six GraphQL requests (one abandoned), codes, readiness polls.
    let graphql = access_lines
        .iter()
        .filter(|l| l["route"] == "/graphql")
        .count();
    assert_eq!(graphql, 6, "{log}");
    // What a request causes is logged inside it: WeChat's refusal, the job it queued.
    assert!(
        lines_of(&lines, "it-bad-code")
            .iter()
            .any(|l| l["target"] != "wechat_identity::access" && l["errcode"] == 40029),
        "the code exchange's failure names the request and the errcode: {log}"
    );
    assert!(
        lines_of(&lines, "it-sync")
            .iter()
            .any(|l| l["message"] == "job queued" && l["kind"] == "follower_sync"),
        "the job's enqueue names the request: {log}"
    );
    // Nothing secret, ever.
    let key_file =
        std::fs::read_to_string(app.dir.path().join("session-key-encryption.key")).unwrap();
    let mut secrets = vec![
        code.clone(),
        bad_code.to_owned(),
        access.clone(),
        refresh.clone(),
        new_refresh.clone(),
        ADMIN_KEY.to_owned(),
        key_file.trim().to_owned(),
    ];
    for app in wechat_identity::config::sandbox_demo_apps() {
        secrets.push(app.secret.expose().to_owned());
    }
    for secret in secrets {
        assert!(secret.len() >= 8, "{secret}");
        assert!(!log.contains(&secret), "the log holds a secret: {secret}");
    }
}

async fn a_configuration_unfit_for_production_is_warned_about_or_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let real_app = "[[apps]]\nkind = \"mini_program\"\napp_id = \"wxrealminiapp0001\"\n\
                    secret = \"a-real-looking-secret\"\nname = \"Shop\"\n";
    // Real apps, no public_url: it starts, and says so loudly. (WeChat here is a closed port.)
    let service = binary_beside(
        &app,
        &format!("sandbox = false\n[wechat]\napi_base_url = \"http://127.0.0.1:1\"\n{real_app}"),
    )
    .await;
    let warned = |log: &str| {
        log.lines().any(|l| {
            let l: Value = serde_json::from_str(l).unwrap();
            l["level"] == "WARN"
                && l["message"].as_str().is_some_and(|m| {
                    m.starts_with("START-UP CHECK") && m.contains("public_url is not set")
                })
        })
    };
    assert!(warned(&service.log()), "{}", service.log());
    // WeChat unreachable: the caller hears WECHAT_UNAVAILABLE, the log says why and where.
    let (_, body) = post(
        &service.base,
        &[("x-request-id", "it-unreachable")],
        "mutation { loginWithMiniProgram(input: {appId: \"wxrealminiapp0001\", code: \"0123456789abcdef\"}) { accessToken } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "WECHAT_UNAVAILABLE");
    let log = service.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let inside = lines_of(&lines, "it-unreachable");
    assert!(
        inside.iter().any(|l| l["endpoint"] == "jscode2session"
            && l["cause"] == "refused"
            && l["host"] == "127.0.0.1:1"
            && l["error"].as_str().is_some_and(|e| e.contains("refused"))),
        "the transport failure's cause and host: {log}"
    );
    assert!(
        inside.iter().any(|l| l["app"] == "wxrealminiapp0001"),
        "the failure names the app: {log}"
    );
    assert!(!log.contains("a-real-looking-secret"));
    drop(service);
    // With public_url: no warning.
    let service = binary_beside(
        &app,
        &format!("sandbox = false\npublic_url = \"https://id.example.com\"\n{real_app}"),
    )
    .await;
    assert!(
        !service.log().contains("START-UP CHECK"),
        "{}",
        service.log()
    );
    drop(service);
    // strict = true: it refuses to start, and says why.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("strict = true\nsandbox = false\nlisten = \"127.0.0.1:0\"\n{real_app}"),
    )
    .unwrap();
    let out = binary()
        .arg("--config")
        .arg(&config)
        .env("DATABASE_URL", &app.database_url)
        .env("WECHAT_IDENTITY_DATA_DIR", app.dir.path())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a strict start with no public_url was refused"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("strict") && stderr.contains("public_url"),
        "{stderr}"
    );
}
