//! `GET /sandbox/login-demo` (sandbox mode only): a tiny frontend for the server-driven Official
//! Account login, written the way a real one should be. It keeps a random verifier in
//! sessionStorage and goes to `/auth/official-account/{appId}/authorize` with itself as
//! `returnTo` and `codeChallenge` = base64url(SHA-256(verifier)); coming back with `?ticket=…`
//! it redeems the ticket with the verifier, then shows `me`.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::HttpState;
use crate::html::escape;
use crate::types::AppKind;

/// The page's path.
pub const PATH: &str = "/sandbox/login-demo";

const SCRIPT: &str = r#"
const params = new URLSearchParams(location.search);
const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
document.querySelectorAll('a[data-app]').forEach((a) => a.addEventListener('click', async (ev) => {
  ev.preventDefault();
  let url = '/auth/official-account/' + encodeURIComponent(a.dataset.app) + '/authorize?scope=' + a.dataset.scope
    + '&returnTo=' + encodeURIComponent(a.dataset.returnTo);
  // crypto.subtle needs a secure context (https, localhost, 127.0.0.1); elsewhere the login is
  // still bound to this browser by the service's cookie.
  if (window.crypto && crypto.subtle) {
    const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    sessionStorage.setItem('oa-login-verifier', verifier);
    url += '&codeChallenge=' + b64url(new Uint8Array(digest));
  } else {
    sessionStorage.removeItem('oa-login-verifier');
  }
  location.href = url;
}));
const status = document.getElementById('status');
const out = document.getElementById('me');
async function gql(query, variables, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const res = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors) throw new Error(body.errors[0].extensions.code + ': ' + body.errors[0].message);
  return body.data;
}
async function main() {
  if (params.has('error')) {
    status.textContent = 'login failed: ' + params.get('error') + ' (' + (params.get('error_description') || '') + ')';
    return;
  }
  const ticket = params.get('ticket');
  if (!ticket) return;
  // The ticket is single-use: drop it from the address bar and history.
  history.replaceState(null, '', location.pathname);
  status.textContent = 'redeeming the login ticket…';
  try {
    const verifier = sessionStorage.getItem('oa-login-verifier');
    sessionStorage.removeItem('oa-login-verifier');
    const login = await gql('mutation($t: String!, $v: String) { redeemLoginTicket(ticket: $t, codeVerifier: $v) { accessToken newUser } }', { t: ticket, v: verifier });
    const me = await gql('{ me { id unionid nickname avatarUrl officialAccountIdentities { appId openid unionid scope nickname } miniProgramIdentities { appId openid } } }', {}, login.redeemLoginTicket.accessToken);
    out.textContent = JSON.stringify(me.me, null, 2);
    status.textContent = 'logged in as ' + (me.me.nickname || me.me.id) + (login.redeemLoginTicket.newUser ? ' (new user)' : '');
  } catch (e) {
    status.textContent = 'login failed: ' + e.message;
  }
}
main();
"#;

/// The demo page.
pub(super) async fn page(State(state): State<HttpState>) -> Response {
    let config = state.identity.config();
    let here = format!("{}{PATH}", config.public_url());
    let mut links = String::new();
    for app in config
        .apps
        .iter()
        .filter(|a| a.kind == AppKind::OfficialAccount)
    {
        for scope in ["snsapi_userinfo", "snsapi_base"] {
            let app_id = escape(app.app_id.as_str());
            links.push_str(&format!(
                "<li><a id=\"login-{app_id}-{scope}\" href=\"#\" data-app=\"{app_id}\" \
                 data-scope=\"{scope}\" data-return-to=\"{}\">Log into {} ({scope})</a></li>",
                escape(&here),
                escape(&app.name)
            ));
        }
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><meta charset=utf-8><meta name=referrer content=no-referrer>\
             <meta name=viewport content=\"width=device-width\">\
             <title>wechat-identity sandbox: OA login demo</title>\
             <style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}</style>\
             <h1>Official Account login (server-driven)</h1><ul>{links}</ul>\
             <p id=status>not logged in</p><pre id=me></pre><script>{SCRIPT}</script>"
        )),
    )
        .into_response()
}
