//! A person in a real browser (headless Chromium, driven over WebDriver by chromedriver), on the
//! sandbox's demo frontend: starts the server-driven login (`/auth/official-account/{appId}/
//! authorize`) or the frontend-driven one (`startOfficialAccountLogin`), approves on the
//! sandbox's WeChat page, comes back to the frontend with a ticket or a code, and ends logged in,
//! with `me` on the screen.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `CHROMIUM` / `CHROMEDRIVER` pointing at
//! them) when the tests are built; without them the test is compiled as ignored, and `.ci/run`
//! fails on that.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

/// A WebDriver session on a chromedriver child process.
struct Browser {
    http: reqwest::Client,
    url: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

impl Browser {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(env_or("CHROMEDRIVER", "/usr/bin/chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(20), "chromedriver is ready", || async {
            let Ok(res) = http.get(format!("{base}/status")).send().await else {
                return false;
            };
            let v: Value = res.json().await.unwrap_or_default();
            v["value"]["ready"] == true
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let session: Value = http
            .post(format!("{base}/session"))
            .json(&json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": env_or("CHROMIUM", "/usr/bin/chromium"), "args": args }
            } } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {session:#}"));
        Browser {
            url: format!("{base}/session/{id}"),
            http,
            driver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v:#}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The element matching `css`, or `None` while it is not there.
    async fn try_find(&self, css: &str) -> Option<String> {
        let v: Value = self
            .http
            .post(format!("{}/element", self.url))
            .json(&json!({ "using": "css selector", "value": css }))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let obj = v["value"]
            .as_object()
            .filter(|o| !o.contains_key("error"))?;
        Some(obj.values().next()?.as_str()?.to_owned())
    }

    /// The element matching `css`, waiting for it to appear.
    async fn find(&self, css: &str) -> String {
        let what = format!("an element {css} is there");
        eventually(Duration::from_secs(15), &what, || self.try_find(css)).await
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The text of `css`, or `None` while it is not there (or the page is changing under it).
    async fn try_text(&self, css: &str) -> Option<String> {
        let el = self.try_find(css).await?;
        let v: Value = self
            .http
            .get(format!("{}/element/{el}/text", self.url))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["value"].as_str().map(str::to_owned)
    }

    async fn text(&self, css: &str) -> String {
        self.wait_text(css, |_| true).await
    }

    /// Waits until `css` is there and its text satisfies `done`; returns the text.
    async fn wait_text(&self, css: &str, done: impl Fn(&str) -> bool) -> String {
        let what = format!("{css}'s text got there");
        eventually(Duration::from_secs(20), &what, || async {
            match self.try_text(css).await {
                Some(text) if done(&text) => Ok(text),
                text => Err((text, self.current_url().await)),
            }
        })
        .await
    }

    async fn quit(mut self) {
        let _ = self.http.delete(&self.url).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// How the demo page logs in: its link ids start with `login-` (server-driven) or `start-`
/// (frontend-driven, `startOfficialAccountLogin`).
#[derive(Clone, Copy)]
enum Flow {
    ServerDriven,
    FrontendDriven,
}

/// On the demo page, taps the `flow` login link for `scope`, approves on WeChat's page as `user`
/// (or denies), and waits for the page to settle; returns its status line.
async fn log_in(
    browser: &Browser,
    app: &TestApp,
    flow: Flow,
    scope: &str,
    user: &str,
    allow: bool,
) -> String {
    let link = match flow {
        Flow::ServerDriven => "login",
        Flow::FrontendDriven => "start",
    };
    log_in_with(
        browser,
        app,
        &format!("#{link}-{OA}-{scope}"),
        OA,
        user,
        allow,
    )
    .await
}

/// On the demo page, taps the link `#link`, answers WeChat's page for `app_id` as `user`
/// (allow or deny), and waits for the page to settle; returns its status line.
async fn log_in_with(
    browser: &Browser,
    app: &TestApp,
    link: &str,
    app_id: &str,
    user: &str,
    allow: bool,
) -> String {
    browser
        .goto(&format!("{}/sandbox/login-demo", app.base))
        .await;
    assert_eq!(browser.text("#status").await, "not logged in");
    browser.click(link).await;
    // WeChat (the sandbox) asks who they are and whether to allow it.
    browser.type_into("#user", user).await;
    assert_eq!(browser.text("#appid").await, app_id);
    browser.click(if allow { "#allow" } else { "#deny" }).await;
    browser
        .wait_text("#status", |t| {
            t.starts_with("logged in") || t.starts_with("login failed")
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_browser),
    ignore = "install chromium and chromium-driver to run the browser test"
)]
async fn a_person_logs_in_with_the_official_account_in_a_real_browser() {
    let app = TestApp::start(Backend::Sqlite).await;
    let browser = Browser::start().await;

    // The frontend's page links to the server-driven flow; alice taps it and approves in
    // WeChat. Back on the frontend, the ticket is redeemed and `me` is shown.
    let status = log_in(
        &browser,
        &app,
        Flow::ServerDriven,
        "snsapi_userinfo",
        "alice",
        true,
    )
    .await;
    assert_eq!(status, "logged in as Alice (new user)");
    let me: Value = serde_json::from_str(&browser.text("#me").await).unwrap();
    assert_eq!(me["nickname"], "Alice");
    assert_eq!(me["unionid"].as_str().unwrap().len(), 28);
    assert_eq!(me["officialAccountIdentities"][0]["appId"], OA);
    assert_eq!(
        me["officialAccountIdentities"][0]["scope"],
        "SNSAPI_USERINFO"
    );
    assert_eq!(
        browser.current_url().await,
        format!("{}/sandbox/login-demo", app.base),
        "the used ticket left the address bar"
    );

    // The service agrees.
    let data = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($id: ID!) { user(id: $id) { nickname officialAccountIdentities { appId } } }",
            json!({ "id": me["id"] }),
        )
        .await;
    assert_eq!(data["user"]["nickname"], "Alice");

    // Later, the silent snsapi_base way, both flows: the same person, the same user.
    for flow in [Flow::ServerDriven, Flow::FrontendDriven] {
        let status = log_in(&browser, &app, flow, "snsapi_base", "alice", true).await;
        assert_eq!(status, "logged in as Alice");
        let again: Value = serde_json::from_str(&browser.text("#me").await).unwrap();
        assert_eq!(again["id"], me["id"]);
        assert_eq!(
            browser.current_url().await,
            format!("{}/sandbox/login-demo", app.base),
            "the used code or ticket left the address bar"
        );
    }

    // Bob, frontend-driven with his profile: a new user, as WeChat told it.
    let status = log_in(
        &browser,
        &app,
        Flow::FrontendDriven,
        "snsapi_userinfo",
        "bob",
        true,
    )
    .await;
    assert_eq!(status, "logged in as Bob (new user)");

    // A refusal comes back as an error on the page, either way.
    for flow in [Flow::ServerDriven, Flow::FrontendDriven] {
        let status = log_in(&browser, &app, flow, "snsapi_userinfo", "alice", false).await;
        assert!(status.contains("ACCESS_DENIED"), "{status}");
    }
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_browser),
    ignore = "install chromium and chromium-driver to run the browser test"
)]
async fn a_person_logs_into_the_website_by_scanning_its_qr_code_in_a_real_browser() {
    const WEBSITE: &str = "wxsandboxwebsite01";
    let app = TestApp::start(Backend::Sqlite).await;
    // Carol already uses a Mini Program.
    let mp = app.login_mp(MP_A, "carol").await;
    let browser = Browser::start().await;
    // On the website she taps "log in with the QR code": WeChat's QR page shows a code, she
    // scans it as herself and confirms; back on the website, she is logged in.
    let link = format!("#login-{WEBSITE}-snsapi_login");
    browser
        .goto(&format!("{}/sandbox/login-demo", app.base))
        .await;
    browser.click(&link).await;
    assert!(
        browser.try_find("#qr").await.is_some(),
        "WeChat's page shows the QR code"
    );
    let status = log_in_with(&browser, &app, &link, WEBSITE, "carol", true).await;
    assert_eq!(status, "logged in as Carol");
    let me: Value = serde_json::from_str(&browser.text("#me").await).unwrap();
    assert_eq!(me["id"], mp["user"]["id"], "the Mini Program's user");
    assert_eq!(me["websiteIdentities"][0]["appId"], WEBSITE);
    assert_eq!(me["websiteIdentities"][0]["unionid"], me["unionid"]);
    assert_eq!(me["miniProgramIdentities"][0]["appId"], MP_A);
    assert_eq!(
        browser.current_url().await,
        format!("{}/sandbox/login-demo", app.base),
        "the used ticket left the address bar"
    );
    // Refusing on the phone comes back as an error on the page.
    let status = log_in_with(&browser, &app, &link, WEBSITE, "carol", false).await;
    assert!(status.contains("ACCESS_DENIED"), "{status}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_browser),
    ignore = "install chromium and chromium-driver to run the browser test"
)]
async fn graphiql_from_the_service_itself_runs_a_query() {
    let app = TestApp::start(Backend::Sqlite).await;
    // The page names no other origin, and its policy lets the browser load nothing from one.
    let res = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("http"),
        "an external URL in the page: {html}"
    );

    let browser = Browser::start().await;
    let query = "{ __type(name: \"WeChatApp\") { fields { name } } }";
    let url = reqwest::Url::parse_with_params(&format!("{}/graphql", app.base), &[("edit", query)])
        .unwrap();
    browser.goto(url.as_str()).await;
    browser.click(".graphiql-execute-button").await;
    let result = browser
        .wait_text(".result-window", |t| t.contains("appId"))
        .await;
    assert!(result.contains("\"__type\""), "{result}");
    assert!(result.contains("kind"), "{result}");
    browser.quit().await;
}
