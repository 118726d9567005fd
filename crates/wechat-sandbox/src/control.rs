//! Control endpoints: hand out codes, inject faults. Only mounted in sandbox mode and tests.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::faults::Fault;
use super::{Sandbox, lock};

/// `POST /codes`: a login code for `user` in `appId`; the optional fields override what the
/// sandbox derives, so tests can replay known vectors.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeRequest {
    /// The app.
    pub app_id: String,
    /// The sandbox user's name (`alice`).
    pub user: String,
    /// OA web-authorization scope (`snsapi_base` or `snsapi_userinfo`).
    pub scope: Option<String>,
    /// Override the derived openid.
    pub openid: Option<String>,
    /// Override the derived unionid.
    pub unionid: Option<String>,
    /// Override the random session_key (base64 of 16 bytes).
    pub session_key: Option<String>,
    /// Code lifetime in seconds (default 300; 0 gives an expired code; at most a day).
    pub ttl_seconds: Option<u64>,
    /// OA codes: the person is a virtual "snapshot" user (`is_snapshotuser: 1`).
    #[serde(default)]
    pub snapshot_user: bool,
}

impl CodeRequest {
    /// A plain request for `user` in `app_id`.
    pub fn new(app_id: &str, user: &str) -> Self {
        Self {
            app_id: app_id.into(),
            user: user.into(),
            scope: None,
            openid: None,
            unionid: None,
            session_key: None,
            ttl_seconds: None,
            snapshot_user: false,
        }
    }

    /// An Official Account code request with this scope.
    pub fn official_account(app_id: &str, user: &str, scope: &str) -> Self {
        Self {
            scope: Some(scope.into()),
            ..Self::new(app_id, user)
        }
    }
}

/// `POST /clock`: moves the sandbox's clock forward.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClockRequest {
    /// Seconds to advance (1..=31 days).
    pub advance_seconds: u64,
}

/// `POST /faults`: what the next `count` API calls (on `path`, or any) do instead.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRequest {
    /// Only calls to this API path (e.g. `/sns/jscode2session`).
    pub path: Option<String>,
    /// Answer with this errcode.
    pub errcode: Option<i64>,
    /// Wait this long first.
    pub delay_ms: Option<u64>,
    /// Run the call, then hold its answer this long (the call took effect; its caller waits).
    pub reply_delay_ms: Option<u64>,
    /// Answer with a malformed body.
    #[serde(default)]
    pub malformed: bool,
    /// How many calls (default 1).
    pub count: Option<u32>,
    /// Let this many matching calls through first (default 0).
    #[serde(default)]
    pub after: Option<u32>,
}

pub(super) fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

pub(super) async fn issue_code(
    State(sb): State<Sandbox>,
    Json(req): Json<CodeRequest>,
) -> Response {
    match sb.issue_code(&req) {
        Ok(code) => Json(serde_json::json!({ "code": code })).into_response(),
        Err(message) => bad_request(message),
    }
}

pub(super) async fn add_fault(
    State(sb): State<Sandbox>,
    Json(req): Json<FaultRequest>,
) -> Response {
    let count = req.count.unwrap_or(1);
    if count == 0 || count > 10_000 {
        return bad_request("count must be 1..=10000".into());
    }
    if req.errcode.is_none()
        && req.delay_ms.is_none()
        && req.reply_delay_ms.is_none()
        && !req.malformed
    {
        return bad_request("a fault needs errcode, delayMs, replyDelayMs or malformed".into());
    }
    if req.reply_delay_ms.is_some() && (req.errcode.is_some() || req.malformed) {
        return bad_request(
            "replyDelayMs holds a real answer: not with errcode or malformed".into(),
        );
    }
    let delay = Duration::from_millis(req.delay_ms.unwrap_or(0).min(60_000));
    let reply_delay = Duration::from_millis(req.reply_delay_ms.unwrap_or(0).min(60_000));
    if req.path.as_ref().is_some_and(|p| p.len() > 256) {
        return bad_request("path must be at most 256 characters".into());
    }
    let mut faults = lock(&sb.inner.faults);
    if faults.len() >= super::MAX_FAULTS {
        return bad_request(format!(
            "{} faults are pending already; DELETE /faults to clear them",
            super::MAX_FAULTS
        ));
    }
    faults.push(Fault {
        path: req.path,
        errcode: req.errcode,
        delay,
        reply_delay,
        malformed: req.malformed,
        remaining: count,
        skip: req.after.unwrap_or(0).min(100_000),
    });
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn clear_faults(State(sb): State<Sandbox>) -> StatusCode {
    lock(&sb.inner.faults).clear();
    StatusCode::NO_CONTENT
}

pub(super) async fn advance_clock(
    State(sb): State<Sandbox>,
    Json(req): Json<ClockRequest>,
) -> Response {
    if req.advance_seconds == 0 || req.advance_seconds > 31 * 24 * 3600 {
        return bad_request("advanceSeconds must be 1..=2678400".into());
    }
    match sb.advance_clock(Duration::from_secs(req.advance_seconds)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(message) => bad_request(message),
    }
}
