//! The sandbox's stand-in for WeChat's authorize page (`/connect/oauth2/authorize`): it asks
//! which sandbox person is using "WeChat", then approves (or denies) and redirects to
//! `redirect_uri?code=…&state=…` the way WeChat does.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use wechat_client::AppKind;
use wechat_client::html::escape;

use super::{CodeRequest, Sandbox};

#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
    appid: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    /// Set by the page's form: the sandbox person.
    user: Option<String>,
    /// `allow` or `deny`.
    action: Option<String>,
    /// `on` when the page's "snapshot user" box is ticked.
    snapshot: Option<String>,
}

/// WeChat shows an error page (not a redirect) for a bad request.
fn error_page(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>WeChat sandbox</title>\
             <h1>WeChat sandbox: cannot authorize</h1><p id=error>{}</p>",
            escape(message)
        )),
    )
        .into_response()
}

/// `GET /connect/oauth2/authorize`.
pub(super) async fn page(State(sb): State<Sandbox>, Query(q): Query<AuthorizeQuery>) -> Response {
    let Some(appid) = q.appid.as_deref().filter(|a| !a.is_empty()) else {
        return error_page("appid missing");
    };
    match sb.inner.apps.get(appid) {
        Some(app) if app.kind == AppKind::OfficialAccount => {}
        _ => return error_page("invalid appid (not an Official Account of this sandbox)"),
    }
    if q.response_type.as_deref() != Some("code") {
        return error_page("response_type must be code");
    }
    let scope = match q.scope.as_deref() {
        Some(s @ ("snsapi_base" | "snsapi_userinfo")) => s,
        _ => return error_page("scope must be snsapi_base or snsapi_userinfo"),
    };
    let Some(redirect) = q
        .redirect_uri
        .as_deref()
        .and_then(|r| reqwest::Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
    else {
        return error_page("redirect_uri must be an absolute http(s) URL");
    };
    let state = q.state.as_deref().unwrap_or("");
    if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return error_page("state must be at most 128 letters and digits");
    }
    let Some(user) = q.user.as_deref() else {
        return form(appid, redirect.as_str(), scope, state);
    };
    let mut target = redirect;
    if q.action.as_deref() == Some("deny") {
        // WeChat sends the person back without a code when they refuse.
        target.query_pairs_mut().append_pair("state", state);
        return redirect_to(target.as_str());
    }
    let mut req = CodeRequest::official_account(appid, user, scope);
    req.snapshot_user = q.snapshot.as_deref() == Some("on");
    let code = match sb.issue_code(&req) {
        Ok(code) => code,
        Err(message) => return error_page(&message),
    };
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    redirect_to(target.as_str())
}

fn redirect_to(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

fn form(appid: &str, redirect_uri: &str, scope: &str, state: &str) -> Response {
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=hidden name=\"{name}\" value=\"{}\">",
            escape(value)
        )
    };
    let asks = if scope == "snsapi_userinfo" {
        "your nickname, avatar and region"
    } else {
        "your identity in this account (silently, as snsapi_base does)"
    };
    Html(format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>WeChat sandbox: authorize</title>\
         <style>body{{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}\
         button{{padding:.5rem 1.5rem;margin-right:.5rem}}</style>\
         <h1>WeChat sandbox</h1>\
         <p>The Official Account <code id=appid>{app}</code> asks for {asks} (<code>{scope}</code>).</p>\
         <form method=get action=\"\">{h_appid}{h_redirect}{h_type}{h_scope}{h_state}\
         <p><label>Sandbox person: <input id=user name=user value=alice required \
         pattern=\"[A-Za-z0-9_.\\-]{{1,64}}\"></label></p>\
         <p><label><input type=checkbox id=snapshot name=snapshot> a snapshot (virtual) user, \
         as when the page is opened from a Moments snapshot</label></p>\
         <button id=allow name=action value=allow>Allow</button>\
         <button id=deny name=action value=deny>Deny</button></form>",
        app = escape(appid),
        scope = escape(scope),
        h_appid = hidden("appid", appid),
        h_redirect = hidden("redirect_uri", redirect_uri),
        h_type = hidden("response_type", "code"),
        h_scope = hidden("scope", scope),
        h_state = hidden("state", state),
    ))
    .into_response()
}
