//! `GET /sandbox/login-demo` (sandbox mode only): a tiny frontend for both Official Account
//! logins and the website's QR-code login, written the way a real one should be. Either way it keeps a random verifier in
//! sessionStorage and binds the login to it with `codeChallenge` = base64url(SHA-256(verifier)):
//! - server-driven: it goes to `/auth/official-account/{appId}/authorize` (a website:
//!   `/auth/website/{appId}/authorize`, WeChat's QR-code page) with itself as `returnTo`; coming
//!   back with `?ticket=…` it redeems the ticket with the verifier;
//! - frontend-driven: it calls `startOfficialAccountLogin` with itself as `redirectUri` and goes
//!   to the authorize URL; coming back with `?code=…&state=…` it calls `loginWithOfficialAccount`
//!   with the verifier.
//!
//! Then it shows `me`.

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
const status = document.getElementById('status');
const out = document.getElementById('me');
// A fresh verifier kept in sessionStorage, and its challenge. crypto.subtle needs a secure
// context (https, localhost, 127.0.0.1); elsewhere there is no challenge (the server-driven
// login is still bound to this browser by the service's cookie).
async function challenge() {
  if (!(window.crypto && crypto.subtle)) {
    sessionStorage.removeItem('oa-login-verifier');
    return null;
  }
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem('oa-login-verifier', verifier);
  return b64url(new Uint8Array(digest));
}
function takeVerifier() {
  const verifier = sessionStorage.getItem('oa-login-verifier');
  sessionStorage.removeItem('oa-login-verifier');
  return verifier;
}
async function gql(query, variables, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const res = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors) throw new Error(body.errors[0].extensions.code + ': ' + body.errors[0].message);
  return body.data;
}
document.querySelectorAll('a[data-app]').forEach((a) => a.addEventListener('click', async (ev) => {
  ev.preventDefault();
  let url = '/auth/' + a.dataset.flow + '/' + encodeURIComponent(a.dataset.app) + '/authorize?scope=' + a.dataset.scope
    + '&returnTo=' + encodeURIComponent(a.dataset.returnTo);
  const codeChallenge = await challenge();
  if (codeChallenge) url += '&codeChallenge=' + codeChallenge;
  location.href = url;
}));
document.querySelectorAll('a[data-start]').forEach((a) => a.addEventListener('click', async (ev) => {
  ev.preventDefault();
  try {
    const input = { appId: a.dataset.start, redirectUri: a.dataset.returnTo,
      scope: a.dataset.scope.toUpperCase(), codeChallenge: await challenge() };
    const data = await gql('mutation($i: StartOfficialAccountLoginInput!) { startOfficialAccountLogin(input: $i) { authorizeUrl } }', { i: input });
    sessionStorage.setItem('oa-login-app', a.dataset.start);
    location.href = data.startOfficialAccountLogin.authorizeUrl;
  } catch (e) {
    status.textContent = 'login failed: ' + e.message;
  }
}));
async function show(login) {
  const me = await gql('{ me { id unionid nickname avatarUrl officialAccountIdentities { appId openid unionid scope nickname } miniProgramIdentities { appId openid } websiteIdentities { appId openid unionid nickname } } }', {}, login.accessToken);
  out.textContent = JSON.stringify(me.me, null, 2);
  status.textContent = 'logged in as ' + (me.me.nickname || me.me.id) + (login.newUser ? ' (new user)' : '');
}
async function main() {
  if (params.has('error')) {
    status.textContent = 'login failed: ' + params.get('error') + ' (' + (params.get('error_description') || '') + ')';
    return;
  }
  const ticket = params.get('ticket');
  const state = params.get('state');
  if (!ticket && !state) return;
  // A ticket and a code are single-use: drop them from the address bar and history.
  history.replaceState(null, '', location.pathname);
  try {
    if (ticket) {
      status.textContent = 'redeeming the login ticket…';
      const login = await gql('mutation($t: String!, $v: String) { redeemLoginTicket(ticket: $t, codeVerifier: $v) { accessToken newUser } }', { t: ticket, v: takeVerifier() });
      await show(login.redeemLoginTicket);
      return;
    }
    const appId = sessionStorage.getItem('oa-login-app');
    sessionStorage.removeItem('oa-login-app');
    const verifier = takeVerifier();
    // WeChat sends the person back without a code when they decline.
    if (!params.get('code')) throw new Error('ACCESS_DENIED: the person declined');
    status.textContent = 'logging in…';
    const input = { appId, code: params.get('code'), state, codeVerifier: verifier };
    const login = await gql('mutation($i: LoginWithOfficialAccountInput!) { loginWithOfficialAccount(input: $i) { accessToken newUser } }', { i: input });
    await show(login.loginWithOfficialAccount);
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
            let (here, name) = (escape(&here), escape(&app.name));
            links.push_str(&format!(
                "<li><a id=\"login-{app_id}-{scope}\" href=\"#\" data-app=\"{app_id}\" \
                 data-flow=official-account data-scope=\"{scope}\" data-return-to=\"{here}\">\
                 Log into {name} ({scope}), server-driven</a></li>\
                 <li><a id=\"start-{app_id}-{scope}\" href=\"#\" data-start=\"{app_id}\" \
                 data-scope=\"{scope}\" data-return-to=\"{here}\">Log into {name} ({scope}), \
                 frontend-driven</a></li>"
            ));
        }
    }
    for app in config.apps.iter().filter(|a| a.kind == AppKind::Website) {
        let app_id = escape(app.app_id.as_str());
        let (here, name) = (escape(&here), escape(&app.name));
        links.push_str(&format!(
            "<li><a id=\"login-{app_id}-snsapi_login\" href=\"#\" data-app=\"{app_id}\" \
             data-flow=website data-scope=snsapi_login data-return-to=\"{here}\">Log into \
             {name} with the QR code (scan it with WeChat)</a></li>"
        ));
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><meta charset=utf-8><meta name=referrer content=no-referrer>\
             <meta name=viewport content=\"width=device-width\">\
             <title>wechat-identity sandbox: login demo</title>\
             <style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}</style>\
             <h1>Log in with WeChat</h1><ul>{links}</ul>\
             <p id=status>not logged in</p><pre id=me></pre><script>{SCRIPT}</script>"
        )),
    )
        .into_response()
}
