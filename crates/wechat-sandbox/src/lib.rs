//! The sandbox: a fake WeChat API that behaves like WeChat, served over real HTTP (tests and the
//! identity service's sandbox mode call it with the `wechat-client` crate, as they would call
//! WeChat).
//!
//! Sandbox users are named (`alice`). A user's openid is derived from (app, user), the unionid
//! from (open platform, user), so one person gets one unionid across bound apps and none in an
//! unbound app. Codes are single-use and expire; each WeChat error can be injected as a fault.
//! Official Account web authorization is faked end to end: an approval page at WeChat's
//! authorize URL, codes per scope, access/refresh tokens that expire, `/sns/userinfo` that
//! answers 48001 to a `snsapi_base` token, and snapshot (virtual) users; so is a website's QR
//! login (the page at `/connect/qrconnect`, scope `snsapi_login`) and a mobile app's SDK login
//! (`POST /codes` hands out its code), through the same token API.
//! Official Account followers, app access tokens and the three message-sending APIs are faked
//! too, with the pushes WeChat makes to the service's webhook (follow events, delivery results,
//! consent popups).
//! An Official Account's JS-SDK too: `getticket` hands out its `jsapi_ticket` (one per app
//! until it expires), and `POST /js-sdk/verify` checks a page's `wx.config` against it.
//! Mini Program phone numbers are faked as well: `POST /phone-codes` hands out what a
//! `getPhoneNumber` button gives (each user has a number of their own unless the request names
//! one), `getuserphonenumber` exchanges it. A Mini Program code of `POST /codes` is a `wx.login`:
//! its session key becomes the person's current one, which `/wxa/checksession` checks.
//!
//! Routes (mounted under `/sandbox/wechat`):
//! - the faked API, where injected faults apply: `/sns/jscode2session`,
//!   `/sns/oauth2/access_token`, `/sns/oauth2/refresh_token`, `/sns/userinfo`, `/sns/auth`,
//!   `/cgi-bin/stable_token`, `/cgi-bin/token`, `/cgi-bin/user/get`, `/cgi-bin/user/info`,
//!   `/cgi-bin/user/info/batchget`, `/cgi-bin/message/template/send`,
//!   `/cgi-bin/message/subscribe/bizsend`, `/cgi-bin/message/subscribe/send`,
//!   `/wxa/business/getuserphonenumber`, `/wxa/checksession`, `/cgi-bin/ticket/getticket`;
//! - the approval pages `/connect/oauth2/authorize` and `/connect/qrconnect`;
//! - control endpoints: `/codes`, `/phone-codes`, `/faults`, `/clock`, `/tokens`, `/stats`,
//!   `/followers`, `/follow`, `/unfollow`, `/push`, `/templates`, `/consents`,
//!   `/message-settings`, `/messages`, `/js-sdk/verify`.

mod apps;
mod authorize;
mod codes;
mod control;
mod faults;
mod followers;
mod js_sdk;
pub mod messages;
mod mini_program;
mod official_account;
mod phone;
mod push;
mod session;
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use wechat_client::{AppKind, crypto};

pub use apps::{App, DEMO_ENCODING_AES_KEY, DEMO_WEBHOOK_TOKEN, SAMPLE_MINI_PROGRAM, demo_apps};
pub use control::{CodeRequest, FaultRequest};
pub use followers::{AddFollowers, FollowerCalls};
pub use js_sdk::{JsSdkVerifyRequest, TICKET_TTL, TIMESTAMP_SKEW_SECS};
pub use messages::MessageCalls;
pub use phone::{DEFAULT_COUNTRY_CODE, PhoneCodeRequest, PhoneNumberCalls, default_phone_number};
pub use push::{FollowRequest, PushMode, PushRequest, Pushed};
pub use session::MAX_SESSION_KEYS;
pub use tokens::{TokenControl, TokenStats};

/// The path prefix under which the sandbox is mounted.
pub const MOUNT: &str = "/sandbox/wechat";

/// How long a code stays valid unless the request says otherwise (WeChat: 5 minutes).
pub const CODE_TTL: Duration = Duration::from_secs(300);

/// The longest code lifetime a test may ask for (a day).
pub const MAX_CODE_TTL_SECS: u64 = 24 * 3600;

/// Unexpired codes of each kind (login, phone number) the sandbox holds at most (its memory
/// stays bounded).
pub const MAX_CODES: usize = 200_000;

/// Pending faults at most.
pub const MAX_FAULTS: usize = 1000;

/// How far `POST /clock` may move the sandbox's clock ahead in all (ten years).
pub const MAX_CLOCK_OFFSET_SECS: u64 = 10 * 365 * 24 * 3600;

/// An app the sandbox knows.
#[derive(Clone, Debug)]
struct SandboxApp {
    kind: AppKind,
    secret: String,
    /// The open platform the app is bound to, if any.
    open_platform: Option<String>,
    /// Official Accounts: the hosts registered as JS-safe domains (lower case).
    js_sdk_domains: Vec<String>,
}

/// A code handed out by `POST /codes` (or the approval page).
#[derive(Clone, Debug)]
struct IssuedCode {
    app_id: String,
    /// The sandbox user it was issued for.
    user: String,
    openid: String,
    unionid: Option<String>,
    session_key: String,
    /// OA codes: the scope granted.
    scope: Option<String>,
    /// OA codes: a virtual snapshot user.
    snapshot: bool,
    /// OA codes: whether `/sns/oauth2/access_token` includes the unionid (WeChat sends it with
    /// `snsapi_userinfo`; a test may force it with an explicit `unionid`).
    unionid_in_token: bool,
    expires_at: Instant,
    used: bool,
}

/// An OA web-authorization access token or refresh token.
#[derive(Clone, Debug)]
struct OauthGrant {
    app_id: String,
    user: String,
    openid: String,
    /// The unionid of the person (sent by `/sns/userinfo` when the scope allows).
    unionid: Option<String>,
    scope: String,
    expires_at: Instant,
}

/// How long an OA web-authorization access token lives (WeChat: 7200 s).
pub const OAUTH_ACCESS_TTL: Duration = Duration::from_secs(7200);
/// How long an OA refresh token lives (WeChat: 30 days).
pub const OAUTH_REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The sandbox's state; cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    apps: HashMap<String, SandboxApp>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    issued: AtomicU64,
    faults: Mutex<Vec<faults::Fault>>,
    oauth_access: Mutex<HashMap<String, OauthGrant>>,
    oauth_refresh: Mutex<HashMap<String, OauthGrant>>,
    /// Seconds the sandbox clock runs ahead of the real one (`POST /clock`).
    clock_offset: AtomicU64,
    /// App access tokens.
    tokens: tokens::Tokens,
    /// Official Account followers.
    followers: followers::Followers,
    /// Pushes to the service's webhook.
    push: push::Push,
    /// Templates, consents, sent messages.
    messages: messages::Messages,
    /// Phone codes and `getuserphonenumber` calls.
    phones: phone::Phones,
    /// Current Mini Program session keys and `checksession` calls.
    sessions: session::Sessions,
    /// Official Accounts' `jsapi_ticket`s and `getticket` calls.
    tickets: js_sdk::Tickets,
}

/// The open platform that the sandbox's bound apps belong to.
pub const OPEN_PLATFORM: &str = "sandbox-open-platform";

impl Sandbox {
    /// A sandbox that knows these apps (with their secrets); apps marked `open_platform` are bound
    /// to one open platform. Takes anything that converts into an [`App`] (the service's app
    /// config does).
    pub fn new<'a, A: 'a>(configured: impl IntoIterator<Item = &'a A>) -> Self
    where
        &'a A: Into<App>,
    {
        let configured: Vec<App> = configured.into_iter().map(Into::into).collect();
        Self::with_apps(&configured)
    }

    fn with_apps(configured: &[App]) -> Self {
        let apps: HashMap<String, SandboxApp> = configured
            .iter()
            .map(|a| {
                (
                    a.app_id.clone(),
                    SandboxApp {
                        kind: a.kind,
                        secret: a.secret.clone(),
                        open_platform: a.open_platform.then(|| OPEN_PLATFORM.to_owned()),
                        js_sdk_domains: a
                            .js_sdk_domains
                            .iter()
                            .map(|d| d.to_ascii_lowercase())
                            .collect(),
                    },
                )
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                codes: Mutex::new(HashMap::new()),
                issued: AtomicU64::new(0),
                faults: Mutex::new(Vec::new()),
                oauth_access: Mutex::new(HashMap::new()),
                oauth_refresh: Mutex::new(HashMap::new()),
                clock_offset: AtomicU64::new(0),
                tokens: tokens::Tokens::default(),
                followers: followers::Followers::default(),
                push: push::Push::new(configured),
                messages: messages::Messages::new(&apps),
                phones: phone::Phones::default(),
                sessions: session::Sessions::default(),
                tickets: js_sdk::Tickets::default(),
                apps,
            }),
        }
    }

    /// The router: faked API and control endpoints, to be nested under [`MOUNT`].
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/sns/jscode2session", get(mini_program::jscode2session))
            .route(
                "/sns/oauth2/access_token",
                get(official_account::access_token),
            )
            .route(
                "/sns/oauth2/refresh_token",
                get(official_account::refresh_token),
            )
            .route("/sns/userinfo", get(official_account::userinfo))
            .route("/sns/auth", get(official_account::auth))
            .route("/cgi-bin/stable_token", post(tokens::stable_token))
            .route("/cgi-bin/token", get(tokens::plain_token))
            .route("/cgi-bin/user/get", get(followers::user_get))
            .route("/cgi-bin/user/info", get(followers::user_info))
            .route("/cgi-bin/user/info/batchget", post(followers::batchget))
            .route(
                "/cgi-bin/message/template/send",
                post(messages::template_send),
            )
            .route(
                "/cgi-bin/message/subscribe/bizsend",
                post(messages::bizsend),
            )
            .route(
                "/cgi-bin/message/subscribe/send",
                post(messages::subscribe_send),
            )
            .route(
                "/wxa/business/getuserphonenumber",
                post(phone::getuserphonenumber),
            )
            .route("/wxa/checksession", get(session::checksession))
            .route("/cgi-bin/ticket/getticket", get(js_sdk::getticket))
            // Any call of the faked API may be answered by an injected fault instead.
            .route_layer(middleware::from_fn_with_state(
                self.clone(),
                faults::apply_fault,
            ));
        api.route("/connect/oauth2/authorize", get(authorize::page))
            .route("/connect/qrconnect", get(authorize::qrconnect))
            .route("/codes", post(control::issue_code))
            .route("/phone-codes", post(phone::issue_phone_code))
            .route(
                "/faults",
                post(control::add_fault).delete(control::clear_faults),
            )
            .route("/clock", post(control::advance_clock))
            .route("/tokens", post(tokens::control))
            .route("/stats", get(tokens::stats))
            .route("/followers", post(followers::add_followers))
            .route("/follow", post(push::follow))
            .route("/unfollow", post(push::unfollow))
            .route("/push", post(push::push))
            .route("/templates", post(messages::add_template))
            .route("/consents", post(messages::record_consent))
            .route("/message-settings", post(messages::settings))
            .route("/messages", get(messages::list_messages))
            .route("/js-sdk/verify", post(js_sdk::verify))
            .with_state(self.clone())
    }

    /// Serves the sandbox alone on `listener` (tests run it on a loopback port); returns the base
    /// URL for the WeChat client.
    pub fn spawn(&self, listener: tokio::net::TcpListener) -> String {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let app = Router::new().nest(MOUNT, self.router());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "sandbox server stopped");
            }
        });
        format!("http://{addr}{MOUNT}")
    }

    /// The sandbox's clock: real time plus what `POST /clock` advanced.
    fn now(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.inner.clock_offset.load(Ordering::Relaxed))
    }

    /// How far the sandbox clock runs ahead of the real one (`POST /clock`): the service in
    /// sandbox mode measures WeChat's tokens and tickets by it.
    pub fn clock_offset(&self) -> Duration {
        Duration::from_secs(self.inner.clock_offset.load(Ordering::Relaxed))
    }

    /// The sandbox clock in Unix seconds.
    fn unix_now(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        (real + self.inner.clock_offset.load(Ordering::Relaxed)) as i64
    }

    /// The sandbox's day number (for WeChat's daily limits).
    fn day(&self) -> u64 {
        self.unix_now() as u64 / 86_400
    }

    /// Moves the sandbox clock forward, so codes and tokens expire without waiting; refuses to
    /// go past [`MAX_CLOCK_OFFSET_SECS`] in all.
    pub fn advance_clock(&self, by: Duration) -> Result<(), String> {
        self.inner
            .clock_offset
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |offset| {
                offset
                    .checked_add(by.as_secs())
                    .filter(|total| *total <= MAX_CLOCK_OFFSET_SECS)
            })
            .map(|_| ())
            .map_err(|_| {
                format!("the sandbox clock may run at most {MAX_CLOCK_OFFSET_SECS} s ahead")
            })
    }
}

/// Locks one of the sandbox's maps. A panic while one was held cannot leave it half-written
/// (every update is a single insert, remove or flag), so a poisoned lock is simply taken over:
/// one bad request never breaks the sandbox for the requests after it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks a sandbox user name: 1-64 characters of a-z, 0-9, `_ - .`.
fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty()
        || user.len() > 64
        || !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err("user must be 1-64 characters of a-z, 0-9, _ - .".into());
    }
    Ok(())
}

/// A 28-character WeChat-looking id derived from its parts.
pub fn derive_id(kind: &str, scope: &str, user: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{kind}:{scope}:{user}").as_bytes(),
    );
    let mut id = String::from("o");
    id.push_str(&URL_SAFE_NO_PAD.encode(digest.as_ref())[..27]);
    id
}

/// WeChat refusing a call: its errcode and errmsg, answered as WeChat does (with a request id).
#[derive(Debug)]
pub(crate) struct Refusal(pub(crate) i64, pub(crate) &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        wechat_error(self.0, self.1)
    }
}

/// WeChat's error answer (HTTP 200, with a request id in `errmsg`).
fn wechat_error(errcode: i64, errmsg: &str) -> Response {
    let rid = crypto::hex(&crypto::random_bytes::<6>());
    Json(serde_json::json!({ "errcode": errcode, "errmsg": format!("{errmsg} rid: {rid}") }))
        .into_response()
}

#[cfg(test)]
mod tests;
