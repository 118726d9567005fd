//! The server-driven Official Account and website logins, for back ends whose `redirect_uri`
//! points at us (`{flow}` is `official-account` or `website`):
//! - `GET /auth/{flow}/{appId}/authorize?scope=…&returnTo=…[&codeChallenge=…]` redirects the
//!   browser to WeChat (an OA's authorize page, a website's QR-code page; returnTo must be on
//!   the allow-list: no open redirects) and sets a cookie that the callback needs back, so the
//!   login finishes only in the browser that started it;
//! - `GET /auth/{flow}/{appId}/callback?code&state` exchanges the code, records the login and
//!   redirects to `returnTo?ticket=…`; the frontend redeems the one-time ticket with the
//!   `redeemLoginTicket` mutation. Tokens never travel in a URL. A failure after the state
//!   checked out goes back to `returnTo?error=CODE&error_description=…` (a person who refused:
//!   `error=ACCESS_DENIED`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::HttpState;
use crate::error::{ApiError, ErrorCode};
use crate::html::escape;
use crate::identity::IdentityError;
use crate::identity::login::oauth_state::{SERVER_FLOWS, browser_cookie_name, flow_segment};
use crate::identity::login::official_account::{ServerLogin, ServerLoginError};
use crate::types::AppKind;
use crate::wechat::official_account::OauthScope;

#[derive(Deserialize)]
pub(super) struct AuthorizeParams {
    scope: Option<String>,
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
    #[serde(rename = "codeChallenge")]
    code_challenge: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
}

/// A small HTML error page (the browser is a person's, not a program's).
fn error_page(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>Login failed</title>\
             <h1>Login failed</h1><p id=error>{}</p>",
            escape(message)
        )),
    )
        .into_response()
}

/// The error page for a failure before the browser's way back is known, with the status of its
/// code (see [`ErrorCode::http_status`]).
fn error_response(error: IdentityError) -> Response {
    let api = ApiError::from(error);
    let mut response = error_page(api.code().http_status(), api.message());
    if let Some(secs) = api.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
    )
        .into_response()
}

/// The app kind of a flow's path segment (`official-account`, `website`).
fn flow_kind(flow: &str) -> Option<AppKind> {
    SERVER_FLOWS
        .iter()
        .find(|(segment, _)| *segment == flow)
        .map(|(_, kind)| *kind)
}

/// `GET /auth/{flow}/{appId}/authorize`.
pub(super) async fn authorize(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((flow, app_id)): Path<(String, String)>,
    Query(params): Query<AuthorizeParams>,
    headers: HeaderMap,
) -> Response {
    let Some(kind) = flow_kind(&flow) else {
        return error_page(StatusCode::NOT_FOUND, "no such login flow");
    };
    start(&state, peer, (kind, &app_id), params, &headers).await
}

/// Starts a server-driven login of an app of `kind`.
async fn start(
    state: &HttpState,
    peer: SocketAddr,
    (kind, app_id): (AppKind, &str),
    params: AuthorizeParams,
    headers: &HeaderMap,
) -> Response {
    let client = state.client_info(peer, headers);
    let default = match kind {
        AppKind::Website => OauthScope::Login,
        _ => OauthScope::Base,
    };
    let scope = match params.scope.as_deref() {
        None | Some("") => default,
        Some(s) => match OauthScope::parse(&s.to_ascii_lowercase()) {
            Some(scope) => scope,
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "scope must be snsapi_base or snsapi_userinfo (snsapi_login for a website)",
                );
            }
        },
    };
    let Some(return_to) = params.return_to else {
        return error_page(StatusCode::BAD_REQUEST, "returnTo is required");
    };
    let code_challenge = params.code_challenge.filter(|c| !c.is_empty());
    let access = state.identity.access(None).await;
    let public = match access.public() {
        Ok(public) => public,
        Err(e) => return error_response(e),
    };
    match public
        .server_authorize_redirect(
            (kind, app_id),
            scope,
            &return_to,
            code_challenge.as_deref(),
            &client,
        )
        .await
    {
        Ok(started) => {
            let config = state.identity.config();
            let secure = if config.public_url().starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
                started.cookie_name,
                started.cookie_value,
                cookie_path(kind),
                config.official_account_login.state_ttl_secs
            );
            let mut response = redirect(&started.url);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => error_response(e),
    }
}

/// `GET /auth/{flow}/{appId}/callback` (WeChat sends the browser here).
pub(super) async fn callback(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((flow, app_id)): Path<(String, String)>,
    Query(params): Query<CallbackParams>,
    headers: HeaderMap,
) -> Response {
    let Some(kind) = flow_kind(&flow) else {
        return error_page(StatusCode::NOT_FOUND, "no such login flow");
    };
    finish(&state, peer, (kind, &app_id), params, &headers).await
}

/// Finishes a server-driven login of an app of `kind`.
async fn finish(
    state: &HttpState,
    peer: SocketAddr,
    (kind, app_id): (AppKind, &str),
    params: CallbackParams,
    headers: &HeaderMap,
) -> Response {
    let client = state.client_info(peer, headers);
    let Some(oauth_state) = params.state.filter(|s| !s.is_empty()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the login link is incomplete (no state); start again",
        );
    };
    let code = params.code.filter(|c| !c.is_empty());
    let cookie_name = browser_cookie_name(&oauth_state);
    let nonce = cookie_name
        .as_deref()
        .and_then(|name| cookie(headers, name));
    let access = state.identity.access(None).await;
    let public = match access.public() {
        Ok(public) => public,
        Err(e) => return error_response(e),
    };
    let result = public
        .complete_server_login(
            (kind, app_id),
            code.as_deref(),
            &oauth_state,
            nonce.as_deref(),
            &client,
        )
        .await;
    let mut response = match result {
        Ok(ServerLogin { ticket, return_to }) => redirect_with(&return_to, &[("ticket", &ticket)]),
        Err(ServerLoginError {
            return_to: Some(return_to),
            error,
        }) => {
            let (error_code, message) = match error {
                IdentityError::AccessDenied => {
                    ("ACCESS_DENIED", IdentityError::AccessDenied.to_string())
                }
                other => {
                    let api = ApiError::from(other);
                    // A URL ends up in logs and histories: no record ids in it.
                    let message = if api.code() == ErrorCode::Conflict {
                        "this WeChat account conflicts with the one on record; contact support"
                            .to_owned()
                    } else {
                        api.message().to_owned()
                    };
                    (api.code().as_str(), message)
                }
            };
            redirect_with(
                &return_to,
                &[("error", error_code), ("error_description", &message)],
            )
        }
        Err(ServerLoginError {
            return_to: None,
            error,
        }) => return error_response(error),
    };
    // The login is over: the browser may forget its binding cookie.
    if let Some(name) = cookie_name {
        let path = cookie_path(kind);
        let expired = format!("{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&expired) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Where the binding cookies of a flow live: only its own routes see them.
fn cookie_path(kind: AppKind) -> String {
    format!("/auth/{}/", flow_segment(kind))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Redirects to `url` with query parameters appended (before any fragment).
fn redirect_with(url: &str, params: &[(&str, &str)]) -> Response {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(params);
            redirect(u.as_str())
        }
        // Stored states hold URLs that parsed when they were issued.
        Err(e) => {
            tracing::error!(error = %e, "a stored returnTo no longer parses");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
