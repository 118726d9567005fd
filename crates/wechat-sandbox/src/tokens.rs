//! Faked app access tokens: `POST /cgi-bin/stable_token`, `GET /cgi-bin/token`, the check every
//! server API call makes, and the control endpoint that expires or revokes them.
//!
//! Like WeChat: a stable token in normal mode is the same for every caller until its last five
//! minutes; force mode (at most 20 a day, 30 s apart) replaces it and revokes the old one at
//! once. `/cgi-bin/token` hands out a new token on every call and the previous one keeps working
//! for five minutes. Stable and plain tokens are independent of each other.
//!
//! The sandbox counts what happened ([`TokenStats`], `GET /stats`), notably uses of a token that
//! the service's own refresh had already replaced (`self_inflicted`): a token manager that works
//! keeps that at zero.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wechat_client::crypto;

use super::{Sandbox, lock};

/// How long an app access token lives (WeChat: 7200 s).
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// The last stretch of a stable token's life in which normal mode hands out a new one, and how
/// long a replaced `/cgi-bin/token` token keeps working.
pub const OVERLAP: Duration = Duration::from_secs(300);
/// Force-mode refreshes per app and (sandbox) day.
pub const FORCE_PER_DAY: u32 = 20;
/// Tokens the sandbox remembers at most (the oldest are forgotten: they answer 40001).
pub const MAX_TOKENS: usize = 100_000;

#[derive(Clone, Debug)]
struct TokenInfo {
    app_id: String,
    expires_at: Instant,
    state: TokenState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenState {
    Live,
    /// Replaced by the service's own refresh: works until then.
    Replaced {
        until: Instant,
    },
    /// Revoked: by a force refresh of the service (`by_control` false) or by `POST /tokens`.
    Revoked {
        by_control: bool,
    },
}

#[derive(Default)]
struct AppTokens {
    stable: Option<String>,
    plain: Option<String>,
    force_day: u64,
    force_count: u32,
    last_force: Option<Instant>,
}

/// What the sandbox counted about tokens (`GET /stats`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TokenStats {
    /// Tokens handed out that were new.
    pub minted: u64,
    /// `stable_token` calls in normal mode.
    pub stable_calls: u64,
    /// `stable_token` calls in force mode.
    pub force_calls: u64,
    /// `/cgi-bin/token` calls.
    pub plain_calls: u64,
    /// Server API calls that presented a token.
    pub api_calls: u64,
    /// ... with an expired token (42001).
    pub expired_uses: u64,
    /// ... with a token revoked by `POST /tokens` (40001).
    pub revoked_uses: u64,
    /// ... with a token the service's own refresh had replaced or revoked (40001).
    pub self_inflicted: u64,
}

/// The token part of the sandbox's state.
#[derive(Default)]
pub(super) struct Tokens {
    tokens: std::sync::Mutex<TokenTables>,
}

#[derive(Default)]
struct TokenTables {
    by_token: HashMap<String, TokenInfo>,
    apps: HashMap<String, AppTokens>,
    stats: HashMap<String, TokenStats>,
}

impl TokenTables {
    fn mint(&mut self, app_id: &str, now: Instant) -> String {
        if self.by_token.len() >= MAX_TOKENS {
            let oldest = self
                .by_token
                .iter()
                .min_by_key(|(_, t)| t.expires_at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.by_token.remove(&k);
            }
        }
        let token = format!("sbx_{}", crypto::hex(&crypto::random_bytes::<48>()));
        self.by_token.insert(
            token.clone(),
            TokenInfo {
                app_id: app_id.into(),
                expires_at: now + ACCESS_TOKEN_TTL,
                state: TokenState::Live,
            },
        );
        self.stats.entry(app_id.into()).or_default().minted += 1;
        token
    }

    fn set_state(&mut self, token: Option<&String>, state: TokenState) {
        if let Some(info) = token.and_then(|t| self.by_token.get_mut(t)) {
            info.state = state;
        }
    }

    fn answer(&self, token: &str, now: Instant) -> Response {
        let expires_in = self
            .by_token
            .get(token)
            .map_or(0, |t| t.expires_at.saturating_duration_since(now).as_secs());
        Json(serde_json::json!({ "access_token": token, "expires_in": expires_in })).into_response()
    }
}

fn error(errcode: i64, errmsg: &'static str) -> Response {
    super::Refusal(errcode, errmsg).into_response()
}

/// The app a token call asks for: `grant_type=client_credential` with its appid and secret.
fn client_credential(
    sb: &Sandbox,
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
) -> Result<String, super::Refusal> {
    if grant_type.as_deref() != Some("client_credential") {
        return Err(super::Refusal(40002, "invalid grant_type"));
    }
    let (Some(appid), Some(secret)) = (appid, secret) else {
        return Err(super::Refusal(41002, "appid missing"));
    };
    sb.check_app_secret(&appid, &secret)?;
    Ok(appid)
}

#[derive(Deserialize)]
pub(super) struct StableTokenBody {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    force_refresh: bool,
}

/// `POST /cgi-bin/stable_token`.
pub(super) async fn stable_token(
    State(sb): State<Sandbox>,
    Json(body): Json<StableTokenBody>,
) -> Response {
    let appid = match client_credential(&sb, body.grant_type, body.appid, body.secret) {
        Ok(appid) => appid,
        Err(refusal) => return refusal.into_response(),
    };
    let now = sb.now();
    let day = sb.day();
    let mut t = lock(&sb.inner.tokens.tokens);
    let stats = t.stats.entry(appid.clone()).or_default();
    if body.force_refresh {
        stats.force_calls += 1;
    } else {
        stats.stable_calls += 1;
    }
    let app = t.apps.entry(appid.clone()).or_default();
    if body.force_refresh {
        if app.force_day != day {
            app.force_day = day;
            app.force_count = 0;
        }
        if app.force_count >= FORCE_PER_DAY {
            return error(45009, "reach max api daily quota limit");
        }
        if app
            .last_force
            .is_some_and(|l| now < l + Duration::from_secs(30))
        {
            return error(
                45011,
                "api minute-quota reach limit, force refresh at most once per 30s",
            );
        }
        app.force_count += 1;
        app.last_force = Some(now);
        let old = app.stable.take();
        t.set_state(old.as_ref(), TokenState::Revoked { by_control: false });
    } else if let Some(current) = app.stable.clone() {
        let info = t.by_token.get(&current);
        let keep = info.is_some_and(|i| i.expires_at > now + OVERLAP);
        if keep {
            return t.answer(&current, now);
        }
    }
    let token = t.mint(&appid, now);
    t.apps.entry(appid).or_default().stable = Some(token.clone());
    t.answer(&token, now)
}

#[derive(Deserialize)]
pub(super) struct PlainTokenQuery {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
}

/// `GET /cgi-bin/token`.
pub(super) async fn plain_token(
    State(sb): State<Sandbox>,
    Query(q): Query<PlainTokenQuery>,
) -> Response {
    let appid = match client_credential(&sb, q.grant_type, q.appid, q.secret) {
        Ok(appid) => appid,
        Err(refusal) => return refusal.into_response(),
    };
    let now = sb.now();
    let mut t = lock(&sb.inner.tokens.tokens);
    t.stats.entry(appid.clone()).or_default().plain_calls += 1;
    let old = t.apps.entry(appid.clone()).or_default().plain.take();
    t.set_state(
        old.as_ref(),
        TokenState::Replaced {
            until: now + OVERLAP,
        },
    );
    let token = t.mint(&appid, now);
    t.apps.entry(appid).or_default().plain = Some(token.clone());
    t.answer(&token, now)
}

impl Sandbox {
    /// Checks an app access token as WeChat's server API does: the app it belongs to, or the
    /// errcode (40001 invalid or replaced, 42001 expired). Counted in [`TokenStats`].
    pub(super) fn check_access_token(&self, token: &str) -> Result<String, (i64, &'static str)> {
        let now = self.now();
        let mut t = lock(&self.inner.tokens.tokens);
        let Some(info) = t.by_token.get(token).cloned() else {
            return Err((
                40001,
                "invalid credential, access_token is invalid or not latest",
            ));
        };
        let stats = t.stats.entry(info.app_id.clone()).or_default();
        stats.api_calls += 1;
        match info.state {
            TokenState::Revoked { by_control: true } => {
                stats.revoked_uses += 1;
                Err((
                    40001,
                    "invalid credential, access_token is invalid or not latest",
                ))
            }
            TokenState::Revoked { by_control: false } => {
                stats.self_inflicted += 1;
                Err((
                    40001,
                    "invalid credential, access_token is invalid or not latest",
                ))
            }
            TokenState::Replaced { until } if now >= until => {
                stats.self_inflicted += 1;
                Err((
                    40001,
                    "invalid credential, access_token is invalid or not latest",
                ))
            }
            _ if now >= info.expires_at => {
                stats.expired_uses += 1;
                Err((42001, "access_token expired"))
            }
            _ => Ok(info.app_id),
        }
    }

    /// What the sandbox counted for `app_id`.
    pub fn token_stats(&self, app_id: &str) -> TokenStats {
        let t = lock(&self.inner.tokens.tokens);
        t.stats.get(app_id).copied().unwrap_or_default()
    }

    /// Expires (42001 from now on) or revokes (40001) the app's current tokens. A revoked stable
    /// token is no longer handed out in normal mode, unless `sticky`: then normal mode keeps
    /// handing it out and only force mode replaces it.
    pub fn expire_or_revoke_tokens(&self, app_id: &str, revoke: bool, sticky: bool) {
        let now = self.now();
        let mut t = lock(&self.inner.tokens.tokens);
        let app = t.apps.entry(app_id.into()).or_default();
        let current: Vec<String> = app.stable.iter().chain(app.plain.iter()).cloned().collect();
        if revoke && !sticky {
            app.stable = None;
            app.plain = None;
        }
        for token in current {
            if let Some(info) = t.by_token.get_mut(&token) {
                if revoke {
                    info.state = TokenState::Revoked { by_control: true };
                } else {
                    info.expires_at = now;
                }
            }
        }
    }
}

/// `POST /tokens`: expire or revoke an app's current tokens.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenControl {
    /// The app.
    pub app_id: String,
    /// `expire` (42001 from now on) or `revoke` (40001).
    pub action: String,
    /// With `revoke`: normal-mode `stable_token` keeps handing out the revoked token.
    #[serde(default)]
    pub sticky: bool,
}

pub(super) async fn control(State(sb): State<Sandbox>, Json(req): Json<TokenControl>) -> Response {
    if !sb.inner.apps.contains_key(&req.app_id) {
        return super::control::bad_request(format!("unknown appId `{}`", req.app_id));
    }
    let revoke = match req.action.as_str() {
        "expire" => false,
        "revoke" => true,
        _ => return super::control::bad_request("action must be `expire` or `revoke`".into()),
    };
    sb.expire_or_revoke_tokens(&req.app_id, revoke, req.sticky);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatsQuery {
    app_id: String,
}

/// `GET /stats?appId`: what the sandbox counted for an app (tokens; follower, message,
/// phone-number, session-check and `getticket` calls).
pub(super) async fn stats(State(sb): State<Sandbox>, Query(q): Query<StatsQuery>) -> Response {
    Json(serde_json::json!({
        "tokens": sb.token_stats(&q.app_id),
        "followerCalls": sb.follower_calls(&q.app_id),
        "messageCalls": sb.message_calls(&q.app_id),
        "phoneNumberCalls": sb.phone_number_calls(&q.app_id),
        "checkSessionCalls": sb.check_session_calls(&q.app_id),
        "ticketCalls": sb.ticket_calls(&q.app_id),
    }))
    .into_response()
}
