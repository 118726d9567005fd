//! The sandbox's stand-ins for WeChat's authorize page (`/connect/oauth2/authorize`, Official
//! Accounts) and QR-code login page (`/connect/qrconnect`, websites): each asks which sandbox
//! person is using "WeChat" (on the QR page: who scans the code), then approves (or denies) and
//! redirects to `redirect_uri?code=…&state=…` the way WeChat does.

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

/// Which of WeChat's pages: they differ in the app kind and the scopes they take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// `/connect/oauth2/authorize`: an Official Account, inside WeChat.
    Authorize,
    /// `/connect/qrconnect`: a website, on a computer; the person scans a QR code.
    QrConnect,
}

impl Flow {
    fn kind(self) -> AppKind {
        match self {
            Flow::Authorize => AppKind::OfficialAccount,
            Flow::QrConnect => AppKind::Website,
        }
    }

    fn scopes(self) -> &'static [&'static str] {
        match self {
            Flow::Authorize => &["snsapi_base", "snsapi_userinfo"],
            Flow::QrConnect => &["snsapi_login"],
        }
    }
}

/// `GET /connect/oauth2/authorize`.
pub(super) async fn page(State(sb): State<Sandbox>, Query(q): Query<AuthorizeQuery>) -> Response {
    show(&sb, q, Flow::Authorize)
}

/// `GET /connect/qrconnect`.
pub(super) async fn qrconnect(
    State(sb): State<Sandbox>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    show(&sb, q, Flow::QrConnect)
}

fn show(sb: &Sandbox, q: AuthorizeQuery, flow: Flow) -> Response {
    let Some(appid) = q.appid.as_deref().filter(|a| !a.is_empty()) else {
        return error_page("appid missing");
    };
    match sb.inner.apps.get(appid) {
        Some(app) if app.kind == flow.kind() => {}
        _ => {
            return error_page(&format!(
                "invalid appid (not a {} of this sandbox)",
                flow.kind().name()
            ));
        }
    }
    if q.response_type.as_deref() != Some("code") {
        return error_page("response_type must be code");
    }
    let scope = match q.scope.as_deref() {
        Some(s) if flow.scopes().contains(&s) => s,
        _ => return error_page(&format!("scope must be {}", flow.scopes().join(" or "))),
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
        return form(flow, appid, redirect.as_str(), scope, state);
    };
    let mut target = redirect;
    if q.action.as_deref() == Some("deny") {
        // WeChat sends the person back without a code when they refuse.
        target.query_pairs_mut().append_pair("state", state);
        return redirect_to(target.as_str());
    }
    let mut req = CodeRequest::official_account(appid, user, scope);
    req.snapshot_user = flow == Flow::Authorize && q.snapshot.as_deref() == Some("on");
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

fn form(flow: Flow, appid: &str, redirect_uri: &str, scope: &str, state: &str) -> Response {
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=hidden name=\"{name}\" value=\"{}\">",
            escape(value)
        )
    };
    let (title, asks, snapshot, allow) = match flow {
        Flow::Authorize => (
            "authorize",
            format!(
                "<p>The Official Account <code id=appid>{}</code> asks for {} (<code>{}</code>).</p>",
                escape(appid),
                if scope == "snsapi_userinfo" {
                    "your nickname, avatar and region"
                } else {
                    "your identity in this account (silently, as snsapi_base does)"
                },
                escape(scope)
            ),
            "<p><label><input type=checkbox id=snapshot name=snapshot> a snapshot (virtual) \
             user, as when the page is opened from a Moments snapshot</label></p>",
            "Allow",
        ),
        Flow::QrConnect => (
            "log in with a QR code",
            format!(
                "<p>The website <code id=appid>{}</code> shows this QR code; scan it with WeChat \
                 on your phone to log in (<code>{}</code>).</p><pre id=qr aria-label=\"QR code\" \
                 style=\"line-height:1;font-size:10px\">{}</pre>",
                escape(appid),
                escape(scope),
                qr_panel(state)
            ),
            "",
            "Scan as this person",
        ),
    };
    Html(format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>WeChat sandbox: {title}</title>\
         <style>body{{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}\
         button{{padding:.5rem 1.5rem;margin-right:.5rem}}</style>\
         <h1>WeChat sandbox</h1>{asks}\
         <form method=get action=\"\">{h_appid}{h_redirect}{h_type}{h_scope}{h_state}\
         <p><label>Sandbox person: <input id=user name=user value=alice required \
         pattern=\"[A-Za-z0-9_.\\-]{{1,64}}\"></label></p>{snapshot}\
         <button id=allow name=action value=allow>{allow}</button>\
         <button id=deny name=action value=deny>Deny</button></form>",
        h_appid = hidden("appid", appid),
        h_redirect = hidden("redirect_uri", redirect_uri),
        h_type = hidden("response_type", "code"),
        h_scope = hidden("scope", scope),
        h_state = hidden("state", state),
    ))
    .into_response()
}

/// A QR-like square of blocks drawn from the state (it only looks like a code).
fn qr_panel(state: &str) -> String {
    let digest = wechat_client::crypto::sha256_hex(state.as_bytes());
    let bits: Vec<bool> = digest
        .bytes()
        .flat_map(|b| (0..4).map(move |i| (b >> i) & 1 == 1))
        .collect();
    (0..12)
        .map(|row| {
            (0..12)
                .map(|col| {
                    if bits[(row * 12 + col) % bits.len()] {
                        "██"
                    } else {
                        "  "
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
