//! Official Account login, both ways a frontend uses web authorization:
//! - frontend-driven: the page gets `code` + `state` and calls [`Public::login_with_state`];
//! - server-driven: WeChat redirects to our callback, [`Identity::complete_server_login`] records
//!   the login and hands out a one-time ticket, which [`Identity::redeem_login_ticket`] turns into
//!   tokens (so tokens never travel in a URL).
//!
//! Either way: check the state, exchange the code (`/sns/oauth2/access_token`), with
//! `snsapi_userinfo` fetch `/sns/userinfo`, then one transaction uses the state, applies the
//! identity rules, records the identity and its profile, and opens a session (or a ticket).

use chrono::Duration;

use super::oauth_state::{Presented, use_state, verifier_matches};
use super::refuse_disabled;
use crate::auth::sessions;
use crate::config::AppConfig;
use crate::crypto;
use crate::db::Conn;
use crate::db::models::login_ticket::LoginTicketRow;
use crate::db::models::now;
use crate::db::models::user::UserRow;
use crate::db::transaction;
use crate::identity::access::Public;
use crate::identity::sighting;
use crate::identity::values::LoginOutcome;
use crate::identity::{ClientInfo, IdentityError, check_code};
use crate::rate_limit::Action;
use crate::types::AppKind;

/// A frontend-driven Official Account login request (also a website's, embedded).
#[derive(Clone, Debug)]
pub struct OfficialAccountLogin {
    /// The Official Account.
    pub app_id: String,
    /// The web-authorization code WeChat appended to the redirect.
    pub code: String,
    /// The state from `startOfficialAccountLogin`, as WeChat passed it back.
    pub state: String,
    /// The verifier, when the authorize URL was asked for with a `codeChallenge`.
    pub code_verifier: Option<String>,
}

/// The result of the server-driven callback: a one-time ticket for the frontend.
pub struct ServerLogin {
    /// The ticket (shown once; stored as a hash).
    pub ticket: String,
    /// Where to send the browser, with the ticket.
    pub return_to: String,
}

/// The server-driven callback failed; `return_to` is known when the state was good, so the
/// browser can be sent back with the error.
pub struct ServerLoginError {
    /// Where the browser was headed.
    pub return_to: Option<String>,
    /// Why.
    pub error: IdentityError,
}

impl Public<'_> {
    /// Frontend-driven login of an app of `kind` (an Official Account, or a website's embedded
    /// QR code) with a code and the state we issued. A failure writes nothing and leaves the
    /// state usable.
    pub async fn login_with_state(
        &self,
        kind: AppKind,
        input: &OfficialAccountLogin,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        let login = self.frontend_login(kind, input, client);
        crate::identity::count_login(kind.as_str(), login).await
    }

    async fn frontend_login(
        &self,
        kind: AppKind,
        input: &OfficialAccountLogin,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        let app = self.app(&input.app_id, kind)?;
        check_code(&input.code)?;
        self.rate_limit(Action::Login, client, Some(&input.app_id))
            .await?;
        let state = self
            .check_state(
                &input.app_id,
                &input.state,
                Presented::Frontend {
                    code_verifier: input.code_verifier.as_deref(),
                },
            )
            .await?;
        let seen = self.oauth_exchange(app, &input.code).await?;
        let fill = seen.fill();
        let sighting = seen.sighting(&app.app_id, fill.as_ref());
        if let Some(outcome) = self
            .returning_login(&sighting, Some(&state.id), client)
            .await?
        {
            return Ok(outcome);
        }
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                use_state(conn, &state).await?;
                self.log_in(conn, &sighting, client).await
            },
        )
        .await
    }

    /// Server-driven callback: checks the state (it must carry a `return_to`, and the browser
    /// must hold the nonce cookie set when the login started), exchanges the code, records the
    /// login and stores a one-time ticket for the frontend. Rate-limited like a login (it calls
    /// WeChat, and a failed exchange leaves the state usable).
    pub async fn complete_server_login(
        &self,
        (kind, app_id): (AppKind, &str),
        code: Option<&str>,
        state: &str,
        browser_nonce: Option<&str>,
        client: &ClientInfo,
    ) -> Result<ServerLogin, ServerLoginError> {
        let fail = |return_to: Option<&str>, error| ServerLoginError {
            return_to: return_to.map(str::to_owned),
            error,
        };
        let app = self.app(app_id, kind).map_err(|e| fail(None, e))?;
        self.rate_limit(Action::Login, client, Some(app_id))
            .await
            .map_err(|e| fail(None, e))?;
        let state = self
            .check_state(app_id, state, Presented::Server { browser_nonce })
            .await
            .map_err(|e| fail(None, e))?;
        let return_to = state.return_to.clone().unwrap_or_default();
        let result =
            crate::identity::count_login(kind.as_str(), self.server_login(app, code, &state)).await;
        match result {
            Ok(ticket) => Ok(ServerLogin { ticket, return_to }),
            Err(error) => Err(fail(Some(&return_to), error)),
        }
    }

    async fn server_login(
        &self,
        app: &AppConfig,
        code: Option<&str>,
        state: &crate::db::models::oauth_state::OauthStateRow,
    ) -> Result<String, IdentityError> {
        // The person refused (WeChat redirects without a code): the state is spent.
        let Some(code) = code else {
            let spent: Result<(), IdentityError> = transaction(
                &self.db,
                async |conn: &mut Conn| -> Result<_, IdentityError> {
                    use_state(conn, state).await
                },
            )
            .await;
            spent?;
            return Err(IdentityError::AccessDenied);
        };
        check_code(code)?;
        let seen = self.oauth_exchange(app, code).await?;
        let fill = seen.fill();
        let sighting = seen.sighting(&app.app_id, fill.as_ref());
        let ticket = crypto::random_token();
        let ttl = i64::try_from(self.config.official_account_login.ticket_ttl_secs).unwrap_or(120);
        let stored: Result<(), IdentityError> = transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                use_state(conn, state).await?;
                let resolved = sighting::record(conn, &sighting).await?;
                refuse_disabled(&resolved.user)?;
                let at = now();
                LoginTicketRow::insert(
                    conn,
                    &LoginTicketRow {
                        token_hash: crypto::sha256_hex(ticket.as_bytes()),
                        user_id: resolved.user.id.clone(),
                        new_user: resolved.new_user,
                        code_challenge: state.code_challenge.clone(),
                        created_at: at,
                        expires_at: at + Duration::seconds(ttl),
                        used_at: None,
                        app_id: Some(app.app_id.clone()),
                    },
                )
                .await?;
                Ok(())
            },
        )
        .await;
        stored?;
        Ok(ticket)
    }

    /// Redeems a server-driven login's ticket for tokens: once, before it expires, with the
    /// verifier if the login was started with a `codeChallenge`. Resolves to the survivor if the
    /// user was merged in between.
    pub async fn redeem_login_ticket(
        &self,
        ticket: &str,
        code_verifier: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        const INVALID: &str = "login ticket is invalid, expired or already used";
        self.rate_limit(Action::Ticket, client, None).await?;
        if ticket.is_empty() || ticket.len() > 256 {
            return Err(IdentityError::InvalidCredential(INVALID));
        }
        let hash = crypto::sha256_hex(ticket.as_bytes());
        transaction(&self.db, async |conn: &mut Conn| -> Result<_, IdentityError> {
            let at = now();
            let Some(row) = LoginTicketRow::find(conn, &hash).await? else {
                return Err(IdentityError::InvalidCredential(INVALID));
            };
            if row.used_at.is_some() || row.expires_at <= at {
                return Err(IdentityError::InvalidCredential(INVALID));
            }
            let verified = match (&row.code_challenge, code_verifier) {
                (None, None) => true,
                (Some(challenge), Some(verifier)) => verifier_matches(challenge, verifier),
                _ => false,
            };
            if !verified {
                return Err(IdentityError::InvalidCredential(
                    "codeVerifier is missing or does not match the codeChallenge this login started with",
                ));
            }
            if !LoginTicketRow::mark_used(conn, &hash, at).await? {
                return Err(IdentityError::InvalidCredential(INVALID));
            }
            let user = UserRow::find_live(conn, &row.user_id).await?
                .ok_or(IdentityError::InvalidCredential(INVALID))?;
            refuse_disabled(&user)?;
            let login = (None, row.app_id.as_ref());
            let tokens = sessions::create(conn, &self.tokens, &user.id, login, client).await?;
            Ok(LoginOutcome { user, new_user: row.new_user, tokens })
        }).await
    }
}
