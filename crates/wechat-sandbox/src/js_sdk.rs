//! The faked JS-SDK: `GET /cgi-bin/ticket/getticket` hands out an Official Account's
//! `jsapi_ticket`, and `POST /js-sdk/verify` checks a `wx.config` the way WeChat's client does.
//!
//! Like WeChat: one ticket per app, valid [`TICKET_TTL`] on the sandbox clock; a second
//! `getticket` while it is valid answers the same ticket (with what is left of its life), a new
//! one comes only after it expired. The access token is checked as every server API checks it
//! (41001, 40001, 42001; 48001 for a Mini Program's). `getticket` calls that presented a valid
//! token are counted (`GET /stats`: `ticketCalls`).
//!
//! A `wx.config` passes when its app is an Official Account, its page URL (fragment stripped) is
//! an http(s) URL on one of the app's JS-safe domains (`js_sdk_domains`, learned from the
//! service's config like the webhook tokens), its timestamp within [`TIMESTAMP_SKEW_SECS`] of the
//! sandbox clock, and its signature is the one the app's current ticket makes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use wechat_client::js_sdk::signed_url;
use wechat_client::{AppKind, crypto};

use super::{Refusal, Sandbox, lock};

/// How long a `jsapi_ticket` lives (WeChat: 7200 s).
pub const TICKET_TTL: Duration = Duration::from_secs(7200);

/// How far a `wx.config` timestamp may be from the sandbox clock, either way, in seconds.
pub const TIMESTAMP_SKEW_SECS: i64 = 300;

/// The JS-SDK part of the sandbox's state (one entry per configured app at most).
#[derive(Default)]
pub(super) struct Tickets {
    /// app → (its current ticket, when it expires).
    current: Mutex<HashMap<String, (String, Instant)>>,
    /// app → `getticket` calls with a valid token.
    calls: Mutex<HashMap<String, u64>>,
}

impl Sandbox {
    /// The app's ticket valid now (a new one if it has none or it expired), with its expiry.
    fn current_ticket(&self, app_id: &str) -> (String, Instant) {
        let now = self.now();
        let mut current = lock(&self.inner.tickets.current);
        match current.get(app_id) {
            Some((ticket, expires_at)) if *expires_at > now => (ticket.clone(), *expires_at),
            _ => {
                let ticket = format!("sbx_jsapi_{}", crypto::hex(&crypto::random_bytes::<32>()));
                let fresh = (ticket, now + TICKET_TTL);
                current.insert(app_id.to_owned(), fresh.clone());
                fresh
            }
        }
    }

    /// The app's ticket if one is valid now (no new one is made).
    pub fn jsapi_ticket(&self, app_id: &str) -> Option<String> {
        let now = self.now();
        lock(&self.inner.tickets.current)
            .get(app_id)
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(ticket, _)| ticket.clone())
    }

    /// `getticket` calls for `app_id` that presented a valid token.
    pub fn ticket_calls(&self, app_id: &str) -> u64 {
        lock(&self.inner.tickets.calls)
            .get(app_id)
            .copied()
            .unwrap_or_default()
    }

    /// Checks a `wx.config` as WeChat's client does: why it fails, if it does.
    pub fn verify_js_sdk_config(&self, req: &JsSdkVerifyRequest) -> Result<(), &'static str> {
        let app = match self.inner.apps.get(&req.app_id) {
            Some(app) if app.kind == AppKind::OfficialAccount => app,
            _ => return Err("invalid appid: not an Official Account the sandbox knows"),
        };
        let page = signed_url(&req.url);
        let host = reqwest::Url::parse(page)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        if !host.is_some_and(|h| app.js_sdk_domains.contains(&h)) {
            return Err("invalid url domain: the page's host is not a JS-safe domain of the app");
        }
        if (req.timestamp - self.unix_now()).abs() > TIMESTAMP_SKEW_SECS {
            return Err("invalid timestamp: too far from now");
        }
        let Some(ticket) = self.jsapi_ticket(&req.app_id) else {
            return Err("invalid signature: the app has no valid jsapi_ticket");
        };
        let expected = crypto::js_sdk_signature(&ticket, &req.nonce_str, req.timestamp, page);
        if !crypto::constant_time_eq(expected.as_bytes(), req.signature.as_bytes()) {
            return Err("invalid signature");
        }
        Ok(())
    }
}

#[derive(Deserialize)]
pub(super) struct TicketQuery {
    access_token: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `GET /cgi-bin/ticket/getticket?access_token&type=jsapi`.
pub(super) async fn getticket(
    State(sb): State<Sandbox>,
    Query(q): Query<TicketQuery>,
) -> Result<Json<Value>, Refusal> {
    let app_id = sb.app_of_token(q.access_token.as_deref(), AppKind::OfficialAccount)?;
    *lock(&sb.inner.tickets.calls)
        .entry(app_id.clone())
        .or_default() += 1;
    if q.kind.as_deref() != Some("jsapi") {
        return Err(Refusal(40097, "invalid args"));
    }
    let (ticket, expires_at) = sb.current_ticket(&app_id);
    // Whole seconds left, rounded up (a ticket just made says 7200, as WeChat's do).
    let left = expires_at.saturating_duration_since(sb.now());
    let expires_in = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Ok(Json(json!({
        "errcode": 0,
        "errmsg": "ok",
        "ticket": ticket,
        "expires_in": expires_in,
    })))
}

/// `POST /js-sdk/verify`: a page's `wx.config`, as the page passes it (and its URL).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsSdkVerifyRequest {
    /// The Official Account.
    pub app_id: String,
    /// The page URL (`location.href`; a fragment is ignored).
    pub url: String,
    /// The config's timestamp (Unix seconds).
    pub timestamp: i64,
    /// The config's nonceStr.
    pub nonce_str: String,
    /// The config's signature.
    pub signature: String,
}

/// `POST /js-sdk/verify` → `{"ok": true}`, or `{"ok": false, "reason": …}` (WeChat's client
/// reports `config:invalid signature`, `config:invalid url domain` …).
pub(super) async fn verify(
    State(sb): State<Sandbox>,
    Json(req): Json<JsSdkVerifyRequest>,
) -> Json<Value> {
    Json(match sb.verify_js_sdk_config(&req) {
        Ok(()) => json!({ "ok": true }),
        Err(reason) => json!({ "ok": false, "reason": reason }),
    })
}
