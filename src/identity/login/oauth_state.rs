//! Official Account web-authorization `state`s (CSRF protection): random, signed with HMAC and
//! bound to the app, stored with an expiry, single use. A frontend-driven state has no
//! `return_to`; a server-driven one carries where to send the browser afterwards, so neither kind
//! is accepted by the other flow.
//!
//! A login is also bound to whoever started it, so nobody can log a victim into the attacker's
//! account by handing them a finished redirect (login CSRF):
//! - server-driven: `/authorize` sets a cookie with a random nonce; the callback needs it back;
//! - optionally (PKCE-style, recommended): the frontend passes `codeChallenge` =
//!   base64url(SHA-256(verifier)) when it starts, and must present the verifier when it logs in
//!   (`loginWithOfficialAccount`) or redeems the ticket (`redeemLoginTicket`).
//!
//! Wire form: 32 hex characters of id ‖ 32 hex characters of tag (WeChat allows at most 128
//! letters and digits), where tag = HMAC-SHA256(key, id | app_id)[..16].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use chrono::{Duration, NaiveDateTime};

use crate::config::check_return_to;
use crate::crypto;
use crate::db::models::login_ticket::LoginTicketRow;
use crate::db::models::now;
use crate::db::models::oauth_state::OauthStateRow;
use crate::db::{Conn, transaction};
use crate::identity::access::{Public, System};
use crate::identity::{ClientInfo, IdentityError, Parts, truncate};
use crate::rate_limit::Action;
use crate::types::{AppId, AppKind, OauthStateId};
use crate::wechat::official_account::{OauthScope, authorize_url, qrconnect_url};

/// The error every unusable state gets: which check failed is nobody's business but the log's.
fn invalid_state() -> IdentityError {
    IdentityError::BadInput(
        "state is invalid, expired or already used; start the authorization again".into(),
    )
}

/// Which flow presents a state, with what binds it to whoever started the login.
pub(crate) enum Presented<'a> {
    /// `loginWithOfficialAccount`, with the verifier if the frontend has one.
    Frontend {
        /// The PKCE-style verifier.
        code_verifier: Option<&'a str>,
    },
    /// Our callback, with the nonce from the browser's cookie.
    Server {
        /// The cookie's value, if the browser sent it.
        browser_nonce: Option<&'a str>,
    },
}

/// What the server-driven `/authorize` hands the HTTP layer: where to redirect, and the cookie
/// that binds the login to this browser.
pub struct ServerAuthorize {
    /// WeChat's authorize URL.
    pub url: String,
    /// The cookie's name (one per login, so parallel logins in two tabs both work).
    pub cookie_name: String,
    /// The cookie's value: a random nonce, stored only as a hash.
    pub cookie_value: String,
}

/// A state just stored: its wire form, the browser's nonce (server-driven flow only), its expiry.
pub(super) struct Issued {
    pub(super) state: String,
    nonce: Option<String>,
    pub(super) expires_at: NaiveDateTime,
}

/// What the frontend-driven flow hands out: where the page sends the person, and when the state
/// in it expires.
pub struct FrontendAuthorize {
    /// WeChat's authorize URL.
    pub url: String,
    /// When its state expires.
    pub expires_at: NaiveDateTime,
}

/// The cookie that binds the server-driven login with this state to its browser.
pub fn browser_cookie_name(state: &str) -> Option<String> {
    let id = state.get(..16)?;
    id.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| format!("wi_oa_{id}"))
}

/// Checks a `codeChallenge`: base64url (no padding) of a SHA-256, 43 characters.
pub(super) fn check_code_challenge(challenge: Option<&str>) -> Result<(), IdentityError> {
    match challenge {
        None => Ok(()),
        Some(c) if c.len() == 43 && URL_SAFE_NO_PAD.decode(c).is_ok_and(|b| b.len() == 32) => {
            Ok(())
        }
        Some(_) => Err(IdentityError::BadInput(
            "codeChallenge must be base64url(SHA-256(codeVerifier)), 43 characters".into(),
        )),
    }
}

/// Whether `verifier` (43-128 characters of `A-Z a-z 0-9 - . _ ~`) hashes to `challenge`.
pub(crate) fn verifier_matches(challenge: &str, verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        && crypto::constant_time_eq(
            URL_SAFE_NO_PAD
                .encode(aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    verifier.as_bytes(),
                ))
                .as_bytes(),
            challenge.as_bytes(),
        )
}

/// Checks a `redirectUri` the frontend wants WeChat to send the person back to.
fn check_redirect_uri(redirect_uri: &str) -> Result<(), IdentityError> {
    let ok = redirect_uri.len() <= 1024
        && reqwest::Url::parse(redirect_uri).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.fragment().is_none()
        });
    if ok {
        Ok(())
    } else {
        Err(IdentityError::BadInput(format!(
            "redirectUri `{}` must be an absolute http(s) URL without a fragment, at most 1024 characters",
            truncate(redirect_uri, 64)
        )))
    }
}

impl Public<'_> {
    /// Frontend-driven flow: the authorize URL (with a fresh state) that a page inside WeChat
    /// navigates to, and when the state expires; WeChat comes back to `redirect_uri` with `code`
    /// and `state`. With `code_challenge`, `loginWithOfficialAccount` must present its verifier.
    pub async fn official_account_authorize_url(
        &self,
        app_id: &str,
        redirect_uri: &str,
        scope: OauthScope,
        code_challenge: Option<&str>,
        client: &ClientInfo,
    ) -> Result<FrontendAuthorize, IdentityError> {
        let app = self.app(app_id, AppKind::OfficialAccount)?;
        check_scope(app.kind, scope)?;
        self.rate_limit(Action::Authorize, client, Some(app_id))
            .await?;
        check_redirect_uri(redirect_uri)?;
        check_code_challenge(code_challenge)?;
        let issued = self
            .issue_state(app_id, scope, None, code_challenge)
            .await?;
        Ok(FrontendAuthorize {
            url: authorize_url(
                &self.config.wechat.open_base_url,
                app_id,
                redirect_uri,
                scope,
                &issued.state,
            ),
            expires_at: issued.expires_at,
        })
    }

    /// Server-driven flow of an Official Account or a website (`kind`): where to redirect the
    /// browser so that WeChat comes back to our callback, and the cookie that binds the login to
    /// this browser; `return_to` must be on the allow-list. With `code_challenge`,
    /// `redeemLoginTicket` must present its verifier.
    pub async fn server_authorize_redirect(
        &self,
        (kind, app_id): (AppKind, &str),
        scope: OauthScope,
        return_to: &str,
        code_challenge: Option<&str>,
        client: &ClientInfo,
    ) -> Result<ServerAuthorize, IdentityError> {
        let app = self.app(app_id, kind)?;
        check_scope(app.kind, scope)?;
        self.rate_limit(Action::Authorize, client, Some(app_id))
            .await?;
        let return_to = check_return_to(&self.config.return_to_rules(), return_to)
            .map_err(IdentityError::BadInput)?;
        check_code_challenge(code_challenge)?;
        let issued = self
            .issue_state(app_id, scope, Some(return_to.as_str()), code_challenge)
            .await?;
        let base = &self.config.wechat.open_base_url;
        let callback = self.callback_url(app.kind, app_id);
        Ok(ServerAuthorize {
            url: match app.kind {
                AppKind::Website => qrconnect_url(base, app_id, &callback, &issued.state),
                _ => authorize_url(base, app_id, &callback, scope, &issued.state),
            },
            cookie_name: browser_cookie_name(&issued.state).unwrap_or_default(),
            cookie_value: issued.nonce.unwrap_or_default(),
        })
    }
}

/// The server-driven flows, by the path segment of their routes (`/auth/{flow}/{appId}/…`).
pub const SERVER_FLOWS: [(&str, AppKind); 2] = [
    ("official-account", AppKind::OfficialAccount),
    ("website", AppKind::Website),
];

/// The path segment of the server-driven flow of `kind` (an Official Account's for any kind
/// without one of its own; those are refused by kind before any route is built).
pub fn flow_segment(kind: AppKind) -> &'static str {
    SERVER_FLOWS
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or(SERVER_FLOWS[0].0, |(segment, _)| segment)
}

/// Checks that `scope` is one the app's kind logs in with: an Official Account's two, a
/// website's `snsapi_login`.
fn check_scope(kind: AppKind, scope: OauthScope) -> Result<(), IdentityError> {
    let fits = match kind {
        AppKind::OfficialAccount => scope != OauthScope::Login,
        AppKind::Website => scope == OauthScope::Login,
        AppKind::MiniProgram | AppKind::MobileApp => false,
    };
    if fits {
        Ok(())
    } else {
        Err(IdentityError::BadInput(format!(
            "scope `{}` is not one a {} logs in with",
            scope.as_str(),
            kind.name()
        )))
    }
}

impl System {
    /// Deletes expired states and login tickets, and states in slots beyond
    /// `limits.max_live_states_per_app` (after the cap was lowered), run periodically; returns
    /// how many states and tickets.
    pub async fn purge_expired(&self) -> Result<(u64, u64), IdentityError> {
        let at = now();
        let cap = i64::from(self.config.limits.max_live_states_per_app);
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                let states = OauthStateRow::purge_expired(conn, at).await?
                    + OauthStateRow::purge_beyond_slots(conn, cap).await?;
                let tickets = LoginTicketRow::purge_expired(conn, at).await?;
                Ok((states, tickets))
            },
        )
        .await
    }
}

impl Parts {
    /// Our callback URL for the server-driven flow of an app of `kind`.
    fn callback_url(&self, kind: AppKind, app_id: &str) -> String {
        let flow = flow_segment(kind);
        format!("{}/auth/{flow}/{app_id}/callback", self.config.public_url())
    }

    /// Stores a new state in the app's next slot, replacing the state issued
    /// `limits.max_live_states_per_app` states before it (so no app ever holds more); returns
    /// it with its expiry, and for the server-driven flow the browser's nonce.
    pub(super) async fn issue_state(
        &self,
        app_id: &str,
        scope: OauthScope,
        return_to: Option<&str>,
        code_challenge: Option<&str>,
    ) -> Result<Issued, IdentityError> {
        let nonce = return_to.map(|_| crypto::random_token());
        let id = OauthStateId::new(crypto::hex(&crypto::random_bytes::<16>()));
        let tag = self
            .state_signer
            .tag::<16>(format!("{id}|{app_id}").as_bytes());
        let at = now();
        let ttl = i64::try_from(self.config.official_account_login.state_ttl_secs).unwrap_or(600);
        let row = OauthStateRow {
            id: id.clone(),
            app_id: AppId::new(app_id),
            scope: scope.as_str().to_owned(),
            return_to: return_to.map(str::to_owned),
            browser_binding: nonce.as_deref().map(|n| crypto::sha256_hex(n.as_bytes())),
            code_challenge: code_challenge.map(str::to_owned),
            created_at: at,
            expires_at: at + Duration::seconds(ttl),
            used_at: None,
            slot: None,
        };
        let mut conn = self.db.conn().await?;
        let issued = OauthStateRow::count_issued(&mut conn, &row.app_id).await?;
        let cap = i64::from(self.config.limits.max_live_states_per_app.max(1));
        let row = OauthStateRow {
            slot: Some((issued - 1).rem_euclid(cap)),
            ..row
        };
        OauthStateRow::store_in_slot(&mut conn, &row).await?;
        drop(conn);
        Ok(Issued {
            state: format!("{id}{}", crypto::hex(&tag)),
            nonce,
            expires_at: row.expires_at,
        })
    }

    /// Checks a state that came back with a code, before WeChat is called: well formed, signed
    /// for `app_id`, known, unused, unexpired, of the flow presenting it, and presented by
    /// whoever started the login. Returns its row; the login transaction marks it used.
    pub(in crate::identity) async fn check_state(
        &self,
        app_id: &str,
        state: &str,
        presented: Presented<'_>,
    ) -> Result<OauthStateRow, IdentityError> {
        let server_driven = matches!(presented, Presented::Server { .. });
        if state.len() != 64 || !state.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid_state());
        }
        let (id, tag) = state.split_at(32);
        let tag = crypto::unhex(tag).ok_or_else(invalid_state)?;
        if !self
            .state_signer
            .check(format!("{id}|{app_id}").as_bytes(), &tag)
        {
            tracing::info!(app_id, "OA state with a bad signature refused");
            return Err(invalid_state());
        }
        let mut conn = self.db.conn().await?;
        let row = OauthStateRow::find(&mut conn, &OauthStateId::new(id))
            .await?
            .ok_or_else(invalid_state)?;
        if row.app_id.as_str() != app_id
            || row.used_at.is_some()
            || row.expires_at <= now()
            || row.return_to.is_some() != server_driven
        {
            return Err(invalid_state());
        }
        match presented {
            Presented::Server { browser_nonce } => {
                let bound = match (browser_nonce, &row.browser_binding) {
                    (Some(nonce), Some(hash)) => crypto::constant_time_eq(
                        crypto::sha256_hex(nonce.as_bytes()).as_bytes(),
                        hash.as_bytes(),
                    ),
                    _ => false,
                };
                if !bound {
                    tracing::info!(
                        app_id,
                        "OA callback from a browser that did not start the login"
                    );
                    return Err(IdentityError::BadInput(
                        "this login was started in another browser (or its cookie was blocked); start again".into(),
                    ));
                }
            }
            Presented::Frontend { code_verifier } => match (&row.code_challenge, code_verifier) {
                (None, None) => {}
                (Some(challenge), Some(verifier)) if verifier_matches(challenge, verifier) => {}
                (None, Some(_)) => {
                    return Err(IdentityError::BadInput(
                        "codeVerifier given, but this login was started without a codeChallenge"
                            .into(),
                    ));
                }
                (Some(_), _) => {
                    return Err(IdentityError::BadInput(
                        "codeVerifier is missing or does not match this login's codeChallenge"
                            .into(),
                    ));
                }
            },
        }
        Ok(row)
    }
}

/// Marks a checked state used inside the login transaction; a concurrent login with the same
/// state loses here and rolls back.
pub(crate) async fn use_state(
    conn: &mut crate::db::Conn,
    row: &OauthStateRow,
) -> Result<(), IdentityError> {
    if OauthStateRow::mark_used(conn, &row.id, now()).await? {
        Ok(())
    } else {
        Err(invalid_state())
    }
}
